/**
 * `npx tsx bench/cnn-profile.ts`: where the time of bench/peers.ts's jitted CNN step goes on the
 * `"wasm"` backend (B = 64, 28×28×1, conv3×3 1→32, ReLU, conv3×3 32→64, ReLU, 2×2 max-pool, dense
 * 9216→10, softmax cross-entropy, grad + SGD). Every compiled kernel and native escape is wrapped
 * in a timer; the step total minus their sum is the executor plus the escapes left to the reference
 * implementations. Prints per-step milliseconds of each step above 0.5 ms (the median, or with
 * `BENCH_STAT=min` the fastest of `BENCH_REPS` steps, default 5), then the plan.
 */
import { Tensor, grad, jit, lax, nn, numpy as np } from "../src/index.js";
import { convDimensionNumbers } from "../src/core/primitives/conv.js";
import type { CompiledEscape, CompiledKernel, KernelBackend } from "../src/transforms/jit/backend.js";
import type { Kernel } from "../src/transforms/jit/kernel-ir.js";
import { wasmJitBackend } from "../src/transforms/jit/wasm-backend.js";
import type { JaxprEqn } from "../src/core/jaxpr.js";
import { median } from "./timing.js";

type T = Tensor;
type Params = Record<"k1" | "c1" | "k2" | "c2" | "w" | "b", T>;

const data = (n: number, seed: number) => {
  const o = new Float32Array(n);
  let s = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    o[i] = s / 2 ** 31 - 1;
  }
  return o;
};
const t = (shape: number[], d: Float32Array) => Tensor._fromBuffer(shape, "float32", d);
const B = 64;
const params: Params = {
  k1: t(
    [3, 3, 1, 32],
    data(288, 7).map((v) => v * 0.3),
  ),
  c1: t([32], new Float32Array(32)),
  k2: t(
    [3, 3, 32, 64],
    data(9 * 32 * 64, 8).map((v) => v * 0.06),
  ),
  c2: t([64], new Float32Array(64)),
  w: t(
    [12 * 12 * 64, 10],
    data(9216 * 10, 9).map((v) => v * 0.01),
  ),
  b: t([10], new Float32Array(10)),
};
const xs = t([B, 28, 28, 1], data(B * 784, 10));
const ys = Tensor._fromBuffer(
  [B],
  "int32",
  Int32Array.from({ length: B }, (_, i) => (i * 7) % 10),
);
const conv = (v: T, k: T) =>
  lax.convGeneralDilated(v, k, {
    padding: "VALID",
    dimensionNumbers: convDimensionNumbers(v.shape, k.shape, ["NHWC", "HWIO", "NHWC"]),
  });
const loss = (p: Params, x: T, y: T) => {
  const h1 = nn.relu(conv(x, p.k1).add(p.c1));
  const h2 = nn.relu(conv(h1, p.k2).add(p.c2));
  const pooled = lax.reduceWindow(
    h2,
    "max",
    [1, 2, 2, 1],
    [1, 2, 2, 1],
    [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ],
  );
  const logits = np.matmul(pooled.reshape([B, -1]), p.w).add(p.b);
  return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
};
const sgd = (p: Params, g: Params): Params =>
  Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.sub(g[k as keyof Params].mul(0.01))])) as Params;

const inner = wasmJitBackend({ threads: 2 });
/** Per step name, the milliseconds of the current step. */
const current = new Map<string, number>();
const add = (key: string, ms: number) => current.set(key, (current.get(key) ?? 0) + ms);
const timed = <A extends unknown[], R>(key: string, f: (...a: A) => R) => {
  current.set(key, 0);
  return (...a: A): R => {
    const t0 = performance.now();
    const r = f(...a);
    add(key, performance.now() - t0);
    return r;
  };
};
const profiler: KernelBackend = {
  name: "profile",
  compile(k: Kernel): CompiledKernel {
    const c = inner.compile(k);
    const what = k.reduction ? `red ${k.reduction.shape.join("x")}` : "ew";
    const key = `#${current.size} kernel ${k.outShape.join("x")} ${what}`;
    const run = timed(key, c.run.bind(c));
    return {
      get ranOn() {
        return c.ranOn;
      },
      reusesOutput: c.reusesOutput,
      run,
      // The resident plan calls runPtr: time that path (the one the jit takes), not the copies.
      ...(c.runPtr ? { runPtr: timed(key, c.runPtr.bind(c)) } : {}),
    };
  },
  compileEscape(e: JaxprEqn): CompiledEscape | null {
    const c = inner.compileEscape!(e);
    if (!c) return null;
    const key = `#${current.size} escape ${e.prim.name} on ${c.ranOn}`;
    return {
      ranOn: c.ranOn,
      run: timed(key, c.run.bind(c)),
      ...(c.runPtr ? { runPtr: timed(key, c.runPtr.bind(c)) } : {}),
    };
  },
  ...(inner.memory ? { memory: inner.memory } : {}),
};
const step = jit((p: Params, x: T, y: T) => sgd(p, grad(loss)(p, x, y) as Params), { backend: profiler });
for (let i = 0; i < 2; i++) step(params, xs, ys);
const reps = Number(process.env.BENCH_REPS ?? 5);
const totals: number[] = [];
const per = new Map<string, number[]>();
for (let i = 0; i < reps; i++) {
  for (const k of current.keys()) current.set(k, 0);
  const t0 = performance.now();
  step(params, xs, ys);
  totals.push(performance.now() - t0);
  for (const [k, v] of current) per.set(k, [...(per.get(k) ?? []), v]);
}
let sum = 0;
for (const [k, v] of per) {
  const ms = median(v);
  sum += ms;
  if (ms > 0.5) console.log(ms.toFixed(2).padStart(8), k);
}
console.log(`step ${median(totals).toFixed(1)} ms, kernels + native escapes ${sum.toFixed(1)} ms`);
console.log(step.lower(params, xs, ys).plan.join("\n"));
inner.dispose();
