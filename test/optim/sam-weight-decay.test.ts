/**
 * SAM.md T19: the four named weight-decay placements of samWeightDecayStep against their closed
 * forms on a quadratic `L = ½wᵀAw + bᵀw` with SGD, in float64.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import type { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import { sgd } from "../../src/optim/alias.js";
import { samWeightDecayStep } from "../../src/optim/sam/weight-decay.js";
import { linearSchedule } from "../../src/optim/schedules.js";

const f64 = (xs: number[] | number[][]) => np.array(xs, "float64");
const vals = (t: unknown) => tree.leaves<Tensor>(t).flatMap((x) => Array.from(x.data() as Float64Array));
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (xs: number[]) => Math.sqrt(dot(xs, xs));
const add = (a: number[], b: number[]) => a.map((x, i) => x + b[i]!);
const scale = (s: number, a: number[]) => a.map((x) => s * x);
const matvec = (A: number[][], x: number[]) => A.map((row) => dot(row, x));
const gnorm = (g: number[]) => norm(g) + 1e-12 * Math.max(0, ...g.map(Math.abs));
const EPS64 = 2 ** -52;
const val = fc.double({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true });
const vec = (n: number) => fc.array(val, { minLength: n, maxLength: n });
const arb = fc.integer({ min: 1, max: 4 }).chain((d) =>
  fc.record({
    d: fc.constant(d),
    m: vec(d * d),
    w: vec(d),
    b: vec(d),
    rho: fc.double({ min: 0.01, max: 1, noNaN: true }),
    lam: fc.double({ min: 1e-4, max: 0.5, noNaN: true }),
  }),
);
const sym = (d: number, m: number[]) =>
  Array.from({ length: d }, (_, i) =>
    Array.from({ length: d }, (_, j) => (m[i * d + j]! + m[j * d + i]!) / 2),
  );
const quad = (A: number[][], b: number[]) => (w: Tensor) =>
  np.add(np.multiply(0.5, np.sum(np.multiply(w, np.matmul(f64(A), w)))), np.sum(np.multiply(f64(b), w)));
const close = (got: number[], want: number[], tol: number) => {
  const s = Math.max(1, norm(want));
  got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(tol * s));
};
const LR = 0.1;

describe("T19 weight-decay conventions on a quadratic (one SGD step)", () => {
  it("l2InLoss is SAM on A + λI; outsideMax and coupled take ε from g only and add λw; decoupled subtracts lr·λ·w", () => {
    fc.assert(
      fc.property(arb, ({ d, m, w, b, rho, lam }) => {
        const A = sym(d, m);
        const g = add(matvec(A, w), b);
        const gA = add(g, scale(lam, w));
        fc.pre(norm(g) > 1e-3 && norm(gA) > 1e-3);
        const mag = (norm(m) + 1) * (norm(w) + rho + 1) + norm(b);
        const tol = 256 * d * EPS64 * mag;
        const run = (convention: "l2InLoss" | "outsideMax" | "coupled" | "decoupled") => {
          const s = samWeightDecayStep(
            quad(A, b),
            { rho },
            { rate: lam, convention, learningRate: convention === "decoupled" ? LR : undefined },
            sgd(LR),
          );
          return vals(s.step(s.init(f64(w)), f64(w))[0]);
        };
        // A: ε = ρ(g + λw)/‖g + λw‖, G = (A + λI)(w + ε) + b.
        const eA = scale(rho / gnorm(gA), gA);
        const GA = add(add(matvec(A, add(w, eA)), b), scale(lam, add(w, eA)));
        close(run("l2InLoss"), add(w, scale(-LR, GA)), tol);
        // B and C: ε = ρg/‖g‖, G = A(w + ε) + b + λw.
        const e = scale(rho / gnorm(g), g);
        const S = add(matvec(A, add(w, e)), b);
        const GB = add(S, scale(lam, w));
        close(run("outsideMax"), add(w, scale(-LR, GB)), tol);
        close(run("coupled"), add(w, scale(-LR, GB)), tol);
        // D: w − lr·S − lr·λ·w.
        close(run("decoupled"), add(add(w, scale(-LR, S)), scale(-LR * lam, w)), tol);
        // A and C differ by λε plus the different ascent direction.
        const diff = add(GA, scale(-1, GB));
        close(diff, add(matvec(A, add(eA, scale(-1, e))), scale(lam, eA)), 2 * tol);
      }),
      { numRuns: 30 },
    );
  });

  it("coupled is outsideMax bit for bit over several momentum steps (B = C for a coupled base optimizer)", () => {
    const A = [
      [2, 0.5],
      [0.5, 1],
    ];
    const b = [0.3, -1];
    const mk = (convention: "outsideMax" | "coupled") =>
      samWeightDecayStep(quad(A, b), { rho: 0.05 }, { rate: 5e-3, convention }, sgd(0.1, { momentum: 0.9 }));
    const [sb, sc] = [mk("outsideMax"), mk("coupled")];
    let [pb, pc]: unknown[] = [f64([1, -2]), f64([1, -2])];
    let [stb, stc] = [sb.init(pb), sc.init(pc)];
    for (let t = 0; t < 4; t++) {
      [pb, stb] = sb.step(stb, pb);
      [pc, stc] = sc.step(stc, pc);
      expect(vals(pc)).toEqual(vals(pb));
    }
  });

  it("mask limits the decay; decoupled follows a learning-rate schedule by the step count", () => {
    const loss = (p: { k: Tensor; bias: Tensor }) => np.add(np.sum(np.square(p.k)), np.sum(p.bias));
    const p0 = { k: f64([1, 2]), bias: f64([3]) };
    const noBias = (path: tree.KeyPath) =>
      tree.keyPathToString(path) !== ".bias" && !tree.keyPathToString(path).endsWith("bias");
    const sched = linearSchedule(0.1, 0.0, 2);
    const s = samWeightDecayStep(
      loss,
      { rho: 0 },
      { rate: 0.5, convention: "decoupled", mask: noBias, learningRate: sched },
      sgd(0),
    );
    let st = s.init(p0);
    let p: unknown = p0;
    [p, st] = s.step(st, p);
    // lr(0) = 0.1 (a float32 schedule value): k ← k − lr·0.5·k; bias untouched; sgd(0) adds no gradient step.
    const f1 = 1 - Math.fround(0.1) * 0.5;
    // Leaves in key order: bias, then k.
    close(vals(p), [3, f1, 2 * f1], 4 * EPS64);
    [p, st] = s.step(st, p);
    const f2 = 1 - Math.fround(0.05) * 0.5;
    close(vals(p), [3, f1 * f2, 2 * f1 * f2], 4 * EPS64);
    expect(st.count.item()).toBe(2);
  });

  it("raises ConfigError naming the parameter", () => {
    const loss = (w: Tensor) => np.sum(w);
    expect(() =>
      samWeightDecayStep(loss, { rho: 0.1 }, { rate: 1e-3, convention: "nope" as never }, sgd(0.1)),
    ).toThrow(/convention/);
    expect(() =>
      samWeightDecayStep(loss, { rho: 0.1 }, { rate: -1, convention: "coupled" }, sgd(0.1)),
    ).toThrow(/rate/);
    expect(() =>
      samWeightDecayStep(loss, { rho: 0.1 }, { rate: 1e-3, convention: "decoupled" }, sgd(0.1)),
    ).toThrow(/learningRate/);
    expect(() =>
      samWeightDecayStep(
        loss,
        { rho: 0.1 },
        { rate: 1e-3, convention: "coupled", learningRate: 0.1 },
        sgd(0.1),
      ),
    ).toThrow(/learningRate/);
    expect(() =>
      samWeightDecayStep(loss, { rho: 0.1, hasAux: true }, { rate: 1e-3, convention: "coupled" }, sgd(0.1)),
    ).toThrow(ConfigError);
    expect(() =>
      samWeightDecayStep(loss, { rho: -1 }, { rate: 1e-3, convention: "coupled" }, sgd(0.1)),
    ).toThrow(/rho/);
  });
});
