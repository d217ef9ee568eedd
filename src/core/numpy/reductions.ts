/**
 * Reductions over an `axis` argument (a number, a list, or null/undefined for all axes; negative
 * axes count from the end), with `keepdims`.
 */
import { fmtShape, ShapeError } from "../errors.js";
import { cumsum as laxCumsum } from "../primitives/cumsum.js";
import * as lax from "../primitives/elementwise.js";
import {
  argmax as laxArgmax,
  argmin as laxArgmin,
  reduceMax,
  reduceMin,
  reduceProd,
  reduceSum,
} from "../primitives/reduce.js";
import { reshape } from "../primitives/structural.js";
import { normalizeAxes, normalizeAxis, sizeOf } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { type ArrayLike, toTensor } from "./creation.js";
import { broadcastToShape, toBool, toFloat } from "./elementwise.js";

export type Axis = number | readonly number[] | null | undefined;
export interface ReduceOptions {
  keepdims?: boolean;
}

function keep(y: Tensor, x: Tensor, axes: readonly number[], opts?: ReduceOptions): Tensor {
  if (!opts?.keepdims) return y;
  return reshape(
    y,
    x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
  );
}

/** Sums and products accumulate bool as int32, as NumPy does. */
function widenBool(t: Tensor): Tensor {
  return t.dtype === "bool" ? lax.convertElementType(t, "int32", t.weakType) : t;
}

/**
 * Sum over `axis` (all axes by default).
 *
 * @example
 * ```ts
 * np.sum([[1, 2], [3, 4]], 0).toArray(); // [4, 6]
 * ```
 */
export function sum(x: ArrayLike, axis?: Axis, opts?: ReduceOptions): Tensor {
  const t = widenBool(toTensor(x, "sum"));
  const axes = normalizeAxes(axis, t.ndim, "sum");
  return keep(reduceSum(t, axes), t, axes, opts);
}

/** Product over `axis`. @example `np.prod([1, 2, 3]).item(); // 6` */
export function prod(x: ArrayLike, axis?: Axis, opts?: ReduceOptions): Tensor {
  const t = widenBool(toTensor(x, "prod"));
  const axes = normalizeAxes(axis, t.ndim, "prod");
  return keep(reduceProd(t, axes), t, axes, opts);
}

/** Arithmetic mean over `axis` (integers give float32; an empty reduction gives NaN). @example `np.mean(x, -1)` */
export function mean(x: ArrayLike, axis?: Axis, opts?: ReduceOptions): Tensor {
  const t = toFloat(x, "mean");
  const axes = normalizeAxes(axis, t.ndim, "mean");
  const n = sizeOf(axes.map((a) => t.shape[a]!));
  const s = reduceSum(t, axes);
  return keep(lax.div(s, lax.scalarLike(n, s)), t, axes, opts);
}

function extremum(op: string, f: typeof reduceMax) {
  return (x: ArrayLike, axis?: Axis, opts?: ReduceOptions): Tensor => {
    const t = toTensor(x, op);
    const axes = normalizeAxes(axis, t.ndim, op);
    for (const a of axes) {
      if (t.shape[a] === 0)
        throw new ShapeError(
          `zero-size reduction over axis ${a} of ${fmtShape(t.shape)} has no identity`,
          op,
        );
    }
    return keep(f(t, axes), t, axes, opts);
  };
}
/** Maximum over `axis` (NaN propagates). @example `np.max(x, 1, { keepdims: true })` */
export const max = extremum("max", reduceMax);
/** Minimum over `axis` (NaN propagates). @example `np.min(x)` */
export const min = extremum("min", reduceMin);

/** Options of `var` and `std`. */
export interface VarOptions extends ReduceOptions {
  /** Delta degrees of freedom: the divisor is `n - ddof`. */
  ddof?: number;
}

/**
 * Variance `Σ (x - mean)² / (n - ddof)` over `axis`.
 *
 * @example
 * ```ts
 * np.var_([1, 2, 3, 4]).item(); // 1.25
 * ```
 */
export function var_(x: ArrayLike, axis?: Axis, opts?: VarOptions): Tensor {
  const t = toFloat(x, "var");
  const axes = normalizeAxes(axis, t.ndim, "var");
  const n = sizeOf(axes.map((a) => t.shape[a]!));
  const m = mean(t, axes, { keepdims: true });
  const d = lax.sub(t, broadcastToShape(m, t.shape));
  const s = reduceSum(lax.mul(d, d), axes);
  return keep(lax.div(s, lax.scalarLike(n - (opts?.ddof ?? 0), s)), t, axes, opts);
}

/** Standard deviation: `sqrt(var)`. @example `np.std(x, 0, { ddof: 1 })` */
export function std(x: ArrayLike, axis?: Axis, opts?: VarOptions): Tensor {
  return lax.sqrt(var_(x, axis, opts));
}

function argReduce(op: string, f: typeof laxArgmax) {
  return (x: ArrayLike, axis?: number | null, opts?: ReduceOptions): Tensor => {
    let t = toTensor(x, op);
    if (axis === undefined || axis === null) {
      t = reshape(t, [t.size]);
      if (t.size === 0) throw new ShapeError("attempt to get the extremum of an empty sequence", op);
      const r = f(t, 0);
      return opts?.keepdims
        ? reshape(
            r,
            t.shape.map(() => 1),
          )
        : r;
    }
    const a = normalizeAxis(axis, t.ndim, op);
    if (t.shape[a] === 0)
      throw new ShapeError(`cannot reduce the empty axis ${a} of ${fmtShape(t.shape)}`, op);
    return keep(f(t, a), t, [a], opts);
  };
}
/** Index of the maximum along `axis` (flattened without one), as int32. @example `np.argmax(logits, -1)` */
export const argmax = argReduce("argmax", laxArgmax);
/** Index of the minimum along `axis`. @example `np.argmin(x)` */
export const argmin = argReduce("argmin", laxArgmin);

/** True where every element over `axis` is non-zero. @example `np.all([true, false]).item(); // 0` */
export function all(x: ArrayLike, axis?: Axis, opts?: ReduceOptions): Tensor {
  const t = toBool(x, "all");
  const axes = normalizeAxes(axis, t.ndim, "all");
  return keep(reduceMin(t, axes), t, axes, opts);
}

/** True where some element over `axis` is non-zero. @example `np.any(np.isnan(x)).item()` */
export function any(x: ArrayLike, axis?: Axis, opts?: ReduceOptions): Tensor {
  const t = toBool(x, "any");
  const axes = normalizeAxes(axis, t.ndim, "any");
  return keep(reduceMax(t, axes), t, axes, opts);
}

/**
 * Cumulative sum along `axis` (of the flattened array without one). Bool accumulates as int32.
 *
 * @example
 * ```ts
 * np.cumsum([1, 2, 3]).toArray(); // [1, 3, 6]
 * ```
 */
export function cumsum(x: ArrayLike, axis?: number | null): Tensor {
  let t = widenBool(toTensor(x, "cumsum"));
  if (axis === undefined || axis === null) {
    t = reshape(t, [t.size]);
    return laxCumsum(t, 0, false);
  }
  return laxCumsum(t, normalizeAxis(axis, t.ndim, "cumsum"), false);
}
