import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import * as random from "../../src/core/random.js";
import type { Tensor } from "../../src/core/tensor.js";
import { hessianVectorProduct, topEigenvalues, trace, tridiagonalEigenvalues } from "../../src/optim/sharpness/index.js";
import { hessian } from "../../src/transforms/index.js";

const EPS = Number.EPSILON;

// ------------------------------------------------------------------------------------------------
// float64 oracles written here: a small seeded PRNG, Gram–Schmidt orthogonal matrices, and
// A = Q diag(λ) Qᵀ with chosen eigenvalues.

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

function gaussian(rng: () => number): number {
  const u = Math.max(rng(), 1e-300);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Rows of a random orthogonal n×n matrix by modified Gram–Schmidt (twice) on Gaussian vectors. */
function randomOrthogonal(n: number, seed: number): number[][] {
  const rng = mulberry32(seed);
  const q: number[][] = [];
  while (q.length < n) {
    const v = Array.from({ length: n }, () => gaussian(rng));
    for (let pass = 0; pass < 2; pass++)
      for (const u of q) {
        const d = u.reduce((s, ui, i) => s + ui * v[i]!, 0);
        for (let i = 0; i < n; i++) v[i]! -= d * u[i]!;
      }
    const nrm = Math.hypot(...v);
    if (nrm > 1e-6) q.push(v.map((x) => x / nrm));
  }
  return q;
}

/** A = Σ_k λ_k q_k q_kᵀ. */
function withSpectrum(lambdas: readonly number[], seed: number): number[][] {
  const n = lambdas.length;
  const q = randomOrthogonal(n, seed);
  const a = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let k = 0; k < n; k++)
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i]![j]! += lambdas[k]! * q[k]![i]! * q[k]![j]!;
  return a;
}

const quadratic = (a: number[][]) => {
  const A = np.array(a, "float64");
  return (p: { w: Tensor }) => np.multiply(0.5, np.sum(np.multiply(p.w, np.matmul(A, p.w))));
};

const descending = (xs: readonly number[]) => [...xs].sort((x, y) => y - x);
const maxAbs = (xs: readonly number[]) => Math.max(...xs.map(Math.abs));

/**
 * Lanczos with full reorthogonalisation run to n steps is backward stable: its Ritz values are
 * the eigenvalues of A + E with ‖E‖ = O(n·ε·‖A‖). Building A from Q itself costs O(n·ε·‖A‖).
 */
const eigTol = (n: number, norm: number) => 8 * n * EPS * norm;

const arbSpectrum = (minN: number, maxN: number) =>
  fc.integer({ min: minN, max: maxN }).chain((n) =>
    fc.tuple(
      // A millesimal grid keeps subnormal eigenvalues out: their relative precision is not ε.
      fc.array(fc.integer({ min: -10000, max: 10000 }).map((x) => x / 1000), { minLength: n, maxLength: n }),
      fc.integer({ min: 1, max: 2 ** 30 }),
    ),
  );

// ------------------------------------------------------------------------------------------------

describe("tridiagonalEigenvalues", () => {
  it("matches the closed form of the [-1, 2, -1] matrix", () => {
    for (const n of [1, 2, 5, 17]) {
      const got = descending(tridiagonalEigenvalues(new Array(n).fill(2), new Array(n - 1).fill(-1)));
      const want = descending(Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))));
      got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(8 * n * EPS * 4));
    }
  });

  it("handles zero couplings (decoupled blocks)", () => {
    expect(descending(tridiagonalEigenvalues([3, 1, 2], [0, 0]))).toEqual([3, 2, 1]);
  });
});

describe("hessianVectorProduct", () => {
  it("matches hessian() from the transforms on a non-quadratic function", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: 1, maxLength: 5 }).chain((x) =>
          fc.tuple(fc.constant(x), fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: x.length, maxLength: x.length })),
        ),
        ([x, v]) => {
          const f = (w: Tensor) => np.sum(np.multiply(np.sin(w), np.multiply(w, w)));
          const xt = np.array(x, "float64");
          const H = hessian(f)(xt).toArray() as number[][];
          const want = H.map((row) => row.reduce((s, h, j) => s + h * v[j]!, 0));
          const got = (hessianVectorProduct((p: { w: Tensor }) => f(p.w), { w: xt }, { w: np.array(v, "float64") }).w.toArray() as number[]);
          const scale = H.reduce((s, row) => s + row.reduce((t, h, j) => t + Math.abs(h * v[j]!), 0), 0) + 1;
          got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(16 * x.length * EPS * scale));
        },
      ),
      { numRuns: 30 },
    );
  });

  it("works over trees with several leaves and batch arguments", () => {
    const rng = mulberry32(7);
    const a = np.array([[rng(), rng(), rng()], [rng(), rng(), rng()]], "float64");
    const b = np.array([rng(), rng()], "float64");
    const scale = np.array(1.5, "float64");
    const loss = (p: { a: Tensor; b: Tensor }, s: Tensor) => {
      const w = np.concatenate([np.reshape(p.a, [6]), p.b]);
      return np.multiply(s, np.sum(np.multiply(np.sin(w), np.multiply(w, w))));
    };
    const va = np.array([[1, -1, 0.5], [0, 2, -0.25]], "float64");
    const vb = np.array([0.75, -1.5], "float64");
    const got = hessianVectorProduct(loss, { a, b }, { a: va, b: vb }, scale);
    expect(got.a.shape).toEqual([2, 3]);
    expect(got.b.shape).toEqual([2]);
    const fw = (w: Tensor) => np.multiply(scale, np.sum(np.multiply(np.sin(w), np.multiply(w, w))));
    const w0 = np.concatenate([np.reshape(a, [6]), b]);
    const H = hessian(fw)(w0).toArray() as number[][];
    const v = [...(np.reshape(va, [6]).toArray() as number[]), ...(vb.toArray() as number[])];
    const want = H.map((row) => row.reduce((s, h, j) => s + h * v[j]!, 0));
    const gotFlat = [...(np.reshape(got.a, [6]).toArray() as number[]), ...(got.b.toArray() as number[])];
    gotFlat.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(1e3 * EPS * (1 + Math.abs(want[i]!))));
  });
});

describe("topEigenvalues", () => {
  it("recovers the top k eigenvalues of ½wᵀAw with A = Q diag(λ) Qᵀ", () => {
    fc.assert(
      fc.property(arbSpectrum(1, 12), fc.integer({ min: 1, max: 12 }), ([lambdas, seed], kRaw) => {
        const n = lambdas.length;
        const k = Math.min(kRaw, n);
        const res = topEigenvalues(quadratic(withSpectrum(lambdas, seed)), { w: np.zeros([n], "float64") }, k, {
          key: random.key(seed),
          iterations: Math.max(n, k),
        });
        const want = descending(lambdas).slice(0, k);
        expect(res.eigenvalues).toHaveLength(k);
        const tol = eigTol(n, maxAbs(lambdas) + 1e-300);
        res.eigenvalues.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(tol));
        for (let i = 1; i < k; i++) expect(res.eigenvalues[i]!).toBeLessThanOrEqual(res.eigenvalues[i - 1]!);
        if (k >= 2) expect(res.ratio).toBe(res.eigenvalues[0]! / res.eigenvalues[k - 1]!);
        else expect(res.ratio).toBeUndefined();
      }),
      { numRuns: 60 },
    );
  });

  it("restarts on invariant subspaces so repeated eigenvalues are all found", () => {
    const lambdas = [5, 5, 5, 2, 2, 1, 1, 1, 0, 0];
    const n = lambdas.length;
    const res = topEigenvalues(quadratic(withSpectrum(lambdas, 3)), { w: np.zeros([n], "float64") }, 6, { key: random.key(1) });
    expect(res.iterations).toBe(n);
    const want = [5, 5, 5, 2, 2, 1];
    res.eigenvalues.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(eigTol(n, 5)));
    expect(res.ratio).toBeCloseTo(5, 12);
  });

  it("flattens trees with several leaves and passes batch arguments (least squares: H = XᵀX)", () => {
    // X = diag(s) Qᵀ so XᵀX = Q diag(s²) Qᵀ; parameters split as a [2,2] leaf and a [3] leaf.
    const n = 7;
    const s = [3, 2.5, 2, 1.5, 1, 0.5, 0.25];
    const q = randomOrthogonal(n, 11);
    const X = np.array(s.map((si, i) => q[i]!.map((x) => si * x)), "float64");
    const y = np.array(new Array(n).fill(0.3), "float64");
    const loss = (p: { m: Tensor; v: Tensor }, x: Tensor, t: Tensor) => {
      const w = np.concatenate([np.reshape(p.m, [4]), p.v]);
      const r = np.subtract(np.matmul(x, w), t);
      return np.multiply(0.5, np.sum(np.multiply(r, r)));
    };
    const params = { m: np.ones([2, 2], "float64"), v: np.ones([3], "float64") };
    const res = topEigenvalues(loss, params, 5, { key: random.key(2), batch: [X, y] });
    const want = s.map((x) => x * x).slice(0, 5);
    res.eigenvalues.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(eigTol(n, 9)));
    expect(Math.abs(res.ratio! - 9 / 1)).toBeLessThanOrEqual(1e-10);
  });

  it("with fewer steps than parameters still finds a well-separated top eigenvalue", () => {
    // Kaniel–Paige: the top Ritz value converges like the Chebyshev polynomial of the gap ratio;
    // with λ1/λ2 = 10 and the rest of the spectrum in [0, 1], 20 steps leave error far below 1e-8.
    const n = 60;
    const lambdas = [10, ...Array.from({ length: n - 1 }, (_, i) => (i + 1) / n)];
    const res = topEigenvalues(quadratic(withSpectrum(lambdas, 5)), { w: np.zeros([n], "float64") }, 1, {
      key: random.key(4),
      iterations: 20,
    });
    expect(res.iterations).toBe(20);
    expect(Math.abs(res.eigenvalues[0]! - 10)).toBeLessThanOrEqual(1e-8);
  });

  it("is deterministic for a key and returns a fresh key", () => {
    const n = 40;
    const lambdas = Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
    const f = quadratic(withSpectrum(lambdas, 9));
    const p = { w: np.zeros([n], "float64") };
    const r1 = topEigenvalues(f, p, 5, { key: random.key(3), iterations: 12 });
    const r2 = topEigenvalues(f, p, 5, { key: random.key(3), iterations: 12 });
    const r3 = topEigenvalues(f, p, 5, { key: random.key(4), iterations: 12 });
    expect(r1.eigenvalues).toEqual(r2.eigenvalues);
    expect(r1.key.toArray()).toEqual(r2.key.toArray());
    expect(r1.key.toArray()).not.toEqual(random.key(3).toArray());
    expect(r3.eigenvalues).not.toEqual(r1.eigenvalues);
  });

  it("works on float32 parameters", () => {
    const lambdas = [4, 3, 2, 1, 0.5];
    const a = withSpectrum(lambdas, 21);
    const A = np.array(a, "float32");
    const f = (p: { w: Tensor }) => np.multiply(0.5, np.sum(np.multiply(p.w, np.matmul(A, p.w))));
    const res = topEigenvalues(f, { w: np.zeros([5], "float32") }, 3, { key: random.key(0) });
    // float32 rounding of A and of each Hessian-vector product: O(n·ε32·‖A‖).
    res.eigenvalues.forEach((g, i) => expect(Math.abs(g - lambdas[i]!)).toBeLessThanOrEqual(8 * 5 * 2 ** -23 * 4));
  });

  it("raises ConfigError for k < 1, k > #params and non-integer k", () => {
    const f = quadratic([[1, 0], [0, 2]]);
    const p = { w: np.zeros([2], "float64") };
    expect(() => topEigenvalues(f, p, 0)).toThrow(ConfigError);
    expect(() => topEigenvalues(f, p, 3)).toThrow(ConfigError);
    expect(() => topEigenvalues(f, p, 1.5)).toThrow(ConfigError);
    expect(() => topEigenvalues(f, p, 2, { iterations: 1 })).toThrow(ConfigError);
  });
});

describe("trace (Hutchinson)", () => {
  it("is exact for a diagonal Hessian, with zero standard error", () => {
    fc.assert(
      fc.property(
        // Millesimal grid: no subnormals, whose products lose the relative precision ε assumes.
        fc.array(fc.integer({ min: -5000, max: 5000 }).map((x) => x / 1000), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 0, max: 1000 }),
        (d, samples, seed) => {
          const D = np.array(d, "float64");
          const loss = (p: { w: Tensor }) => np.multiply(0.5, np.sum(np.multiply(D, np.multiply(p.w, p.w))));
          const res = trace(loss, { w: np.ones([d.length], "float64") }, { samples, key: random.key(seed) });
          const want = d.reduce((a, b) => a + b, 0);
          // vᵀDv = Σ d_i v_i² = Σ d_i exactly in value; only summation order rounds.
          const tol = 4 * d.length * EPS * d.reduce((a, b) => a + Math.abs(b), 0);
          expect(Math.abs(res.estimate - want)).toBeLessThanOrEqual(tol);
          expect(res.stderr).toBeLessThanOrEqual(tol);
          expect(res.samples).toBe(samples);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("is within 4 standard errors of tr(A) for a dense quadratic over a multi-leaf tree", () => {
    const lambdas = [3, -1, 2, 0.5, 4, 1.5];
    const a = withSpectrum(lambdas, 13);
    const A = np.array(a, "float64");
    const loss = (p: { u: Tensor; v: Tensor }) => {
      const w = np.concatenate([p.u, np.reshape(p.v, [4])]);
      return np.multiply(0.5, np.sum(np.multiply(w, np.matmul(A, w))));
    };
    const res = trace(loss, { u: np.zeros([2], "float64"), v: np.zeros([2, 2], "float64") }, { samples: 64, key: random.key(5) });
    const want = lambdas.reduce((x, y) => x + y, 0);
    expect(res.stderr).toBeGreaterThan(0);
    expect(Math.abs(res.estimate - want)).toBeLessThanOrEqual(4 * res.stderr);
  });

  it("is deterministic for a key; NaN stderr with one sample", () => {
    const f = quadratic(withSpectrum([1, 2, 3], 2));
    const p = { w: np.zeros([3], "float64") };
    const r1 = trace(f, p, { samples: 5, key: random.key(8) });
    const r2 = trace(f, p, { samples: 5, key: random.key(8) });
    expect(r1.estimate).toBe(r2.estimate);
    expect(r1.stderr).toBe(r2.stderr);
    expect(Number.isNaN(trace(f, p, { samples: 1, key: random.key(8) }).stderr)).toBe(true);
  });

  it("raises ConfigError for samples < 1", () => {
    const f = quadratic([[1]]);
    const p = { w: np.zeros([1], "float64") };
    expect(() => trace(f, p, { samples: 0 })).toThrow(ConfigError);
    expect(() => trace(f, p, { samples: -3 })).toThrow(ConfigError);
  });
});
