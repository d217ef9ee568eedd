/** Joining, splitting, padding and indexing: `concatenate`, `stack`, `split`, `take`, `pad`, `flip`. */
import { isFloat } from "../dtype.js";
import { ConfigError, DTypeError, fmtShape, ShapeError } from "../errors.js";
import * as lax from "../primitives/elementwise.js";
import * as ix from "../primitives/indexing.js";
import { sort as laxSort } from "../primitives/sort.js";
import * as structural from "../primitives/structural.js";
import { scalar } from "../primitives/util.js";
import { broadcastShapes, normalizeAxes, normalizeAxis } from "../shape.js";
import { avalToString, Tensor } from "../tensor.js";
import { type ArrayLike, toTensor } from "./creation.js";
import { broadcastToShape, promoteOnly } from "./elementwise.js";

/**
 * Joins arrays along an existing axis (operands are promoted to a common dtype).
 *
 * @example
 * ```ts
 * np.concatenate([np.zeros([2, 3]), np.ones([1, 3])], 0).shape; // [3, 3]
 * ```
 */
export function concatenate(xs: readonly ArrayLike[], axis = 0): Tensor {
  if (xs.length === 0) throw new ConfigError("needs at least one array", "concatenate");
  const ts = promoteOnly("concatenate", xs);
  const nd = ts[0]!.ndim;
  if (nd === 0) throw new ShapeError("zero-dimensional arrays cannot be concatenated", "concatenate");
  const a = normalizeAxis(axis, nd, "concatenate");
  ts.forEach((t, i) => {
    if (t.ndim !== nd || t.shape.some((d, k) => k !== a && d !== ts[0]!.shape[k])) {
      throw new ShapeError(
        `shapes ${fmtShape(ts[0]!.shape)} and ${fmtShape(t.shape)} differ outside axis ${a} (argument ${i})`,
        "concatenate",
      );
    }
  });
  return ts.length === 1 ? ts[0]! : ix.concatenate(ts, a);
}

/**
 * Joins same-shaped arrays along a new axis.
 *
 * @example
 * ```ts
 * np.stack([np.zeros([3]), np.ones([3])], 1).shape; // [3, 2]
 * ```
 */
export function stack(xs: readonly ArrayLike[], axis = 0): Tensor {
  if (xs.length === 0) throw new ConfigError("needs at least one array", "stack");
  const ts = promoteOnly("stack", xs);
  const shape = ts[0]!.shape;
  ts.forEach((t, i) => {
    if (t.ndim !== shape.length || t.shape.some((d, k) => d !== shape[k])) {
      throw new ShapeError(
        `all input arrays must have the same shape, got ${fmtShape(shape)} and ${fmtShape(t.shape)} (argument ${i})`,
        "stack",
      );
    }
  });
  const a = normalizeAxis(axis, shape.length + 1, "stack");
  const expanded = ts.map((t) => structural.expandDims(t, [a]));
  return expanded.length === 1 ? expanded[0]! : ix.concatenate(expanded, a);
}

/**
 * Splits into `sections` equal parts, or at the given indices, along `axis`.
 *
 * @example
 * ```ts
 * np.split(np.arange(6), 3).map((t) => t.toArray()); // [[0, 1], [2, 3], [4, 5]]
 * ```
 */
export function split(x: ArrayLike, sections: number | readonly number[], axis = 0): Tensor[] {
  const t = toTensor(x, "split");
  const a = normalizeAxis(axis, t.ndim, "split");
  const n = t.shape[a]!;
  let cuts: number[];
  if (typeof sections === "number") {
    if (!Number.isInteger(sections) || sections <= 0 || n % sections !== 0) {
      throw new ShapeError(
        `array split does not result in an equal division: axis of size ${n} into ${sections}`,
        "split",
      );
    }
    cuts = Array.from({ length: sections - 1 }, (_, i) => ((i + 1) * n) / sections);
  } else cuts = [...sections];
  const bounds = [0, ...cuts.map((c) => Math.min(Math.max(c < 0 ? c + n : c, 0), n)), n];
  const out: Tensor[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const lo = bounds[i]!;
    const hi = Math.max(lo, bounds[i + 1]!);
    const start = t.shape.map((_, k) => (k === a ? lo : 0));
    const limit = t.shape.map((d, k) => (k === a ? hi : d));
    out.push(ix.slice(t, start, limit));
  }
  return out;
}

/** Indices as int32, with negative entries counted from the end of an axis of size `n`. */
function indexTensor(indices: ArrayLike, n: number, op: string): Tensor {
  let i = typeof indices === "number" ? scalar(indices, "int32") : toTensor(indices, op);
  if (isFloat(i.dtype) || i.dtype === "bool") {
    if (i.weakType || !(indices instanceof Tensor)) i = lax.convertElementType(i, "int32");
    else throw new DTypeError(`indices must be integers, got ${avalToString(i.aval)}`, op);
  }
  if (i.dtype !== "int32") i = lax.convertElementType(i, "int32");
  return lax.select(lax.lt(i, lax.scalarLike(0, i)), lax.add(i, lax.scalarLike(n, i)), i);
}

/**
 * Takes elements along `axis` (of the flattened array without one). Negative indices count from
 * the end; indices still out of range are clamped, as JAX's gather does.
 *
 * @example
 * ```ts
 * np.take([10, 20, 30], [2, 0]).toArray(); // [30, 10]
 * ```
 */
export function take(x: ArrayLike, indices: ArrayLike, axis?: number | null): Tensor {
  let t = toTensor(x, "take");
  if (axis == null) {
    t = structural.reshape(t, [t.size]);
    axis = 0;
  }
  const a = normalizeAxis(axis, t.ndim, "take");
  return ix.gather(t, indexTensor(indices, t.shape[a]!, "take"), { axis: a, batchDims: 0 });
}

/**
 * Picks along `axis` with an index array of the same rank, broadcasting the other axes, as
 * `np.take_along_axis`.
 *
 * @example
 * ```ts
 * np.takeAlongAxis(x, np.argmax(x, -1, { keepdims: true }), -1); // the row maxima, kept 2-D
 * ```
 */
export function takeAlongAxis(x: ArrayLike, indices: ArrayLike, axis: number): Tensor {
  const t = toTensor(x, "takeAlongAxis");
  const a = normalizeAxis(axis, t.ndim, "takeAlongAxis");
  let i = indexTensor(indices, t.shape[a]!, "takeAlongAxis");
  if (i.ndim !== t.ndim)
    throw new ShapeError(
      `indices ${fmtShape(i.shape)} and array ${fmtShape(t.shape)} must have the same rank`,
      "takeAlongAxis",
    );
  // Broadcast every axis but `axis`, move it last, and gather with the rest as batch dimensions.
  const others = (s: readonly number[]) => s.filter((_, k) => k !== a);
  const batch = broadcastShapes("takeAlongAxis", others(t.shape), others(i.shape));
  const withAxis = (n: number) => {
    const s = [...batch];
    s.splice(a, 0, n);
    return s;
  };
  const xb = structural.moveaxis(broadcastToShape(t, withAxis(t.shape[a]!)), a, t.ndim - 1);
  i = structural.moveaxis(broadcastToShape(i, withAxis(i.shape[a]!)), a, t.ndim - 1);
  const out = ix.gather(xb, i, { axis: t.ndim - 1, batchDims: t.ndim - 1 });
  return structural.moveaxis(out, t.ndim - 1, a);
}

/** `pad`'s widths: one number for all sides, `[lo, hi]` for all axes, or `[lo, hi]` per axis. */
export type PadWidth = number | readonly [number, number] | readonly (readonly [number, number])[];

/**
 * Pads with a constant (default 0).
 *
 * @example
 * ```ts
 * np.pad([1, 2], [1, 2]).toArray(); // [0, 1, 2, 0, 0]
 * ```
 */
export function pad(x: ArrayLike, padWidth: PadWidth, opts?: { constantValue?: number }): Tensor {
  const t = toTensor(x, "pad");
  let widths: [number, number][];
  if (typeof padWidth === "number") widths = t.shape.map(() => [padWidth, padWidth]);
  else if (padWidth.length === 2 && typeof padWidth[0] === "number") {
    const [lo, hi] = padWidth as readonly [number, number];
    widths = t.shape.map(() => [lo, hi]);
  } else {
    widths = (padWidth as readonly (readonly [number, number])[]).map(([lo, hi]) => [lo, hi]);
    if (widths.length === 1) widths = t.shape.map(() => widths[0]!);
  }
  if (widths.length !== t.ndim)
    throw new ShapeError(`padWidth ${JSON.stringify(padWidth)} does not fit ${fmtShape(t.shape)}`, "pad");
  for (const [lo, hi] of widths) {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi < 0)
      throw new ConfigError(
        `pad widths must be non-negative integers, got ${JSON.stringify(padWidth)}`,
        "pad",
      );
  }
  return ix.pad(
    t,
    scalar(opts?.constantValue ?? 0, t.dtype),
    widths.map(([lo, hi]) => [lo, hi, 0]),
  );
}

/**
 * Reverses the order of elements along `axis` (all axes by default).
 *
 * @example
 * ```ts
 * np.flip([1, 2, 3]).toArray(); // [3, 2, 1]
 * ```
 */
export function flip(x: ArrayLike, axis?: number | readonly number[] | null): Tensor {
  let t = toTensor(x, "flip");
  for (const a of normalizeAxes(axis, t.ndim, "flip")) {
    const n = t.shape[a]!;
    const rev = Tensor._fromBuffer(
      [n],
      "int32",
      Int32Array.from({ length: n }, (_, i) => n - 1 - i),
    );
    t = ix.gather(t, rev, { axis: a, batchDims: 0 });
  }
  return t;
}

/** Flattens for `axis` null; otherwise normalises it. */
function sortOperand(x: ArrayLike, axis: number | null, op: string): [Tensor, number] {
  let t = toTensor(x, op);
  if (axis === null) return [structural.reshape(t, [t.size]), 0];
  if (t.ndim === 0) t = structural.reshape(t, [1]);
  return [t, normalizeAxis(axis, t.ndim, op)];
}

/**
 * Sorted copy along `axis` (default last; null flattens). Stable; NaNs go last.
 *
 * @example
 * ```ts
 * np.sort([3, 1, 2]).toArray(); // [1, 2, 3]
 * ```
 */
export function sort(x: ArrayLike, axis: number | null = -1): Tensor {
  const [t, a] = sortOperand(x, axis, "sort");
  return laxSort([t], a, 1)[0]!;
}

/**
 * Indices (int32) that sort `x` along `axis`, stable (equal elements keep their order).
 *
 * @example
 * ```ts
 * np.argsort([3, 1, 2]).toArray(); // [1, 2, 0]
 * ```
 */
export function argsort(x: ArrayLike, axis: number | null = -1): Tensor {
  const [t, a] = sortOperand(x, axis, "argsort");
  const n = t.shape[a]!;
  const idx = structural.broadcastInDim(
    Tensor._fromBuffer(
      [n],
      "int32",
      Int32Array.from({ length: n }, (_, i) => i),
    ),
    t.shape,
    [a],
  );
  return laxSort([t, idx], a, 1)[1]!;
}
