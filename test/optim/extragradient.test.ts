import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import type { Tensor } from "../../src/core/tensor.js";
import { applyUpdates, chain, sgd } from "../../src/optim/index.js";
import {
  extragradient,
  extragradientGame,
  gradientDescentAscent,
  optimisticGradient,
} from "../../src/optim/extragradient.js";
import { underPath } from "../../src/optim/select.js";
import { grad, jvp } from "../../src/transforms/index.js";

// Oracles are plain float64 JS arrays; tensors under test are float64.
const f64 = (xs: number[]) => np.array(xs, "float64");
const vals = (t: Tensor) => Array.from(t.data() as Float64Array);
const norm = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0));
const EPS = Number.EPSILON;
const matvec = (A: number[][], x: number[]) => A.map((row) => row.reduce((a, v, j) => a + v * x[j]!, 0));
const transpose = (A: number[][]) => A[0]!.map((_, j) => A.map((row) => row[j]!));
const matmul = (A: number[][], B: number[][]) =>
  A.map((row) => B[0]!.map((_, j) => row.reduce((a, v, k) => a + v * B[k]![j]!, 0)));

/** A seeded uniform generator (mulberry32), so random matrices are replayable from one integer. */
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

/** A random orthogonal d×d matrix (rows) by Gram–Schmidt, twice, on seeded Gaussian vectors. */
function orthogonal(d: number, seed: number): number[][] {
  const rng = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-300))) * Math.cos(2 * Math.PI * rng());
  const q: number[][] = [];
  while (q.length < d) {
    const v = Array.from({ length: d }, gauss);
    for (let pass = 0; pass < 2; pass++)
      for (const u of q) {
        const c = u.reduce((s, ui, k) => s + ui * v[k]!, 0);
        for (let k = 0; k < d; k++) v[k]! -= c * u[k]!;
      }
    const n = norm(v);
    if (n > 1e-6) q.push(v.map((x) => x / n));
  }
  return q;
}

const val = fc.double({ min: -1, max: 1, noNaN: true, noDefaultInfinity: true });
const vec = (n: number) => fc.array(val, { minLength: n, maxLength: n });

/** A = U diag(s) Vᵀ with singular values s in [0.5, 2]: invertible, ‖A‖ = max s. */
const arbGame = fc.integer({ min: 1, max: 3 }).chain((d) =>
  fc.record({
    d: fc.constant(d),
    u: fc.integer(),
    v: fc.integer(),
    s: fc.array(fc.double({ min: 0.5, max: 2, noNaN: true }), { minLength: d, maxLength: d }),
    x0: vec(d),
    y0: vec(d),
    c: fc.double({ min: 0.1, max: 0.7, noNaN: true }),
  }),
);

function gameMatrix(g: { d: number; u: number; v: number; s: number[] }): number[][] {
  const U = orthogonal(g.d, g.u);
  const V = orthogonal(g.d, g.v);
  const US = U.map((row) => row.map((x, j) => x * g.s[j]!));
  return matmul(US, transpose(V));
}

const bilinear = (A: number[][]) => (x: Tensor, y: Tensor) =>
  np.sum(np.multiply(x, np.matmul(np.array(A, "float64"), y)));

describe("games: min_x max_y xᵀAy", () => {
  it("simultaneous descent-ascent spirals out: ‖z‖² grows by exactly η²(‖Ay‖² + ‖Aᵀx‖²) a step", () => {
    fc.assert(
      fc.property(arbGame, (g) => {
        const A = gameMatrix(g);
        fc.pre(norm([...g.x0, ...g.y0]) > 1e-2);
        const eta = g.c / Math.max(...g.s);
        const gda = gradientDescentAscent(bilinear(A), { learningRate: eta });
        let s = gda.init(f64(g.x0), f64(g.y0));
        let [x, y] = [g.x0, g.y0];
        const n0 = norm([...x, ...y]);
        const sMin = Math.min(...g.s);
        for (let t = 0; t < 20; t++) {
          const ay = matvec(A, y);
          const atx = matvec(transpose(A), x);
          const want = norm([...x, ...y]) ** 2 + eta * eta * (norm(ay) ** 2 + norm(atx) ** 2);
          [x, y] = [x.map((xi, i) => xi - eta * ay[i]!), y.map((yi, i) => yi + eta * atx[i]!)];
          s = gda.step(s);
          const got = [...vals(s.x as Tensor), ...vals(s.y as Tensor)];
          expect(Math.abs(norm(got) ** 2 - want)).toBeLessThanOrEqual(64 * EPS * want);
        }
        // ‖Ay‖² + ‖Aᵀx‖² ≥ σmin² ‖z‖², so the growth is at least geometric.
        const nT = norm([...vals(s.x as Tensor), ...vals(s.y as Tensor)]);
        expect(nT).toBeGreaterThanOrEqual(n0 * (1 + eta * eta * sMin * sMin) ** 10 * (1 - 1e-12));
      }),
      { numRuns: 12 },
    );
  });

  it("extragradient converges to the saddle for η < 1/‖A‖, at the rate its spectrum gives", () => {
    fc.assert(
      fc.property(arbGame, (g) => {
        const A = gameMatrix(g);
        fc.pre(norm([...g.x0, ...g.y0]) > 1e-2);
        const eta = g.c / Math.max(...g.s);
        const eg = extragradientGame(bilinear(A), { learningRate: eta });
        let s = eg.init(f64(g.x0), f64(g.y0));
        const T = 30;
        for (let t = 0; t < T; t++) s = eg.step(s);
        // The iteration matrix I − ηJ + η²J² is normal with |μ|² = 1 − (ησ)² + (ησ)⁴ per singular value σ.
        const rho = Math.max(...g.s.map((sv) => Math.sqrt(1 - (eta * sv) ** 2 + (eta * sv) ** 4)));
        const n0 = norm([...g.x0, ...g.y0]);
        const nT = norm([...vals(s.x as Tensor), ...vals(s.y as Tensor)]);
        expect(rho).toBeLessThan(1);
        expect(nT).toBeLessThanOrEqual(rho ** T * n0 * (1 + 1e-10) + 1e-14);
      }),
      { numRuns: 12 },
    );
  });

  it("extragradient and optimistic steps follow their recurrences (float64 oracle)", () => {
    fc.assert(
      fc.property(arbGame, (g) => {
        const A = gameMatrix(g);
        const eta = g.c / Math.max(...g.s);
        const At = transpose(A);
        const field = (x: number[], y: number[]): [number[], number[]] => [
          matvec(A, y),
          matvec(At, x).map((v) => -v),
        ];
        const axpy = (a: number[], c: number, b: number[]) => a.map((ai, i) => ai + c * b[i]!);
        // Extragradient.
        let [x, y] = [g.x0, g.y0];
        let s = extragradientGame(bilinear(A), { learningRate: eta }).init(f64(x), f64(y));
        const eg = extragradientGame(bilinear(A), { learningRate: eta });
        // Optimistic.
        let [ox, oy] = [g.x0, g.y0];
        let prev: [number[], number[]] | null = null;
        const og = extragradientGame(bilinear(A), { learningRate: eta, optimistic: true });
        let os = og.init(f64(ox), f64(oy));
        for (let t = 0; t < 8; t++) {
          const [vx, vy] = field(x, y);
          const [bx, by] = field(axpy(x, -eta, vx), axpy(y, -eta, vy));
          [x, y] = [axpy(x, -eta, bx), axpy(y, -eta, by)];
          s = eg.step(s);
          const [wx, wy] = field(ox, oy);
          const [px, py] = prev ?? [wx, wy];
          [ox, oy] = [
            axpy(
              ox,
              -eta,
              axpy(
                wx.map((v) => 2 * v),
                -1,
                px,
              ),
            ),
            axpy(
              oy,
              -eta,
              axpy(
                wy.map((v) => 2 * v),
                -1,
                py,
              ),
            ),
          ];
          prev = [wx, wy];
          os = og.step(os);
        }
        const tol = 1e-12 * (1 + norm([...g.x0, ...g.y0]));
        [
          [vals(s.x as Tensor), x],
          [vals(s.y as Tensor), y],
          [vals(os.x as Tensor), ox],
          [vals(os.y as Tensor), oy],
        ].forEach(([got, want]) =>
          got!.forEach((v, i) => expect(Math.abs(v - want![i]!)).toBeLessThanOrEqual(tol)),
        );
      }),
      { numRuns: 20 },
    );
  });

  it("optimistic descent-ascent also converges on the bilinear game (η = 0.4/‖A‖, singular values in [1, 2])", () => {
    fc.assert(
      fc.property(arbGame, (g) => {
        // Singular values mapped into [1, 2] so the O(η²σmin²) contraction needs few steps.
        const sv = g.s.map((v) => 1 + (v - 0.5) / 1.5);
        const A = gameMatrix({ ...g, s: sv });
        fc.pre(norm([...g.x0, ...g.y0]) > 1e-2);
        const eta = 0.4 / Math.max(...sv);
        // Spectral radius of the two-step recurrence μ² − (1 − 2ηλ)μ − ηλ = 0 with λ = ±iσ.
        const radius = (sigma: number) => {
          const [ar, ai] = [1, -2 * eta * sigma]; // 1 − 2ηλ with λ = iσ
          const [cr, ci] = [0, -eta * sigma]; // −ηλ
          // μ = (b ± sqrt(b² + 4c)) / 2 with b = 1 − 2ηλ, c = ηλ (so −c is the constant term).
          const dr = ar * ar - ai * ai - 4 * cr;
          const di = 2 * ar * ai - 4 * ci;
          const m = Math.hypot(dr, di);
          const [sr, si] = [Math.sqrt((m + dr) / 2), Math.sign(di) * Math.sqrt((m - dr) / 2)];
          return Math.max(Math.hypot(ar + sr, ai + si), Math.hypot(ar - sr, ai - si)) / 2;
        };
        const rho = Math.max(...sv.map(radius));
        expect(rho).toBeLessThan(1);
        const T = Math.ceil(Math.log(1e-3) / Math.log(rho));
        const og = extragradientGame(bilinear(A), { learningRate: eta, optimistic: true });
        let s = og.init(f64(g.x0), f64(g.y0));
        for (let t = 0; t < T; t++) s = og.step(s);
        // ρ^T = 1e-3; the two-step recurrence's transient is a small constant, so 1e-2 holds.
        expect(norm([...vals(s.x as Tensor), ...vals(s.y as Tensor)])).toBeLessThan(
          1e-2 * norm([...g.x0, ...g.y0]),
        );
      }),
      { numRuns: 10 },
    );
  });

  it("directions feed a base optimizer: sgd(η) on them reproduces step()", () => {
    const A = [
      [1, 0.5],
      [-0.3, 0.8],
    ];
    const eg = extragradientGame(bilinear(A), { learningRate: 0.3 });
    const s0 = eg.init(f64([1, -1]), f64([0.5, 2]));
    const { dx, dy } = eg.directions(s0);
    const opt = sgd(0.3);
    const [ux] = opt.update(dx, opt.init(s0.x));
    const [uy] = opt.update(dy, opt.init(s0.y));
    const s1 = eg.step(s0);
    expect(vals(applyUpdates(s0.x, ux) as Tensor)).toEqual(vals(s1.x as Tensor));
    expect(vals(applyUpdates(s0.y, uy) as Tensor)).toEqual(vals(s1.y as Tensor));
  });

  it("rejects bad options with ConfigError", () => {
    const f = bilinear([[1]]);
    expect(() => extragradientGame(f, { learningRate: 0 })).toThrow(ConfigError);
    expect(() => extragradientGame(f, { learningRate: Number.NaN })).toThrow(/learningRate/);
    expect(() => gradientDescentAscent(f, { learningRate: 0.1, learningRateY: -1 })).toThrow(/learningRateY/);
    expect(() => extragradientGame(f, { learningRate: 0.1, optimistic: 1 as never })).toThrow(/optimistic/);
    expect(() => gradientDescentAscent(3 as never, { learningRate: 0.1 })).toThrow(ConfigError);
  });
});

describe("extragradient (loss transform)", () => {
  const arbQuad = fc.integer({ min: 1, max: 4 }).chain((d) =>
    fc.record({
      d: fc.constant(d),
      q: fc.integer(),
      lam: fc.array(fc.double({ min: 0.2, max: 3, noNaN: true }), { minLength: d, maxLength: d }),
      b: vec(d),
      w0: vec(d),
      c: fc.double({ min: 0.1, max: 0.9, noNaN: true }),
    }),
  );

  it("on a strongly convex quadratic, sgd on the extragradient converges to the minimiser at rate max|1 − ηλ + η²λ²|", () => {
    fc.assert(
      fc.property(arbQuad, (g) => {
        const Q = orthogonal(g.d, g.q);
        const H = matmul(
          transpose(Q).map((row) => row.map((x, j) => x * g.lam[j]!)),
          Q,
        );
        const Ht = np.array(H, "float64");
        const loss = (w: Tensor) =>
          np.add(
            np.multiply(0.5, np.sum(np.multiply(w, np.matmul(Ht, w)))),
            np.sum(np.multiply(f64(g.b), w)),
          );
        const eta = g.c / Math.max(...g.lam);
        const eg = extragradient(loss, { learningRate: eta });
        const opt = sgd(eta);
        let w = f64(g.w0);
        let s = opt.init(w);
        const T = 25;
        for (let t = 0; t < T; t++) {
          const [u, s1] = opt.update(eg(w), s);
          w = applyUpdates(w, u) as Tensor;
          s = s1;
        }
        // w* = −H⁻¹b = −Qᵀ diag(1/λ) Q b.
        const qb = matvec(Q, g.b).map((v, i) => -v / g.lam[i]!);
        const wStar = matvec(transpose(Q), qb);
        const e0 = norm(g.w0.map((v, i) => v - wStar[i]!));
        const eT = norm(vals(w).map((v, i) => v - wStar[i]!));
        const rho = Math.max(...g.lam.map((l) => Math.abs(1 - eta * l + (eta * l) ** 2)));
        expect(eT).toBeLessThanOrEqual(rho ** T * e0 * (1 + 1e-9) + 1e-12 * (1 + norm(wStar)));
      }),
      { numRuns: 15 },
    );
  });

  it("on a linear loss the look-ahead gradient equals the plain gradient", () => {
    fc.assert(
      fc.property(vec(4), vec(4), fc.double({ min: 0, max: 10, noNaN: true }), (c, w, lr) => {
        const loss = (p: { a: Tensor }) => np.sum(np.multiply(f64(c), p.a));
        const got = extragradient(loss, { learningRate: lr })({ a: f64(w) }) as { a: Tensor };
        expect(vals(got.a)).toEqual(vals((grad(loss)({ a: f64(w) }) as { a: Tensor }).a));
      }),
      { numRuns: 40 },
    );
  });

  it("is ∇L at the constant look-ahead w − η∇L(w) (not the derivative of w ↦ L(w − η∇L(w)))", () => {
    fc.assert(
      fc.property(vec(3), vec(3), fc.double({ min: 0.01, max: 1, noNaN: true }), (c, w, lr) => {
        const loss = (p: Tensor) => np.sum(np.multiply(f64(c), np.sin(np.multiply(p, 2))));
        const got = vals(extragradient(loss, { learningRate: lr })(f64(w)) as Tensor);
        // ∇L = 2c cos(2w), at w̄ = w − η 2c cos(2w).
        const wBar = w.map((wi, i) => wi - lr * 2 * c[i]! * Math.cos(2 * wi));
        const want = wBar.map((wi, i) => 2 * c[i]! * Math.cos(2 * wi));
        got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-14));
      }),
      { numRuns: 40 },
    );
  });

  it("holds the look-ahead constant under an outer transform: its JVP is H(w̄)v, not H(w̄)(I − ηH(w))v", () => {
    fc.assert(
      fc.property(vec(3), vec(3), vec(3), fc.double({ min: 0.01, max: 1, noNaN: true }), (c, w, v, lr) => {
        const loss = (p: Tensor) => np.sum(np.multiply(f64(c), np.sin(np.multiply(p, 2))));
        const [, tangent] = jvp(extragradient(loss, { learningRate: lr }), [f64(w)], [f64(v)]) as [
          Tensor,
          Tensor,
        ];
        // H(w) = diag(−4c sin(2w)); with w̄ constant in w − w̄, d/dw ∇L(w̄) · v = H(w̄) v.
        const wBar = w.map((wi, i) => wi - lr * 2 * c[i]! * Math.cos(2 * wi));
        const want = wBar.map((wi, i) => -4 * c[i]! * Math.sin(2 * wi) * v[i]!);
        vals(tangent).forEach((t, i) =>
          expect(Math.abs(t - want[i]!)).toBeLessThanOrEqual(32 * EPS * (1 + Math.abs(want[i]!))),
        );
      }),
      { numRuns: 30 },
    );
  });

  it("passes argnums and hasAux through (aux from the clean pass), and where limits the look-ahead", () => {
    const lossAux = (x: Tensor, p: { a: Tensor; b: Tensor }) => {
      const v = np.add(np.sum(np.square(np.multiply(p.a, x))), np.sum(np.power(p.b, 3)));
      return [v, { at: p.a }];
    };
    const p = { a: f64([1, 2]), b: f64([0.5]) };
    const x = f64([3, -1]);
    const [g, aux] = extragradient(lossAux, { learningRate: 0.1, argnums: 1, hasAux: true })(x, p) as [
      typeof p,
      { at: Tensor },
    ];
    expect(vals(aux.at)).toEqual([1, 2]); // the clean pass's aux: the look-ahead's a would differ
    // ∇_a = 2 a x², ∇_b = 3b²; look-ahead a − 0.1·2ax², b − 0.1·3b².
    const aBar = [1, 2].map((a, i) => a - 0.1 * 2 * a * [9, 1][i]!);
    const bBar = 0.5 - 0.1 * 3 * 0.25;
    vals(g.a).forEach((v, i) => expect(Math.abs(v - 2 * aBar[i]! * [9, 1][i]!)).toBeLessThan(1e-13));
    expect(Math.abs(vals(g.b)[0]! - 3 * bBar * bBar)).toBeLessThan(1e-15);
    // Only `a` looks ahead: ∇_b stays at b.
    const [gw] = extragradient(lossAux, {
      learningRate: 0.1,
      argnums: 1,
      hasAux: true,
      where: underPath("a"),
    })(x, p) as [typeof p];
    expect(vals(gw.b)).toEqual([0.75]);
    expect(vals(gw.a)).toEqual(vals(g.a));
  });

  it("rejects bad options with ConfigError", () => {
    const loss = (w: Tensor) => np.sum(w);
    expect(() => extragradient(loss, { learningRate: -1 })).toThrow(ConfigError);
    expect(() => extragradient(loss, { learningRate: Number.POSITIVE_INFINITY })).toThrow(/learningRate/);
    expect(() => extragradient(loss, { learningRate: 0.1, argnums: 1.5 })).toThrow(/argnums/);
    expect(() => extragradient(loss, { learningRate: 0.1, argnums: 2 })(f64([1]))).toThrow(/out of range/);
    expect(() => extragradient(loss, { learningRate: 0.1, where: () => false })(f64([1]))).toThrow(
      /no parameter/,
    );
    expect(() => extragradient(loss, undefined as never)).toThrow(ConfigError);
  });
});

describe("optimisticGradient", () => {
  it("passes g₀, then g_t + β(g_t − g_{t−1}); chained with sgd it is the optimistic method", () => {
    fc.assert(
      fc.property(
        fc.array(vec(2), { minLength: 1, maxLength: 5 }),
        fc.double({ min: 0, max: 2, noNaN: true }),
        (gs, beta) => {
          const t = optimisticGradient({ beta });
          let s = t.init({ w: f64([0, 0]) });
          gs.forEach((g, k) => {
            const [u, s1] = t.update({ w: f64(g) }, s);
            s = s1;
            const prev = k === 0 ? g : gs[k - 1]!;
            vals((u as { w: Tensor }).w).forEach((v, i) =>
              expect(Math.abs(v - (g[i]! + beta * (g[i]! - prev[i]!)))).toBeLessThanOrEqual(8 * EPS),
            );
          });
        },
      ),
      { numRuns: 30 },
    );
    const opt = chain(optimisticGradient(), sgd(0.5));
    const [u] = opt.update(f64([2]), opt.init(f64([0])));
    expect(vals(u as Tensor)).toEqual([-1]);
    expect(() => optimisticGradient({ beta: -1 })).toThrow(ConfigError);
  });
});
