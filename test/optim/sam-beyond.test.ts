/**
 * SAM.md §2.2 invariants for the beyond-mode options and the ones sam.test.ts does not cover:
 * T3, T4's HVP corollary, T5 (p = ∞), T6 over a trajectory, T7 safe mode, T10.2–5, T12, T13, T14
 * (second order), T22, T24, multi-step projected ascent, filter-wise ASAM and rho schedules.
 * Oracles are plain float64 JS arithmetic; tensors under test are float64 unless stated, so the
 * tolerances are a few hundred float64 roundings scaled by the problem's magnitude.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import type { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import { sgd } from "../../src/optim/alias.js";
import { applyUpdates } from "../../src/optim/base.js";
import { dualVector } from "../../src/optim/sam/dual-vector.js";
import { sam, samPerturbation, samWithDiagnostics } from "../../src/optim/sam/gradient.js";
import { filterNorms } from "../../src/optim/sam/operators.js";
import { samOn } from "../../src/optim/sam/variants.js";
import { linearSchedule } from "../../src/optim/schedules.js";
import { hessianVectorProduct } from "../../src/optim/sharpness/hessian.js";
import { evalJaxpr } from "../../src/core/jaxpr.js";
import { grad, makeJaxpr, vmap } from "../../src/transforms/index.js";

const f64 = (xs: number[] | number[][]) => np.array(xs, "float64");
const vals = (t: unknown) => Array.from((t as Tensor).data() as Float64Array | Float32Array);
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (xs: number[]) => Math.sqrt(dot(xs, xs));
const add = (a: number[], b: number[]) => a.map((x, i) => x + b[i]!);
const sub = (a: number[], b: number[]) => a.map((x, i) => x - b[i]!);
const scale = (s: number, a: number[]) => a.map((x) => s * x);
const matvec = (A: number[][], x: number[]) => A.map((row) => dot(row, x));
const EPS64 = 2 ** -52;
const EPS32 = 2 ** -23;
/** |got − want| <= tol·max(1, ‖want‖) element-wise. */
const close = (got: number[], want: number[], tol: number) => {
  expect(got.length).toBe(want.length);
  const s = Math.max(1, norm(want));
  got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(tol * s));
};
const sameBits = (a: number[], b: number[]) => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(Object.is(x, b[i])).toBe(true));
};
// Magnitudes under 1e-150 become 0: a gradient built from subnormal products has too few significant
// bits for its direction (what SAM normalises) to be compared across reduction orders.
const val = fc
  .double({ min: -3, max: 3, noNaN: true, noDefaultInfinity: true })
  .map((v) => (Math.abs(v) < 1e-150 ? 0 : v));
const vec = (n: number) => fc.array(val, { minLength: n, maxLength: n });
const rhoArb = fc.double({ min: 0.01, max: 2, noNaN: true });
/** The guarded SAM norm: eps = 1e-12 on the max-scaled norm is eps·max|g| on ‖g‖. */
const gnorm = (g: number[]) => norm(g) + 1e-12 * Math.max(0, ...g.map(Math.abs));
const sym = (d: number, m: number[]) =>
  Array.from({ length: d }, (_, i) =>
    Array.from({ length: d }, (_, j) => (m[i * d + j]! + m[j * d + i]!) / 2),
  );
const arbQuad = fc
  .integer({ min: 1, max: 4 })
  .chain((d) => fc.record({ d: fc.constant(d), m: vec(d * d), w: vec(d), b: vec(d), rho: rhoArb }));
const quadLoss = (A: number[][], b: number[]) => (w: Tensor) =>
  np.add(np.multiply(0.5, np.sum(np.multiply(w, np.matmul(f64(A), w)))), np.sum(np.multiply(f64(b), w)));
/** A smooth non-quadratic loss on a vector with a data batch x: mean_i log(1 + exp(x_i·w)) + ¼‖w‖⁴-ish. */
const smooth = (w: Tensor, x: Tensor) =>
  np.add(np.mean(np.log1p(np.exp(np.matmul(x, w)))), np.multiply(0.1, np.sum(np.square(np.square(w)))));

describe("T3 dual optimality", () => {
  it("p = 2: <g, ε> = ρ‖g‖ >= <g, ε'> for every ε' on the ρ-sphere", () => {
    fc.assert(
      fc.property(vec(4), fc.array(vec(4), { minLength: 20, maxLength: 20 }), rhoArb, (g, dirs, rho) => {
        fc.pre(norm(g) > 1e-3);
        const e = vals(samPerturbation(f64(g), f64([0, 0, 0, 0]), { rho }));
        const top = dot(g, e);
        // ρ‖g‖ up to the eps guard's factor ‖g‖/(‖g‖ + 1e-12·max|g|).
        expect(Math.abs(top - (rho * norm(g) ** 2) / gnorm(g))).toBeLessThanOrEqual(
          16 * EPS64 * rho * norm(g),
        );
        for (const z of dirs) {
          if (norm(z) < 1e-6) continue;
          // The max is ρ‖g‖ (attained by ε up to the guard's 1e-12 relative shortfall).
          expect(dot(g, scale(rho / norm(z), z))).toBeLessThanOrEqual(rho * norm(g) * (1 + 16 * EPS64));
          expect(top).toBeGreaterThanOrEqual(rho * norm(g) * (1 - 1e-11));
        }
      }),
      { numRuns: 40 },
    );
  });

  it("p = ∞: ε = ρ sign(g), <g, ε> = ρ‖g‖₁ >= <g, ε'> for every ‖ε'‖∞ <= ρ", () => {
    fc.assert(
      fc.property(vec(4), fc.array(vec(4), { minLength: 20, maxLength: 20 }), rhoArb, (g, dirs, rho) => {
        const e = vals(samPerturbation(f64(g), f64([0, 0, 0, 0]), { rho, p: Infinity }));
        const l1 = g.reduce((a, x) => a + Math.abs(x), 0);
        expect(Math.abs(dot(g, e) - rho * l1)).toBeLessThanOrEqual(8 * EPS64 * rho * l1);
        for (const z of dirs)
          expect(dot(g, scale(rho / 3, z))).toBeLessThanOrEqual(dot(g, e) + 8 * EPS64 * rho * l1);
      }),
      { numRuns: 40 },
    );
  });
});

describe("T4 corollary and T5 for p = ∞", () => {
  it("(S − g)/ρ = A ĝ on a quadratic: a free Hessian-vector product", () => {
    fc.assert(
      fc.property(arbQuad, ({ d, m, w, b, rho }) => {
        const A = sym(d, m);
        const g = add(matvec(A, w), b);
        fc.pre(norm(g) > 1e-3);
        const S = vals(sam(quadLoss(A, b), { rho })(f64(w)));
        const got = scale(1 / rho, sub(S, g));
        const want = matvec(A, scale(1 / gnorm(g), g));
        // S and g are O(‖A‖(‖w‖+ρ) + ‖b‖); their difference loses that much absolute accuracy, /ρ.
        const mag = (norm(m) + 1) * (norm(w) + rho + 1) + norm(b);
        close(got, want, (256 * d * EPS64 * mag) / rho);
      }),
      { numRuns: 50 },
    );
  });

  it("linear loss, p = ∞: S = c and L(w+ε) − L(w) = ρ‖c‖₁; p = 2 gives ρ‖c‖₂", () => {
    fc.assert(
      fc.property(vec(3), vec(3), rhoArb, (c, w, rho) => {
        fc.pre(norm(c) > 1e-3);
        const loss = (x: Tensor) => np.sum(np.multiply(f64(c), x));
        const inf = samWithDiagnostics(loss, { rho, p: Infinity })(f64(w));
        expect(vals(inf.grads)).toEqual(c);
        const l1 = c.reduce((a, x) => a + Math.abs(x), 0);
        const scaleL = rho * l1 + norm(w) * norm(c);
        expect(Math.abs(inf.lossIncrease.item() - rho * l1)).toBeLessThanOrEqual(16 * EPS64 * scaleL);
        const two = samWithDiagnostics(loss, { rho })(f64(w));
        expect(Math.abs(two.lossIncrease.item() - (rho * norm(c) ** 2) / gnorm(c))).toBeLessThanOrEqual(
          16 * EPS64 * scaleL,
        );
      }),
      { numRuns: 40 },
    );
  });
});

describe("T6 and T7 over optimizer steps", () => {
  const x = f64([
    [0.5, -1, 2],
    [1.5, 0.25, -0.5],
  ]);
  it("rho = 0 in mirror mode + Nesterov momentum: the whole trajectory is bitwise the base optimizer's", () => {
    fc.assert(
      fc.property(vec(3), (w0) => {
        const opt = sgd(0.1, { momentum: 0.9, nesterov: true });
        const sg = sam(smooth, { rho: 0, mode: "mirror" });
        const pg = grad(smooth);
        let [a, b] = [f64(w0), f64(w0)];
        let [sa, sb] = [opt.init(a), opt.init(b)];
        for (let t = 0; t < 5; t++) {
          const [ua, na] = opt.update(sg(a, x), sa, a);
          const [ub, nb] = opt.update(pg(b, x), sb, b);
          [a, b, sa, sb] = [applyUpdates(a, ua), applyUpdates(b, ub), na, nb];
          sameBits(vals(a), vals(b));
        }
      }),
      { numRuns: 15 },
    );
  });

  it("safe mode with g = 0 and rho > 0: the step is the base optimizer's zero-gradient step (momentum only)", () => {
    const loss = (w: Tensor) => np.sum(np.square(w));
    const opt = sgd(0.1, { momentum: 0.9, nesterov: true });
    const w = f64([0, 0]);
    // A momentum buffer from an earlier, nonzero gradient.
    const [, s1] = opt.update(f64([1, -2]), opt.init(w), w);
    const g = sam(loss, { rho: 0.3 })(w) as Tensor;
    sameBits(vals(g), [0, 0]);
    const [u] = opt.update(g, s1, w);
    const [ub] = opt.update(f64([0, 0]), s1, w);
    sameBits(vals(u), vals(ub));
    expect(vals(u).every((v) => v !== 0)).toBe(true);
  });

  it("beyond mode with rho = 0 and g = 0 gives 0, never NaN (the 0·NaN trap)", () => {
    const loss = (w: Tensor) => np.sum(np.square(w));
    sameBits(vals(sam(loss, { rho: 0 })(f64([0, 0]))), [0, 0]);
  });

  it("float32 gradients with ‖g‖ < 1e-19 still give ‖ε‖ = ρ (scaled norm)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1e-24, max: 1e-20, noNaN: true }), { minLength: 3, maxLength: 3 }),
        rhoArb,
        (c, rho) => {
          const e = vals(samPerturbation(np.array(c, "float32"), np.zeros([3], "float32"), { rho }));
          expect(Math.abs(norm(e) - rho)).toBeLessThanOrEqual(1e-5 * rho);
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe("T10 m-sharpness reductions", () => {
  const tanhLoss = (w: Tensor, x: Tensor, y: Tensor) =>
    np.mean(np.square(np.subtract(np.tanh(np.matmul(x, w)), y)));
  const arbData = fc.record({ w: vec(2), x: vec(16), y: vec(8), rho: rhoArb });

  it("k lanes holding identical data equal SAM on one lane", () => {
    fc.assert(
      fc.property(vec(2), vec(4), vec(2), rhoArb, (w, x, y, rho) => {
        const X = f64([x.slice(0, 2), x.slice(2, 4)]);
        const one = vals(sam(tanhLoss, { rho })(f64(w), X, f64(y)));
        const rep = (t: number[][], k: number) => f64(Array.from({ length: k }, () => t).flat());
        const k3 = vals(
          sam(tanhLoss, { rho, m: 2 })(
            f64(w),
            rep([x.slice(0, 2), x.slice(2, 4)], 3),
            f64([...y, ...y, ...y]),
          ),
        );
        close(k3, one, 8 * EPS64);
      }),
      { numRuns: 30 },
    );
  });

  it("invariant to permuting lanes, not to moving examples between lanes", () => {
    fc.assert(
      fc.property(arbData, ({ w, x, y, rho }) => {
        const rows = Array.from({ length: 8 }, (_, i) => x.slice(2 * i, 2 * i + 2));
        const lanes = [0, 1, 2, 3].map((j) => ({
          r: rows.slice(2 * j, 2 * j + 2),
          y: y.slice(2 * j, 2 * j + 2),
        }));
        const perm = [2, 0, 3, 1].map((j) => lanes[j]!);
        const run = (ls: typeof lanes) =>
          vals(
            sam(tanhLoss, { rho, m: 2 })(f64(w), f64(ls.flatMap((l) => l.r)), f64(ls.flatMap((l) => l.y))),
          );
        close(run(perm), run(lanes), 64 * EPS64);
      }),
      { numRuns: 20 },
    );
    // Swapping one example between two lanes changes the result (a fixed non-degenerate case).
    const w = f64([0.7, -0.4]);
    const X = f64([
      [1, 2],
      [0.5, -1],
      [-2, 0.3],
      [1.5, 1],
    ]);
    const Y = f64([0.5, -0.2, 0.9, -0.7]);
    const Xs = f64([
      [1, 2],
      [-2, 0.3],
      [0.5, -1],
      [1.5, 1],
    ]);
    const Ys = f64([0.5, 0.9, -0.2, -0.7]);
    const a = vals(sam(tanhLoss, { rho: 0.5, m: 2 })(w, X, Y));
    const b = vals(sam(tanhLoss, { rho: 0.5, m: 2 })(w, Xs, Ys));
    expect(norm(sub(a, b))).toBeGreaterThan(1e-4);
  });

  it("quadratic with per-lane b_j: G = Aw + mean b_j + ρ mean_j A ĝ_j", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }).chain((d) =>
          fc.record({
            d: fc.constant(d),
            m: vec(d * d),
            w: vec(d),
            bs: fc.array(vec(d), { minLength: 4, maxLength: 4 }),
            rho: rhoArb,
          }),
        ),
        ({ d, m, w, bs, rho }) => {
          const A = sym(d, m);
          const gs = bs.map((b) => add(matvec(A, w), b));
          fc.pre(gs.every((g) => norm(g) > 1e-3));
          // Each row of `bb` is one example; with m = 1 every lane is one b_j.
          const loss = (x: Tensor, bb: Tensor) =>
            np.add(np.multiply(0.5, np.sum(np.multiply(x, np.matmul(f64(A), x)))), np.mean(np.matmul(bb, x)));
          const got = vals(sam(loss, { rho, m: 1 })(f64(w), f64(bs)));
          const meanB = bs.reduce((a, b) => add(a, scale(1 / 4, b)), new Array(d).fill(0));
          const corr = gs.reduce(
            (a, g) => add(a, scale(rho / 4, matvec(A, scale(1 / gnorm(g), g)))),
            new Array(d).fill(0),
          );
          const mag = (norm(m) + 1) * (norm(w) + rho + 1) + bs.reduce((a, b) => a + norm(b), 0);
          close(got, add(add(matvec(A, w), meanB), corr), 256 * d * EPS64 * mag);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("syncPerturbations is standard SAM on the full batch", () => {
    fc.assert(
      fc.property(arbData, fc.constantFrom(1, 2, 4), ({ w, x, y, rho }, m) => {
        const X = np.reshape(f64(x), [8, 2]);
        const full = vals(sam(tanhLoss, { rho })(f64(w), X, f64(y)));
        close(vals(sam(tanhLoss, { rho, m, syncPerturbations: true })(f64(w), X, f64(y))), full, 64 * EPS64);
        const d = samWithDiagnostics(tanhLoss, { rho, m, syncPerturbations: true })(f64(w), X, f64(y));
        const dFull = samWithDiagnostics(tanhLoss, { rho })(f64(w), X, f64(y));
        expect(Math.abs(d.lossIncrease.item() - dFull.lossIncrease.item())).toBeLessThanOrEqual(64 * EPS64);
      }),
      { numRuns: 20 },
    );
    expect(() => sam(tanhLoss, { rho: 0.1, syncPerturbations: true })).toThrow(/syncPerturbations needs m/);
  });
});

describe("ASAM (T12, T13) and the filter-wise operator", () => {
  /** Bias-free ReLU MLP: x [n, 2] → W1 [2, 3] → relu → W2 [3, 1], mean squared error. */
  const mlp = (p: { W1: Tensor; W2: Tensor }, x: Tensor, y: Tensor) =>
    np.mean(np.square(np.subtract(np.matmul(np.maximum(np.matmul(x, p.W1), 0), p.W2), y)));
  const X = f64([
    [1, -0.5],
    [0.3, 2],
    [-1.2, 0.7],
    [0.8, 0.9],
  ]);
  const Y = f64([[0.5], [-1], [0.25], [1.5]]);
  const preacts = (W1: number[][]) => matvecRows(W1);
  const matvecRows = (W1: number[][]) =>
    [
      [1, -0.5],
      [0.3, 2],
      [-1.2, 0.7],
      [0.8, 0.9],
    ].flatMap((x) => [0, 1, 2].map((j) => x[0]! * W1[0]![j]! + x[1]! * W1[1]![j]!));
  // Weights of magnitude [0.5, 2] with random signs, so no leaf sits near ASAM's T = 0.
  const weight = fc
    .tuple(fc.double({ min: 0.5, max: 2, noNaN: true }), fc.boolean())
    .map(([v, neg]) => (neg ? -v : v));
  const row = (n: number) => fc.array(weight, { minLength: n, maxLength: n });
  const arbNet = fc.record({
    W1: fc.array(row(3), { minLength: 2, maxLength: 2 }),
    W2: fc.array(row(1), { minLength: 3, maxLength: 3 }),
    alpha: fc.array(fc.constantFrom(0.25, 0.5, 2, 4), { minLength: 3, maxLength: 3 }),
  });
  const rescale = (W1: number[][], W2: number[][], a: number[]) => ({
    W1: W1.map((row) => row.map((v, j) => v * a[j]!)),
    W2: W2.map((row, j) => row.map((v) => v / a[j]!)),
  });
  const flat = (p: { W1: Tensor; W2: Tensor }) => [...vals(p.W1), ...vals(p.W2)];

  it("η = 0: ε(Aw) = Aε(w), L(Aw + ε(Aw)) = L(w + ε(w)), g_ASAM(Aw) = A⁻¹ g_ASAM(w) (power-of-two rescalings)", () => {
    const opts = { rho: 0.05, adaptive: { eta: 0 } };
    fc.assert(
      fc.property(arbNet, ({ W1, W2, alpha }) => {
        fc.pre(preacts(W1).every((z) => Math.abs(z) > 0.05));
        const p = { W1: f64(W1), W2: f64(W2) };
        const s = rescale(W1, W2, alpha);
        const q = { W1: f64(s.W1), W2: f64(s.W2) };
        const gp = grad(mlp)(p, X, Y);
        const gq = grad(mlp)(q, X, Y);
        fc.pre(norm(flat(gp)) > 1e-3);
        const ep = samPerturbation(gp, p, opts) as { W1: Tensor; W2: Tensor };
        const eq = samPerturbation(gq, q, opts) as { W1: Tensor; W2: Tensor };
        // Keep the perturbed pre-activations on the same side of the ReLU kink.
        const pw1 = W1.map((row, i) => row.map((v, j) => v + vals(ep.W1)[i * 3 + j]!));
        fc.pre(preacts(pw1).every((z) => Math.abs(z) > 0.05));
        const a = [...W1.flatMap(() => alpha), ...alpha.map((x) => 1 / x)];
        close(
          flat(eq),
          flat(ep).map((v, i) => v * a[i]!),
          64 * EPS64,
        );
        const lp = mlp(tree2(p, ep), X, Y).item();
        const lq = mlp(tree2(q, eq), X, Y).item();
        expect(Math.abs(lq - lp)).toBeLessThanOrEqual(64 * EPS64 * (1 + Math.abs(lp)));
        const Sp = flat(sam(mlp, opts)(p, X, Y));
        const Sq = flat(sam(mlp, opts)(q, X, Y));
        close(
          Sq,
          Sp.map((v, i) => v / a[i]!),
          256 * EPS64 * (1 + norm(Sp)),
        );
      }),
      { numRuns: 30 },
    );
    // Negative twin: plain SAM's perturbed loss moves under the same rescaling.
    const W1 = [
      [1, -0.5, 0.75],
      [0.5, 1.25, -1],
    ];
    const W2 = [[0.5], [-1], [2]];
    const p = { W1: f64(W1), W2: f64(W2) };
    const s = rescale(W1, W2, [4, 0.25, 2]);
    const q = { W1: f64(s.W1), W2: f64(s.W2) };
    const lossAt = (t: { W1: Tensor; W2: Tensor }) =>
      mlp(tree2(t, samPerturbation(grad(mlp)(t, X, Y), t, { rho: 0.5 })), X, Y).item();
    expect(Math.abs(lossAt(q) - lossAt(p))).toBeGreaterThan(1e-3);
  });
  const tree2 = (p: { W1: Tensor; W2: Tensor }, e: { W1: Tensor; W2: Tensor }) => ({
    W1: np.add(p.W1, e.W1),
    W2: np.add(p.W2, e.W2),
  });

  it("η > 0 is close to davda54's η = 0 when |w| ≫ η: relative difference O(η/min|w|)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 3, noNaN: true }), { minLength: 4, maxLength: 4 }),
        vec(4),
        (w, g) => {
          fc.pre(norm(g) > 1e-2);
          const e0 = vals(samPerturbation(f64(g), f64(w), { rho: 0.5, adaptive: { eta: 0 } }));
          const e1 = vals(samPerturbation(f64(g), f64(w), { rho: 0.5, adaptive: { eta: 0.01 } }));
          // T changes by a factor within (1, 1 + η/min|w|); ε ∝ T²g/‖Tg‖ moves by at most ~3η/min|w| relatively.
          expect(norm(sub(e1, e0))).toBeLessThanOrEqual((4 * 0.01 * norm(e0)) / Math.min(...w));
        },
      ),
      { numRuns: 40 },
    );
  });

  it("filter-wise: T = ‖w_f‖ + η per output column, |w| + η on vectors; ε = ρT²g/‖Tg‖ and ‖T⁻¹ε‖ = ρ", () => {
    fc.assert(
      fc.property(
        fc.array(vec(2), { minLength: 3, maxLength: 3 }),
        vec(2),
        fc.array(vec(2), { minLength: 3, maxLength: 3 }),
        vec(2),
        rhoArb,
        (K, b, gK, gb, rho) => {
          fc.pre(norm([...gK.flat(), ...gb]) > 1e-3);
          const eta = 0.01;
          const colNorm = [0, 1].map((j) => norm(K.map((row) => row[j]!)));
          const T = [
            ...K.flatMap((row) => row.map((_, j) => colNorm[j]! + eta)),
            ...b.map((v) => Math.abs(v) + eta),
          ];
          const g = [...gK.flat(), ...gb];
          const Tg = g.map((v, i) => v * T[i]!);
          const n = gnorm(Tg);
          const want = g.map((v, i) => (rho * T[i]! * T[i]! * v) / n);
          const e = samPerturbation(
            { K: f64(gK), b: f64(gb) },
            { K: f64(K), b: f64(b) },
            { rho, adaptive: "filterwise" },
          ) as { K: Tensor; b: Tensor };
          const got = [...vals(e.K), ...vals(e.b)];
          close(got, want, 64 * EPS64 * (1 + norm(T)) ** 2);
          expect(Math.abs(norm(got.map((v, i) => v / T[i]!)) - (rho * norm(Tg)) / n)).toBeLessThanOrEqual(
            64 * EPS64 * rho,
          );
        },
      ),
      { numRuns: 40 },
    );
    // filterAxis picks another axis of the slices; exemptions give T = 1.
    const k = f64([
      [3, 0],
      [4, 1],
    ]);
    expect(vals(filterNorms(k, 0))).toEqual([3, 3, Math.sqrt(17), Math.sqrt(17)]);
    expect(vals(filterNorms(k))).toEqual([5, 1, 5, 1]);
    const e = samPerturbation(
      { k: f64([1, 1]) },
      { k: f64([3, -4]) },
      { rho: 1, adaptive: { operator: "filterwise", exempt: () => true } },
    ) as { k: Tensor };
    close(vals(e.k), [1 / gnorm([1, 1]), 1 / gnorm([1, 1])], 4 * EPS64);
  });
});

describe("T14 second-order term and T22 HVP via the SAM difference", () => {
  it("secondOrder equals differentiating w ↦ L(w + ρ g(w)/‖g(w)‖) through ε (non-quadratic, batch argument)", () => {
    const x = f64([
      [0.5, -1, 2],
      [1.5, 0.25, -0.5],
    ]);
    fc.assert(
      fc.property(vec(3), rhoArb, (w, rho) => {
        const gw = vals(grad(smooth)(f64(w), x));
        fc.pre(norm(gw) > 1e-2);
        const through = vals(
          grad((v: Tensor, xx: Tensor) =>
            smooth(np.add(v, np.multiply(rho, dualVector(grad(smooth)(v, xx) as Tensor))), xx),
          )(f64(w), x),
        );
        const got = vals(sam(smooth, { rho, secondOrder: true })(f64(w), x));
        close(got, through, 1e-9 * (1 + norm(w)) ** 4);
        // ...and it is not the first-order (stop-gradient) form.
        const first = vals(sam(smooth, { rho })(f64(w), x));
        expect(norm(sub(first, through))).toBeGreaterThan(0);
      }),
      { numRuns: 25 },
    );
  });

  it("on a quadratic: S + ρ A (I − ĝĝᵀ) S / ‖g‖", () => {
    fc.assert(
      fc.property(arbQuad, ({ d, m, w, b, rho }) => {
        const A = sym(d, m);
        const g = add(matvec(A, w), b);
        fc.pre(norm(g) > 1e-2);
        const n = norm(g);
        const gh = scale(1 / n, g);
        const S = add(matvec(A, add(w, scale(rho / gnorm(g), g))), b);
        const v = sub(S, scale(dot(gh, S), gh));
        const want = add(S, scale(rho / n, matvec(A, v)));
        const mag = ((norm(m) + 1) * (norm(w) + rho + 1) + norm(b)) * (1 + (rho * (norm(m) + 1)) / n);
        close(vals(sam(quadLoss(A, b), { rho, secondOrder: true })(f64(w))), want, 512 * d * EPS64 * mag);
      }),
      { numRuns: 40 },
    );
  });

  it("float32: (S_ρ − g)/ρ → H ĝ with error O(ρ) (rtol 1e-2 at ρ = 2e-3‖w‖)", () => {
    const x = f64([
      [0.5, -1, 2],
      [1.5, 0.25, -0.5],
    ]);
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.5, max: 1.5, noNaN: true }), { minLength: 3, maxLength: 3 }),
        (w) => {
          const rho = 2e-3 * norm(w);
          const w32 = np.array(w, "float32");
          const x32 = np.astype(x, "float32");
          const g = vals(grad(smooth)(w32, x32));
          const S = vals(sam(smooth, { rho })(w32, x32));
          const g64 = vals(grad(smooth)(f64(w), x));
          const hv = vals(
            hessianVectorProduct((v: Tensor) => smooth(v, x), f64(w), f64(scale(1 / norm(g64), g64))),
          );
          const est = scale(1 / rho, sub(S, g));
          expect(norm(sub(est, hv))).toBeLessThanOrEqual(1e-2 * norm(hv) + (8 * EPS32 * norm(g)) / rho);
        },
      ),
      { numRuns: 20 },
    );
  });
});

describe("Fisher-SAM (T24)", () => {
  it("εᵀFε = γ² with F = diag(1 + η g²); η = 0 is SAM with ρ = γ; not loss-scale invariant", () => {
    fc.assert(
      fc.property(vec(4), rhoArb, fc.double({ min: 0, max: 4, noNaN: true }), (g, gamma, eta) => {
        fc.pre(norm(g) > 1e-3);
        const e = vals(samPerturbation(f64(g), f64([0, 0, 0, 0]), { rho: gamma, fisher: { eta } }));
        const q = e.reduce((a, v, i) => a + v * v * (1 + eta * g[i]! ** 2), 0);
        // The eps = 1e-12 guard on d = √(gᵀF⁻¹g) shrinks εᵀFε by (d/(d + eps))² ≈ 1 − 2eps/d.
        const dF = Math.sqrt(g.reduce((a, v) => a + (v * v) / (1 + eta * v * v), 0));
        expect(Math.abs(q - gamma * gamma)).toBeLessThanOrEqual((1e-13 + 4e-12 / dF) * gamma * gamma);
        const e0 = vals(samPerturbation(f64(g), f64([0, 0, 0, 0]), { rho: gamma, fisher: { eta: 0 } }));
        close(
          e0,
          vals(samPerturbation(f64(g), f64([0, 0, 0, 0]), { rho: gamma })),
          1e-14 + (4e-12 * gamma) / norm(g),
        );
      }),
      { numRuns: 40 },
    );
    const g = f64([1, -2, 0.5]);
    const e1 = vals(samPerturbation(g, f64([0, 0, 0]), { rho: 0.1, fisher: { eta: 1 } }));
    const e4 = vals(samPerturbation(np.multiply(g, 4), f64([0, 0, 0]), { rho: 0.1, fisher: { eta: 1 } }));
    expect(norm(sub(e1, e4))).toBeGreaterThan(1e-3);
  });

  it("a zero gradient gives ε = 0; fisher rejects adaptive, p != 2 and mirror mode", () => {
    expect(vals(samPerturbation(f64([0, 0]), f64([1, 1]), { rho: 0.1, fisher: {} }))).toEqual([0, 0]);
    const loss = (w: Tensor) => np.sum(w);
    expect(() => sam(loss, { rho: 0.1, fisher: {}, adaptive: "elementwise" })).toThrow(ConfigError);
    expect(() => sam(loss, { rho: 0.1, fisher: {}, p: 3 })).toThrow(/p = 2/);
    expect(() => sam(loss, { rho: 0.1, fisher: {}, mode: "mirror" })).toThrow(/fisher/);
    expect(() => sam(loss, { rho: 0.1, fisher: { eta: -1 } })).toThrow(/fisher.eta/);
  });
});

describe("multi-step projected ascent (paper C.6)", () => {
  /** Oracle: u ← Proj(u + α·dual(∇L(w + u))) from u = 0, in plain float64. */
  const oracle = (
    A: number[][],
    b: number[],
    w: number[],
    rho: number,
    alpha: number,
    steps: number,
    p: number,
  ) => {
    let u = w.map(() => 0);
    for (let s = 0; s < steps; s++) {
      const g = add(matvec(A, add(w, u)), b);
      const d = p === Infinity ? g.map(Math.sign) : scale(1 / gnorm(g), g);
      u = add(u, scale(alpha, d));
      if (p === Infinity) u = u.map((v) => Math.min(rho, Math.max(-rho, v)));
      else if (norm(u) > rho) u = scale(rho / norm(u), u);
    }
    return add(matvec(A, add(w, u)), b);
  };

  it("matches an independent float64 loop on quadratics, p ∈ {2, ∞}", () => {
    fc.assert(
      fc.property(
        arbQuad,
        fc.integer({ min: 1, max: 4 }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        fc.constantFrom(2, Infinity),
        ({ d, m, w, b, rho }, steps, frac, p) => {
          const A = sym(d, m);
          fc.pre(norm(add(matvec(A, w), b)) > 1e-3);
          const alpha = frac * rho;
          const want = oracle(A, b, w, rho, alpha, steps, p);
          const got = vals(
            sam(quadLoss(A, b), { rho, p, ascentSteps: steps, ascentStepSize: alpha })(f64(w)),
          );
          close(got, want, 1e-9 * ((norm(m) + 1) * (norm(w) + rho + 1) + norm(b)));
        },
      ),
      { numRuns: 50 },
    );
  });

  it("stays in the ball (also ASAM's ‖T⁻¹ε‖ <= ρ) and reaches the max ρ‖c‖ on a linear loss", () => {
    fc.assert(
      fc.property(vec(3), vec(3), rhoArb, fc.integer({ min: 2, max: 5 }), (c, w, rho, steps) => {
        fc.pre(norm(c) > 1e-3);
        const loss = (x: Tensor) => np.sum(np.multiply(f64(c), x));
        const d = samWithDiagnostics(loss, { rho, ascentSteps: steps, ascentStepSize: rho / 2 })(f64(w));
        expect(vals(d.grads)).toEqual(c);
        expect(Math.abs(d.lossIncrease.item() - rho * norm(c))).toBeLessThanOrEqual(
          1e-9 * (1 + norm(c) * (norm(w) + rho)),
        );
      }),
      { numRuns: 30 },
    );
    const smoothSum = (x: Tensor) => np.sum(np.exp(np.multiply(0.5, x)));
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.1, max: 3, noNaN: true }), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 2, max: 4 }),
        (w, steps) => {
          // Recover ε from S = ∇L(w+ε) = ½ exp(½(w+ε)) leaf by leaf.
          const S = vals(sam(smoothSum, { rho: 0.3, adaptive: { eta: 0.01 }, ascentSteps: steps })(f64(w)));
          const eps = S.map((s, i) => 2 * Math.log(2 * s) - w[i]!);
          const r = norm(eps.map((e, i) => e / (Math.abs(w[i]!) + 0.01)));
          expect(r).toBeLessThanOrEqual(0.3 * (1 + 1e-9));
        },
      ),
      { numRuns: 20 },
    );
  });

  it("rejects bad ascent options", () => {
    const loss = (w: Tensor) => np.sum(w);
    expect(() => sam(loss, { rho: 0.1, ascentSteps: 0 })).toThrow(/ascentSteps/);
    expect(() => sam(loss, { rho: 0.1, ascentSteps: 2, p: 3 })).toThrow(/ascentSteps/);
    expect(() => sam(loss, { rho: 0.1, ascentSteps: 2, mode: "mirror" })).toThrow(/beyond/);
    expect(() => sam(loss, { rho: 0.1, ascentStepSize: -1 })).toThrow(/ascentStepSize/);
    expect(() => samPerturbation(f64([1]), f64([1]), { rho: 0.1, ascentSteps: 2 })).toThrow(/needs the loss/);
  });
});

describe("rho as a schedule", () => {
  it("sam(loss, { rho: schedule })(step, ...) equals sam with rho = schedule(step)", () => {
    const sched = linearSchedule(0.4, 0.1, 8);
    const x = f64([
      [0.5, -1, 2],
      [1.5, 0.25, -0.5],
    ]);
    const w = f64([0.3, -0.2, 0.9]);
    const g = sam(smooth, { rho: sched });
    for (const t of [0, 3, 8, 12]) {
      const step = np.array(t, "int32");
      const rho = sched(step).item();
      sameBits(vals(g(step, w, x)), vals(sam(smooth, { rho })(w, x)));
      sameBits(
        vals(samPerturbation(grad(smooth)(w, x), w, { rho: sched }, step)),
        vals(samPerturbation(grad(smooth)(w, x), w, { rho })),
      );
    }
    expect(() => sam(smooth, { rho: sched, mode: "mirror" })).toThrow(/schedule/);
    expect(() => sam(smooth, { rho: () => np.array(Number.NaN) })).toThrow(ConfigError);
    expect(() => samPerturbation(f64([1]), f64([1]), { rho: sched })).toThrow(/step/);
  });
});

describe("perturbOnly (SAM-ON as an option)", () => {
  const loss = (p: { norm: { scale: Tensor }; dense: { w: Tensor } }) =>
    np.sum(np.exp(np.multiply(np.concatenate([p.norm.scale, p.dense.w]), f64([0.5, -0.25, 0.75, 0.3]))));
  const isNorm = (path: readonly unknown[]) => String((path[0] as { key?: string })?.key) === "norm";
  it("equals samOn; ASAM-ON keeps ‖T⁻¹ε‖ = ρ over the chosen leaves and ε = 0 elsewhere", () => {
    fc.assert(
      fc.property(vec(2), vec(2), rhoArb, (a, b, rho) => {
        const p = { norm: { scale: f64(a) }, dense: { w: f64(b) } };
        const tv = (t: unknown) => tree.leaves<Tensor>(t).flatMap(vals);
        const want = tv(samOn(loss, { rho, perturbOnly: (s) => s.startsWith("norm") })(p));
        expect(tv(sam(loss, { rho, perturbOnly: isNorm })(p))).toEqual(want);
        const g = grad(loss)(p);
        const e = samPerturbation(g, p, { rho, perturbOnly: isNorm, adaptive: { eta: 0.01 } }) as typeof p;
        expect(vals(e.dense.w)).toEqual([0, 0]);
        const tInv = vals(e.norm.scale).map((v, i) => v / (Math.abs(a[i]!) + 0.01));
        expect(Math.abs(norm(tInv) - rho)).toBeLessThanOrEqual(1e-9 * rho);
      }),
      { numRuns: 30 },
    );
    expect(() => sam(loss, { rho: 0.1, perturbOnly: isNorm, mode: "mirror" })).toThrow(/perturbOnly/);
    expect(() => sam(loss, { rho: 0.1, perturbOnly: isNorm, secondOrder: true })).toThrow(/secondOrder/);
  });
});

describe("composition with vmap", () => {
  it("vmap(sam(loss)) over a batch of parameter vectors equals a loop (also with m lanes inside)", () => {
    const x = f64([
      [0.5, -1, 2],
      [1.5, 0.25, -0.5],
    ]);
    fc.assert(
      fc.property(fc.array(vec(3), { minLength: 3, maxLength: 3 }), rhoArb, (ws, rho) => {
        for (const opts of [{ rho }, { rho, m: 1 }, { rho, adaptive: { eta: 0.01 } as const }]) {
          const g = sam(smooth, opts);
          const batched = vals(vmap((w: Tensor) => g(w, x), { inAxes: 0 })(f64(ws)));
          const loop = ws.flatMap((w) => vals(g(f64(w), x)));
          close(batched, loop, 16 * EPS64);
        }
      }),
      { numRuns: 10 },
    );
  });
});

describe("float32 parameters stay float32 through every option", () => {
  it("grads keep the parameters' dtype and are finite, and agree with the float64 run to float32 accuracy", () => {
    const x32 = np.array(
      [
        [0.5, -1, 2],
        [1.5, 0.25, -0.5],
      ],
      "float32",
    );
    const sched = linearSchedule(0.1, 0.05, 4);
    const cases: [string, Parameters<typeof sam>[1], boolean][] = [
      ["beyond", { rho: 0.1 }, false],
      ["p = ∞", { rho: 0.1, p: Infinity }, false],
      ["ASAM filterwise", { rho: 0.5, adaptive: "filterwise" }, false],
      ["Fisher", { rho: 0.1, fisher: { eta: 1 } }, false],
      ["projected ascent", { rho: 0.1, ascentSteps: 3 }, false],
      ["second order", { rho: 0.1, secondOrder: true }, false],
      ["m lanes, synced", { rho: 0.1, m: 1, syncPerturbations: true }, false],
      ["rho schedule", { rho: sched }, true],
    ];
    const w = [0.3, -0.2, 0.9];
    for (const [name, opts, scheduled] of cases) {
      const g = sam(smooth, opts);
      const step = np.array(2, "int32");
      const g32 = (
        scheduled ? g(step, np.array(w, "float32"), x32) : g(np.array(w, "float32"), x32)
      ) as Tensor;
      const g64 = (
        scheduled ? g(step, f64(w), np.astype(x32, "float64")) : g(f64(w), np.astype(x32, "float64"))
      ) as Tensor;
      expect(g32.dtype, name).toBe("float32");
      expect(vals(g32).every(Number.isFinite), name).toBe(true);
      close(vals(g32), vals(g64), 64 * EPS32);
    }
  });
});

describe("staging: the SAM gradient traces to a jaxpr that evaluates to the eager result", () => {
  it("for plain, m-lane, ASAM, Fisher, projected-ascent and second-order SAM", () => {
    const x = f64([
      [0.5, -1, 2],
      [1.5, 0.25, -0.5],
    ]);
    const w = f64([0.3, -0.2, 0.9]);
    const cases: Parameters<typeof sam>[1][] = [
      { rho: 0.1 },
      { rho: 0.1, mode: "mirror" },
      { rho: 0.1, m: 1 },
      { rho: 0.1, m: 1, syncPerturbations: true },
      { rho: 0.5, adaptive: "filterwise" },
      { rho: 0.1, fisher: { eta: 1 } },
      { rho: 0.1, ascentSteps: 3 },
      { rho: 0.1, secondOrder: true },
    ];
    for (const opts of cases) {
      const g = sam(smooth, opts);
      const closed = makeJaxpr((a: Tensor, b: Tensor) => g(a, b))(w, x);
      const staged = evalJaxpr(closed.jaxpr, closed.consts, [w, x]);
      sameBits(vals(staged[0]!), vals(g(w, x)));
    }
  });
});
