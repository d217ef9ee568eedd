/** Shape manipulation without data-dependent indexing: reshape, transpose, squeeze, broadcast, tile. */
import { ConfigError, fmtShape, ShapeError } from "../errors.js";
import * as structural from "../primitives/structural.js";
import {
  broadcastShapes,
  checkPermutation,
  normalizeAxis,
  type Shape,
  shapesEqual,
  sizeOf,
} from "../shape.js";
import type { Tensor } from "../tensor.js";
import { type ArrayLike, toTensor } from "./creation.js";
import { broadcastToShape } from "./elementwise.js";

/**
 * Reshapes to `shape`; one entry may be -1 and is inferred.
 *
 * @example
 * ```ts
 * np.reshape(np.arange(6), [2, -1]).shape; // [2, 3]
 * ```
 */
export function reshape(x: ArrayLike, shape: number | readonly number[]): Tensor {
  const t = toTensor(x, "reshape");
  const s = typeof shape === "number" ? [shape] : [...shape];
  const free = s.filter((d) => d === -1).length;
  if (free > 1)
    throw new ShapeError(`can only specify one unknown dimension (-1), got ${fmtShape(s)}`, "reshape");
  for (const d of s) {
    if (!Number.isInteger(d) || d < -1)
      throw new ShapeError(`invalid dimension ${d} in ${fmtShape(s)}`, "reshape");
  }
  if (free === 1) {
    const known = sizeOf(s.filter((d) => d !== -1));
    if (known === 0 || t.size % known !== 0) {
      throw new ShapeError(
        `cannot reshape ${fmtShape(t.shape)} (size ${t.size}) into ${fmtShape(s)}`,
        "reshape",
      );
    }
    s[s.indexOf(-1)] = t.size / known;
  }
  if (sizeOf(s) !== t.size)
    throw new ShapeError(
      `cannot reshape ${fmtShape(t.shape)} (size ${t.size}) into ${fmtShape(s)}`,
      "reshape",
    );
  return structural.reshape(t, s);
}

/** Flattens to 1-D. @example `np.ravel([[1, 2], [3, 4]]).toArray(); // [1, 2, 3, 4]` */
export function ravel(x: ArrayLike): Tensor {
  const t = toTensor(x, "ravel");
  return structural.reshape(t, [t.size]);
}

/**
 * Permutes axes (reverses them by default); negative axes allowed.
 *
 * @example
 * ```ts
 * np.transpose(np.zeros([2, 3, 4]), [2, 0, 1]).shape; // [4, 2, 3]
 * ```
 */
export function transpose(x: ArrayLike, axes?: readonly number[] | null): Tensor {
  const t = toTensor(x, "transpose");
  const perm =
    axes == null
      ? t.shape.map((_, i) => t.ndim - 1 - i)
      : axes.map((a) => normalizeAxis(a, t.ndim, "transpose"));
  checkPermutation(perm, t.ndim, "transpose");
  return structural.transpose(t, perm);
}

/**
 * Moves axes `source` to positions `destination`, keeping the others in order.
 *
 * @example
 * ```ts
 * np.moveaxis(np.zeros([2, 3, 4]), 0, -1).shape; // [3, 4, 2]
 * ```
 */
export function moveaxis(
  x: ArrayLike,
  source: number | readonly number[],
  destination: number | readonly number[],
): Tensor {
  const t = toTensor(x, "moveaxis");
  const src = (typeof source === "number" ? [source] : source).map((a) =>
    normalizeAxis(a, t.ndim, "moveaxis"),
  );
  const dst = (typeof destination === "number" ? [destination] : destination).map((a) =>
    normalizeAxis(a, t.ndim, "moveaxis"),
  );
  if (src.length !== dst.length)
    throw new ShapeError(
      `source ${JSON.stringify(source)} and destination ${JSON.stringify(destination)} differ in length`,
      "moveaxis",
    );
  if (new Set(src).size !== src.length || new Set(dst).size !== dst.length)
    throw new ShapeError("repeated axis", "moveaxis");
  const rest = t.shape.map((_, i) => i).filter((i) => !src.includes(i));
  const perm = new Array<number>(t.ndim);
  src.forEach((s, k) => {
    perm[dst[k]!] = s;
  });
  let r = 0;
  for (let i = 0; i < t.ndim; i++) if (perm[i] === undefined) perm[i] = rest[r++]!;
  return structural.transpose(t, perm);
}

/** Exchanges two axes. @example `np.swapaxes(x, 0, 1)` */
export function swapaxes(x: ArrayLike, axis1: number, axis2: number): Tensor {
  const t = toTensor(x, "swapaxes");
  const a = normalizeAxis(axis1, t.ndim, "swapaxes");
  const b = normalizeAxis(axis2, t.ndim, "swapaxes");
  const perm = t.shape.map((_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return structural.transpose(t, perm);
}

/**
 * Inserts size-1 axes at `axis` (positions in the result).
 *
 * @example
 * ```ts
 * np.expandDims(np.zeros([3]), 0).shape; // [1, 3]
 * ```
 */
export function expandDims(x: ArrayLike, axis: number | readonly number[]): Tensor {
  const t = toTensor(x, "expandDims");
  const list = typeof axis === "number" ? [axis] : [...axis];
  const outRank = t.ndim + list.length;
  const dims = list.map((a) => normalizeAxis(a, outRank, "expandDims"));
  if (new Set(dims).size !== dims.length)
    throw new ShapeError(`repeated axis in ${JSON.stringify(list)}`, "expandDims");
  return structural.expandDims(t, dims);
}

/**
 * Removes size-1 axes: all of them, or those named (which must have size 1).
 *
 * @example
 * ```ts
 * np.squeeze(np.zeros([1, 3, 1])).shape; // [3]
 * ```
 */
export function squeeze(x: ArrayLike, axis?: number | readonly number[] | null): Tensor {
  const t = toTensor(x, "squeeze");
  let dims: number[];
  if (axis == null) dims = t.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  else {
    dims = (typeof axis === "number" ? [axis] : [...axis]).map((a) => normalizeAxis(a, t.ndim, "squeeze"));
    for (const d of dims) {
      if (t.shape[d] !== 1)
        throw new ShapeError(
          `cannot select axis ${d} to squeeze out of ${fmtShape(t.shape)}: its size is not 1`,
          "squeeze",
        );
    }
  }
  return structural.squeeze(t, [...new Set(dims)]);
}

/**
 * Broadcasts to `shape` with NumPy's rules.
 *
 * @example
 * ```ts
 * np.broadcastTo([1, 2, 3], [2, 3]).shape; // [2, 3]
 * ```
 */
export function broadcastTo(x: ArrayLike, shape: Shape): Tensor {
  const t = toTensor(x, "broadcastTo");
  const out = broadcastShapes("broadcastTo", t.shape, shape);
  if (!shapesEqual(out, shape) || t.ndim > shape.length) {
    throw new ShapeError(`cannot broadcast ${fmtShape(t.shape)} to ${fmtShape(shape)}`, "broadcastTo");
  }
  return broadcastToShape(t, shape);
}

/**
 * Repeats the whole array `reps` times along each axis.
 *
 * @example
 * ```ts
 * np.tile([1, 2], 2).toArray(); // [1, 2, 1, 2]
 * ```
 */
export function tile(x: ArrayLike, reps: number | readonly number[]): Tensor {
  let t = toTensor(x, "tile");
  const r = typeof reps === "number" ? [reps] : [...reps];
  for (const k of r)
    if (!Number.isInteger(k) || k < 0)
      throw new ConfigError(`reps must be non-negative integers, got ${JSON.stringify(reps)}`, "tile");
  const n = Math.max(r.length, t.ndim);
  const reps2 = [...new Array<number>(n - r.length).fill(1), ...r];
  const shape = [...new Array<number>(n - t.ndim).fill(1), ...t.shape];
  t = structural.reshape(t, shape);
  // Broadcast into [r0, d0, r1, d1, ...] then merge each pair.
  const big = shape.flatMap((d, i) => [reps2[i]!, d]);
  const b = structural.broadcastInDim(
    t,
    big,
    shape.map((_, i) => 2 * i + 1),
  );
  return structural.reshape(
    b,
    shape.map((d, i) => d * reps2[i]!),
  );
}

/**
 * Repeats each element `repeats` times along `axis` (of the flattened array without one).
 *
 * @example
 * ```ts
 * np.repeat([1, 2], 2).toArray(); // [1, 1, 2, 2]
 * ```
 */
export function repeat(x: ArrayLike, repeats: number, axis?: number | null): Tensor {
  let t = toTensor(x, "repeat");
  if (!Number.isInteger(repeats) || repeats < 0)
    throw new ConfigError(`repeats must be a non-negative integer, got ${repeats}`, "repeat");
  if (axis == null) {
    t = structural.reshape(t, [t.size]);
    axis = 0;
  }
  const a = normalizeAxis(axis, t.ndim, "repeat");
  const big = [...t.shape.slice(0, a + 1), repeats, ...t.shape.slice(a + 1)];
  const dims = t.shape.map((_, i) => (i <= a ? i : i + 1));
  const b = structural.broadcastInDim(t, big, dims);
  const out = [...t.shape];
  out[a] = out[a]! * repeats;
  return structural.reshape(b, out);
}
