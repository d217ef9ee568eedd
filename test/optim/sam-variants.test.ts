import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import type { Tensor } from "../../src/core/tensor.js";
import { sam } from "../../src/optim/sam/gradient.js";
import { gsam, gsamRhoSchedule, lookSam, samOn, usam } from "../../src/optim/sam/variants.js";
import { constantSchedule, cosineDecaySchedule, linearSchedule } from "../../src/optim/schedules.js";
import { grad } from "../../src/transforms/index.js";

// Oracles on plain float64 number arrays; all tensors are float64.
const f64 = (xs: number[]) => np.array(xs, "float64");
const vals = (t: Tensor) => Array.from(t.data() as Float64Array);
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (xs: number[]) => Math.sqrt(dot(xs, xs));
const add = (a: number[], b: number[]) => a.map((x, i) => x + b[i]!);
const scale = (s: number, a: number[]) => a.map((x) => s * x);
const matvec = (A: number[][], x: number[]) => A.map((row) => dot(row, x));
// Quantities are O(10²) after two products with |H| <= 3, d <= 4; a few roundings per sum of length d.
const TOL = 1e3 * 2 ** -52;
const close = (got: number[], want: number[], rtol = TOL) => {
  expect(got.length).toBe(want.length);
  const s = Math.max(1, norm(want));
  got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(rtol * s));
};

// Magnitudes under 1e-150 become 0: products of subnormals carry too few significant bits for the
// normalised directions SAM and GSAM compute to be compared against an oracle's rounding order.
const val = fc
  .double({ min: -3, max: 3, noNaN: true, noDefaultInfinity: true })
  .map((v) => (Math.abs(v) < 1e-150 ? 0 : v));
const vec = (n: number) => fc.array(val, { minLength: n, maxLength: n });
const sym = (d: number, m: number[]) =>
  Array.from({ length: d }, (_, i) =>
    Array.from({ length: d }, (_, j) => (m[i * d + j]! + m[j * d + i]!) / 2),
  );
const rhoArb = fc.double({ min: 0.01, max: 2, noNaN: true });
const arbQuad = fc
  .integer({ min: 1, max: 4 })
  .chain((d) => fc.record({ d: fc.constant(d), m: vec(d * d), w: vec(d), rho: rhoArb }));
/** ½ wᵀHw on one vector leaf. */
const quad = (H: number[][]) => (w: Tensor) =>
  np.multiply(0.5, np.sum(np.multiply(w, np.matmul(np.array(H, "float64"), w))));
/** ½ wᵀHw with w = concat(a, b) for a two-leaf tree { a, b }. */
const quadTree = (H: number[][]) => (p: { a: Tensor; b: Tensor }) => quad(H)(np.concatenate([p.a, p.b]));
/** The guarded SAM ε (as sam's beyond mode) on a flat vector. */
const samEps = (g: number[], rho: number) =>
  scale(rho / (norm(g) + 1e-12 * Math.max(0, ...g.map(Math.abs))), g);
const wellPosed = (g: number[]) => norm(g) > 1e-3;

describe("usam", () => {
  it("on ½wᵀHw the gradient is H(w + ρHw)", () => {
    fc.assert(
      fc.property(arbQuad, ({ d, m, w, rho }) => {
        const H = sym(d, m);
        const got = vals(usam(quad(H), { rho })(f64(w)) as Tensor);
        close(got, matvec(H, add(w, scale(rho, matvec(H, w)))));
      }),
      { numRuns: 50 },
    );
  });
  it("rejects a bad rho", () => {
    expect(() => usam(quad([[1]]), { rho: -1 })).toThrow(ConfigError);
  });
});

const arbTree = fc
  .record({ da: fc.integer({ min: 1, max: 3 }), db: fc.integer({ min: 1, max: 3 }) })
  .chain(({ da, db }) =>
    fc.record({ da: fc.constant(da), m: vec((da + db) ** 2), a: vec(da), b: vec(db), rho: rhoArb }),
  );

describe("samOn", () => {
  it("predicate true everywhere is SAM, false everywhere is the plain gradient", () => {
    fc.assert(
      fc.property(arbTree, ({ m, a, b, rho }) => {
        const H = sym(a.length + b.length, m);
        const loss = quadTree(H);
        const p = { a: f64(a), b: f64(b) };
        fc.pre(wellPosed(matvec(H, [...a, ...b])));
        const all = samOn(loss, { rho, perturbOnly: () => true })(p) as { a: Tensor; b: Tensor };
        const ref = sam(loss, { rho })(p) as { a: Tensor; b: Tensor };
        close([...vals(all.a), ...vals(all.b)], [...vals(ref.a), ...vals(ref.b)]);
        const none = samOn(loss, { rho, perturbOnly: () => false })(p) as { a: Tensor; b: Tensor };
        const g = grad(loss)(p) as { a: Tensor; b: Tensor };
        close([...vals(none.a), ...vals(none.b)], [...vals(g.a), ...vals(g.b)]);
      }),
      { numRuns: 40 },
    );
  });
  it("partial: only the selected leaf moves, by ρ g_a/‖g_a‖ with the norm over that leaf", () => {
    fc.assert(
      fc.property(arbTree, ({ da, m, a, b, rho }) => {
        const H = sym(a.length + b.length, m);
        const w = [...a, ...b];
        const g = matvec(H, w);
        fc.pre(wellPosed(g.slice(0, da)));
        const paths: string[] = [];
        const out = samOn(quadTree(H), {
          rho,
          perturbOnly: (path) => {
            paths.push(path);
            return path === "a";
          },
        })({ a: f64(a), b: f64(b) }) as { a: Tensor; b: Tensor };
        expect(paths.sort()).toEqual(["a", "b"]);
        const e = [...samEps(g.slice(0, da), rho), ...b.map(() => 0)];
        close([...vals(out.a), ...vals(out.b)], matvec(H, add(w, e)));
      }),
      { numRuns: 40 },
    );
  });
});

describe("gsam", () => {
  it("alpha = 0 is SAM; the correction is orthogonal to S and matches S − α(g − ⟨g,Ŝ⟩Ŝ)", () => {
    fc.assert(
      fc.property(arbQuad, fc.double({ min: -2, max: 2, noNaN: true }), ({ d, m, w, rho }, alpha) => {
        const H = sym(d, m);
        const g = matvec(H, w);
        fc.pre(wellPosed(g));
        const loss = quad(H);
        const S = vals(sam(loss, { rho })(f64(w)) as Tensor);
        close(vals(gsam(loss, { rho, alpha: 0 })(f64(w)) as Tensor), S);
        const got = vals(gsam(loss, { rho, alpha })(f64(w)) as Tensor);
        const ss = dot(S, S);
        const gPerp = ss > 0 ? add(g, scale(-dot(g, S) / ss, S)) : g;
        close(got, add(S, scale(-alpha, gPerp)));
        const corr = add(got, scale(-1, S));
        expect(Math.abs(dot(corr, S))).toBeLessThanOrEqual(TOL * (1 + norm(corr) * norm(S)));
      }),
      { numRuns: 50 },
    );
  });
});

describe("gsam's rho schedule (T17)", () => {
  it("ρ_t = ρ_min + (ρ_max − ρ_min)(lr_t − lr_min)/(lr_max − lr_min); ρ_max when lr_max = lr_min; gsam(schedule)(step, …) uses it", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 30 }),
        (lrMax, lrMinFrac, rhoMax, t) => {
          const lrMin = lrMinFrac * lrMax;
          const rhoMin = rhoMax / 4;
          const lr = cosineDecaySchedule(lrMax, 20, lrMin / lrMax);
          const sched = gsamRhoSchedule({ learningRate: lr, lrMax, lrMin, rhoMax, rhoMin });
          const step = np.array(t, "int32");
          const lrT = lr(step).item();
          const want = rhoMin + ((rhoMax - rhoMin) * (lrT - lrMin)) / (lrMax - lrMin);
          // float32 schedule arithmetic: a few float32 roundings of values of size rhoMax.
          expect(Math.abs(sched(step).item() - want)).toBeLessThanOrEqual(
            16 * 2 ** -23 * rhoMax * (1 + lrMax / (lrMax - lrMin)),
          );
        },
      ),
      { numRuns: 60 },
    );
    const flat = gsamRhoSchedule({
      learningRate: constantSchedule(0.1),
      lrMax: 0.1,
      lrMin: 0.1,
      rhoMax: 0.3,
      rhoMin: 0.1,
    });
    expect(flat(np.array(7, "int32")).item()).toBeCloseTo(0.3, 7);
    const H = [
      [2, 0.5],
      [0.5, 1],
    ];
    const sched = gsamRhoSchedule({
      learningRate: linearSchedule(0.1, 0, 10),
      lrMax: 0.1,
      lrMin: 0,
      rhoMax: 0.2,
      rhoMin: 0.05,
    });
    const byStep = gsam(quad(H), { rho: sched, alpha: 0.4 });
    for (const t of [0, 4, 10]) {
      const step = np.array(t, "int32");
      const rho = sched(step).item();
      expect(vals(byStep(step, f64([1, -0.5])) as Tensor)).toEqual(
        vals(gsam(quad(H), { rho, alpha: 0.4 })(f64([1, -0.5])) as Tensor),
      );
    }
    expect(() =>
      gsamRhoSchedule({
        learningRate: constantSchedule(0.1),
        lrMax: 0.1,
        lrMin: 0.2,
        rhoMax: 0.3,
        rhoMin: 0.1,
      }),
    ).toThrow(/lrMin/);
    expect(() =>
      gsamRhoSchedule({
        learningRate: constantSchedule(0.1),
        lrMax: 0.1,
        lrMin: 0,
        rhoMax: 0.1,
        rhoMin: 0.3,
      }),
    ).toThrow(/rhoMin/);
    expect(() => gsam(quad(H), { rho: () => np.array(-1), alpha: 0.1 })).toThrow(ConfigError);
  });
});

describe("lookSam", () => {
  // Eighths in [-3, 3]: fc.double favours subnormals, which would make four well-posed points rare.
  const eighth = fc.integer({ min: -24, max: 24 }).map((i) => i / 8);
  const nvec = (n: number) => fc.array(eighth, { minLength: n, maxLength: n });
  const arbRun = fc.integer({ min: 1, max: 4 }).chain((d) =>
    fc.record({
      q: fc.record({ d: fc.constant(d), m: nvec(d * d), rho: rhoArb }),
      ws: fc.array(nvec(d), { minLength: 4, maxLength: 4 }),
      alpha: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  );

  it("k = 1 is SAM at every step", () => {
    fc.assert(
      fc.property(arbRun, ({ q: { d, m, rho }, ws, alpha }) => {
        const H = sym(d, m);
        fc.pre(ws.every((w) => wellPosed(matvec(H, w))));
        const loss = quad(H);
        const ls = lookSam(loss, { rho, k: 1, alpha });
        let s = ls.init(f64(ws[0]!));
        for (const w of ws) {
          const [out, s1] = ls.step(s, f64(w));
          s = s1;
          close(vals(out as Tensor), vals(sam(loss, { rho })(f64(w)) as Tensor));
        }
      }),
      { numRuns: 20 },
    );
  });

  it("k = 3: SAM on refresh steps, g + α(‖g‖/‖g_v‖)g_v in between", () => {
    fc.assert(
      fc.property(arbRun, ({ q: { d, m, rho }, ws, alpha }) => {
        const H = sym(d, m);
        fc.pre(ws.every((w) => wellPosed(matvec(H, w))));
        const loss = quad(H);
        const ls = lookSam(loss, { rho, k: 3, alpha });
        let s = ls.init(f64(ws[0]!));
        let gv: number[] = [];
        ws.forEach((w, t) => {
          const [out, s1] = ls.step(s, f64(w));
          s = s1;
          const g = matvec(H, w);
          let want: number[];
          if (t % 3 === 0) {
            const S = matvec(H, add(w, samEps(g, rho)));
            gv = add(S, scale(-dot(S, g) / dot(g, g), g));
            want = S;
          } else {
            const nv = norm(gv);
            want = nv > 0 ? add(g, scale((alpha * norm(g)) / nv, gv)) : g;
          }
          // g_v can be a small difference of O(10²) terms, so the reuse step scales its error by ‖g‖/‖g_v‖.
          const nv = norm(gv);
          const amp = t % 3 === 0 || nv === 0 ? 1 : Math.max(1, (norm(matvec(H, w)) * 100) / nv);
          close(vals(out as Tensor), want, TOL * amp);
          expect(s.count.item()).toBe(t + 1);
        });
      }),
      { numRuns: 20 },
    );
  });

  it("rejects k < 1", () => {
    expect(() => lookSam(quad([[1]]), { rho: 0.1, k: 0, alpha: 0.5 })).toThrow(ConfigError);
  });
});
