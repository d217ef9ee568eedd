/**
 * `npm run bench`: tsjax's figures on this machine, then the jit issue's table with the peers
 * (jax-js, TensorFlow.js) side by side, each library in its own process (bench/peers.ts). Prints
 * medians of repeated runs; nothing here is asserted (timings flake on shared machines).
 */
import { type Tensor, grad, makeJaxpr, nn, numpy as np, optim, random } from "../src/index.js";
import { benchJit } from "./jit.js";
import { peerTable } from "./peers.js";
import { benchTree } from "./tree.js";
import { time as timeRuns } from "./timing.js";

/** Median ms of `fn` over `reps` runs after `warmup` runs. */
const time = (fn: () => unknown, reps = 7, warmup = 2) => timeRuns(fn, reps, warmup);

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor; w3: Tensor; b3: Tensor };

function mlp(sizes: number[]): Params {
  const k = random.key(0);
  const w = (i: number) =>
    random.normal(random.foldIn(k, i), [sizes[i]!, sizes[i + 1]!]).mul(Math.sqrt(2 / sizes[i]!));
  return {
    w1: w(0),
    b1: np.zeros([sizes[1]!]),
    w2: w(1),
    b2: np.zeros([sizes[2]!]),
    w3: w(2),
    b3: np.zeros([sizes[3]!]),
  };
}

function loss(p: Params, x: Tensor, y: Tensor): Tensor {
  const h1 = nn.relu(np.matmul(x, p.w1).add(p.b1));
  const h2 = nn.relu(np.matmul(h1, p.w2).add(p.b2));
  const logits = np.matmul(h2, p.w3).add(p.b3);
  return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
}

const rows: [string, string][] = [];
const params = mlp([784, 512, 512, 10]);
const x = random.normal(random.key(1), [128, 784]);
const y = random.randint(random.key(2), [128], 0, 10);
const g = grad(loss);

rows.push([
  "trace MLP 784-512-512-10 grad step to a jaxpr (makeJaxpr)",
  `${time(() => makeJaxpr(g)(params, x, y)).toFixed(2)} ms`,
]);
const tGrad = time(() => g(params, x, y), 3, 1);
rows.push(["eager grad of the MLP step, B = 128 (reference CPU kernels)", `${tGrad.toFixed(1)} ms`]);
const samGrad = optim.sam(loss, { rho: 0.05 });
const tSam = time(() => samGrad(params, x, y), 3, 1);
rows.push([
  "eager SAM gradient of the same step (two gradients)",
  `${tSam.toFixed(1)} ms (${(tSam / tGrad).toFixed(2)}x the plain gradient)`,
]);
const a = np.ones([10]);
const b = np.ones([10]);
const n = 20000;
const tAdd = time(() => {
  for (let i = 0; i < n; i++) np.add(a, b);
});
rows.push(["eager add of two 10-element tensors", `${((tAdd * 1000) / n).toFixed(2)} µs/op`]);
const m = random.normal(random.key(3), [512, 512]);
const tMat = time(() => np.matmul(m, m), 3, 1);
rows.push([
  "matmul 512² fp32 (reference CPU kernel)",
  `${((2 * 512 ** 3) / (tMat * 1e6)).toFixed(2)} GFLOP/s`,
]);
for (const r of benchTree()) rows.push([r.name, `${r.us.toFixed(2)} µs`]);
rows.push(...benchJit());

const w = Math.max(...rows.map((r) => r[0].length));
console.log("tsjax bench (median of repeated runs)\n");
for (const [name, value] of rows) console.log(`${name.padEnd(w)}  ${value}`);

console.log("");
for (const line of peerTable()) console.log(line);
