import { ConfigError, ShapeError, fmtShape } from "./errors.js";

export type Shape = readonly number[];

/** Number of elements of a shape. */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a shape, in elements. */
export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Checks that `shape` is a list of non-negative integers. */
export function checkShape(shape: unknown, op: string): number[] {
  if (!Array.isArray(shape)) throw new ShapeError(`shape must be an array of integers, got ${String(shape)}`, op);
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0) {
      throw new ShapeError(`shape ${fmtShape(shape)} must hold non-negative integers, got ${String(d)}`, op);
    }
  }
  return shape.slice();
}

/** NumPy broadcasting of several shapes; the error names both shapes and the offending argument. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  let out: number[] = [];
  for (let k = 0; k < shapes.length; k++) {
    const s = shapes[k]!;
    const n = Math.max(out.length, s.length);
    const next = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const a = out[out.length - n + i] ?? 1;
      const b = s[s.length - n + i] ?? 1;
      if (a !== b && a !== 1 && b !== 1) {
        throw new ShapeError(`shapes ${fmtShape(out)} and ${fmtShape(s)} cannot broadcast (argument ${k})`, op);
      }
      next[i] = a === 1 ? b : a;
    }
    out = next;
  }
  return out;
}

/** Normalises a possibly negative axis against `ndim`, with an error naming the operation. */
export function normalizeAxis(axis: number, ndim: number, op: string): number {
  if (typeof axis !== "number" || !Number.isInteger(axis)) {
    throw new ConfigError(`axis must be an integer, got ${String(axis)}`, op);
  }
  if (axis < -ndim || axis >= ndim) {
    throw new ShapeError(`axis ${axis} is out of bounds for an array of rank ${ndim}`, op);
  }
  return axis < 0 ? axis + ndim : axis;
}

/** Normalises an `axis` argument (undefined/null = all axes) into a sorted list without repeats. */
export function normalizeAxes(axis: number | readonly number[] | null | undefined, ndim: number, op: string): number[] {
  if (axis === undefined || axis === null) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axis === "number" ? [axis] : [...axis];
  const out = list.map((a) => normalizeAxis(a, ndim, op));
  if (new Set(out).size !== out.length) throw new ShapeError(`repeated axis in ${JSON.stringify(list)}`, op);
  return out.sort((a, b) => a - b);
}

/** Checks that `perm` is a permutation of 0..n-1. */
export function checkPermutation(perm: readonly number[], n: number, op: string): void {
  const seen = new Set<number>();
  for (const p of perm) {
    if (!Number.isInteger(p) || p < 0 || p >= n || seen.has(p)) {
      throw new ShapeError(`${JSON.stringify(perm)} is not a permutation of ${n} axes`, op);
    }
    seen.add(p);
  }
  if (perm.length !== n) throw new ShapeError(`${JSON.stringify(perm)} is not a permutation of ${n} axes`, op);
}

/** Maps a flat row-major index to a multi-index. */
export function unravel(index: number, shape: Shape, out: number[]): number[] {
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i]!;
    out[i] = index % d;
    index = Math.floor(index / d);
  }
  return out;
}
