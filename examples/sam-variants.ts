/**
 * One small training run per SAM variant on the same problem, with the same initialisation and the
 * same batches for every variant, momentum SGD 0.9 with a cosine learning rate from 0.05. Prints,
 * per variant, the final noisy-train loss and accuracy, the clean test accuracy, the m-sharpness
 * (m = 20, ρ = 0.05) and the top Hessian eigenvalue of the training loss at the final weights.
 *
 * Two problems (`DATA`, default `spirals`, the fast one):
 *
 * - `spirals`: an MLP 2-32-32-3 on three synthetic interleaved spirals with 20 % of the training
 *   labels flipped (test labels clean), 400 steps of batch 64 drawn with replacement.
 * - `mnist`: real data through the command line's loader (src/cli/data/datasets.ts): 1,000 MNIST
 *   training images with 40 % symmetric label noise and 1,000 clean test images, average-pooled to
 *   14×14 and standardised, an MLP 196-32-10, 10 epochs of batch 50 over a seeded shuffle. The
 *   subsets and the noise use the CLI's seeds, so they are those of
 *   `tsjax train --dataset mnist --seed 0 --train-size 1000 --test-size 1000 --label-noise 0.4 --image-size 14`.
 *   LMAX_SIZE=500 estimates λmax on the first 500 training images only, for a shorter run.
 *
 *   npx tsx examples/sam-variants.ts            (STEPS=100 for a quick run)
 *   PER_CLASS=60 HIDDEN=64 NOISE=0.3 STEPS=1500 npx tsx examples/sam-variants.ts   (a regime where SGD memorises the noise)
 *   DATA=mnist npx tsx examples/sam-variants.ts   (TRAIN_SIZE, TEST_SIZE, NOISE, HIDDEN, EPOCHS, SEED, LMAX_SIZE)
 *   VARIANTS=sgd,asam npx tsx examples/sam-variants.ts   (only the variants whose names contain a fragment)
 */
import {
  type Prepared,
  batchOf,
  loadDataset,
  prepare,
  seededSubset,
  symmetricNoise,
} from "../src/cli/data/datasets.js";
import { ConfigError, type Tensor, grad, nn, numpy as np, optim, random, tree } from "../src/index.js";

type Layer = { w: Tensor; b: Tensor };
/** Dense layers `l1, l2, …`, applied in that order with ReLU between them. */
type Params = Record<string, Layer>;
type Data = { x: Tensor; y: Tensor };

/** A training problem: data, network widths and the batch schedule every variant shares. */
interface Problem {
  /** Two lines describing the data, model and schedule. */
  description: string;
  /** Layer widths, input first, classes last. */
  widths: number[];
  train: Data;
  test: Data;
  /** The training set λmax is estimated on (all of `train`, or a prefix of it). */
  lmaxSet: Data;
  steps: number;
  /** The `t`-th training batch. */
  batch(t: number): Data;
  /** m-SAM's lane size: it must divide the batch size. */
  m: number;
}

const DATA = process.env.DATA ?? "spirals";
const HIDDEN = Number(process.env.HIDDEN ?? 32);
const LR0 = 0.05;
/** Comma-separated name fragments: only the variants whose name contains one of them run. */
const ONLY = (process.env.VARIANTS ?? "")
  .split(",")
  .map((f) => f.trim().toLowerCase())
  .filter((f) => f !== "");

const CLASSES = 3;

/** Three spirals in the plane, `n` points each, with Gaussian jitter. */
function spirals(key: Tensor, n: number): Data {
  const t = np.linspace(0.15, 1, n);
  const xs: Tensor[] = [];
  for (let c = 0; c < CLASSES; c++) {
    const angle = t.mul(4.2).add((2 * Math.PI * c) / CLASSES);
    xs.push(np.stack([t.mul(np.cos(angle)), t.mul(np.sin(angle))], 1));
  }
  const x = np.concatenate(xs, 0).add(random.normal(random.foldIn(key, 1), [CLASSES * n, 2]).mul(0.06));
  const y = np.concatenate(
    [0, 1, 2].map((c) => np.full([n], c, "int32")),
    0,
  );
  const perm = random.permutation(random.foldIn(key, 2), CLASSES * n);
  return { x: np.take(x, perm, 0), y: np.take(y, perm, 0) };
}

/** Flips a fraction of the labels to another class. */
function corrupt(key: Tensor, y: Tensor, fraction: number): Tensor {
  const flip = random.bernoulli(random.foldIn(key, 3), fraction, [...y.shape]);
  const shift = random.randint(random.foldIn(key, 4), [...y.shape], 1, CLASSES);
  return np.where(flip, np.mod(y.add(shift), CLASSES), y).astype("int32");
}

function init(key: Tensor, widths: number[]): Params {
  const p: Params = {};
  for (let i = 1; i < widths.length; i++) {
    const [m, n] = [widths[i - 1]!, widths[i]!];
    p[`l${i}`] = { w: random.normal(random.foldIn(key, i), [m, n]).mul(Math.sqrt(2 / m)), b: np.zeros([n]) };
  }
  return p;
}

function predict(p: Params, x: Tensor): Tensor {
  const layers = Object.keys(p).length;
  let h = x;
  for (let i = 1; i <= layers; i++) {
    const { w, b } = p[`l${i}`]!;
    h = np.matmul(h, w).add(b);
    if (i < layers) h = nn.relu(h);
  }
  return h;
}

const loss = (p: Params, x: Tensor, y: Tensor): Tensor =>
  nn.losses.softmaxCrossEntropyWithIntegerLabels(predict(p, x), y).mean();
const accuracy = (p: Params, d: Data): number =>
  np.mean(np.equal(np.argmax(predict(p, d.x), -1), d.y).astype("float32")).item();
const isBias = (path: tree.KeyPath) => tree.keyPathToString(path).endsWith("b");

/** A variant: `init(params)` builds its state; `step` takes one training step on a batch. */
interface Variant {
  name: string;
  init(p: Params): unknown;
  step(p: Params, s: unknown, x: Tensor, y: Tensor, t: number): [Params, unknown];
}

/** Every variant of the table, for `steps` training steps and m-SAM lanes of `m` examples. */
function variants(steps: number, m: number): Variant[] {
  const LR = optim.cosineDecaySchedule(LR0, steps);
  const base = () => optim.sgd(LR, { momentum: 0.9 });
  /** A gradient function (params, x, y) → grads fed to momentum SGD. */
  const withGrad = (name: string, g: (p: Params, x: Tensor, y: Tensor) => unknown): Variant => {
    const opt = base();
    return {
      name,
      init: (p) => opt.init(p),
      step: (p, s, x, y) => {
        const [u, ns] = opt.update(g(p, x, y), s as unknown[], p);
        return [optim.applyUpdates(p, u), ns];
      },
    };
  };
  const rho = 0.05;
  const out: Variant[] = [
    withGrad("SGD (momentum 0.9)", grad(loss) as never),
    withGrad("SAM ρ=0.05", optim.sam(loss, { rho })),
  ];
  // The official JAX step: L2 in the loss (5e-4), mirror-mode SAM, clip at 5, flax Nesterov.
  {
    const opt = optim.sgd(LR, { momentum: 0.9, flaxNesterov: true });
    const stepFn = optim.samTrainStep({
      loss: (p, ms, b) => [loss(p, b.x, b.y), { modelState: ms }],
      optimizer: opt,
      rho,
      weightDecay: 5e-4,
    });
    out.push({
      name: "SAM mirror (samTrainStep)",
      init: (p) => opt.init(p),
      step: (p, s, x, y) => {
        const r = stepFn(p, s, null, { x, y }, null);
        return [r.params, r.optState];
      },
    });
  }
  out.push(
    withGrad(
      "ASAM ρ=0.5 (elementwise)",
      optim.sam(loss, { rho: 0.5, adaptive: { eta: 0.01, exempt: isBias } }),
    ),
    // Filter-wise, ρ bounds the perturbation per filter (√(Σ_f (‖ε_f‖/‖w_f‖)²) = ρ) rather than per
    // element, so ‖ε‖ is about √(weights / filters) times the element-wise one: on MNIST's 196-input
    // filters ρ = 0.5 leaves the network at chance (ρ = 0.1 trains); kept equal here for comparison.
    withGrad(
      "ASAM ρ=0.5 (filterwise)",
      optim.sam(loss, { rho: 0.5, adaptive: { operator: "filterwise", exempt: isBias } }),
    ),
    withGrad("Fisher-SAM γ=0.1 η=1", optim.sam(loss, { rho: 0.1, fisher: { eta: 1 } })),
    withGrad("USAM ρ=0.05", optim.usam(loss, { rho })),
    withGrad(`m-SAM ρ=0.05 m=${m}`, optim.sam(loss, { rho, m })),
    withGrad("SAM 3-step projected", optim.sam(loss, { rho, ascentSteps: 3, ascentStepSize: rho / 2 })),
    withGrad("SAM + 2nd-order term", optim.sam(loss, { rho, secondOrder: true })),
  );
  {
    // GSAM: ρ_t follows the cosine learning rate from 0.1 down to 0.02, α = 0.3.
    const rhoT = optim.gsamRhoSchedule({
      learningRate: LR,
      lrMax: LR0,
      lrMin: 0,
      rhoMax: 0.1,
      rhoMin: 0.02,
    });
    const g = optim.gsam(loss, { rho: rhoT, alpha: 0.3 });
    const opt = base();
    out.push({
      name: "GSAM ρ 0.1→0.02 α=0.3",
      init: (p) => opt.init(p),
      step: (p, s, x, y, t) => {
        const [u, ns] = opt.update(g(np.array(t, "int32"), p, x, y), s as unknown[], p);
        return [optim.applyUpdates(p, u), ns];
      },
    });
  }
  {
    const ls = optim.lookSam(loss, { rho, k: 5, alpha: 0.7 });
    const opt = base();
    out.push({
      name: "LookSAM k=5 α=0.7",
      init: (p) => ({ ls: ls.init(p), opt: opt.init(p) }),
      step: (p, s, x, y) => {
        const st = s as { ls: optim.LookSamState; opt: unknown[] };
        const [g, nls] = ls.step(st.ls, p, x, y);
        const [u, no] = opt.update(g, st.opt, p);
        return [optim.applyUpdates(p, u), { ls: nls, opt: no }];
      },
    });
  }
  {
    // optax's form: two update calls per step (ascent, then descent from the cached clean point).
    const opt = optim.contrib.sam(base(), optim.chain(optim.contrib.normalize(), optim.sgd(rho)));
    const lg = grad(loss);
    out.push({
      name: "contrib.sam (optax form)",
      init: (p) => opt.init(p),
      step: (p, s, x, y) => {
        let q = p;
        let st = s as optim.contrib.SamState<unknown[], unknown[]>;
        for (let i = 0; i < 2; i++) {
          const [u, ns] = opt.update(lg(q, x, y), st, q);
          q = optim.applyUpdates(q, u);
          st = ns;
        }
        return [q, st];
      },
    });
  }
  return out;
}

/** The synthetic problem: three noisy spirals, batches drawn with replacement. */
function spiralsProblem(): Problem {
  const steps = Number(process.env.STEPS ?? 400);
  /** Training points per class and the fraction of flipped training labels. */
  const perClass = Number(process.env.PER_CLASS ?? 200);
  const noise = Number(process.env.NOISE ?? 0.2);
  const batch = 64;
  const train0 = spirals(random.key(42), perClass);
  const train: Data = { x: train0.x, y: corrupt(random.key(7), train0.y, noise) };
  const n = train.x.shape[0]!;
  return {
    description:
      `3-class spirals (${n} train, ${100 * noise}% labels flipped; 600 clean test), MLP 2-${HIDDEN}-${HIDDEN}-3,\n` +
      `${steps} steps of batch ${batch}`,
    widths: [2, HIDDEN, HIDDEN, CLASSES],
    train,
    test: spirals(random.key(43), 200),
    lmaxSet: train,
    steps,
    batch: (t) => {
      const idx = random.randint(random.foldIn(random.key(1), t), [batch], 0, n);
      return { x: np.take(train.x, idx, 0), y: np.take(train.y, idx, 0) };
    },
    m: 16,
  };
}

/** Real data: an MNIST subset with symmetric label noise, prepared as `tsjax train` prepares it. */
function mnistProblem(): Problem {
  const trainSize = Number(process.env.TRAIN_SIZE ?? 1000);
  const testSize = Number(process.env.TEST_SIZE ?? 1000);
  const noise = Number(process.env.NOISE ?? 0.4);
  const epochs = Number(process.env.EPOCHS ?? 10);
  const lmaxSize = Math.min(trainSize, Number(process.env.LMAX_SIZE ?? trainSize));
  const batch = 50;
  const imageSize = 14;
  const ds = loadDataset("mnist");
  // The CLI's data seeds (src/cli/train/run.ts): subset 1, test subset 2, label noise 3.
  const root = random.key(Number(process.env.SEED ?? 0));
  const subset = (split: typeof ds.train, k: number, size: number): Prepared =>
    prepare(split, { indices: seededSubset(random.foldIn(root, k), split.n, size), imageSize, image: false });
  const train = subset(ds.train, 1, trainSize);
  train.y = symmetricNoise(random.foldIn(root, 3), train.y, noise, ds.numClasses);
  const test = subset(ds.test, 2, testSize);
  const inOrder = (d: Prepared, size = d.n) =>
    batchOf(
      d,
      Int32Array.from({ length: d.n }, (_, i) => i),
      0,
      size,
    );
  const perEpoch = Math.floor(trainSize / batch);
  // One seeded shuffle per epoch, drawn once so every variant sees the same batches.
  const orders = Array.from(
    { length: epochs },
    (_, e) => random.permutation(random.foldIn(random.foldIn(root, 4), e), trainSize).data() as Int32Array,
  );
  const d = imageSize * imageSize;
  return {
    description:
      `MNIST ${imageSize}×${imageSize} (${trainSize} train, ${100 * noise}% symmetric label noise; ${testSize} clean test), ` +
      `MLP ${d}-${HIDDEN}-10,\n${epochs} epochs of ${perEpoch} batches of ${batch}, λmax on ${lmaxSize} train images`,
    widths: [d, HIDDEN, ds.numClasses],
    train: inOrder(train),
    test: inOrder(test),
    lmaxSet: inOrder(train, lmaxSize),
    steps: epochs * perEpoch,
    batch: (t) => {
      const i = t % perEpoch;
      return batchOf(train, orders[Math.floor(t / perEpoch)]!, i * batch, (i + 1) * batch);
    },
    m: 10,
  };
}

const problem = DATA === "mnist" ? mnistProblem() : DATA === "spirals" ? spiralsProblem() : undefined;
if (problem === undefined)
  throw new ConfigError(`DATA must be spirals or mnist, got ${DATA}`, "sam-variants");
const { train: trainSet, test: testSet } = problem;

console.log(`tsjax SAM variants: ${problem.description},`);
console.log(`momentum SGD 0.9 with cosine lr from ${LR0}; same init and batches for every variant\n`);
console.log("variant                      train loss  train acc  test acc  m-sharpness  λmax    seconds");
const total0 = performance.now();
const chosen = variants(problem.steps, problem.m).filter(
  (v) => ONLY.length === 0 || ONLY.some((f) => v.name.toLowerCase().includes(f)),
);
if (chosen.length === 0)
  throw new ConfigError(`VARIANTS=${process.env.VARIANTS} matches no variant`, "sam-variants");
for (const v of chosen) {
  let p = init(random.key(0), problem.widths);
  let s = v.init(p);
  const t0 = performance.now();
  for (let t = 0; t < problem.steps; t++) {
    const { x, y } = problem.batch(t);
    [p, s] = v.step(p, s, x, y, t);
  }
  const seconds = (performance.now() - t0) / 1000;
  const sharp = optim.sharpness.mSharpness(loss, p, [trainSet.x, trainSet.y], { rho: 0.05, m: 20 }).value;
  const { x: lx, y: ly } = problem.lmaxSet;
  const lmax = optim.sharpness.topEigenvalues((q: Params) => loss(q, lx, ly), p, 1, {
    iterations: 20,
    key: random.key(5),
  }).eigenvalues[0]!;
  console.log(
    `${v.name.padEnd(28)} ${loss(p, trainSet.x, trainSet.y).item().toFixed(4).padStart(10)}  ${(100 * accuracy(p, trainSet)).toFixed(1).padStart(8)}%  ${(100 * accuracy(p, testSet)).toFixed(1).padStart(7)}%  ${sharp.toFixed(4).padStart(11)}  ${lmax.toFixed(2).padStart(6)}  ${seconds.toFixed(1).padStart(7)}`,
  );
}
console.log(`\ntotal ${((performance.now() - total0) / 1000).toFixed(0)} s (seconds column: training only)`);
