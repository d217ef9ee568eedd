/**
 * The pieces a SAM ascent step is built from (SAM.md §1.7, §5): ASAM's normalisation operators
 * `T_w` (element-wise and filter-wise), Fisher-SAM's direction, and the projections onto the
 * ρ-ball used by multi-step projected ascent (paper appendix C.6).
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { treeVdot } from "../tree-math.js";

/** A positive diagonal operator `T_w`, stored as a tree like the parameters. */
export type OperatorTree = unknown;

/** Which ASAM operator: `|w|` per element, or the L2 norm of each filter broadcast over it. */
export type AdaptiveOperator = "elementwise" | "filterwise";

/** A leaf predicate over key paths (e.g. ASAM's bias exemption). */
export type LeafPredicate = (path: tree.KeyPath, leaf: Tensor) => boolean;

/**
 * `‖w_f‖₂` for every filter `f` of a leaf, broadcast back over the filter. A filter is one slice
 * along `filterAxis` (default the last axis: the output channel of flax's `[in, out]` dense and
 * `HWIO` conv kernels). Leaves with `ndim <= 1` have no filters: they get `|w|` element-wise, as in
 * Kwon et al.'s filter-wise operator (parameters outside filters are normalised element-wise).
 *
 * @example filterNorms(np.array([[3, 0], [4, 1]])) // [[5, 1], [5, 1]]
 */
export function filterNorms(w: Tensor, filterAxis = -1): Tensor {
  if (w.ndim <= 1) return np.abs(w);
  const axis = filterAxis < 0 ? w.ndim + filterAxis : filterAxis;
  if (!Number.isInteger(axis) || axis < 0 || axis >= w.ndim)
    throw new ConfigError(
      `filterAxis ${filterAxis} is out of range for a leaf of rank ${w.ndim}`,
      "samOperator",
    );
  const others = w.shape.map((_, i) => i).filter((i) => i !== axis);
  const n = np.sqrt(np.sum(np.square(w), others, { keepdims: true }));
  return np.broadcastTo(n, w.shape);
}

/**
 * ASAM's `T_w + η` leaf by leaf: `|w| + η` (element-wise) or `‖w_f‖ + η` (filter-wise), and exactly 1
 * on exempt leaves (the official code's bias exemption, as a path predicate).
 *
 * @example samOperator({ w }, { operator: "elementwise", eta: 0.01, exempt: () => false })
 */
export function samOperator(
  params: unknown,
  opts: { operator: AdaptiveOperator; eta: number; exempt: LeafPredicate; filterAxis?: number },
): OperatorTree {
  return tree.mapWithPath((path, w: Tensor) => {
    if (opts.exempt(path, w)) return np.onesLike(w);
    const t = opts.operator === "filterwise" ? filterNorms(w, opts.filterAxis) : np.abs(w);
    return np.add(t, opts.eta);
  }, params);
}

/** Leaf-wise `t ⊙ x`. @internal */
export function applyOperator<T>(t: OperatorTree, x: T): T {
  return tree.map((xi: Tensor, ti: Tensor) => np.multiply(np.astype(ti, xi.dtype), xi), x, t) as unknown as T;
}

/** Multiplies every leaf by a JS number or a scalar tensor (cast to the leaf's dtype). @internal */
export function scaleBy<T>(x: T, s: number | Tensor): T {
  return tree.map(
    (xi: Tensor) => np.multiply(xi, typeof s === "number" ? s : np.astype(s, xi.dtype)),
    x,
  ) as unknown as T;
}

/**
 * Fisher-SAM's ascent direction (Kim et al., 2022; SAM.md §5, T24) for `F = diag(1 + η g²)`:
 * `F⁻¹g / √(gᵀF⁻¹g)`, so that `εᵀFε = 1` for ε the returned tree. With `eps` the denominator is
 * `√(gᵀF⁻¹g) + eps` and a zero gradient gives zeros.
 *
 * @example fisherDirection(g, { eta: 1, eps: 1e-12 })
 */
export function fisherDirection<T>(g: T, opts: { eta: number; eps?: number }): T {
  const finvG = tree.map((x: Tensor) => np.divide(x, np.add(np.multiply(np.square(x), opts.eta), 1)), g);
  let denom = np.sqrt(treeVdot(g, finvG));
  if (opts.eps !== undefined) {
    const d = np.add(denom, opts.eps);
    denom = np.where(np.greater(d, 0), d, np.onesLike(d));
  }
  return tree.map((x: Tensor) => np.divide(x, np.astype(denom, x.dtype)), finvG) as unknown as T;
}

/**
 * The Euclidean projection of a tree onto the ball `‖u‖_p <= rho` for `p ∈ {2, ∞}`: scaling by
 * `min(1, ρ/‖u‖₂)`, or clipping every element to `[-ρ, ρ]`.
 *
 * @example projectToBall(u, 0.05, 2)
 */
export function projectToBall<T>(u: T, rho: number | Tensor, p: number): T {
  if (p === Infinity) {
    return tree.map((x: Tensor) => {
      // A typed bound: a bare JS number would be rounded to float32 by clip.
      const r = typeof rho === "number" ? np.array(rho, x.dtype) : np.astype(rho, x.dtype);
      return np.clip(x, np.negative(r), r);
    }, u) as unknown as T;
  }
  if (p !== 2)
    throw new ConfigError(
      `projection onto the p-ball is implemented for p = 2 and Infinity, got ${p}`,
      "projectToBall",
    );
  const n = np.sqrt(treeVdot(u, u));
  const r = typeof rho === "number" ? np.array(rho, n.dtype) : np.astype(rho, n.dtype);
  const pos = np.greater(n, r);
  const factor = np.where(pos, np.divide(r, np.where(pos, n, np.onesLike(n))), np.onesLike(n));
  return scaleBy(u, factor);
}
