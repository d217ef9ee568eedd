/**
 * jit figures: fused elementwise chains on 2^20 elements and an MLP SGD step, jitted (own wasm, gpu.js
 * webasm, gpu.js cpu, the kernel-IR evaluator) against eager. Medians of repeated runs; the first
 * call (trace + compile) is reported separately.
 */
import { type Tensor, grad, jit, nn, numpy as np, optim, random } from "../src/index.js";
import type { BackendOption } from "../src/transforms/index.js";
import { time as timeRuns } from "./timing.js";

const time = (fn: () => unknown, reps = 5, warmup = 1) => timeRuns(fn, reps, warmup);

function firstCall(fn: () => unknown): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

const BACKENDS: [string, BackendOption][] = [
  ["wasm", "wasm"],
  ["gpu.js webasm", { name: "gpu.js", mode: "webasm" }],
  ["gpu.js cpu", { name: "gpu.js", mode: "cpu" }],
  ["ts evaluator", "ts"],
];

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor; w3: Tensor; b3: Tensor };

/** Rows of [name, value] for bench/run.ts. */
export function benchJit(): [string, string][] {
  const rows: [string, string][] = [];
  const n = 2 ** 20;
  const [x, a, b, c] = [0, 1, 2, 3].map((i) => random.normal(random.key(10 + i), [n])) as [
    Tensor,
    Tensor,
    Tensor,
    Tensor,
  ];
  const chains: [string, (x: Tensor, a: Tensor, b: Tensor, c: Tensor) => Tensor][] = [
    ["(x*a+b)*c", (x, a, b, c) => x.mul(a).add(b).mul(c)],
    ["tanh(x*a+b)*c", (x, a, b, c) => np.tanh(x.mul(a).add(b)).mul(c)],
  ];
  for (const [name, f] of chains) {
    rows.push([`${name}, 2^20, eager`, `${time(() => f(x, a, b, c), 3).toFixed(2)} ms`]);
    for (const [tag, backend] of BACKENDS) {
      const jf = jit(f, { backend });
      const first = firstCall(() => jf(x, a, b, c));
      rows.push([
        `${name}, 2^20, jit [${tag}]`,
        `${time(() => jf(x, a, b, c)).toFixed(2)} ms (first call ${first.toFixed(0)} ms)`,
      ]);
    }
  }

  const k = random.key(0);
  const sizes = [784, 512, 512, 10];
  const w = (i: number) =>
    random.normal(random.foldIn(k, i), [sizes[i]!, sizes[i + 1]!]).mul(Math.sqrt(2 / sizes[i]!));
  const params: Params = {
    w1: w(0),
    b1: np.zeros([512]),
    w2: w(1),
    b2: np.zeros([512]),
    w3: w(2),
    b3: np.zeros([10]),
  };
  const xs = random.normal(random.key(1), [128, 784]);
  const ys = random.randint(random.key(2), [128], 0, 10);
  const loss = (p: Params, x: Tensor, y: Tensor) => {
    const h1 = nn.relu(np.matmul(x, p.w1).add(p.b1));
    const h2 = nn.relu(np.matmul(h1, p.w2).add(p.b2));
    const logits = np.matmul(h2, p.w3).add(p.b3);
    return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
  };
  const step = (p: Params, x: Tensor, y: Tensor): Params => {
    const g = grad(loss)(p, x, y) as Params;
    const out = {} as Params;
    for (const key of Object.keys(p) as (keyof Params)[]) out[key] = p[key].sub(g[key].mul(0.01));
    return out;
  };
  const samGrad = optim.sam(loss, { rho: 0.05 });
  const samStep = (p: Params, x: Tensor, y: Tensor): Params => {
    const g = samGrad(p, x, y) as Params;
    const out = {} as Params;
    for (const key of Object.keys(p) as (keyof Params)[]) out[key] = p[key].sub(g[key].mul(0.01));
    return out;
  };
  const tEager = time(() => step(params, xs, ys), 3);
  rows.push(["MLP 784-512-512-10 SGD step, B = 128, eager", `${tEager.toFixed(1)} ms`]);
  for (const [tag, backend] of BACKENDS.slice(0, 2)) {
    const js = jit(step, { backend });
    const first = firstCall(() => js(params, xs, ys));
    const t = time(() => js(params, xs, ys), 3);
    rows.push([
      `MLP SGD step, jit [${tag}]`,
      `${t.toFixed(1)} ms (${(t / tEager).toFixed(2)}x eager; first call ${first.toFixed(0)} ms)`,
    ]);
  }
  const webasm = BACKENDS[0]![1]; // the default backend here
  const jsgd = jit(step, { backend: webasm });
  jsgd(params, xs, ys);
  const tSgd = time(() => jsgd(params, xs, ys), 3);
  const jsam = jit(samStep, { backend: webasm });
  const firstSam = firstCall(() => jsam(params, xs, ys));
  const tSam = time(() => jsam(params, xs, ys), 3);
  rows.push([
    "MLP SAM step (two gradients), jit [wasm]",
    `${tSam.toFixed(1)} ms (${(tSam / tSgd).toFixed(2)}x the jitted SGD step; first call, trace + compile + run, ${firstSam.toFixed(0)} ms)`,
  ]);
  return rows;
}
