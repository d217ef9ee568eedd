/**
 * Problem generators for property tests of optimizers: quadratics `½wᵀAw + bᵀw` (positive definite,
 * indefinite, or any symmetric A) and linear losses `cᵀw`, as fast-check arbitraries. Each problem
 * carries its loss as a tensor function (in the dtype asked for) and float64 JS oracles of its value,
 * gradient and Hessian-vector product.
 */
import fc from "fast-check";
import type { DType } from "../core/dtype.js";
import * as np from "../core/numpy/index.js";
import type { Tensor } from "../core/tensor.js";

/** `½wᵀAw + bᵀw` with a symmetric A, a starting point `w`, and float64 oracles. */
export interface QuadraticProblem {
  dim: number;
  A: number[][];
  b: number[];
  /** A starting point drawn with the problem. */
  w: number[];
  /** The loss of a rank-1 tensor `w` (computed in `w`'s dtype). */
  loss: (w: Tensor) => Tensor;
  /** float64 oracles. */
  valueAt: (w: readonly number[]) => number;
  gradAt: (w: readonly number[]) => number[];
  hvp: (v: readonly number[]) => number[];
  /** Frobenius norm of A (the scale tolerances are derived from). */
  normA: number;
  /** A's eigenvalues when the problem was built from them (`"spd"` and `"indefinite"`). */
  spectrum?: number[];
}

/** `cᵀw` with a starting point `w`. */
export interface LinearProblem {
  dim: number;
  c: number[];
  w: number[];
  loss: (w: Tensor) => Tensor;
  valueAt: (w: readonly number[]) => number;
}

/** Options of {@link arbQuadraticProblem}. */
export interface QuadraticOptions {
  minDim?: number;
  maxDim?: number;
  /**
   * `"spd"`: eigenvalues in [1/4, bound]. `"indefinite"` (d >= 2): at least one eigenvalue in
   * [1/4, bound] and one in [−bound, −1/4]. Both are `A = H diag(λ) H` with H a random Householder
   * reflection, so the spectrum is known exactly. `"any"` (default): (M + Mᵀ)/2 for a random M.
   */
  definiteness?: "spd" | "indefinite" | "any";
  /** Entries of M, b and w (and |λ|) are drawn from [-bound, bound] (default 2). */
  bound?: number;
}

const matvec = (A: readonly (readonly number[])[], x: readonly number[]): number[] =>
  A.map((row) => row.reduce((s, a, j) => s + a * x[j]!, 0));

/** `H diag(λ) H` with `H = I − 2vvᵀ/‖v‖²` (orthogonal and symmetric); `v = e_0` when v is ~0. */
function withSpectrum(lambda: readonly number[], v: readonly number[]): number[][] {
  const d = lambda.length;
  const nv = v.reduce((s, x) => s + x * x, 0);
  const u = nv > 1e-6 ? v : v.map((_, i) => (i === 0 ? 1 : 0));
  const nu = u.reduce((s, x) => s + x * x, 0);
  const H = Array.from({ length: d }, (_, i) =>
    Array.from({ length: d }, (_, j) => (i === j ? 1 : 0) - (2 * u[i]! * u[j]!) / nu),
  );
  const A = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  // Fill the upper triangle and mirror it, so A is exactly symmetric despite rounding.
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += H[i]![k]! * lambda[k]! * H[k]![j]!;
      A[i]![j] = s;
      A[j]![i] = s;
    }
  }
  return A;
}

/**
 * A random quadratic problem. The tensor loss casts A and b to the input's dtype, so the same
 * problem tests float32 and float64 implementations against the float64 oracles.
 *
 * @example fc.assert(fc.property(arbQuadraticProblem({ definiteness: "spd" }), (q) => checkSamQuadratic(mySam, q, 0.05)));
 */
export function arbQuadraticProblem(opts: QuadraticOptions = {}): fc.Arbitrary<QuadraticProblem> {
  const { maxDim = 4, definiteness = "any", bound = 2 } = opts;
  // An indefinite matrix needs two eigenvalues of opposite signs.
  const minDim = Math.max(opts.minDim ?? 1, definiteness === "indefinite" ? 2 : 1);
  const num = fc.double({ min: -bound, max: bound, noNaN: true, noDefaultInfinity: true });
  const pos = fc.double({ min: 0.25, max: Math.max(0.25, bound), noNaN: true });
  return fc.integer({ min: minDim, max: maxDim }).chain((d) => {
    const vecD = fc.array(num, { minLength: d, maxLength: d });
    const spectrum =
      definiteness === "spd"
        ? fc.array(pos, { minLength: d, maxLength: d })
        : fc
            .tuple(
              pos,
              pos.map((x) => -x),
              fc.array(num, { minLength: d - 2, maxLength: d - 2 }),
            )
            .map(([a, b, rest]) => [a, b, ...rest]);
    const A: fc.Arbitrary<number[][]> =
      definiteness === "any"
        ? fc
            .array(num, { minLength: d * d, maxLength: d * d })
            .map((m) =>
              Array.from({ length: d }, (_, i) =>
                Array.from({ length: d }, (_, j) => (m[i * d + j]! + m[j * d + i]!) / 2),
              ),
            )
        : fc.tuple(spectrum, vecD).map(([lam, v]) => Object.assign(withSpectrum(lam, v), { lam }));
    return fc.record({ A, b: vecD, w: vecD }).map(({ A: a, b, w }) => {
      const q = quadraticProblem(a, b, w);
      const lam = (a as number[][] & { lam?: number[] }).lam;
      return lam ? { ...q, A: a.map((row) => row.slice()), spectrum: lam.slice() } : q;
    });
  });
}

/**
 * A quadratic problem from explicit A (symmetric), b and a starting point.
 *
 * @example const q = quadraticProblem([[2, 0], [0, 1]], [0, 1], [1, 1]);
 */
export function quadraticProblem(A: number[][], b: number[], w: number[]): QuadraticProblem {
  const d = b.length;
  const normA = Math.sqrt(A.reduce((s, row) => s + row.reduce((t, a) => t + a * a, 0), 0));
  const loss = (x: Tensor): Tensor => {
    const At = np.array(A, x.dtype as DType);
    const bt = np.array(b, x.dtype as DType);
    return np.add(np.multiply(0.5, np.sum(np.multiply(x, np.matmul(At, x)))), np.sum(np.multiply(bt, x)));
  };
  const gradAt = (x: readonly number[]) => matvec(A, x).map((v, i) => v + b[i]!);
  const valueAt = (x: readonly number[]) =>
    0.5 * matvec(A, x).reduce((s, v, i) => s + v * x[i]!, 0) + b.reduce((s, v, i) => s + v * x[i]!, 0);
  return { dim: d, A, b, w, loss, valueAt, gradAt, hvp: (v) => matvec(A, v), normA };
}

/**
 * A random linear problem `cᵀw` (c may be zero only if `allowZero`).
 *
 * @example fc.assert(fc.property(arbLinearProblem(), (p) => checkSamLinear(mySam, p, 0.1)));
 */
export function arbLinearProblem(
  opts: { minDim?: number; maxDim?: number; bound?: number; allowZero?: boolean } = {},
): fc.Arbitrary<LinearProblem> {
  const { minDim = 1, maxDim = 6, bound = 2, allowZero = false } = opts;
  const num = fc.double({ min: -bound, max: bound, noNaN: true, noDefaultInfinity: true });
  return fc.integer({ min: minDim, max: maxDim }).chain((d) =>
    fc
      .record({
        c: fc.array(num, { minLength: d, maxLength: d }),
        w: fc.array(num, { minLength: d, maxLength: d }),
      })
      .filter(({ c }) => allowZero || c.some((v) => Math.abs(v) > 1e-3))
      .map(({ c, w }) => ({
        dim: d,
        c,
        w,
        loss: (x: Tensor) => np.sum(np.multiply(np.array(c, x.dtype as DType), x)),
        valueAt: (x: readonly number[]) => c.reduce((s, v, i) => s + v * x[i]!, 0),
      })),
  );
}
