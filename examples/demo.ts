/**
 * The end-to-end demo: an MLP classifies three interleaved spirals with 20 % of the training labels
 * flipped, trained once with SGD and once with SAM, where SAM is written as the paper's JAX code
 * writes it: the gradient taken at `params + rho * g / ||g||`. Prints both runs side by side.
 *
 *   npm run demo
 */
import { type Tensor, grad, nn, numpy as np, random, tree } from "../src/index.js";

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor; w3: Tensor; b3: Tensor };

const CLASSES = 3;

/** Three spirals in the plane, `n` points each, with Gaussian jitter. */
function spirals(key: Tensor, n: number): { x: Tensor; y: Tensor } {
  const [k1, k2] = [random.foldIn(key, 1), random.foldIn(key, 2)];
  const t = np.linspace(0.15, 1, n);
  const xs: Tensor[] = [];
  for (let c = 0; c < CLASSES; c++) {
    const angle = t.mul(4.2).add((2 * Math.PI * c) / CLASSES);
    xs.push(np.stack([t.mul(np.cos(angle)), t.mul(np.sin(angle))], 1));
  }
  const noise = random.normal(k1, [CLASSES * n, 2]).mul(0.06);
  const x = np.concatenate(xs, 0).add(noise);
  const y = np.concatenate([0, 1, 2].map((c) => np.full([n], c, "int32")), 0);
  const perm = random.permutation(k2, CLASSES * n);
  return { x: np.take(x, perm, 0), y: np.take(y, perm, 0) };
}

/** Flips a fraction of labels to a different class, deterministically per key. */
function corrupt(key: Tensor, y: Tensor, fraction: number): Tensor {
  const flip = random.bernoulli(random.foldIn(key, 3), fraction, [...y.shape]);
  const shift = random.randint(random.foldIn(key, 4), [...y.shape], 1, CLASSES);
  return np.where(flip, np.mod(y.add(shift), CLASSES), y).astype("int32");
}

function init(key: Tensor, sizes: number[]): Params {
  const keys = [0, 1, 2].map((i) => random.foldIn(key, 10 + i));
  const dense = (k: Tensor, m: number, n: number) => random.normal(k, [m, n]).mul(Math.sqrt(2 / m));
  return {
    w1: dense(keys[0]!, sizes[0]!, sizes[1]!),
    b1: np.zeros([sizes[1]!]),
    w2: dense(keys[1]!, sizes[1]!, sizes[2]!),
    b2: np.zeros([sizes[2]!]),
    w3: dense(keys[2]!, sizes[2]!, sizes[3]!),
    b3: np.zeros([sizes[3]!]),
  };
}

function predict(p: Params, x: Tensor): Tensor {
  const h1 = nn.relu(np.matmul(x, p.w1).add(p.b1));
  const h2 = nn.relu(np.matmul(h1, p.w2).add(p.b2));
  return np.matmul(h2, p.w3).add(p.b3);
}

function loss(p: Params, x: Tensor, y: Tensor): Tensor {
  const logp = nn.logSoftmax(predict(p, x));
  return np.mean(np.sum(nn.oneHot(y, CLASSES).mul(logp), -1)).neg();
}

function accuracy(p: Params, x: Tensor, y: Tensor): number {
  return np.mean(np.equal(np.argmax(predict(p, x), -1), y).astype("float32")).item();
}

const lossGrad = grad(loss);

/** SAM's gradient, line for line as the paper's JAX code: ascend to the worst point, take grad there. */
function samGrad(rho: number) {
  return (p: Params, x: Tensor, y: Tensor): Params => {
    const g = lossGrad(p, x, y) as Params;
    const norm = np.sqrt(tree.leaves<Tensor>(g).reduce((s, l) => s.add(np.sum(np.square(l))), np.array(0)));
    const eps = tree.map((gi: Tensor) => gi.mul(rho).div(norm), g);
    const perturbed = tree.map((pi: Tensor, ei: Tensor) => pi.add(ei), p, eps) as Params;
    return lossGrad(perturbed, x, y) as Params;
  };
}

function train(name: string, gradFn: (p: Params, x: Tensor, y: Tensor) => Params, data: ReturnType<typeof spirals>, test: ReturnType<typeof spirals>) {
  const steps = 400;
  const batch = 64;
  const lr = 0.1;
  let params = init(random.key(0), [2, 64, 64, CLASSES]);
  const n = data.x.shape[0]!;
  const t0 = performance.now();
  for (let step = 0; step < steps; step++) {
    const idx = random.randint(random.foldIn(random.key(1), step), [batch], 0, n);
    const xb = np.take(data.x, idx, 0);
    const yb = np.take(data.y, idx, 0);
    const g = gradFn(params, xb, yb);
    params = tree.map((p: Tensor, gi: Tensor) => p.sub(gi.mul(lr)), params, g) as Params;
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    name,
    trainLoss: loss(params, data.x, data.y).item(),
    trainAcc: accuracy(params, data.x, data.y),
    testAcc: accuracy(params, test.x, test.y),
    stepsPerSecond: steps / seconds,
  };
}

const train0 = spirals(random.key(42), 200);
const noisy = { x: train0.x, y: corrupt(random.key(7), train0.y, 0.2) };
const test = spirals(random.key(43), 200);
console.log("tsjax demo: 3-class spirals, MLP 2-64-64-3, 20% label noise, 400 steps of batch 64, lr 0.1\n");
const rows = [train("SGD", lossGrad as never, noisy, test), train("SAM rho=0.05", samGrad(0.05), noisy, test)];
console.log("optimizer      train loss  train acc (noisy)  clean test acc  steps/s");
for (const r of rows) {
  console.log(
    `${r.name.padEnd(14)} ${r.trainLoss.toFixed(4).padStart(10)}  ${(100 * r.trainAcc).toFixed(1).padStart(16)}%  ${(100 * r.testAcc).toFixed(1).padStart(13)}%  ${r.stepsPerSecond.toFixed(0).padStart(7)}`,
  );
}
