/**
 * Reusable checkers for property tests of optimizers and SAM implementations (SAM.md §2.2): a
 * tree-aware allclose with ULP-based tolerances, and the SAM invariants (radius, direction, the
 * quadratic and linear closed forms, rho = 0, loss-scale invariance, GSAM orthogonality) plus an
 * optimizer-vs-textbook trajectory check. Each checker throws a readable Error on a violation, so
 * it can be the body of a `fc.property`. Tolerances derive from the dtype's epsilon and the size
 * of the problem, so they hold for float32 and float64 implementations alike.
 */
import type { DType } from "../core/dtype.js";
import * as np from "../core/numpy/index.js";
import { Tensor } from "../core/tensor.js";
import * as tree from "../core/tree.js";
import type { LinearProblem, QuadraticProblem } from "./optim-problems.js";
import { epsilonOf } from "./checks.js";

const floatEps = (dtype: DType): number => epsilonOf(dtype === "float64" ? "float64" : "float32");

/**
 * The spacing of floating-point numbers of `dtype` at magnitude `|x|` (one unit in the last place);
 * the smallest subnormal spacing near 0.
 *
 * @example ulpOf(1, "float32") // 2 ** -23
 */
export function ulpOf(x: number, dtype: DType = "float32"): number {
  const [eps, tiny] = dtype === "float64" ? [2 ** -52, 2 ** -1074] : [2 ** -23, 2 ** -149];
  const a = Math.abs(x);
  if (!Number.isFinite(a)) return Number.NaN;
  if (a === 0) return tiny;
  return Math.max(tiny, 2 ** Math.floor(Math.log2(a)) * eps);
}

/** Options of {@link treeAllclose}. */
export interface AllcloseOptions {
  /** Allowed distance in units in the last place of `max(|a|, |e|)` in the actual leaf's dtype (default 4). */
  ulps?: number;
  /** Extra absolute tolerance (default 0). */
  atol?: number;
  /** Extra relative tolerance, times `|expected|` (default 0). */
  rtol?: number;
  /** Whether NaN equals NaN (default true). */
  equalNan?: boolean;
}

/** The first mismatch found by {@link treeAllclose}, or `null`. */
export interface AllcloseMismatch {
  path: string;
  index: number;
  actual: number;
  expected: number;
  allowed: number;
  message: string;
}

const leafValues = (x: unknown): { values: ArrayLike<number>; dtype: DType; shape: readonly number[] } => {
  if (x instanceof Tensor) return { values: x.data() as ArrayLike<number>, dtype: x.dtype, shape: x.shape };
  if (typeof x === "number") return { values: [x], dtype: "float64", shape: [] };
  if (Array.isArray(x) || ArrayBuffer.isView(x))
    return {
      values: x as unknown as ArrayLike<number>,
      dtype: "float64",
      shape: [(x as ArrayLike<number>).length],
    };
  throw new Error(`treeAllclose: unsupported leaf ${Object.prototype.toString.call(x)}`);
};

/**
 * Compares two trees leaf by leaf: same structure, same shapes, and every element within
 * `atol + rtol·|e| + ulps·ulp(max(|a|, |e|))` (ULPs in the actual leaf's dtype; plain numbers and
 * number arrays count as float64). Returns the first mismatch, or `null` when close.
 *
 * @example expect(treeAllclose(grads, expected, { ulps: 8 })).toBeNull();
 */
export function treeAllclose(
  actual: unknown,
  expected: unknown,
  opts: AllcloseOptions = {},
): AllcloseMismatch | null {
  const { ulps = 4, atol = 0, rtol = 0, equalNan = true } = opts;
  const isLeaf = (x: unknown) => Array.isArray(x) && x.every((v) => typeof v === "number");
  const [pa, da] = tree.flattenWithPath(actual, isLeaf);
  const [pe, de] = tree.flattenWithPath(expected, isLeaf);
  const fail = (
    path: string,
    index: number,
    a: number,
    e: number,
    allowed: number,
    why: string,
  ): AllcloseMismatch => ({
    path,
    index,
    actual: a,
    expected: e,
    allowed,
    message: `${path || "(root)"}${index >= 0 ? `[${index}]` : ""}: ${why}`,
  });
  if (!tree.treedefEqual(da, de))
    return fail("", -1, Number.NaN, Number.NaN, 0, `structure ${da.toString()} != expected ${de.toString()}`);
  for (let k = 0; k < pa.length; k++) {
    const path = tree.keyPathToString(pa[k]![0]);
    const a = leafValues(pa[k]![1]);
    const e = leafValues(pe[k]![1]);
    if (
      a.values.length !== e.values.length ||
      (a.shape.length && e.shape.length && a.shape.join() !== e.shape.join())
    )
      return fail(
        path,
        -1,
        a.values.length,
        e.values.length,
        0,
        `shape [${a.shape.join(",")}] != expected [${e.shape.join(",")}]`,
      );
    for (let i = 0; i < a.values.length; i++) {
      const x = Number(a.values[i]);
      const y = Number(e.values[i]);
      if (Number.isNaN(x) || Number.isNaN(y)) {
        if (equalNan && Number.isNaN(x) && Number.isNaN(y)) continue;
        return fail(path, i, x, y, 0, `${x} vs expected ${y}`);
      }
      if (x === y) continue;
      const allowed = atol + rtol * Math.abs(y) + ulps * ulpOf(Math.max(Math.abs(x), Math.abs(y)), a.dtype);
      if (!(Math.abs(x - y) <= allowed))
        return fail(
          path,
          i,
          x,
          y,
          allowed,
          `${x} vs expected ${y}: |diff| ${Math.abs(x - y)} > allowed ${allowed}`,
        );
    }
  }
  return null;
}

/** Throws when {@link treeAllclose} finds a mismatch. @example expectTreeAllclose(params, want, { ulps: 16 }) */
export function expectTreeAllclose(
  actual: unknown,
  expected: unknown,
  opts: AllcloseOptions = {},
  what = "trees",
): void {
  const m = treeAllclose(actual, expected, opts);
  if (m) throw new Error(`${what} differ at ${m.message}`);
}

const vecOf = (t: unknown): number[] =>
  tree.leaves<Tensor>(t).flatMap((x) => Array.from(x.data() as ArrayLike<number>, Number));
const norm = (v: readonly number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

/** A SAM gradient under test, built for a loss and a radius: `(loss, rho) → (w) → ∇L(w + ε)`. */
export type SamGradFactory = (loss: (w: Tensor) => Tensor, rho: number) => (w: Tensor) => unknown;

/** Options of the SAM closed-form checkers. */
export interface SamCheckOptions {
  /** Dtype of the parameters under test (default float64). */
  dtype?: DType;
  /**
   * The implementation's norm guard: the closed form then uses `‖g‖ + guard·max|g|` (tsjax's
   * beyond mode: 1e-12 on the max-scaled norm). Default 0 (the official `g/‖g‖`).
   */
  guard?: number;
}

/**
 * T4: on `½wᵀAw + bᵀw`, `S(w) = A(w + ρ g/‖g‖) + b`. The tolerance is `8(d+4)·ε·(‖A‖(‖w‖+ρ) + ‖b‖)`
 * (a matvec's rounding, SAM.md §2.1) plus `8√d·ε·ρ‖A‖·(1 + (‖A‖‖w‖ + ‖b‖)/‖g‖)` for the dual vector
 * of a rounded g. Problems with `‖g‖ < 1e-3` are skipped (the direction is ill-conditioned there).
 *
 * @example fc.assert(fc.property(arbQuadraticProblem(), (q) => checkSamQuadratic((l, r) => optim.sam(l, { rho: r }), q, 0.05, { guard: 1e-12 })));
 */
export function checkSamQuadratic(
  samFor: SamGradFactory,
  q: QuadraticProblem,
  rho: number,
  opts: SamCheckOptions = {},
): void {
  const { dtype = "float64", guard = 0 } = opts;
  const g = q.gradAt(q.w);
  if (norm(g) < 1e-3) return;
  const n = norm(g) + guard * Math.max(...g.map(Math.abs));
  const want = q.gradAt(q.w.map((x, i) => x + (rho * g[i]!) / n));
  const got = vecOf(samFor(q.loss, rho)(np.array(q.w, dtype)));
  const eps = floatEps(dtype);
  const d = q.dim;
  const scale = q.normA * (norm(q.w) + rho) + norm(q.b);
  const tol =
    8 * (d + 4) * eps * scale +
    8 * Math.sqrt(d) * eps * rho * q.normA * (1 + (norm(q.w) * q.normA + norm(q.b)) / norm(g));
  if (got.length !== want.length)
    throw new Error(`checkSamQuadratic: ${got.length} elements, expected ${want.length}`);
  got.forEach((v, i) => {
    if (!(Math.abs(v - want[i]!) <= tol))
      throw new Error(
        `checkSamQuadratic: S[${i}] = ${v}, closed form ${want[i]} (tolerance ${tol}, d = ${d}, rho = ${rho})`,
      );
  });
}

/**
 * T5: on a linear loss `cᵀw` the SAM gradient is exactly `c` (to a couple of ULPs in `dtype`).
 *
 * @example fc.assert(fc.property(arbLinearProblem(), (p) => checkSamLinear((l, r) => optim.sam(l, { rho: r }), p, 0.1)));
 */
export function checkSamLinear(
  samFor: SamGradFactory,
  p: LinearProblem,
  rho: number,
  opts: { dtype?: DType } = {},
): void {
  const dtype = opts.dtype ?? "float64";
  const got = samFor(p.loss, rho)(np.array(p.w, dtype));
  const want = np.array(p.c, dtype);
  const m = treeAllclose(tree.leaves<Tensor>(got)[0], want, { ulps: 2 });
  if (m || tree.leaves(got).length !== 1)
    throw new Error(`checkSamLinear: S != c (${m?.message ?? "expected one leaf"})`);
}

/**
 * T1 + T2: `‖ε‖ = ρ` (rtol `4√d·ε`, relaxed by the guard: `ρ‖g‖/(‖g‖ + guard)` with `guard` the
 * implementation's eps) and `ε ∥ g` (cosine 1 within `4√d·ε`).
 *
 * @example checkPerturbationRadius((g) => optim.samPerturbation(g, params, { rho: 0.05 }), g, 0.05, { guard: 1e-12 })
 */
export function checkPerturbationRadius(
  perturb: (g: unknown) => unknown,
  g: unknown,
  rho: number,
  opts: { guard?: number } = {},
): void {
  const gv = vecOf(g);
  const n = norm(gv);
  if (n === 0) return;
  const dtype = tree.leaves<Tensor>(g)[0]?.dtype ?? "float32";
  const d = gv.length;
  const eps = floatEps(dtype);
  const e = vecOf(perturb(g));
  const ne = norm(e);
  const guard = opts.guard ?? 0;
  const lo = (rho * n) / (n + guard * Math.max(...gv.map(Math.abs))) - 4 * Math.sqrt(d) * eps * rho;
  const hi = rho * (1 + 4 * Math.sqrt(d) * eps);
  if (!(ne >= lo && ne <= hi))
    throw new Error(`checkPerturbationRadius: ‖ε‖ = ${ne}, expected ρ = ${rho} (within [${lo}, ${hi}])`);
  const cos = dot(e, gv) / (ne * n);
  if (!(cos >= 1 - 4 * Math.sqrt(d) * eps))
    throw new Error(`checkPerturbationRadius: cos(ε, g) = ${cos}, expected 1`);
}

/**
 * T6: with `rho = 0` the SAM gradient equals the plain gradient bit for bit (zero gradient
 * included, so no `0·NaN`). `samGrad` and `plainGrad` are called with the same arguments.
 *
 * @example checkRhoZeroIsBase(optim.sam(loss, { rho: 0, mode: "mirror" }), grad(loss), params, x, y)
 */
export function checkRhoZeroIsBase(
  samGrad: (...a: any[]) => unknown,
  plainGrad: (...a: any[]) => unknown,
  ...args: unknown[]
): void {
  const a = vecOf(samGrad(...args));
  const b = vecOf(plainGrad(...args));
  if (a.length !== b.length) throw new Error(`checkRhoZeroIsBase: ${a.length} vs ${b.length} elements`);
  a.forEach((v, i) => {
    if (!Object.is(v, b[i]))
      throw new Error(
        `checkRhoZeroIsBase: element ${i}: ${v} vs plain gradient ${b[i]} (must be bitwise equal)`,
      );
  });
}

/**
 * T8: for `L' = s·L` with a power-of-two `s`, `S' = s·S` (rtol `8ε`: scaling by 2^k is exact, so
 * only the rounding of the loss's own arithmetic remains).
 *
 * @example checkLossScaleInvariance((l) => optim.sam(l, { rho: 0.1 }), loss, w, 4)
 */
export function checkLossScaleInvariance(
  samFor: (loss: (w: Tensor) => Tensor) => (w: Tensor) => unknown,
  loss: (w: Tensor) => Tensor,
  w: Tensor,
  s: number,
): void {
  if (!(s > 0) || Math.log2(s) !== Math.round(Math.log2(s)))
    throw new Error(`checkLossScaleInvariance: s must be a power of two, got ${s}`);
  const a = vecOf(samFor(loss)(w));
  const b = vecOf(samFor((x) => np.multiply(loss(x), s))(w));
  const eps = floatEps(w.dtype);
  const scale = norm(a);
  a.forEach((v, i) => {
    if (!(Math.abs(b[i]! - s * v) <= 8 * eps * s * Math.max(scale, Math.abs(v))))
      throw new Error(`checkLossScaleInvariance: element ${i}: S(sL) = ${b[i]}, s·S(L) = ${s * v}`);
  });
}

/**
 * T17: the GSAM correction is orthogonal to the SAM gradient: `⟨g_GSAM − S, S⟩ = 0`, i.e.
 * `⟨g_GSAM, S⟩ = ‖S‖²` (rtol `16√d·ε` relative to `‖g_GSAM‖·‖S‖`).
 *
 * @example checkGsamOrthogonality(optim.gsam(loss, { rho, alpha })(w), optim.sam(loss, { rho })(w))
 */
export function checkGsamOrthogonality(gsamGrad: unknown, samGrad: unknown): void {
  const a = vecOf(gsamGrad);
  const s = vecOf(samGrad);
  const dtype = tree.leaves<Tensor>(samGrad)[0]?.dtype ?? "float32";
  const eps = floatEps(dtype);
  const lhs = dot(
    a.map((v, i) => v - s[i]!),
    s,
  );
  const tol = 16 * Math.sqrt(a.length) * eps * (norm(a) + norm(s)) * norm(s);
  if (!(Math.abs(lhs) <= tol))
    throw new Error(`checkGsamOrthogonality: <g_GSAM − S, S> = ${lhs} (tolerance ${tol})`);
}

/** A textbook optimizer in float64: `init(w)` gives its state, `step` the next point and state. */
export interface OracleOptimizer<S> {
  init(w: number[]): S;
  step(w: number[], g: number[], state: S, t: number): [number[], S];
}

/**
 * Runs `opt` (a GradientTransformation-like `{ init, update }`) and an independent float64 `oracle`
 * side by side for `steps` steps of gradient descent on `problem`, from `problem.w` on a float64
 * rank-1 parameter, and checks every iterate within `ulps` ULPs plus `rtol` of the oracle.
 *
 * @example checkOptimizerAgainstOracle(optim.sgd(0.1), { init: () => null, step: (w, g) => [w.map((x, i) => x - 0.1 * g[i]), null] }, q, 5)
 */
export function checkOptimizerAgainstOracle<S>(
  opt: { init(p: unknown): unknown; update(g: unknown, s: any, p?: unknown): [unknown, unknown] },
  oracle: OracleOptimizer<S>,
  problem: QuadraticProblem,
  steps: number,
  opts: { ulps?: number; rtol?: number } = {},
): void {
  const { ulps = 64, rtol = 1e-12 } = opts;
  let w = np.array(problem.w, "float64");
  let s = opt.init(w);
  let ow = problem.w.slice();
  let os = oracle.init(ow);
  for (let t = 0; t < steps; t++) {
    const g = problem.gradAt(vecOf(w));
    const [u, ns] = opt.update(np.array(g, "float64"), s, w);
    w = np.astype(np.add(w, u as Tensor), "float64");
    s = ns;
    [ow, os] = oracle.step(ow, problem.gradAt(ow), os, t);
    const scale = Math.max(1, norm(ow));
    const m = treeAllclose(w, ow, { ulps, rtol, atol: rtol * scale });
    if (m) throw new Error(`checkOptimizerAgainstOracle: step ${t + 1}: ${m.message}`);
  }
}
