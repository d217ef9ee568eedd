import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import * as random from "../../src/core/random.js";
import type { Tensor } from "../../src/core/tensor.js";
import {
  allOf,
  anyOf,
  excluding,
  kernelsOnly,
  parameterCorruption,
  pacBayesFlatness,
  pathMatches,
  underPath,
  worstCaseSharpness,
} from "../../src/optim/sharpness/index.js";

// Oracles are plain float64 JS arrays; tensors under test are float64.
const f64 = (xs: number[]) => np.array(xs, "float64");
const vals = (t: Tensor) => Array.from(t.data() as Float64Array);
const norm = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0));
const EPS = Number.EPSILON;
const matvec = (A: number[][], x: number[]) => A.map((row) => row.reduce((a, v, j) => a + v * x[j]!, 0));
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** H = Qᵀ diag(λ) Q with a seeded random orthogonal Q. */
function withSpectrum(lam: number[], seed: number): number[][] {
  const d = lam.length;
  const rng = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-300))) * Math.cos(2 * Math.PI * rng());
  const q: number[][] = [];
  while (q.length < d) {
    const v = Array.from({ length: d }, gauss);
    for (let pass = 0; pass < 2; pass++)
      for (const u of q) {
        const c = dot(u, v);
        for (let k = 0; k < d; k++) v[k]! -= c * u[k]!;
      }
    const n = norm(v);
    if (n > 1e-6) q.push(v.map((x) => x / n));
  }
  return Array.from({ length: d }, (_, i) =>
    Array.from({ length: d }, (_, j) => lam.reduce((s, l, k) => s + l * q[k]![i]! * q[k]![j]!, 0)),
  );
}

/** `L(w) = ½ (w − c)ᵀ H (w − c) + bᵀw` on a tree `{ w }`. */
function quadratic(H: number[][], c: number[], b: number[]) {
  const Ht = np.array(H, "float64");
  const ct = f64(c);
  const bt = f64(b);
  const f = (p: { w: Tensor }) => {
    const e = np.subtract(p.w, ct);
    return np.add(np.multiply(0.5, np.sum(np.multiply(e, np.matmul(Ht, e)))), np.sum(np.multiply(bt, p.w)));
  };
  const oracle = (w: number[]) => {
    const e = w.map((x, i) => x - c[i]!);
    return 0.5 * dot(e, matvec(H, e)) + dot(b, w);
  };
  return { f, oracle };
}

const val = fc.double({ min: -1, max: 1, noNaN: true, noDefaultInfinity: true });
const vec = (n: number) => fc.array(val, { minLength: n, maxLength: n });
const pos = (lo: number, hi: number) => fc.double({ min: lo, max: hi, noNaN: true, noDefaultInfinity: true });

/** A PSD spectrum whose top eigenvalue is separated: λ₂ ≤ 0.6 λ₁ (so the ascent converges fast). */
const arbGapped = fc.integer({ min: 1, max: 4 }).chain((d) =>
  fc.record({
    top: pos(0.5, 4),
    rest: fc.array(pos(0, 0.6), { minLength: d - 1, maxLength: d - 1 }),
    seed: fc.integer(),
    key: fc.integer({ min: 0, max: 1e6 }),
  }),
);

describe("worstCaseSharpness", () => {
  it("at the minimiser of ½wᵀHw (H PSD, L2 ball) it equals α² λmax / 2, monotone in α", () => {
    fc.assert(
      fc.property(arbGapped, fc.array(pos(0.01, 2), { minLength: 3, maxLength: 3 }), (g, alphas) => {
        const lam = [g.top, ...g.rest.map((r) => r * g.top)];
        const H = withSpectrum(lam, g.seed);
        const d = lam.length;
        const { f } = quadratic(H, new Array(d).fill(0), new Array(d).fill(0));
        const sorted = [...alphas].sort((a, b) => a - b);
        const got = sorted.map((alpha) => {
          const r = worstCaseSharpness(
            f,
            { w: f64(new Array(d).fill(0)) },
            { alpha, steps: 50, stepSize: 8, key: random.key(g.key) },
          );
          expect(r.defined).toBe(true);
          expect(r.start).toBe("random"); // g = 0 at the minimiser: SAM's point is undefined
          const want = (alpha * alpha * g.top) / 2;
          // A step u + sα Hu/‖Hu‖ is (I + cH)u with c >= s/λ₁, so tan θ shrinks by at least
          // (1 + s λ₂/λ₁)/(1 + s) <= 0.644 (s = 8) a step, and the relative error is <= tan²θ: after
          // 50 steps <= 1e-19 tan²θ₀ (below 1e-9 unless tan θ₀ > 1e5).
          expect(Math.abs(r.sharpness - want)).toBeLessThanOrEqual(
            1e-9 * want + 64 * EPS * alpha * alpha * g.top,
          );
          return r.sharpness;
        });
        for (let i = 1; i < got.length; i++) expect(got[i]!).toBeGreaterThanOrEqual(got[i - 1]! * (1 - 1e-9));
      }),
      { numRuns: 6 },
    );
  });

  it("from the SAM point α g/‖g‖ it never reports less than the increase there; the point is feasible and realises the value", () => {
    fc.assert(
      fc.property(arbGapped, vec(4), vec(4), pos(0.05, 1.5), (g, c, b, alpha) => {
        const lam = [g.top, ...g.rest.map((r) => r * g.top)];
        const d = lam.length;
        const H = withSpectrum(lam, g.seed);
        const { f, oracle } = quadratic(H, c.slice(0, d), b.slice(0, d));
        const w = new Array(d).fill(0.25);
        const grad = matvec(
          H,
          w.map((x, i) => x - c[i]!),
        ).map((v, i) => v + b[i]!);
        fc.pre(norm(grad) > 1e-3);
        const r = worstCaseSharpness(f, { w: f64(w) }, { alpha, steps: 15 });
        const samPoint = w.map((x, i) => x + (alpha * grad[i]!) / norm(grad));
        const atSam = oracle(samPoint) - oracle(w);
        const scale = 1 + Math.abs(oracle(w)) + alpha * norm(grad) + alpha * alpha * g.top;
        expect(r.start).toBe("sam");
        expect(Math.abs(r.startIncrease - atSam)).toBeLessThanOrEqual(1e-13 * scale);
        expect(r.sharpness).toBeGreaterThanOrEqual(r.startIncrease);
        const u = vals((r.perturbation as { w: Tensor }).w);
        expect(norm(u)).toBeLessThanOrEqual(alpha * (1 + 1e-12));
        expect(Math.abs(oracle(w.map((x, i) => x + u[i]!)) - oracle(w) - r.sharpness)).toBeLessThanOrEqual(
          1e-13 * scale,
        );
        // And it cannot exceed the bound α‖g‖ + α²λmax/2 on any point of the ball.
        expect(r.sharpness).toBeLessThanOrEqual(
          alpha * norm(grad) + (alpha * alpha * g.top) / 2 + 1e-13 * scale,
        );
      }),
      { numRuns: 20 },
    );
  });

  it("magnitude-aware box on a separable PSD quadratic equals Σ |g_i| r_i + ½ h_i r_i², r_i = α(|w_i| + offset), monotone in α", () => {
    fc.assert(
      fc.property(
        // Curvatures h_i > 0, weights |w_i| >= 0.05 and offsets |w_i − c_i| >= 0.05, so every g_i ≠ 0.
        fc.array(fc.tuple(pos(0.05, 3), pos(0.05, 1), fc.boolean(), pos(0.05, 1), fc.boolean()), {
          minLength: 1,
          maxLength: 5,
        }),
        fc.array(pos(0.01, 1), { minLength: 2, maxLength: 2 }),
        fc.constantFrom(0, 0.5, 1),
        (coords, alphas, offset) => {
          const h = coords.map(([hi]) => hi);
          const w = coords.map(([, wi, neg]) => (neg ? -wi : wi));
          const c = coords.map(([, , , di, neg], i) => w[i]! - (neg ? -di : di));
          const gr = w.map((wi, i) => h[i]! * (wi - c[i]!));
          const H = h.map((hi, i) => h.map((_, j) => (i === j ? hi : 0)));
          const { f } = quadratic(H, c, new Array(h.length).fill(0));
          const got = [...alphas]
            .sort((a, b) => a - b)
            .map((alpha) => {
              const r = worstCaseSharpness(
                f,
                { w: f64(w) },
                { alpha, region: "magnitude", offset, steps: 5 },
              );
              const radii = w.map((wi) => alpha * (Math.abs(wi) + offset));
              const want = radii.reduce((s, ri, i) => s + Math.abs(gr[i]!) * ri + 0.5 * h[i]! * ri * ri, 0);
              expect(Math.abs(r.sharpness - want)).toBeLessThanOrEqual(1e-13 * (1 + want));
              const u = vals((r.perturbation as { w: Tensor }).w);
              u.forEach((ui, i) => expect(Math.abs(ui)).toBeLessThanOrEqual(radii[i]! * (1 + EPS)));
              return r.sharpness;
            });
          expect(got[1]!).toBeGreaterThanOrEqual(got[0]!);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("where restricts the ball to the selected leaves (a separable loss gives that block's λmax)", () => {
    const loss = (p: { a: Tensor; b: Tensor }) =>
      np.add(np.sum(np.multiply(f64([3, 1]), np.square(p.a))), np.sum(np.multiply(10, np.square(p.b))));
    const params = { a: f64([0, 0]), b: f64([0]) };
    // ½ uᵀHu with H_a = diag(6, 2), H_b = 20.
    const onlyA = worstCaseSharpness(loss, params, {
      alpha: 0.5,
      steps: 60,
      stepSize: 1,
      where: underPath("a"),
    });
    expect(onlyA.sharpness).toBeCloseTo((0.25 * 6) / 2, 10);
    expect(vals((onlyA.perturbation as { b: Tensor }).b)).toEqual([0]);
    const all = worstCaseSharpness(loss, params, { alpha: 0.5, steps: 60, stepSize: 1 });
    expect(all.sharpness).toBeCloseTo((0.25 * 20) / 2, 10);
  });

  it("bad input: ConfigError for radii, steps and options; NaN losses give an undefined result", () => {
    const loss = (p: Tensor) => np.sum(np.square(p));
    const w = f64([1, 2]);
    expect(() => worstCaseSharpness(loss, w, { alpha: 0 })).toThrow(ConfigError);
    expect(() => worstCaseSharpness(loss, w, { alpha: -1 })).toThrow(/alpha/);
    expect(() => worstCaseSharpness(loss, w, { alpha: Number.NaN })).toThrow(/alpha/);
    expect(() => worstCaseSharpness(loss, w, { alpha: 1, steps: -1 })).toThrow(/steps/);
    expect(() => worstCaseSharpness(loss, w, { alpha: 1, stepSize: 0 })).toThrow(/stepSize/);
    expect(() => worstCaseSharpness(loss, w, { alpha: 1, region: "l1" as never })).toThrow(/region/);
    expect(() => worstCaseSharpness(loss, w, { alpha: 1, offset: -1 })).toThrow(/offset/);
    expect(() => worstCaseSharpness(loss, f64([0, 0]), { alpha: 1, region: "magnitude", offset: 0 })).toThrow(
      /empty/,
    );
    expect(() => worstCaseSharpness(loss, w, { alpha: 1, where: () => false })).toThrow(/no parameter/);
    expect(() => worstCaseSharpness(loss, np.array([1], "int32"), { alpha: 1 })).toThrow(/floating/);
    // log(1 − ‖w‖²) is NaN outside the unit ball: the ascent walks out of it.
    const r = worstCaseSharpness(
      (p: Tensor) => np.log(np.subtract(1, np.sum(np.square(p)))).neg(),
      f64([0.5, 0]),
      { alpha: 1 },
    );
    expect(r.defined).toBe(false);
    expect(r.sharpness).toBeNaN();
    expect(r.reason).toMatch(/NaN/);
  });
});

describe("pacBayesFlatness", () => {
  it("on a quadratic at its minimiser σ = sqrt(2d / tr H) within the Monte-Carlo error of the sample count", () => {
    fc.assert(
      fc.property(
        fc.array(pos(0.1, 4), { minLength: 1, maxLength: 5 }),
        fc.integer(),
        pos(0.01, 0.5),
        fc.integer({ min: 0, max: 1e6 }),
        (lam, seed, dev, key) => {
          const H = withSpectrum(lam, seed);
          const d = lam.length;
          const c = new Array(d).fill(0.3);
          const { f } = quadratic(H, c, new Array(d).fill(0));
          const samples = 200;
          const tolerance = 1e-4;
          const r = pacBayesFlatness(
            f,
            { w: f64(c) },
            { deviation: dev, samples, key: random.key(key), sigmaRange: [0, 10], tolerance },
          );
          const tr = lam.reduce((a, b) => a + b, 0);
          const tr2 = lam.reduce((a, b) => a + b * b, 0);
          const want = Math.sqrt((2 * dev) / tr);
          // The estimate is σ² S with S = mean ½ zᵀHz: E S = tr H / 2, Var S = tr(H²) / (2n). σ̂ = sqrt(d/S),
          // so its relative error is about half S's: ½ sqrt(2 tr(H²)/n) / tr(H). Five standard errors,
          // plus the bisection's relative tolerance.
          const rel = 5 * 0.5 * (Math.sqrt((2 * tr2) / samples) / tr) + 2 * tolerance;
          expect(r.defined).toBe(true);
          expect(r.converged).toBe(true);
          expect(Math.abs(r.sigma / want - 1)).toBeLessThanOrEqual(rel);
          expect(r.increase).toBeLessThanOrEqual(dev);
          expect(r.sigma).toBeLessThan(r.sigmaUpper);
          expect(r.sigmaUpper - r.sigma).toBeLessThanOrEqual(tolerance * r.sigmaUpper);
          expect([r.deviation, r.samples, r.tolerance]).toEqual([dev, samples, tolerance]);
        },
      ),
      { numRuns: 12 },
    );
  });

  it("scaling the loss by s scales σ by 1/√s (same key)", () => {
    fc.assert(
      fc.property(
        fc.array(pos(0.1, 4), { minLength: 1, maxLength: 4 }),
        fc.integer(),
        pos(0.1, 20),
        fc.integer({ min: 0, max: 1e6 }),
        (lam, seed, s, key) => {
          const H = withSpectrum(lam, seed);
          const d = lam.length;
          const { f } = quadratic(H, new Array(d).fill(0), new Array(d).fill(0));
          const opts = {
            deviation: 0.1,
            samples: 32,
            key: random.key(key),
            sigmaRange: [0, 50] as const,
            tolerance: 1e-6,
          };
          const r1 = pacBayesFlatness(f, { w: f64(new Array(d).fill(0)) }, opts);
          const rs = pacBayesFlatness(
            (p: { w: Tensor }) => np.multiply(f(p), s),
            { w: f64(new Array(d).fill(0)) },
            opts,
          );
          // Both estimates are exact quadratics in σ on the same draws, so only the bisections differ.
          expect(Math.abs((rs.sigma * Math.sqrt(s)) / r1.sigma - 1)).toBeLessThanOrEqual(3e-6);
        },
      ),
      { numRuns: 12 },
    );
  });

  it("magnitude-aware: E = ½ Σ H_ii (σ² w_i² + ε²) at the minimiser, and σ matches within Monte-Carlo error", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(pos(0.1, 3), pos(0.2, 2)), { minLength: 1, maxLength: 4 }),
        fc.integer(),
        fc.integer({ min: 0, max: 1e6 }),
        (cs, seed, key) => {
          const lam = cs.map(([l]) => l);
          const w = cs.map(([, wi], i) => (i % 2 ? -wi : wi));
          const H = withSpectrum(lam, seed);
          const { f } = quadratic(H, w, new Array(w.length).fill(0));
          const eps = 0.01;
          const dev = 0.05;
          const samples = 200;
          const diagW = H.reduce((s, row, i) => s + row[i]! * w[i]! * w[i]!, 0);
          const trH = lam.reduce((a, b) => a + b, 0);
          const want = Math.sqrt((2 * dev - eps * eps * trH) / diagW);
          const r = pacBayesFlatness(
            f,
            { w: f64(w) },
            {
              deviation: dev,
              samples,
              key: random.key(key),
              sigmaRange: [0, 20],
              tolerance: 1e-5,
              magnitudeAware: { epsilon: eps },
            },
          );
          // MC error of the estimate at σ*: Var(½ zᵀMz) = tr(M²)/2 with M = S H S, S = diag(sqrt(σ²w² + ε²));
          // dE/dσ = σ Σ H_ii w_i², so δσ = δE / (σ* Σ H_ii w_i²).
          const sd = w.map((wi) => Math.sqrt(want * want * wi * wi + eps * eps));
          const M = H.map((row, i) => row.map((h, j) => sd[i]! * h * sd[j]!));
          const trM2 = M.reduce((s, row) => s + dot(row, row), 0);
          const dE = Math.sqrt(trM2 / 2 / samples);
          const tol = (5 * dE) / (want * diagW) + 2e-5 * want;
          expect(r.magnitudeAware).toEqual({ epsilon: eps });
          expect(Math.abs(r.sigma - want)).toBeLessThanOrEqual(tol);
        },
      ),
      { numRuns: 12 },
    );
  });

  it("bad input: ConfigError for d, samples, non-bracketing bounds; NaN losses give an undefined result", () => {
    const loss = (p: Tensor) => np.sum(np.square(p));
    const w = f64([0, 0]);
    expect(() => pacBayesFlatness(loss, w, { deviation: 0 })).toThrow(ConfigError);
    expect(() => pacBayesFlatness(loss, w, { deviation: -1 })).toThrow(/deviation/);
    expect(() => pacBayesFlatness(loss, w, { deviation: 0.1, samples: 0 })).toThrow(/samples/);
    expect(() => pacBayesFlatness(loss, w, { deviation: 0.1, sigmaRange: [1, 0.5] })).toThrow(/sigmaRange/);
    expect(() => pacBayesFlatness(loss, w, { deviation: 0.1, tolerance: 0 })).toThrow(/tolerance/);
    // E = 2σ² (tr H = 4): σ ≤ 0.1 gives at most 0.02 < d = 0.1, so [0, 0.1] does not bracket.
    expect(() => pacBayesFlatness(loss, w, { deviation: 0.1, sigmaRange: [0, 0.1] })).toThrow(
      /does not bracket.*raise/,
    );
    expect(() =>
      pacBayesFlatness(loss, f64([1, 1]), { deviation: 0.1, magnitudeAware: { epsilon: 1 } }),
    ).toThrow(/does not bracket.*lower/);
    expect(() => pacBayesFlatness(loss, w, { deviation: 0.1, key: 3 as never })).toThrow(/key/);
    const r = pacBayesFlatness((p: Tensor) => np.sqrt(np.subtract(1, np.sum(np.square(p)))).neg(), w, {
      deviation: 0.5,
      sigmaRange: [0, 5],
    });
    expect(r.defined).toBe(false);
    expect(r.sigma).toBeNaN();
    expect(r.reason).toMatch(/NaN/);
  });
});

describe("parameterCorruption", () => {
  /** `L(w) = Σ a_i sin(w_i) + ½ Σ k_i w_i²`, non-convex, with its gradient in closed form. */
  const sinLoss = (a: number[], k: number[]) => ({
    f: (p: { w: Tensor }) =>
      np.add(
        np.sum(np.multiply(f64(a), np.sin(p.w))),
        np.multiply(0.5, np.sum(np.multiply(f64(k), np.square(p.w)))),
      ),
    oracle: (w: number[]) => w.reduce((s, wi, i) => s + a[i]! * Math.sin(wi) + 0.5 * k[i]! * wi * wi, 0),
    grad: (w: number[]) => w.map((wi, i) => a[i]! * Math.cos(wi) + k[i]! * wi),
  });

  it("the first-order value is ε‖g‖₂ (L2) or ε‖g‖₁ (L∞); the multi-step estimate is at least the increase at the first-order point", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((d) => fc.tuple(vec(d), vec(d), vec(d))),
        pos(0.01, 1),
        fc.constantFrom(2 as const, Number.POSITIVE_INFINITY as 2 | typeof Infinity),
        ([a, k, w], epsilon, nrm) => {
          const { f, oracle, grad } = sinLoss(
            a.map((x) => 3 * x),
            k,
          );
          const g = grad(w.map((x) => 2 * x));
          fc.pre(norm(g) > 1e-6);
          const w2 = w.map((x) => 2 * x);
          const r = parameterCorruption(f, { w: f64(w2) }, [], {
            epsilon,
            norm: nrm,
            steps: 6,
            randomSamples: 4,
          });
          const gNorm = nrm === 2 ? norm(g) : g.reduce((s, x) => s + Math.abs(x), 0);
          expect(r.defined).toBe(true);
          expect(Math.abs(r.gradNorm - gNorm)).toBeLessThanOrEqual(1e-13 * (1 + gNorm));
          expect(Math.abs(r.firstOrder - epsilon * gNorm)).toBeLessThanOrEqual(1e-13 * (1 + epsilon * gNorm));
          const u1 = nrm === 2 ? g.map((x) => (epsilon * x) / norm(g)) : g.map((x) => epsilon * Math.sign(x));
          const at1 = oracle(w2.map((x, i) => x + u1[i]!)) - oracle(w2);
          expect(Math.abs(r.firstOrderIncrease - at1)).toBeLessThanOrEqual(
            1e-12 * (1 + Math.abs(oracle(w2))),
          );
          expect(r.worstCase).toBeGreaterThanOrEqual(r.firstOrderIncrease);
          const u = vals((r.perturbation as { w: Tensor }).w);
          if (nrm === 2) expect(norm(u)).toBeLessThanOrEqual(epsilon * (1 + 1e-12));
          else u.forEach((ui) => expect(Math.abs(ui)).toBeLessThanOrEqual(epsilon));
        },
      ),
      { numRuns: 40 },
    );
  });

  it("L∞ on a separable PSD quadratic: the worst case is exact and dominates every random corruption", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(pos(0.05, 3), pos(0.05, 1), fc.boolean()), { minLength: 1, maxLength: 6 }),
        pos(0.01, 1),
        fc.integer({ min: 0, max: 1e6 }),
        (cs, epsilon, key) => {
          const h = cs.map(([hi]) => hi);
          const w = cs.map(([, di, neg]) => 0.1 + (neg ? -di : di)); // |w_i − 0.1| >= 0.05: g_i ≠ 0
          const H = h.map((hi, i) => h.map((_, j) => (i === j ? hi : 0)));
          const { f } = quadratic(H, new Array(h.length).fill(0.1), new Array(h.length).fill(0));
          const r = parameterCorruption(f, { w: f64(w) }, [], {
            epsilon,
            norm: Number.POSITIVE_INFINITY,
            steps: 3,
            randomSamples: 16,
            key: random.key(key),
          });
          // max over the box of Σ g_i u_i + ½ h_i u_i² is at u = ε sign(g): Σ ε|g_i| + ½ h_i ε².
          const want = w.reduce(
            (s, wi, i) => s + epsilon * Math.abs(h[i]! * (wi - 0.1)) + 0.5 * h[i]! * epsilon * epsilon,
            0,
          );
          expect(Math.abs(r.worstCase - want)).toBeLessThanOrEqual(1e-13 * (1 + want));
          for (const v of [...r.random!.gaussian.values, ...r.random!.uniform.values])
            expect(v).toBeLessThanOrEqual(r.worstCase + 1e-13 * (1 + want));
        },
      ),
      { numRuns: 30 },
    );
  });

  it("L2 on ½c‖w‖² + bᵀw: the worst case dominates every random corruption, and the random ones have norm exactly ε", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 12 }).chain((d) => vec(d)),
        pos(0, 2),
        pos(0.01, 1),
        fc.integer({ min: 0, max: 1e6 }),
        (b, c, epsilon, key) => {
          const d = b.length;
          fc.pre(norm(b) > 1e-3);
          const H = b.map((_, i) => b.map((_, j) => (i === j ? c : 0)));
          const { f } = quadratic(H, new Array(d).fill(0), b);
          const w = new Array(d).fill(0);
          const samples = 64;
          const r = parameterCorruption(f, { w: f64(w) }, [], {
            epsilon,
            steps: 2,
            randomSamples: samples,
            key: random.key(key),
          });
          // On the sphere ‖u‖ = ε the increase is bᵀu + cε²/2: at most ε‖b‖ + cε²/2, attained at ε b/‖b‖.
          const top = epsilon * norm(b) + (c * epsilon * epsilon) / 2;
          const slack = 1e-13 * (1 + top);
          expect(Math.abs(r.worstCase - top)).toBeLessThanOrEqual(slack);
          for (const kind of ["gaussian", "uniform"] as const) {
            const s = r.random![kind];
            expect(s.values).toHaveLength(samples);
            for (const v of s.values) {
              expect(v).toBeLessThanOrEqual(r.worstCase + slack);
              expect(v).toBeGreaterThanOrEqual(-epsilon * norm(b) + (c * epsilon * epsilon) / 2 - slack);
            }
            // The linear part has mean 0 (symmetric directions) and |bᵀu| <= ε‖b‖: five standard errors.
            expect(Math.abs(s.mean - (c * epsilon * epsilon) / 2)).toBeLessThanOrEqual(
              (5 * epsilon * norm(b)) / Math.sqrt(samples) + slack,
            );
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it("where corrupts only the selected leaves; the first-order value uses their gradient alone", () => {
    const loss = (p: { dense: { kernel: Tensor; bias: Tensor } }) =>
      np.add(
        np.sum(np.multiply(f64([1, 2, 3, 4]), np.reshape(p.dense.kernel, [4]))),
        np.sum(np.multiply(f64([10, 20]), p.dense.bias)),
      );
    const params = { dense: { kernel: np.zeros([2, 2], "float64"), bias: np.zeros([2], "float64") } };
    const r = parameterCorruption(loss, params, [], { epsilon: 0.5, where: kernelsOnly, randomSamples: 2 });
    expect(r.firstOrder).toBeCloseTo(0.5 * Math.sqrt(30), 12);
    expect(r.worstCase).toBeCloseTo(0.5 * Math.sqrt(30), 12);
    expect(vals((r.perturbation as typeof params).dense.bias)).toEqual([0, 0]);
    const rb = parameterCorruption(loss, params, [], {
      epsilon: 0.5,
      norm: Number.POSITIVE_INFINITY,
      where: excluding(kernelsOnly),
      randomSamples: 0,
    });
    expect(rb.firstOrder).toBeCloseTo(0.5 * 30, 12);
    expect(rb.random).toBeNull();
  });

  it("bad input: ConfigError for ε, norm, steps; a zero gradient or a NaN loss gives an undefined result", () => {
    const loss = (p: Tensor, x: Tensor) => np.sum(np.multiply(np.square(p), x));
    const w = f64([1, 2]);
    const x = f64([1, 1]);
    expect(() => parameterCorruption(loss, w, [x], { epsilon: 0 })).toThrow(ConfigError);
    expect(() => parameterCorruption(loss, w, [x], { epsilon: Number.POSITIVE_INFINITY })).toThrow(/epsilon/);
    expect(() => parameterCorruption(loss, w, [x], { epsilon: 0.1, norm: 1 as never })).toThrow(/norm/);
    expect(() => parameterCorruption(loss, w, [x], { epsilon: 0.1, steps: 0.5 })).toThrow(/steps/);
    expect(() => parameterCorruption(loss, w, [x], { epsilon: 0.1, randomSamples: -1 })).toThrow(
      /randomSamples/,
    );
    expect(() => parameterCorruption(loss, w, x as never, { epsilon: 0.1 })).toThrow(/array/);
    const zero = parameterCorruption(loss, f64([0, 0]), [x], { epsilon: 0.1 });
    expect(zero.defined).toBe(false);
    expect(zero.worstCase).toBeNaN();
    expect(zero.reason).toMatch(/zero/);
    const nan = parameterCorruption(loss, w, [f64([Number.NaN, 1])], { epsilon: 0.1 });
    expect(nan.defined).toBe(false);
    expect(nan.reason).toMatch(/NaN/);
    // The data argument is passed through: doubling x doubles every increase.
    const r1 = parameterCorruption(loss, w, [x], { epsilon: 0.1, randomSamples: 4 });
    const r2 = parameterCorruption(loss, w, [np.multiply(x, 2)], { epsilon: 0.1, randomSamples: 4 });
    expect(r2.worstCase).toBeCloseTo(2 * r1.worstCase, 12);
    expect(r2.random!.gaussian.mean).toBeCloseTo(2 * r1.random!.gaussian.mean, 12);
  });
});

describe("tree-path predicates", () => {
  it("select by prefix, pattern, shape, and their combinations", () => {
    const k = np.zeros([2, 2]);
    const b = np.zeros([2]);
    expect(underPath("layers[0]")("layers[0].kernel", k)).toBe(true);
    expect(underPath("layers[0]")("layers[0]", k)).toBe(true);
    expect(underPath("layers[0]")("layers[01].kernel", k)).toBe(false);
    expect(underPath("w1")("w10", k)).toBe(false);
    expect(pathMatches(/kernel$/g)("a.kernel", k)).toBe(true);
    expect(pathMatches(/kernel$/g)("a.kernel", k)).toBe(true); // a global RegExp does not keep state
    expect(kernelsOnly("a.bias", b)).toBe(false);
    expect(allOf(kernelsOnly, underPath("a"))("a.kernel", k)).toBe(true);
    expect(allOf(kernelsOnly, underPath("a"))("b.kernel", k)).toBe(false);
    expect(anyOf(underPath("a"), underPath("b"))("b.bias", b)).toBe(true);
    expect(excluding(kernelsOnly)("a.bias", b)).toBe(true);
    expect(() => pathMatches("kernel" as never)).toThrow(ConfigError);
  });
});

describe("the README example", () => {
  it("runs on a small logistic regression and gives defined, consistent figures", () => {
    const x = np.array(
      [
        [1, 2],
        [-1, 0.5],
        [0.3, -2],
        [2, 1],
      ],
      "float64",
    );
    const y = f64([1, 0, 0, 1]);
    const loss = (p: { w: Tensor; b: Tensor }, xs: Tensor, ys: Tensor) => {
      const z = np.add(np.matmul(xs, p.w), p.b);
      // Binary cross-entropy with logits: log(1 + e^z) − y z.
      return np.mean(np.subtract(np.log(np.add(1, np.exp(z))), np.multiply(ys, z)));
    };
    const params = { w: f64([0.3, -0.2]), b: f64([0.1]) };
    const batch = [x, y];
    const sharp = worstCaseSharpness(loss, params, { alpha: 0.5, batch });
    const flat = pacBayesFlatness(loss, params, {
      deviation: 0.1,
      samples: 32,
      key: random.key(0),
      batch,
      sigmaRange: [0, 5],
    });
    const hurt = parameterCorruption(loss, params, batch, { epsilon: 0.01, norm: Number.POSITIVE_INFINITY });
    expect([sharp.defined, flat.defined, hurt.defined]).toEqual([true, true, true]);
    expect(sharp.sharpness).toBeGreaterThanOrEqual(sharp.startIncrease);
    expect(flat.sigma).toBeGreaterThan(0);
    // Nearly linear at ε = 0.01: the worst case is about ε‖g‖₁ and far above random corruption.
    expect(Math.abs(hurt.worstCase - hurt.firstOrder)).toBeLessThan(0.1 * hurt.firstOrder);
    expect(hurt.worstCase).toBeGreaterThan(hurt.random!.gaussian.max);
  });
});
