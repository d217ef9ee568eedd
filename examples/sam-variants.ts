/**
 * One small training run per SAM variant on the same problem: an MLP 2-32-32-3 on three
 * interleaved spirals with 20 % of the training labels flipped (test labels clean), 400 steps of
 * batch 64, momentum SGD with a cosine learning rate. Prints, per variant, the final noisy-train
 * loss and accuracy, the clean test accuracy, the m-sharpness (m = 20, ρ = 0.05) and the top Hessian
 * eigenvalue of the training loss at the final weights.
 *
 *   npx tsx examples/sam-variants.ts            (STEPS=100 for a quick run)
 *   PER_CLASS=60 HIDDEN=64 NOISE=0.3 STEPS=1500 npx tsx examples/sam-variants.ts   (a regime where SGD memorises the noise)
 */
import { type Tensor, grad, nn, numpy as np, optim, random, tree } from "../src/index.js";

type Params = { l1: { w: Tensor; b: Tensor }; l2: { w: Tensor; b: Tensor }; l3: { w: Tensor; b: Tensor } };
type Data = { x: Tensor; y: Tensor };

const CLASSES = 3;
const STEPS = Number(process.env.STEPS ?? 400);
/** Training points per class, hidden width and the fraction of flipped training labels. */
const PER_CLASS = Number(process.env.PER_CLASS ?? 200);
const HIDDEN = Number(process.env.HIDDEN ?? 32);
const NOISE = Number(process.env.NOISE ?? 0.2);
const BATCH = 64;
const LR = optim.cosineDecaySchedule(0.05, STEPS);

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

function init(key: Tensor): Params {
  const dense = (i: number, m: number, n: number) => ({
    w: random.normal(random.foldIn(key, i), [m, n]).mul(Math.sqrt(2 / m)),
    b: np.zeros([n]),
  });
  return { l1: dense(1, 2, HIDDEN), l2: dense(2, HIDDEN, HIDDEN), l3: dense(3, HIDDEN, CLASSES) };
}

function predict(p: Params, x: Tensor): Tensor {
  const h1 = nn.relu(np.matmul(x, p.l1.w).add(p.l1.b));
  const h2 = nn.relu(np.matmul(h1, p.l2.w).add(p.l2.b));
  return np.matmul(h2, p.l3.w).add(p.l3.b);
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

function variants(): Variant[] {
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
    withGrad(
      "ASAM ρ=0.5 (filterwise)",
      optim.sam(loss, { rho: 0.5, adaptive: { operator: "filterwise", exempt: isBias } }),
    ),
    withGrad("Fisher-SAM γ=0.1 η=1", optim.sam(loss, { rho: 0.1, fisher: { eta: 1 } })),
    withGrad("USAM ρ=0.05", optim.usam(loss, { rho })),
    withGrad("m-SAM ρ=0.05 m=16", optim.sam(loss, { rho, m: 16 })),
    withGrad("SAM 3-step projected", optim.sam(loss, { rho, ascentSteps: 3, ascentStepSize: rho / 2 })),
    withGrad("SAM + 2nd-order term", optim.sam(loss, { rho, secondOrder: true })),
  );
  {
    // GSAM: ρ_t follows the cosine learning rate from 0.1 down to 0.02, α = 0.3.
    const rhoT = optim.gsamRhoSchedule({
      learningRate: LR,
      lrMax: 0.05,
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

const train0 = spirals(random.key(42), PER_CLASS);
const trainSet: Data = { x: train0.x, y: corrupt(random.key(7), train0.y, NOISE) };
const testSet = spirals(random.key(43), 200);
const n = trainSet.x.shape[0]!;

console.log(
  `tsjax SAM variants: 3-class spirals (${n} train, ${100 * NOISE}% labels flipped; 600 clean test), MLP 2-${HIDDEN}-${HIDDEN}-3,`,
);
console.log(
  `${STEPS} steps of batch 64, momentum SGD 0.9 with cosine lr from 0.05; same init and batches for every variant\n`,
);
console.log("variant                      train loss  train acc  test acc  m-sharpness  λmax    seconds");
for (const v of variants()) {
  let p = init(random.key(0));
  let s = v.init(p);
  const t0 = performance.now();
  for (let t = 0; t < STEPS; t++) {
    const idx = random.randint(random.foldIn(random.key(1), t), [BATCH], 0, n);
    [p, s] = v.step(p, s, np.take(trainSet.x, idx, 0), np.take(trainSet.y, idx, 0), t);
  }
  const seconds = (performance.now() - t0) / 1000;
  const sharp = optim.sharpness.mSharpness(loss, p, [trainSet.x, trainSet.y], { rho: 0.05, m: 20 }).value;
  const lmax = optim.sharpness.topEigenvalues((q: Params) => loss(q, trainSet.x, trainSet.y), p, 1, {
    iterations: 20,
    key: random.key(5),
  }).eigenvalues[0]!;
  console.log(
    `${v.name.padEnd(28)} ${loss(p, trainSet.x, trainSet.y).item().toFixed(4).padStart(10)}  ${(100 * accuracy(p, trainSet)).toFixed(1).padStart(8)}%  ${(100 * accuracy(p, testSet)).toFixed(1).padStart(7)}%  ${sharp.toFixed(4).padStart(11)}  ${lmax.toFixed(2).padStart(6)}  ${seconds.toFixed(1).padStart(7)}`,
  );
}
