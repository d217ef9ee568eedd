/**
 * `npm run bench:soak`: the long memory soak of the jit issue. 10,000 calls (SOAK_STEPS) of the
 * jitted MLP 784-512-512-10 SGD step (B = 128) on the default backend, yielding to the event loop
 * every 100 steps as a training loop with I/O would (finalizers, which return result buffers to the
 * wasm heap, only run between tasks). Prints resident set size, JS heap and the wasm linear memory
 * every SOAK_EVERY steps, then the growth after warm-up. Nothing is asserted: read the figures (the
 * modest-count version with a bound is test/transforms/jit/jit-memory.test.ts).
 */
import { type Tensor, grad, jit, nn, numpy as np, random } from "../src/index.js";
import { getDefaultBackend, resolveBackend } from "../src/transforms/jit/backend.js";

const STEPS = Number(process.env.SOAK_STEPS ?? 10000);
const EVERY = Number(process.env.SOAK_EVERY ?? 1000);
const WARMUP = Math.min(500, Math.floor(STEPS / 10));

type P = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor; w3: Tensor; b3: Tensor };
const k = random.key(0);
const w = (i: number, m: number, n: number) =>
  random.normal(random.foldIn(k, i), [m, n]).mul(Math.sqrt(2 / m));
let params: P = {
  w1: w(0, 784, 512),
  b1: np.zeros([512]),
  w2: w(1, 512, 512),
  b2: np.zeros([512]),
  w3: w(2, 512, 10),
  b3: np.zeros([10]),
};
const x = random.normal(random.key(1), [128, 784]);
const y = random.randint(random.key(2), [128], 0, 10);
const loss = (p: P, x: Tensor, y: Tensor) => {
  const h1 = nn.relu(np.matmul(x, p.w1).add(p.b1));
  const h2 = nn.relu(np.matmul(h1, p.w2).add(p.b2));
  const logits = np.matmul(h2, p.w3).add(p.b3);
  return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
};
const step = jit((p: P, x: Tensor, y: Tensor) => {
  const g = grad(loss)(p, x, y) as P;
  const out = {} as Record<string, Tensor>;
  for (const key of Object.keys(p) as (keyof P)[]) out[key] = p[key].sub(g[key].mul(0.01));
  return out as P;
});

const backend = resolveBackend(getDefaultBackend()) as { memoryBytes?: () => number } | null;
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const sample = () => {
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, wasm: backend?.memoryBytes?.() ?? 0 };
};
const rows: string[] = ["step     rss MiB  JS heap MiB  wasm memory MiB  ms/step"];
let base = sample();
let t0 = performance.now();
for (let i = 1; i <= STEPS; i++) {
  params = step(params, x, y);
  if (i % 100 === 0) await new Promise((r) => setImmediate(r));
  if (i === WARMUP) base = sample();
  if (i % EVERY === 0 || i === STEPS) {
    const s = sample();
    const ms = (performance.now() - t0) / EVERY;
    rows.push(
      `${String(i).padEnd(8)} ${mib(s.rss).padStart(7)}  ${mib(s.heap).padStart(11)}  ${mib(s.wasm).padStart(15)}  ${ms.toFixed(2).padStart(7)}`,
    );
    t0 = performance.now();
  }
}
const end = sample();
console.log(`jit soak: ${STEPS} MLP SGD steps on ${getDefaultBackend() as string}, node ${process.version}`);
for (const r of rows) console.log(r);
console.log(
  `growth after step ${WARMUP}: rss ${mib(end.rss - base.rss)} MiB, JS heap ${mib(end.heap - base.heap)} MiB, wasm memory ${mib(end.wasm - base.wasm)} MiB; final loss ${loss(params, x, y).item().toFixed(4)}`,
);
