/**
 * The sharpness measures of SAM's neighbours on a small trained MLP: the same network trained with
 * plain SGD and with SAM on three noisy spirals (the demo's task), then measured at the end of
 * training on the full training set:
 *
 * - λmax of the Hessian (Lanczos), for reference;
 * - worst-case sharpness over the L2 ball and over the magnitude-aware box (projected ascent);
 * - PAC-Bayes flatness σ (isotropic and magnitude-aware), the largest noise scale whose expected
 *   loss increase stays under d;
 * - parameter corruption at ε (L2 and L∞): first-order value, multi-step worst case, and the
 *   Gaussian random baseline.
 *
 * The paper's claim is that SAM finds flatter minima: smaller sharpness and corruption figures, larger σ.
 *
 *   npx tsx examples/sharpness-measures.ts [steps=1500] [seeds=1]
 */
import { type Tensor, grad, nn, numpy as np, optim, random } from "../src/index.js";

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor; w3: Tensor; b3: Tensor };
const CLASSES = 3;

function spirals(key: Tensor, n: number): { x: Tensor; y: Tensor } {
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
  return { x, y };
}

/** Flips a fraction of the labels to another class. */
function corrupt(key: Tensor, y: Tensor, fraction: number): Tensor {
  const flip = random.bernoulli(random.foldIn(key, 3), fraction, [...y.shape]);
  const shift = random.randint(random.foldIn(key, 4), [...y.shape], 1, CLASSES);
  return np.where(flip, np.mod(y.add(shift), CLASSES), y).astype("int32");
}

function init(key: Tensor, sizes: number[]): Params {
  const dense = (i: number) =>
    random.normal(random.foldIn(key, 10 + i), [sizes[i]!, sizes[i + 1]!]).mul(Math.sqrt(2 / sizes[i]!));
  return {
    w1: dense(0),
    b1: np.zeros([sizes[1]!]),
    w2: dense(1),
    b2: np.zeros([sizes[2]!]),
    w3: dense(2),
    b3: np.zeros([sizes[3]!]),
  };
}

function predict(p: Params, x: Tensor): Tensor {
  const h1 = nn.relu(np.matmul(x, p.w1).add(p.b1));
  const h2 = nn.relu(np.matmul(h1, p.w2).add(p.b2));
  return np.matmul(h2, p.w3).add(p.b3);
}

function loss(p: Params, x: Tensor, y: Tensor): Tensor {
  return np.mean(np.sum(nn.oneHot(y, CLASSES).mul(nn.logSoftmax(predict(p, x))), -1)).neg();
}

const accuracy = (p: Params, x: Tensor, y: Tensor) =>
  np.mean(np.equal(np.argmax(predict(p, x), -1), y).astype("float32")).item();

function train(
  gradFn: (p: Params, x: Tensor, y: Tensor) => unknown,
  data: { x: Tensor; y: Tensor },
  steps: number,
  seed: number,
): Params {
  const opt = optim.sgd(0.1, { momentum: 0.9 });
  let params = init(random.key(seed), [2, 32, 32, CLASSES]);
  let state = opt.init(params);
  const n = data.x.shape[0]!;
  for (let step = 0; step < steps; step++) {
    const idx = random.randint(random.foldIn(random.key(1000 + seed), step), [64], 0, n);
    const g = gradFn(params, np.take(data.x, idx, 0), np.take(data.y, idx, 0));
    const [u, s] = opt.update(g, state, params);
    params = optim.applyUpdates(params, u);
    state = s;
  }
  return params;
}

interface Row {
  name: string;
  figures: Record<string, number>;
}

function measure(
  name: string,
  p: Params,
  data: { x: Tensor; y: Tensor },
  test: { x: Tensor; y: Tensor },
): Row {
  const batch = [data.x, data.y];
  const key = random.key(7);
  const f: Record<string, number> = {};
  f["train loss"] = loss(p, data.x, data.y).item();
  f["train acc %"] = 100 * accuracy(p, data.x, data.y);
  f["test acc %"] = 100 * accuracy(p, test.x, test.y);
  f["λmax (Lanczos)"] = optim.sharpness.topEigenvalues(loss as never, p, 1, { batch, key, iterations: 20 })
    .eigenvalues[0]!;
  const sharp = (alpha: number, region: "l2" | "magnitude") =>
    optim.sharpness.worstCaseSharpness(loss as never, p, { alpha, region, steps: 10, batch, key });
  const l2 = sharp(0.5, "l2");
  f["worst-case L2 α=0.5"] = l2.sharpness;
  f["  its SAM start point"] = l2.startIncrease;
  f["worst-case box α=0.05"] = sharp(0.05, "magnitude").sharpness;
  const pac = (magnitudeAware: boolean) =>
    optim.sharpness.pacBayesFlatness(loss as never, p, {
      deviation: 0.1,
      samples: 32,
      key,
      batch,
      sigmaRange: [0, 2],
      tolerance: 1e-2,
      magnitudeAware,
    }).sigma;
  f["PAC-Bayes σ (d=0.1)"] = pac(false);
  f["mag.-aware σ' (d=0.1)"] = pac(true);
  for (const [norm, epsilon, label] of [
    [2, 0.1, "L2 ε=0.1"],
    [Number.POSITIVE_INFINITY, 0.01, "L∞ ε=0.01"],
  ] as const) {
    const c = optim.sharpness.parameterCorruption(loss as never, p, batch, {
      epsilon,
      norm,
      steps: 10,
      randomSamples: 16,
      key,
    });
    f[`corrupt ${label} 1st-order`] = c.firstOrder;
    f[`corrupt ${label} worst`] = c.worstCase;
    f[`corrupt ${label} gaussian`] = c.random!.gaussian.mean;
  }
  return { name, figures: f };
}

const steps = Number(process.argv[2] ?? 1500);
const seeds = Number(process.argv[3] ?? 1);
const clean = spirals(random.key(42), 100);
const data = { x: clean.x, y: corrupt(random.key(7), clean.y, 0.2) };
const test = spirals(random.key(43), 100);
const rho = 0.05;
console.log(
  `3-class spirals (300 train points, 20% labels flipped), MLP 2-32-32-3, SGD lr 0.1 momentum 0.9, batch 64, ${steps} steps, SAM rho=${rho}`,
);
console.log(
  "measures on the full (noisy) training set; lower = flatter, except σ and σ' (higher = flatter)\n",
);
const rows: Row[] = [];
for (let s = 0; s < seeds; s++) {
  const t0 = performance.now();
  rows.push(measure(`SGD s${s}`, train(grad(loss) as never, data, steps, s), data, test));
  rows.push(measure(`SAM s${s}`, train(optim.sam(loss, { rho }) as never, data, steps, s), data, test));
  console.error(`seed ${s}: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
const names = Object.keys(rows[0]!.figures);
const fmt = (v: number) =>
  Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3);
console.log(`${"measure".padEnd(28)}${rows.map((r) => r.name.padStart(11)).join("")}`);
for (const n of names)
  console.log(`${n.padEnd(28)}${rows.map((r) => fmt(r.figures[n]!).padStart(11)).join("")}`);
