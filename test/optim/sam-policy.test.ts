/**
 * SAM.md T20 (model-state and RNG policy of mirror mode) and T21 (clip ordering), on a toy whose
 * loss uses a dropout mask drawn from the key and whose model state is an EMA of batch statistics.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as np from "../../src/core/numpy/index.js";
import * as random from "../../src/core/random.js";
import type { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import { sgd } from "../../src/optim/alias.js";
import { sam, samPerturbation } from "../../src/optim/sam/gradient.js";
import { samTrainStep } from "../../src/optim/sam/train-step.js";
import { clipByGlobalNorm } from "../../src/optim/transforms.js";
import { treeNorm } from "../../src/optim/tree-math.js";
import { grad } from "../../src/transforms/index.js";

const f64 = (xs: number[] | number[][]) => np.array(xs, "float64");
const bits = (t: unknown) => tree.leaves<Tensor>(t).flatMap((x) => Array.from(x.data() as Float64Array));
const sameBits = (a: unknown, b: unknown) => {
  const x = bits(a);
  const y = bits(b);
  expect(x.length).toBe(y.length);
  x.forEach((v, i) => expect(Object.is(v, y[i])).toBe(true));
};
const val = fc.double({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true });
const vec = (n: number) => fc.array(val, { minLength: n, maxLength: n });

interface P {
  w: Tensor;
  b: Tensor;
}
interface S {
  mean: Tensor;
  count: Tensor;
}
const X = f64([
  [1, 2, -1],
  [0.5, -0.5, 3],
  [2, 1, 1],
  [-1, 0.25, 0.5],
]);
const Y = f64([1, -2, 0.5, 3]);

/** Dropout (keep 0.5, scaled) from `key`, then least squares; state: EMA of the pre-activation mean. */
const model = (p: P, s: S, batch: { x: Tensor; y: Tensor }, key: Tensor): [Tensor, { modelState: S }] => {
  const keep = np.astype(random.bernoulli(key, 0.5, [...batch.x.shape]), "float64");
  const xs = np.multiply(batch.x, np.multiply(keep, 2));
  const z = np.add(np.matmul(xs, p.w), p.b);
  const l = np.mean(np.square(np.subtract(z, batch.y)));
  const modelState = {
    mean: np.add(np.multiply(s.mean, 0.9), np.multiply(np.mean(z), 0.1)),
    count: np.add(s.count, 1),
  };
  return [l, { modelState }];
};
const state0: S = { mean: f64([0.25]), count: np.array(0, "int32") };

describe("T20 model state and RNG policy (mirror mode)", () => {
  it("the returned model state is bitwise the same for rho = 0.05 and rho = 0 (clean pass only)", () => {
    fc.assert(
      fc.property(vec(3), fc.integer({ min: 0, max: 1000 }), (w, seed) => {
        const p: P = { w: f64(w), b: f64([0.1]) };
        const key = random.key(seed);
        const o = sgd(0.1, { momentum: 0.9, flaxNesterov: true });
        const at = (rho: number) =>
          samTrainStep({ loss: model, optimizer: o, rho, weightDecay: 1e-3 })(
            p,
            o.init(p),
            state0,
            { x: X, y: Y },
            key,
          );
        const a = at(0.05);
        const b = at(0);
        sameBits(a.modelState.mean, b.modelState.mean);
        expect(a.modelState.count.item()).toBe(1);
        expect(b.modelState.count.item()).toBe(1);
      }),
      { numRuns: 15 },
    );
  });

  it("with dropout, rho = 0 forced through the SAM path (beyond mode) is the plain gradient with the same key", () => {
    fc.assert(
      fc.property(vec(3), fc.integer({ min: 0, max: 1000 }), (w, seed) => {
        const p: P = { w: f64(w), b: f64([0.1]) };
        const key = random.key(seed);
        const lossOnly = (q: P, k: Tensor) => model(q, state0, { x: X, y: Y }, k)[0];
        sameBits(sam(lossOnly, { rho: 0 })(p, key), grad(lossOnly)(p, key));
      }),
      { numRuns: 15 },
    );
    // A different key is a different mask, so the test can tell "same key" from "fresh key".
    const p: P = { w: f64([0.5, -1, 2]), b: f64([0.1]) };
    const lossOnly = (q: P, k: Tensor) => model(q, state0, { x: X, y: Y }, k)[0];
    const a = bits(grad(lossOnly)(p, random.key(1)));
    const b = bits(grad(lossOnly)(p, random.key(2)));
    expect(a.some((v, i) => v !== b[i])).toBe(true);
  });
});

describe("T21 clip and norm ordering", () => {
  const plain = (p: P, s: S, batch: { x: Tensor; y: Tensor }) => {
    const z = np.add(np.matmul(batch.x, p.w), p.b);
    return [np.mean(np.square(np.subtract(z, batch.y))), { modelState: s }] as [Tensor, { modelState: S }];
  };
  it("‖G_applied‖ <= c; below the threshold G is untouched bitwise (sgd with lr 1 exposes G)", () => {
    fc.assert(
      fc.property(vec(3), fc.double({ min: 0.05, max: 50, noNaN: true }), (w, c) => {
        const p: P = { w: f64(w), b: f64([0.1]) };
        const o = sgd(1);
        const step = samTrainStep({ loss: plain, optimizer: o, rho: 0.05, weightDecay: 0, gradClipNorm: c });
        const out = step(p, o.init(p), state0, { x: X, y: Y }, f64([0]));
        const applied = tree.map((a: Tensor, b: Tensor) => np.subtract(b, a), out.params, p);
        const raw = samTrainStep({ loss: plain, optimizer: o, rho: 0.05, weightDecay: 0, gradClipNorm: 0 })(
          p,
          o.init(p),
          state0,
          { x: X, y: Y },
          f64([0]),
        );
        const G = tree.map((a: Tensor, b: Tensor) => np.subtract(b, a), raw.params, p);
        const n = treeNorm(G).item();
        // The applied update is (p − lr·G) − p: within a few ulps of |p| + |G| of G itself.
        const ulps = 8 * 2 ** -52 * (Math.max(...bits(p).map(Math.abs)) + n);
        expect(treeNorm(applied).item()).toBeLessThanOrEqual(c * (1 + 1e-12) + 2 * ulps);
        if (n < c) sameBits(out.params, raw.params);
      }),
      { numRuns: 40 },
    );
  });

  it("clipping the first gradient does not change ε (it is normalised away)", () => {
    fc.assert(
      fc.property(vec(3), fc.double({ min: 1e-3, max: 10, noNaN: true }), (w, c) => {
        const p: P = { w: f64(w), b: f64([0.1]) };
        const g = grad((q: P) => plain(q, state0, { x: X, y: Y })[0])(p);
        fc.pre(treeNorm(g).item() > 1e-3);
        const [gc] = clipByGlobalNorm(c).update(g, null);
        const e1 = bits(samPerturbation(g, p, { rho: 0.05, mode: "mirror" }));
        const e2 = bits(samPerturbation(gc, p, { rho: 0.05, mode: "mirror" }));
        e1.forEach((v, i) => expect(Math.abs(v - e2[i]!)).toBeLessThanOrEqual(8 * 2 ** -52 * 0.05));
      }),
      { numRuns: 40 },
    );
  });
});
