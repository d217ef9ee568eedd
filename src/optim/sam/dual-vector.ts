/**
 * The SAM ascent direction: the maximiser of `<g, ε>` over the unit `p`-norm ball (Foret et al.,
 * eq. 2), `sign(g)|g|^{q-1} / ‖g‖_q^{q-1}` with `1/p + 1/q = 1`, taken over the whole tree.
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";

/** Options of {@link dualVector}. */
export interface DualVectorOptions {
  /** The norm of the ball, `p > 1` (`Infinity` gives `sign(g)`). Default 2. */
  p?: number;
  /**
   * Guarded ("beyond") mode when given: the tree is first divided by `max|g_i|` so the norm cannot
   * underflow or overflow, `eps` is added to that scaled norm (which is >= 1 unless g = 0, so eps
   * only guards the zero gradient: ‖d‖ = ‖ĝ‖/(‖ĝ‖ + eps) with ĝ = g/max|g|), and a zero gradient
   * gives zero, never NaN.
   * Omitted: the official formula `g / ‖g‖` with no guard, so a zero gradient gives NaN.
   */
  eps?: number;
}

/** Validates `p` for the dual-norm formula; `op` names the caller in the error. */
export function checkP(p: number, op: string): void {
  if (!(p === Infinity || (Number.isFinite(p) && p > 1))) {
    throw new ConfigError(`p must be a number > 1 or Infinity, got ${p}`, op);
  }
}

const nonEmpty = (xs: Tensor[]): Tensor[] => xs.filter((x) => x.size > 0);

/** `Σ_leaves Σ f(x)` as a scalar in the first leaf's dtype (0 for an empty tree). */
function treeSum(xs: Tensor[], f: (x: Tensor) => Tensor): Tensor {
  const parts = nonEmpty(xs).map((x) => np.sum(f(x)));
  return parts.reduce<Tensor>((a, b) => np.add(a, b), np.array(0, xs[0]?.dtype ?? "float32"));
}

/** `max_leaves max |x|` (0 for an empty tree). */
function treeAbsMax(xs: Tensor[]): Tensor {
  const parts = nonEmpty(xs).map((x) => np.max(np.abs(x)));
  return parts.reduce<Tensor>((a, b) => np.maximum(a, b), np.array(0, xs[0]?.dtype ?? "float32"));
}

/**
 * The unit dual vector of a gradient tree for the `p`-norm (one global norm over every leaf).
 *
 * @example dualVector({ w: np.array([3, 4]) }); // { w: [0.6, 0.8] }
 */
export function dualVector<T>(g: T, opts: DualVectorOptions = {}): T {
  const p = opts.p ?? 2;
  checkP(p, "dualVector");
  const eps = opts.eps;
  if (eps !== undefined && !(Number.isFinite(eps) && eps >= 0)) {
    throw new ConfigError(`eps must be a finite number >= 0, got ${eps}`, "dualVector");
  }
  if (p === Infinity) return tree.map((x: Tensor) => np.sign(x), g) as unknown as T;

  let leaves = tree.leaves<Tensor>(g);
  let h = g as unknown;
  if (eps !== undefined) {
    // The direction is invariant to a positive rescaling of g; dividing by max|g| first keeps
    // Σ|g|^q in range even for |g_i| ~ 1e-23 in float32.
    const s = treeAbsMax(leaves);
    const safe = np.where(np.greater(s, 0), s, np.onesLike(s));
    h = tree.map((x: Tensor) => np.divide(x, np.astype(safe, x.dtype)), g);
    leaves = tree.leaves<Tensor>(h);
  }
  const q = p / (p - 1);
  let num: unknown;
  let denom: Tensor;
  if (p === 2) {
    num = h;
    denom = np.sqrt(treeSum(leaves, (x) => np.square(x)));
  } else {
    num = tree.map((x: Tensor) => np.multiply(np.sign(x), np.power(np.abs(x), q - 1)), h);
    // ‖h‖_q^{q-1} = (Σ|h|^q)^{(q-1)/q}
    denom = np.power(
      treeSum(leaves, (x) => np.power(np.abs(x), q)),
      (q - 1) / q,
    );
  }
  if (eps !== undefined) {
    const d = np.add(denom, eps);
    denom = np.where(np.greater(d, 0), d, np.onesLike(d));
  }
  return tree.map((x: Tensor) => np.divide(x, np.astype(denom, x.dtype)), num) as unknown as T;
}
