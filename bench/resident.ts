/**
 * `npx tsx bench/resident.ts`: the jit's wasm backend with resident plans (inputs placed once,
 * intermediates as heap blocks, kernels on offsets, results as views into the heap) against the
 * copying plan on the SAME backend instance and kernels (a twin backend without `memory`: every
 * kernel copies its inputs into staging and its result out), and with result views off
 * (`resultViewBytes: 0`). Rounds alternate so machine drift hits both alike; each figure is the
 * best (`BENCH_STAT=min`) or median of its rounds' medians.
 *
 * Calls run in a synchronous loop, as in bench/peers.ts: result views are not freed inside it
 * (finalizers run between tasks), so after warm-up part of the loop may copy at the view cap.
 * `BENCH_QUICK=1` runs fewer repetitions and skips the CNN.
 */
import { Tensor, grad, jit, lax, nn, numpy as np, optim } from "../src/index.js";
import { convDimensionNumbers } from "../src/core/primitives/conv.js";
import type { CompiledKernel, KernelBackend } from "../src/transforms/jit/backend.js";
import { wasmJitBackend } from "../src/transforms/jit/wasm-backend.js";
import { median, time } from "./timing.js";

const QUICK = process.env.BENCH_QUICK === "1";
type T = Tensor;

function data(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * scale;
  }
  return out;
}
const t = (shape: number[], d: Float32Array) => Tensor._fromBuffer(shape, "float32", d);
const labels = (n: number) =>
  Tensor._fromBuffer(
    [n],
    "int32",
    Int32Array.from({ length: n }, (_, i) => (i * 7) % 10),
  );

/** The same backend's kernels without `memory`: the executable's copying plan. */
function copying(be: KernelBackend): KernelBackend {
  return {
    name: `${be.name}-copying`,
    compile(k): CompiledKernel {
      const c = be.compile(k);
      return {
        get ranOn() {
          return c.ranOn;
        },
        reusesOutput: c.reusesOutput,
        run: (ins, out) => c.run(ins, out),
      };
    },
    compileEscape: (e) => be.compileEscape?.(e) ?? null,
  };
}

const sgdUpdate = (p: Record<string, T>, g: Record<string, T>) =>
  Object.fromEntries(Object.keys(p).map((k) => [k, p[k]!.sub(g[k]!.mul(0.01))]));

const B = 128;
const mp = {
  w1: t([784, 512], data(784 * 512, 3, 0.087)),
  b1: t([512], new Float32Array(512)),
  w2: t([512, 512], data(512 * 512, 4, 0.108)),
  b2: t([512], new Float32Array(512)),
  w3: t([512, 10], data(5120, 5, 0.108)),
  b3: t([10], new Float32Array(10)),
};
const mx = t([B, 784], data(B * 784, 6));
const my = labels(B);
const mlpLoss = (p: typeof mp, x: T, y: T) => {
  const h1 = nn.relu(np.matmul(x, p.w1).add(p.b1));
  const h2 = nn.relu(np.matmul(h1, p.w2).add(p.b2));
  const logits = np.matmul(h2, p.w3).add(p.b3);
  return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
};
const samGrad = optim.sam(mlpLoss, { rho: 0.05 });

const CB = 64;
const cp = {
  k1: t([3, 3, 1, 32], data(288, 7, 0.3)),
  c1: t([32], new Float32Array(32)),
  k2: t([3, 3, 32, 64], data(9 * 32 * 64, 8, 0.06)),
  c2: t([64], new Float32Array(64)),
  w: t([12 * 12 * 64, 10], data(9216 * 10, 9, 0.01)),
  b: t([10], new Float32Array(10)),
};
const cx = t([CB, 28, 28, 1], data(CB * 784, 10));
const cy = labels(CB);
const conv = (v: T, k: T) =>
  lax.convGeneralDilated(v, k, {
    padding: "VALID",
    dimensionNumbers: convDimensionNumbers(v.shape, k.shape, ["NHWC", "HWIO", "NHWC"]),
  });
const cnnLoss = (p: typeof cp, x: T, y: T) => {
  const h1 = nn.relu(conv(x, p.k1).add(p.c1));
  const h2 = nn.relu(conv(h1, p.k2).add(p.c2));
  const none: [number, number][] = [
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
  ];
  const pooled = lax.reduceWindow(h2, "max", [1, 2, 2, 1], [1, 2, 2, 1], none);
  const logits = np.matmul(pooled.reshape([CB, -1]), p.w).add(p.b);
  return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
};

const ev = t([1 << 20], data(1 << 20, 11));
const workloads: [string, (...a: never[]) => unknown, unknown[], number][] = [
  ["(x*a+b)*c on 2^20", (v: T) => v.mul(1.5).add(0.25).mul(2), [ev], 30],
  [
    "MLP SGD step",
    (p: typeof mp, x: T, y: T) => sgdUpdate(p, grad(mlpLoss)(p, x, y) as typeof mp),
    [mp, mx, my],
    15,
  ],
  [
    "MLP SAM step",
    (p: typeof mp, x: T, y: T) => sgdUpdate(p, samGrad(p, x, y) as typeof mp),
    [mp, mx, my],
    10,
  ],
];
if (!QUICK)
  workloads.push([
    "CNN SGD step",
    (p: typeof cp, x: T, y: T) => sgdUpdate(p, grad(cnnLoss)(p, x, y) as typeof cp),
    [cp, cx, cy],
    3,
  ]);

const resident = wasmJitBackend({ threads: 2 });
const noViews = wasmJitBackend({ threads: 2, resultViewBytes: 0 });
const variants: [string, KernelBackend][] = [
  ["copying", copying(resident)],
  ["resident", resident],
  ["resident, no views", noViews],
];
const rounds = QUICK ? 2 : 4;
console.log(`workload               ${variants.map(([n]) => n.padStart(20)).join("")}   (ms)`);
for (const [name, f, args, reps] of workloads) {
  const fns = variants.map(([, backend]) => jit(f as (...a: unknown[]) => unknown, { backend }));
  const per = variants.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++)
    fns.forEach((g, i) => per[i]!.push(time(() => g(...args), QUICK ? Math.ceil(reps / 3) : reps, 2)));
  console.log(`${name.padEnd(23)}${per.map((xs) => median(xs).toFixed(2).padStart(20)).join("")}`);
}
resident.dispose();
noViews.dispose();
