import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import type { Tensor } from "../../src/core/tensor.js";
import { dualVector, sam, samPerturbation, samWithDiagnostics } from "../../src/optim/sam/index.js";
import { grad } from "../../src/transforms/index.js";

// Oracles work on plain float64 number arrays; tensors under test are float64 unless stated.
const f64 = (xs: number[]) => np.array(xs, "float64");
const vals = (t: Tensor) => Array.from(t.data() as Float64Array | Float32Array);
const norm = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0));
const close = (got: number[], want: number[], rtol: number, atol = 0) => {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(atol + rtol * Math.abs(want[i]!)));
};
const EPS64 = 2 ** -52;
const val = fc.double({ min: -3, max: 3, noNaN: true, noDefaultInfinity: true });
const vec = (n: number) => fc.array(val, { minLength: n, maxLength: n });
/** The guarded norm: eps = 1e-12 is added to ‖g / max|g|‖, i.e. eps·max|g| to ‖g‖. */
const gnorm = (xs: number[]) => norm(xs) + 1e-12 * Math.max(...xs.map(Math.abs));
const nonzero = (xs: number[]) => norm(xs) > 1e-3;
const matvec = (A: number[][], x: number[]) => A.map((row) => row.reduce((a, v, j) => a + v * x[j]!, 0));

/** A symmetric d×d matrix from the entries of M: (M + Mᵀ)/2. */
const sym = (d: number, m: number[]) => Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (m[i * d + j]! + m[j * d + i]!) / 2));
const arbQuad = fc.integer({ min: 1, max: 4 }).chain((d) =>
  fc.record({ d: fc.constant(d), m: vec(d * d), w: vec(d), b: vec(d), rho: fc.double({ min: 0.01, max: 2, noNaN: true }) }),
);
const quadLoss = (A: number[][], b: number[]) => (w: Tensor) =>
  np.add(np.multiply(0.5, np.sum(np.multiply(w, np.matmul(np.array(A, "float64"), w)))), np.sum(np.multiply(f64(b), w)));

describe("dualVector", () => {
  it("p = 2: unit norm, parallel to g, over a whole tree (T1, T2)", () => {
    fc.assert(
      fc.property(vec(3), vec(2), (a, b) => {
        fc.pre(nonzero([...a, ...b]));
        for (const eps of [undefined, 0, 1e-12]) {
          const d = dualVector({ a: f64(a), b: [f64(b)] }, eps === undefined ? {} : { eps });
          const got = [...vals(d.a), ...vals(d.b[0]!)];
          const n = norm([...a, ...b]);
          close(got, [...a, ...b].map((x) => x / n), 8 * EPS64, 1e-12);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("general p: ‖d‖_p = 1 and <g, d> = ‖g‖_q (the dual norm), p = ∞ is sign(g)", () => {
    fc.assert(
      fc.property(vec(4), fc.constantFrom(1.5, 3, 4), (g, p) => {
        fc.pre(nonzero(g));
        const q = p / (p - 1);
        const d = vals(dualVector(f64(g), { p, eps: 0 }));
        const pn = d.reduce((a, x) => a + Math.abs(x) ** p, 0) ** (1 / p);
        const qn = g.reduce((a, x) => a + Math.abs(x) ** q, 0) ** (1 / q);
        expect(Math.abs(pn - 1)).toBeLessThan(1e-12);
        expect(Math.abs(d.reduce((a, x, i) => a + x * g[i]!, 0) - qn)).toBeLessThan(1e-12 * (1 + qn));
        expect(vals(dualVector(f64(g), { p: Infinity })).map((x) => x + 0)).toEqual(g.map((x) => Math.sign(x) + 0));
      }),
      { numRuns: 60 },
    );
  });

  it("zero gradient: the guarded form gives zeros, the official form NaN", () => {
    expect(vals(dualVector(f64([0, 0]), { eps: 1e-12 }))).toEqual([0, 0]);
    expect(vals(dualVector(f64([0, 0]), { eps: 0 }))).toEqual([0, 0]);
    expect(vals(dualVector(f64([0, 0]), { p: 3, eps: 0 }))).toEqual([0, 0]);
    expect(vals(dualVector(f64([0, 0]))).every(Number.isNaN)).toBe(true);
  });

  it("tiny float32 gradients (Σg² underflows) still give a unit vector in guarded mode (T7)", () => {
    const d = vals(dualVector(np.array([3e-30, 4e-30], "float32"), { eps: 1e-12 }));
    close(d, [0.6, 0.8], 4 * 2 ** -23);
  });

  it("rejects p <= 1 and bad eps", () => {
    expect(() => dualVector(f64([1]), { p: 1 })).toThrow(ConfigError);
    expect(() => dualVector(f64([1]), { eps: -1 })).toThrow(/eps/);
  });
});

describe("sam", () => {
  it("quadratic closed form: S = A(w + ρ g/‖g‖) + b, both modes (T4)", () => {
    fc.assert(
      fc.property(arbQuad, ({ d, m, w, b, rho }) => {
        const A = sym(d, m);
        const g = matvec(A, w).map((x, i) => x + b[i]!);
        fc.pre(norm(g) > 1e-3);
        const scale = norm(m) * (norm(w) + rho) + norm(b) + 1;
        for (const mode of ["mirror", "beyond"] as const) {
          // Beyond mode adds eps = 1e-12 to the scaled norm.
          const n = mode === "beyond" ? gnorm(g) : norm(g);
          const want = matvec(A, w.map((x, i) => x + (rho * g[i]!) / n)).map((x, i) => x + b[i]!);
          close(vals(sam(quadLoss(A, b), { rho, mode })(f64(w)) as Tensor), want, 0, 64 * d * EPS64 * scale);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("linear loss: the SAM gradient is the plain gradient (T5)", () => {
    fc.assert(
      fc.property(vec(3), vec(3), (c, w) => {
        fc.pre(nonzero(c));
        const loss = (x: Tensor) => np.sum(np.multiply(f64(c), x));
        expect(vals(sam(loss, { rho: 0.3 })(f64(w)) as Tensor)).toEqual(c);
      }),
      { numRuns: 40 },
    );
  });

  it("perturbation radius ‖ε‖ = ρ and direction ε ∥ g (T1, T2)", () => {
    fc.assert(
      fc.property(vec(4), fc.double({ min: 1e-6, max: 5, noNaN: true }), (g, rho) => {
        fc.pre(nonzero(g));
        const e = vals(samPerturbation(f64(g), f64([0, 0, 0, 0]), { rho }));
        expect(Math.abs(norm(e) - (rho * norm(g)) / gnorm(g))).toBeLessThanOrEqual(8 * EPS64 * rho);
        close(e, g.map((x) => (rho * x) / gnorm(g)), 8 * EPS64, 1e-15);
      }),
      { numRuns: 60 },
    );
  });

  it("rho = 0 in mirror mode is the plain gradient bit for bit, zero gradient included (T6)", () => {
    const loss = (w: Tensor, x: Tensor) => np.sum(np.sin(np.multiply(w, x)));
    fc.assert(
      fc.property(vec(3), vec(3), (w, x) => {
        const plain = vals(grad(loss)(f64(w), f64(x)) as Tensor);
        const got = vals(sam(loss, { rho: 0, mode: "mirror" })(f64(w), f64(x)) as Tensor);
        got.forEach((v, i) => expect(Object.is(v, plain[i])).toBe(true));
      }),
      { numRuns: 40 },
    );
    const flat = (w: Tensor) => np.sum(np.multiply(0, w));
    expect(vals(sam(flat, { rho: 0, mode: "mirror" })(f64([1, 2])) as Tensor)).toEqual([0, 0]);
  });

  it("zero gradient: beyond mode returns zeros; mirror mode returns NaN like the official code (T7)", () => {
    const loss = (w: Tensor) => np.sum(np.square(w));
    expect(vals(sam(loss, { rho: 0.1 })(f64([0, 0])) as Tensor)).toEqual([0, 0]);
    expect(vals(sam(loss, { rho: 0.1, mode: "mirror" })(f64([0, 0])) as Tensor).every(Number.isNaN)).toBe(true);
  });

  it("loss-scale invariance: ε(s·L) = ε(L) and S(s·L) = s·S(L) for powers of two (T8)", () => {
    const loss = (w: Tensor) => np.sum(np.exp(np.multiply(0.5, w)));
    fc.assert(
      fc.property(vec(3), fc.constantFrom(0.25, 0.5, 2, 4, 1024), (w, s) => {
        const g = grad(loss)(f64(w)) as Tensor;
        const e1 = vals(samPerturbation(g, f64(w), { rho: 0.1 }));
        const e2 = vals(samPerturbation(np.multiply(g, s), f64(w), { rho: 0.1 }));
        expect(e2).toEqual(e1);
        const S1 = vals(sam(loss, { rho: 0.1 })(f64(w)) as Tensor);
        const S2 = vals(sam((x: Tensor) => np.multiply(s, loss(x)), { rho: 0.1 })(f64(w)) as Tensor);
        close(S2, S1.map((x) => s * x), 4 * EPS64);
      }),
      { numRuns: 40 },
    );
  });

  it("rotation equivariance for SAM, and its failure for ASAM (T9)", () => {
    // Q: a rotation of the plane by θ; L_Q(w) = L(Qᵀw) with a non-quadratic L.
    const L = (w: Tensor) => np.sum(np.exp(np.multiply(f64([0.7, -0.3]), w)));
    fc.assert(
      fc.property(vec(2), fc.double({ min: 0.1, max: 3, noNaN: true }), (w, th) => {
        const Q = [[Math.cos(th), -Math.sin(th)], [Math.sin(th), Math.cos(th)]];
        const QT = [[Q[0]![0]!, Q[1]![0]!], [Q[0]![1]!, Q[1]![1]!]];
        const LQ = (x: Tensor) => L(np.matmul(np.array(QT, "float64"), x));
        const S = vals(sam(L, { rho: 0.2 })(f64(w)) as Tensor);
        const SQ = vals(sam(LQ, { rho: 0.2 })(f64(matvec(Q, w))) as Tensor);
        close(SQ, matvec(Q, S), 1e-10, 1e-10 * (1 + norm(S)));
      }),
      { numRuns: 40 },
    );
    const w = [1, 2];
    const th = 0.9;
    const Q = [[Math.cos(th), -Math.sin(th)], [Math.sin(th), Math.cos(th)]];
    const QT = [[Q[0]![0]!, Q[1]![0]!], [Q[0]![1]!, Q[1]![1]!]];
    const LQ = (x: Tensor) => L(np.matmul(np.array(QT, "float64"), x));
    const A = vals(sam(L, { rho: 0.2, adaptive: "elementwise" })(f64(w)) as Tensor);
    const AQ = vals(sam(LQ, { rho: 0.2, adaptive: "elementwise" })(f64(matvec(Q, w))) as Tensor);
    expect(norm(AQ.map((x, i) => x - matvec(Q, A)[i]!))).toBeGreaterThan(1e-3);
  });

  it("ASAM: ‖T⁻¹ε‖ = ρ with T = |w| + η, exempt leaves get T = 1 (T11, T13)", () => {
    fc.assert(
      fc.property(vec(3), vec(2), vec(3), vec(2), (w, bias, g, gb) => {
        fc.pre(nonzero([...g, ...gb]));
        const eta = 0.01;
        const params = { w: f64(w), bias: f64(bias) };
        const e = samPerturbation({ w: f64(g), bias: f64(gb) }, params, {
          rho: 0.5,
          adaptive: { eta, exempt: (path) => String(path[0] && (path[0] as { key?: string }).key) === "bias" },
        }) as { w: Tensor; bias: Tensor };
        const tInvE = [...vals(e.w).map((x, i) => x / (Math.abs(w[i]!) + eta)), ...vals(e.bias)];
        expect(Math.abs(norm(tInvE) - 0.5)).toBeLessThan(1e-12);
      }),
      { numRuns: 60 },
    );
    // All leaves exempt: ASAM is SAM.
    const loss = (w: Tensor) => np.sum(np.exp(w));
    const a = vals(sam(loss, { rho: 0.1, adaptive: { exempt: () => true } })(f64([0.3, -1])) as Tensor);
    expect(a).toEqual(vals(sam(loss, { rho: 0.1 })(f64([0.3, -1])) as Tensor));
  });

  it("m-sharpness: m = B is SAM; lanes equal a loop of per-sub-batch SAM gradients; B % m != 0 throws (T10)", () => {
    const loss = (w: Tensor, x: Tensor, y: Tensor) => np.mean(np.square(np.subtract(np.tanh(np.matmul(x, w)), y)));
    fc.assert(
      fc.property(vec(2), vec(8), vec(4), fc.constantFrom(1, 2, 4), (w, x, y, m) => {
        const X = np.reshape(f64(x), [4, 2]);
        const Y = f64(y);
        const full = vals(sam(loss, { rho: 0.1 })(f64(w), X, Y) as Tensor);
        close(vals(sam(loss, { rho: 0.1, m: 4 })(f64(w), X, Y) as Tensor), full, 1e-12, 1e-14);
        const k = 4 / m;
        const acc = [0, 0];
        for (let j = 0; j < k; j++) {
          const xs = np.reshape(f64(x.slice(j * m * 2, (j + 1) * m * 2)), [m, 2]);
          const gj = vals(sam(loss, { rho: 0.1 })(f64(w), xs, f64(y.slice(j * m, (j + 1) * m))) as Tensor);
          gj.forEach((v, i) => (acc[i]! += v / k));
        }
        close(vals(sam(loss, { rho: 0.1, m })(f64(w), X, Y) as Tensor), acc, 1e-10, 1e-12);
      }),
      { numRuns: 30 },
    );
    expect(() => sam(loss, { rho: 0.1, m: 3 })(f64([1, 1]), np.zeros([4, 2], "float64"), np.zeros([4], "float64"))).toThrow(/divisible/);
  });

  it("the stop-gradient form differs from differentiating through ε on a non-quadratic loss (T14)", () => {
    const L = (w: Tensor) => np.sum(np.exp(np.multiply(f64([0.7, -0.3, 0.2]), w)));
    const w = f64([0.5, -1, 2]);
    const first = vals(sam(L, { rho: 0.2, mode: "mirror" })(w) as Tensor);
    const second = vals(grad((x: Tensor) => L(np.add(x, np.multiply(0.2, dualVector(grad(L)(x) as Tensor)))))(w) as Tensor);
    expect(norm(first.map((x, i) => x - second[i]!))).toBeGreaterThan(1e-6);
  });

  it("diagnostics on a quadratic: norms, cosine and L(w+ε) − L(w)", () => {
    fc.assert(
      fc.property(arbQuad, ({ d, m, w, b, rho }) => {
        const A = sym(d, m);
        const g = matvec(A, w).map((x, i) => x + b[i]!);
        fc.pre(norm(g) > 1e-3);
        const n = norm(g);
        const e = g.map((x) => (rho * x) / gnorm(g));
        const Lq = (v: number[]) => 0.5 * v.reduce((a, x, i) => a + x * matvec(A, v)[i]!, 0) + v.reduce((a, x, i) => a + x * b[i]!, 0);
        const S = matvec(A, w.map((x, i) => x + e[i]!)).map((x, i) => x + b[i]!);
        const out = samWithDiagnostics(quadLoss(A, b), { rho })(f64(w));
        const scale = (norm(m) + 1) * (norm(w) + rho + 1) ** 2 + norm(b);
        expect(Math.abs(out.gradNorm.item() - n)).toBeLessThan(64 * d * EPS64 * scale);
        expect(Math.abs(out.samGradNorm.item() - norm(S))).toBeLessThan(64 * d * EPS64 * scale);
        expect(Math.abs(out.lossIncrease.item() - (Lq(w.map((x, i) => x + e[i]!)) - Lq(w)))).toBeLessThan(64 * d * EPS64 * scale * scale);
        if (norm(S) > 1e-3) {
          const cos = g.reduce((a, x, i) => a + x * S[i]!, 0) / (n * norm(S));
          expect(Math.abs(out.cosine.item() - cos)).toBeLessThan(1e-9 * scale);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("hasAux returns the clean pass's aux", () => {
    const loss = (w: Tensor) => [np.sum(np.square(w)), { v: np.sum(w) }];
    const [g, aux] = sam(loss, { rho: 0.1, hasAux: true })(f64([1, 2])) as [Tensor, { v: Tensor }];
    expect(aux.v.item()).toBe(3);
    expect(g.shape).toEqual([2]);
  });

  it("validates options with ConfigError naming the parameter", () => {
    const loss = (w: Tensor) => np.sum(w);
    expect(() => sam(loss, { rho: -1 })).toThrow(/rho/);
    expect(() => sam(loss, { rho: Infinity })).toThrow(ConfigError);
    expect(() => sam(loss, { rho: NaN })).toThrow(/rho/);
    expect(() => sam(loss, { rho: 0.1, eps: -1 })).toThrow(/eps/);
    expect(() => sam(loss, { rho: 0.1, p: 0.5 })).toThrow(/p must/);
    expect(() => sam(loss, { rho: 0.1, m: 0 })).toThrow(/\bm\b/);
    expect(() => sam(loss, { rho: 0.1, mode: "mirror", adaptive: "elementwise" })).toThrow(/adaptive/);
    expect(() => sam(loss, { rho: 0.1, adaptive: { eta: -1 } })).toThrow(/eta/);
    expect(() => sam(loss, { rho: 0.1, mode: "x" as "mirror" })).toThrow(/mode/);
  });
});
