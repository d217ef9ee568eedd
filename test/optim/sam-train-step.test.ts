import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import type { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import { sgd } from "../../src/optim/alias.js";
import { applyUpdates } from "../../src/optim/base.js";
import { sam } from "../../src/optim/sam/gradient.js";
import { samTrainStep } from "../../src/optim/sam/train-step.js";
import { clipByGlobalNorm } from "../../src/optim/transforms.js";
import { valueAndGrad } from "../../src/transforms/index.js";

const f64 = (xs: number[] | number[][]) => np.array(xs, "float64");
const bits = (t: Tensor) => Array.from(t.data() as Float64Array);
const sameBits = (a: unknown, b: unknown) => {
  const la = tree.leaves<Tensor>(a);
  const lb = tree.leaves<Tensor>(b);
  expect(la.length).toBe(lb.length);
  la.forEach((x, i) => {
    const xa = bits(x);
    const xb = bits(lb[i]!);
    expect(xa.length).toBe(xb.length);
    xa.forEach((v, k) => expect(Object.is(v, xb[k])).toBe(true));
  });
};

interface P {
  w: Tensor;
  b: Tensor;
}
interface S {
  mean: Tensor;
}
interface B {
  x: Tensor;
  y: Tensor;
}

/** Least squares with an rng "dropout" scale; the state is an EMA of x·w, so it depends on params. */
const loss = (p: P, s: S, batch: B, rng: Tensor): [Tensor, { modelState: S; logits: Tensor }] => {
  const xs = np.multiply(batch.x, rng);
  const logits = np.add(np.matmul(xs, p.w), p.b);
  const r = np.subtract(logits, batch.y);
  const l = np.mean(np.multiply(r, r));
  const stat = np.mean(np.multiply(xs, p.w), 0);
  return [l, { modelState: { mean: np.add(np.multiply(s.mean, 0.9), np.multiply(stat, 0.1)) }, logits }];
};

/** The official objective: J = L + 0.5·wd·Σ‖w‖², written as the step does (leaf order, same ops). */
const withWd =
  (wd: number) =>
  (p: P, s: S, batch: B, rng: Tensor): [Tensor, unknown] => {
    const [l, aux] = loss(p, s, batch, rng);
    if (wd === 0) return [l, aux];
    let acc: Tensor | null = null;
    for (const w of tree.leaves<Tensor>(p)) {
      const t = np.sum(np.multiply(w, w));
      acc = acc === null ? t : np.add(acc, t);
    }
    return [np.add(l, np.multiply(acc!, 0.5 * wd)), aux];
  };

const params: P = { w: f64([0.5, -1.25, 2]), b: f64([0.25]) };
const state: S = { mean: f64([0.1, 0.2, -0.3]) };
const batch: B = {
  x: f64([
    [1, 2, -1],
    [0.5, -0.5, 3],
    [2, 1, 1],
    [-1, 0.25, 0.5],
  ]),
  y: f64([1, -2, 0.5, 3]),
};
const rng = f64([1, 0.5, 2]);
const opt = () => sgd(0.1, { momentum: 0.9, flaxNesterov: true });

describe("samTrainStep", () => {
  it("rho = 0 is bitwise the plain step (grad → clip → optimizer), over two steps with momentum", () => {
    const o = opt();
    const step = samTrainStep({ loss, optimizer: o, rho: 0, weightDecay: 1e-3, gradClipNorm: 1 });
    let p: P = params;
    let os = o.init(params);
    let hp: P = params;
    let hos = o.init(params);
    const vg = valueAndGrad(withWd(1e-3), { hasAux: true });
    for (let k = 0; k < 2; k++) {
      const out = step(p, os, state, batch, rng);
      const [[j], g] = vg(hp, state, batch, rng) as [[Tensor, unknown], P];
      const [gc] = clipByGlobalNorm(1).update(g, null);
      const [u, nos] = o.update(gc, hos, hp);
      hp = applyUpdates(hp, u);
      hos = nos;
      sameBits(out.params, hp);
      sameBits(out.optState, hos);
      sameBits(out.metrics.loss, j);
      p = out.params;
      os = out.optState;
    }
  });

  it("rho = 0 with a zero gradient stays finite (no 0·NaN)", () => {
    const zero = (p: P, s: S): [Tensor, { modelState: S }] => [
      np.multiply(np.sum(p.w), 0),
      { modelState: s },
    ];
    const o = sgd(0.1);
    const out = samTrainStep({ loss: zero, optimizer: o, rho: 0, weightDecay: 0 })(
      params,
      o.init(params),
      state,
      batch,
      rng,
    );
    sameBits(out.params, params);
  });

  it("rho > 0 uses sam(lossWithWd, mirror) then clip; the state comes from the clean pass", () => {
    const wd = 1e-2;
    const rho = 0.05;
    const o = opt();
    const out = samTrainStep({ loss, optimizer: o, rho, weightDecay: wd, gradClipNorm: 0.5 })(
      params,
      o.init(params),
      state,
      batch,
      rng,
    );
    const [g, aux] = sam(withWd(wd), { rho, mode: "mirror", hasAux: true })(params, state, batch, rng) as [
      P,
      { modelState: S },
    ];
    // The toy's gradient norm is far above the clip threshold, so clipping matters here.
    expect(Math.hypot(...tree.leaves<Tensor>(g).flatMap(bits))).toBeGreaterThan(0.5 * 4);
    const [gc] = clipByGlobalNorm(0.5).update(g, null);
    const [u, nos] = o.update(gc, o.init(params), params);
    sameBits(out.params, applyUpdates(params, u));
    sameBits(out.optState, nos);
    sameBits(out.modelState, aux.modelState);
    // Clean and perturbed states differ for this toy, so the test can tell them apart.
    const [, clean] = loss(params, state, batch, rng);
    sameBits(out.modelState, clean.modelState);
    const gn = Math.hypot(...tree.leaves<Tensor>(g).flatMap(bits));
    const eps = tree.map(
      (x: Tensor) => np.multiply(np.divide(x, gn), rho),
      valueAndGrad(withWd(wd), { hasAux: true })(params, state, batch, rng)[1],
    ) as P;
    const shifted = tree.map((w: Tensor, e: Tensor) => np.add(w, e), params, eps) as P;
    const [, pert] = loss(shifted, state, batch, rng);
    expect(np.allclose(out.modelState.mean, pert.modelState.mean, { rtol: 0, atol: 1e-12 })).toBe(false);
  });

  it("reports the perturbed pass's loss and aux; the new state does not depend on rho", () => {
    const wd = 1e-3;
    const o = opt();
    const a = samTrainStep({ loss, optimizer: o, rho: 0.1, weightDecay: wd })(
      params,
      o.init(params),
      state,
      batch,
      rng,
    );
    const b = samTrainStep({ loss, optimizer: o, rho: 0.3, weightDecay: wd })(
      params,
      o.init(params),
      state,
      batch,
      rng,
    );
    sameBits(a.modelState, b.modelState);
    // Perturbed loss: J at w + ε with ε = ρ g / ‖g‖, g = ∇J(w).
    const vg = valueAndGrad(withWd(wd), { hasAux: true });
    const [, g] = vg(params, state, batch, rng) as [unknown, P];
    const gn = Math.hypot(...tree.leaves<Tensor>(g).flatMap(bits));
    const shifted = tree.map(
      (w: Tensor, x: Tensor) => np.add(w, np.multiply(np.divide(x, gn), 0.1)),
      params,
      g,
    ) as P;
    const [[j1, aux1]] = vg(shifted, state, batch, rng) as [[Tensor, { logits: Tensor }], P];
    expect(Math.abs(a.metrics.loss.item() - j1.item())).toBeLessThan(
      1e-12 * Math.max(1, Math.abs(j1.item())),
    );
    expect(np.allclose(a.metrics.aux.logits as Tensor, aux1.logits, { rtol: 1e-12, atol: 1e-12 })).toBe(true);
    expect("modelState" in a.metrics.aux).toBe(false);
    expect(a.metrics.dataLoss.item()).toBeLessThan(a.metrics.loss.item());
  });

  it("decayMask restricts the penalty", () => {
    const o = sgd(0.1);
    const mask = (_: unknown, w: Tensor) => w.shape[0] === 3;
    const out = samTrainStep({
      loss,
      optimizer: o,
      rho: 0,
      weightDecay: 0.5,
      gradClipNorm: 0,
      decayMask: mask,
    })(params, o.init(params), state, batch, rng);
    const [l] = loss(params, state, batch, rng);
    const w = bits(params.w);
    const want = l.item() + 0.25 * w.reduce((s, v) => s + v * v, 0);
    expect(Math.abs(out.metrics.loss.item() - want)).toBeLessThan(1e-12 * Math.abs(want));
  });

  it("rho > 0 with a zero gradient gives NaN (mirror mode, no guard)", () => {
    // Minimum at the current weights: g = 0, so ε = 0/0 and the perturbed gradient is NaN.
    const zero = (p: P, s: S): [Tensor, { modelState: S }] => {
      const d = np.subtract(p.w, params.w);
      return [np.sum(np.multiply(d, d)), { modelState: s }];
    };
    const o = sgd(0.1);
    const out = samTrainStep({ loss: zero, optimizer: o, rho: 0.05, weightDecay: 0, gradClipNorm: 0 })(
      params,
      o.init(params),
      state,
      batch,
      rng,
    );
    expect(bits(out.params.w).every(Number.isNaN)).toBe(true);
  });

  it("rejects bad options", () => {
    const o = sgd(0.1);
    expect(() => samTrainStep({ loss, optimizer: o, rho: -1, weightDecay: 0 })).toThrow(ConfigError);
    expect(() => samTrainStep({ loss, optimizer: o, rho: 0.1, weightDecay: Number.NaN })).toThrow(
      ConfigError,
    );
    expect(() => samTrainStep({ loss, optimizer: o, rho: 0.1, weightDecay: 0, gradClipNorm: -1 })).toThrow(
      ConfigError,
    );
  });
});

describe("samTrainStep with m lanes (the official per-device SAM)", () => {
  const rows = (t: Tensor, a: number, b: number) =>
    np.array((t.toArray() as number[][] | number[]).slice(a, b) as number[][], "float64");
  it("m = B is the single-lane step; m < B averages the lanes' mirror-SAM gradients before the clip", () => {
    const o = opt();
    const wd = 1e-3;
    const one = samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: wd })(
      params,
      o.init(params),
      state,
      batch,
      rng,
    );
    const all = samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: wd, m: 4 })(
      params,
      o.init(params),
      state,
      batch,
      rng,
    );
    sameBits(all.params, one.params);
    sameBits(all.modelState, one.modelState);
    const two = samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: wd, m: 2, gradClipNorm: 0.5 })(
      params,
      o.init(params),
      state,
      batch,
      rng,
    );
    // Oracle: a loop over the two lanes of mirror SAM on J, mean, clip, optimizer; state = mean of clean states.
    const lanes = [0, 1].map((j) => ({
      x: rows(batch.x, 2 * j, 2 * j + 2),
      y: rows(batch.y, 2 * j, 2 * j + 2),
    }));
    const per = lanes.map(
      (b) =>
        sam(withWd(wd), { rho: 0.05, mode: "mirror", hasAux: true })(params, state, b, rng) as [
          P,
          { modelState: S },
        ],
    );
    const g = tree.map((a: Tensor, b: Tensor) => np.multiply(np.add(a, b), 0.5), per[0]![0], per[1]![0]);
    const [gc] = clipByGlobalNorm(0.5).update(g, null);
    const [u] = o.update(gc, o.init(params), params);
    const want = applyUpdates(params, u);
    tree.leaves<Tensor>(two.params).forEach((x, i) => {
      expect(np.allclose(x, tree.leaves<Tensor>(want)[i]!, { rtol: 1e-12, atol: 1e-14 })).toBe(true);
    });
    const meanState = np.multiply(np.add(per[0]![1].modelState.mean, per[1]![1].modelState.mean), 0.5);
    expect(np.allclose(two.modelState.mean, meanState, { rtol: 1e-12, atol: 1e-14 })).toBe(true);
    // The state is linear in the batch, so the lane mean equals the full-batch state (SAM.md §1.6)...
    expect(np.allclose(two.modelState.mean, one.modelState.mean, { rtol: 1e-12, atol: 1e-14 })).toBe(true);
    // ...but each lane's own ε makes the step differ from full-batch SAM.
    const full = samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: wd, gradClipNorm: 0.5 })(
      params,
      o.init(params),
      state,
      batch,
      rng,
    );
    expect(np.allclose(two.params.w, full.params.w, { rtol: 0, atol: 1e-9 })).toBe(false);
  });

  it("rngPerLane maps one rng per lane; bad m raises", () => {
    const o = opt();
    const rngs = np.stack([rng, np.multiply(rng, 2)], 0);
    const out = samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: 0, m: 2, rngPerLane: true })(
      params,
      o.init(params),
      state,
      batch,
      rngs,
    );
    const shared = samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: 0, m: 2 })(
      params,
      o.init(params),
      state,
      batch,
      rng,
    );
    expect(np.allclose(out.modelState.mean, shared.modelState.mean, { rtol: 0, atol: 1e-9 })).toBe(false);
    expect(() =>
      samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: 0, m: 3 })(
        params,
        o.init(params),
        state,
        batch,
        rng,
      ),
    ).toThrow(/divisible/);
    expect(() => samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: 0, m: 0 })).toThrow(/\bm\b/);
    expect(() => samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: 0, rngPerLane: true })).toThrow(
      /rngPerLane/,
    );
  });
});
