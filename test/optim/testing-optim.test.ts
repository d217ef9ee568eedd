/**
 * The optimizer-testing kit exported from tsjax/testing: the ULP allclose, the problem generators
 * and the SAM checkers, each shown to accept tsjax's own implementations (float32 and float64) and
 * to reject a deliberately wrong one, so none of them is a check that cannot fail.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as np from "../../src/core/numpy/index.js";
import type { Tensor } from "../../src/core/tensor.js";
import { sgd } from "../../src/optim/alias.js";
import { dualVector } from "../../src/optim/sam/dual-vector.js";
import { sam, samPerturbation } from "../../src/optim/sam/gradient.js";
import { gsam } from "../../src/optim/sam/variants.js";
import {
  arbLinearProblem,
  arbQuadraticProblem,
  checkGsamOrthogonality,
  checkLossScaleInvariance,
  checkOptimizerAgainstOracle,
  checkPerturbationRadius,
  checkRhoZeroIsBase,
  checkSamLinear,
  checkSamQuadratic,
  expectTreeAllclose,
  quadraticProblem,
  treeAllclose,
  ulpOf,
} from "../../src/testing/index.js";
import { grad } from "../../src/transforms/index.js";

const beyond = (l: (w: Tensor) => Tensor, rho: number) => sam(l, { rho });
const mirror = (l: (w: Tensor) => Tensor, rho: number) => sam(l, { rho, mode: "mirror" });
/** A wrong SAM: differentiates through ε (the second-order form the paper drops). */
const through = (l: (w: Tensor) => Tensor, rho: number) => (w: Tensor) =>
  grad((x: Tensor) => l(np.add(x, np.multiply(rho, dualVector(grad(l)(x) as Tensor)))))(w);

describe("treeAllclose and ulpOf", () => {
  it("ULPs of the actual leaf's dtype; structure, shape and NaN handling", () => {
    expect(ulpOf(1, "float32")).toBe(2 ** -23);
    expect(ulpOf(1.5, "float64")).toBe(2 ** -52);
    expect(ulpOf(0, "float32")).toBe(2 ** -149);
    const one = np.array([1], "float32");
    const next = np.array([1 + 2 ** -23], "float32");
    const five = np.array([1 + 5 * 2 ** -23], "float32");
    expect(treeAllclose({ a: one }, { a: next }, { ulps: 1 })).toBeNull();
    expect(treeAllclose({ a: five }, { a: one }, { ulps: 4 })?.path).toBe("a");
    expect(treeAllclose({ a: one }, { b: one })?.message).toMatch(/structure/);
    expect(treeAllclose(np.array([1, 2]), np.array([[1, 2]]))?.message).toMatch(/shape/);
    expect(treeAllclose(np.array([Number.NaN]), [Number.NaN])).toBeNull();
    expect(treeAllclose(np.array([Number.NaN]), [Number.NaN], { equalNan: false })).not.toBeNull();
    expect(treeAllclose({ w: np.array([1, 2], "float64") }, { w: [1, 2 + 1e-9] }, { atol: 1e-8 })).toBeNull();
    expect(() => expectTreeAllclose([np.array([1])], [np.array([2])], {}, "params")).toThrow(
      /params differ at .*2/,
    );
  });
});

describe("problem generators", () => {
  it("spd problems have xᵀAx > 0; indefinite ones have both signs along their eigenvectors; oracles agree with the tensor loss", () => {
    fc.assert(
      fc.property(
        arbQuadraticProblem({ definiteness: "spd" }),
        fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 }),
        (q, x) => {
          const v = x.slice(0, q.dim);
          fc.pre(v.some((t) => Math.abs(t) > 1e-2));
          const quadForm = q.hvp(v).reduce((s, h, i) => s + h * v[i]!, 0);
          expect(quadForm).toBeGreaterThan(0);
          expectTreeAllclose(grad(q.loss)(np.array(q.w, "float64")), q.gradAt(q.w), {
            ulps: 64,
            atol: 1e-13,
          });
          expect(Math.abs(q.loss(np.array(q.w, "float64")).item() - q.valueAt(q.w))).toBeLessThan(
            1e-12 * (1 + Math.abs(q.valueAt(q.w))),
          );
        },
      ),
      { numRuns: 30 },
    );
    fc.assert(
      fc.property(arbQuadraticProblem({ definiteness: "indefinite" }), (q) => {
        // A = H diag(λ) H: the orthogonal invariants tr A = Σλ and ‖A‖²_F = Σλ² pin the spectrum's construction.
        const lam = q.spectrum!;
        expect(Math.min(...lam)).toBeLessThan(0);
        expect(Math.max(...lam)).toBeGreaterThan(0);
        const tr = q.A.reduce((s, row, i) => s + row[i]!, 0);
        expect(Math.abs(tr - lam.reduce((s, x) => s + x, 0))).toBeLessThan(1e-12);
        expect(Math.abs(q.normA ** 2 - lam.reduce((s, x) => s + x * x, 0))).toBeLessThan(1e-12);
        q.A.forEach((row, i) => row.forEach((a, j) => expect(a).toBe(q.A[j]![i])));
      }),
      { numRuns: 30 },
    );
    const q = quadraticProblem(
      [
        [2, 0],
        [0, 1],
      ],
      [0, 1],
      [1, 1],
    );
    expect(q.gradAt([1, 1])).toEqual([2, 2]);
    expect(q.valueAt([1, 1])).toBe(2.5);
  });
});

describe("SAM checkers", () => {
  it("accept tsjax's sam in both modes and dtypes (T4, T5), and reject the through-ε form", () => {
    fc.assert(
      fc.property(
        arbQuadraticProblem(),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.constantFrom("float32" as const, "float64" as const),
        (q, rho, dtype) => {
          checkSamQuadratic(mirror, q, rho, { dtype });
          checkSamQuadratic(beyond, q, rho, { dtype, guard: 1e-12 });
        },
      ),
      { numRuns: 60 },
    );
    fc.assert(
      fc.property(arbLinearProblem(), fc.double({ min: 0.01, max: 1, noNaN: true }), (p, rho) => {
        checkSamLinear(beyond, p, rho);
        checkSamLinear(mirror, p, rho, { dtype: "float32" });
      }),
      { numRuns: 30 },
    );
    const q = quadraticProblem(
      [
        [2, 0.5],
        [0.5, -1],
      ],
      [0.3, -0.2],
      [1, 0.5],
    );
    expect(() => checkSamQuadratic(through, q, 0.3)).toThrow(/checkSamQuadratic/);
    expect(() => checkSamQuadratic((l, r) => sam(l, { rho: 2 * r }), q, 0.3)).toThrow(/closed form/);
  });

  it("radius, rho = 0, loss scale and GSAM orthogonality accept the real thing and reject wrong ones", () => {
    const g = np.array([3e-21, -4e-21, 1e-21], "float32");
    const w = np.array([0.5, -1, 2], "float32");
    checkPerturbationRadius((x) => samPerturbation(x, w, { rho: 0.05 }), g, 0.05, { guard: 1e-12 });
    checkPerturbationRadius(
      (x) => samPerturbation(x, w, { rho: 0.05, mode: "mirror" }),
      np.array([1, 2, 3], "float32"),
      0.05,
    );
    expect(() =>
      checkPerturbationRadius(
        (x) => samPerturbation(x, w, { rho: 0.05, p: Infinity }),
        np.array([1, 2, 3], "float32"),
        0.05,
      ),
    ).toThrow(/‖ε‖/);

    const loss = (x: Tensor, y: Tensor) => np.sum(np.sin(np.multiply(x, y)));
    const y = np.array([0.5, 1, -2], "float32");
    checkRhoZeroIsBase(sam(loss, { rho: 0, mode: "mirror" }), grad(loss), w, y);
    // Gradient 0·2x: zero at any finite x, NaN at a NaN point.
    const flat = (x: Tensor) => np.multiply(np.sum(np.square(x)), 0);
    // ε = 0·g/‖g‖ at g = 0 is the NaN trap the official branch avoids.
    const naive = (x: Tensor) => grad(flat)(np.add(x, np.multiply(0, dualVector(grad(flat)(x) as Tensor))));
    expect(() => checkRhoZeroIsBase(naive, grad(flat), w)).toThrow(/bitwise/);

    const smooth = (x: Tensor) => np.sum(np.exp(np.multiply(0.5, x)));
    checkLossScaleInvariance((l) => sam(l, { rho: 0.1 }), smooth, w, 4);
    expect(() =>
      checkLossScaleInvariance(
        (l) => sam(l, { rho: 0.1, fisher: { eta: 1 } }),
        smooth,
        np.array([2, 3, 4], "float32"),
        1 / 64,
      ),
    ).toThrow(/checkLossScaleInvariance/);
    expect(() => checkLossScaleInvariance((l) => sam(l, { rho: 0.1 }), smooth, w, 3)).toThrow(/power of two/);

    const w64 = np.array([0.5, -1, 2], "float64");
    const S = sam(smooth, { rho: 0.2 })(w64);
    checkGsamOrthogonality(gsam(smooth, { rho: 0.2, alpha: 0.6 })(w64), S);
    const wrong = np.add(S as Tensor, np.multiply(0.6, grad(smooth)(w64) as Tensor));
    expect(() => checkGsamOrthogonality(wrong, S)).toThrow(/GSAM/);
  });

  it("checkOptimizerAgainstOracle: sgd with momentum matches its textbook form, a wrong oracle is caught", () => {
    const momentumOracle = (lr: number, beta: number) => ({
      init: (w: number[]) => w.map(() => 0),
      step: (w: number[], g: number[], v: number[]): [number[], number[]] => {
        const nv = v.map((vi, i) => g[i]! + beta * vi);
        return [w.map((x, i) => x - lr * nv[i]!), nv];
      },
    });
    fc.assert(
      fc.property(arbQuadraticProblem({ definiteness: "spd", bound: 1 }), (q) => {
        checkOptimizerAgainstOracle(sgd(0.1, { momentum: 0.9 }), momentumOracle(0.1, 0.9), q, 5);
      }),
      { numRuns: 20 },
    );
    const q = quadraticProblem(
      [
        [2, 0],
        [0, 1],
      ],
      [1, -1],
      [1, 1],
    );
    expect(() =>
      checkOptimizerAgainstOracle(
        sgd(0.1, { momentum: 0.9, nesterov: true }),
        momentumOracle(0.1, 0.9),
        q,
        3,
      ),
    ).toThrow(/step 1/);
  });
});

describe("the README's optimizer-testing example", () => {
  it("runs as written", () => {
    fc.assert(
      fc.property(arbQuadraticProblem(), (q) =>
        checkSamQuadratic((l, rho) => sam(l, { rho, mode: "mirror" }), q, 0.05, { dtype: "float32" }),
      ),
      { numRuns: 20 },
    );
    const sgdOracle = {
      init: () => null,
      step: (w: number[], g: number[]): [number[], null] => [w.map((x, i) => x - 0.1 * g[i]!), null],
    };
    fc.assert(
      fc.property(arbQuadraticProblem({ definiteness: "spd" }), (q) =>
        checkOptimizerAgainstOracle(sgd(0.1), sgdOracle, q, 5),
      ),
      { numRuns: 20 },
    );
    expect(treeAllclose({ w: np.array([1, 2]) }, { w: np.array([1, 2]) }, { ulps: 8 })).toBeNull();
  });
});
