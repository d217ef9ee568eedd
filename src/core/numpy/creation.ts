/**
 * Array creation and the coercion of user arguments (JS numbers, booleans, nested arrays, typed
 * arrays) into tensors. Creation functions return concrete constants, which transforms treat as
 * constants as well.
 */
import { checkDType, type DType, fromValues, numberDType, type TypedArray } from "../dtype.js";
import { ConfigError, fmtShape, ShapeError } from "../errors.js";
import { convertElementType } from "../primitives/elementwise.js";
import { scalar } from "../primitives/util.js";
import { checkShape, type Shape } from "../shape.js";
import { type NestedArray, Tensor } from "../tensor.js";

/** What `np` accepts wherever an array is expected. */
export type ArrayLike = Tensor | number | boolean | NestedArray | TypedArray;

export const float32 = "float32" as const;
export const float64 = "float64" as const;
export const int32 = "int32" as const;
export const uint32 = "uint32" as const;
export const bool = "bool" as const;

function isTypedArray(x: unknown): x is TypedArray {
  return (
    x instanceof Float32Array ||
    x instanceof Float64Array ||
    x instanceof Int32Array ||
    x instanceof Uint32Array ||
    x instanceof Uint8Array
  );
}

function typedArrayDType(x: TypedArray): DType {
  if (x instanceof Float32Array) return "float32";
  if (x instanceof Float64Array) return "float64";
  if (x instanceof Int32Array) return "int32";
  if (x instanceof Uint32Array) return "uint32";
  return "bool";
}

/** Reads the shape of a nested JS array, checking that it is not ragged. */
function nestedShape(x: NestedArray, op: string): number[] {
  const shape: number[] = [];
  let cur: NestedArray = x;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0]!;
  }
  const check = (v: NestedArray, dim: number, path: string): void => {
    if (dim === shape.length) {
      if (Array.isArray(v))
        throw new ShapeError(
          `ragged nested array: ${path} is a list, expected a scalar for shape ${fmtShape(shape)}`,
          op,
        );
      if (typeof v !== "number" && typeof v !== "boolean")
        throw new ShapeError(`${path} is ${String(v)}, expected a number or boolean`, op);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) {
      throw new ShapeError(
        `ragged nested array: ${path} has ${Array.isArray(v) ? `length ${v.length}` : "a scalar"}, expected length ${shape[dim]} for shape ${fmtShape(shape)}`,
        op,
      );
    }
    for (let i = 0; i < v.length; i++) check(v[i]!, dim + 1, `${path}[${i}]`);
  };
  check(x, 0, "x");
  return shape;
}

/**
 * Builds a strongly typed tensor from nested JS arrays, a typed array (1-D) or a tensor.
 * JS numbers default to `float32`: JavaScript cannot tell `2` from `2.0`, so pass `"int32"` for
 * integer data. All-boolean input gives `bool`.
 *
 * @example
 * ```ts
 * np.array([[1, 2], [3, 4]], "int32").shape; // [2, 2]
 * ```
 */
export function array(x: ArrayLike, dtype?: DType): Tensor {
  if (dtype !== undefined) checkDType(dtype, "array");
  if (x instanceof Tensor) {
    const d = dtype ?? x.dtype;
    return x.dtype === d && !x.weakType ? x : convertElementType(x, d, false);
  }
  if (isTypedArray(x)) {
    const d = dtype ?? typedArrayDType(x);
    return Tensor._fromBuffer([x.length], d, fromValues(d, x));
  }
  const shape = nestedShape(x as NestedArray, "array");
  const flat: number[] = [];
  let allBool = true;
  const walk = (v: NestedArray): void => {
    if (Array.isArray(v)) for (const e of v) walk(e);
    else {
      if (typeof v !== "boolean") allBool = false;
      flat.push(typeof v === "boolean" ? (v ? 1 : 0) : v);
    }
  };
  walk(x as NestedArray);
  const d = dtype ?? (allBool && flat.length > 0 ? "bool" : "float32");
  return Tensor._fromBuffer(shape, d, fromValues(d, flat));
}

/**
 * Like `array`; a tensor of the requested dtype is returned as it is.
 *
 * @example
 * ```ts
 * np.asarray([1, 2, 3]).dtype; // "float32"
 * ```
 */
export function asarray(x: ArrayLike, dtype?: DType): Tensor {
  return array(x, dtype);
}

/**
 * @internal Coerces an operand: JS numbers become weakly typed scalars (int32 for integers, float32
 * otherwise), booleans strong `bool` scalars, arrays go through `array`.
 */
export function toTensor(x: ArrayLike, op: string): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x === "number") return scalar(x, numberDType(x), true);
  if (typeof x === "boolean") return scalar(x ? 1 : 0, "bool");
  if (Array.isArray(x) || isTypedArray(x)) return array(x);
  throw new ConfigError(`expected an array, a tensor or a number, got ${String(x)}`, op);
}

function toShape(shape: number | Shape, op: string): number[] {
  return checkShape(typeof shape === "number" ? [shape] : shape, op);
}

/**
 * A tensor filled with one value.
 *
 * @example
 * ```ts
 * np.full([2, 3], 7).toArray(); // [[7, 7, 7], [7, 7, 7]]
 * ```
 */
export function full(shape: number | Shape, value: number | boolean, dtype?: DType): Tensor {
  const s = toShape(shape, "full");
  const d =
    dtype === undefined ? (typeof value === "boolean" ? "bool" : "float32") : checkDType(dtype, "full");
  const t = Tensor._zeros(s, d);
  t._buf!.fill(fromValues(d, [Number(value)])[0]!);
  return t;
}

/**
 * A tensor of zeros.
 *
 * @example
 * ```ts
 * np.zeros([2, 2]).toArray(); // [[0, 0], [0, 0]]
 * ```
 */
export function zeros(shape: number | Shape, dtype: DType = "float32"): Tensor {
  return Tensor._zeros(toShape(shape, "zeros"), checkDType(dtype, "zeros"));
}

/**
 * A tensor of ones.
 *
 * @example
 * ```ts
 * np.ones(3).toArray(); // [1, 1, 1]
 * ```
 */
export function ones(shape: number | Shape, dtype: DType = "float32"): Tensor {
  return full(shape, 1, dtype);
}

type Like = Tensor | { shape: Shape; dtype: DType };

/** Zeros with the shape (and by default the dtype) of `x`. @example `np.zerosLike(x)` */
export function zerosLike(x: Like, dtype?: DType): Tensor {
  return zeros(x.shape, dtype ?? x.dtype);
}

/** Ones with the shape (and by default the dtype) of `x`. @example `np.onesLike(x)` */
export function onesLike(x: Like, dtype?: DType): Tensor {
  return ones(x.shape, dtype ?? x.dtype);
}

/** `value` with the shape (and by default the dtype) of `x`. @example `np.fullLike(x, 3)` */
export function fullLike(x: Like, value: number | boolean, dtype?: DType): Tensor {
  return full(x.shape, value, dtype ?? x.dtype);
}

/**
 * Evenly spaced values in `[start, stop)`. The dtype defaults to `int32` when every argument is an
 * integer and to `float32` otherwise (JS cannot tell `2` from `2.0`, so pass a dtype to be explicit).
 *
 * @example
 * ```ts
 * np.arange(5).toArray(); // [0, 1, 2, 3, 4]
 * ```
 */
export function arange(start: number, stop?: number, step = 1, dtype?: DType): Tensor {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0 || !Number.isFinite(step))
    throw new ConfigError(`step must be a finite non-zero number, got ${step}`, "arange");
  const d =
    dtype === undefined
      ? [start, stop, step].every(Number.isInteger)
        ? "int32"
        : "float32"
      : checkDType(dtype, "arange");
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const vals = new Float64Array(n);
  for (let i = 0; i < n; i++) vals[i] = start + i * step;
  return Tensor._fromBuffer([n], d, fromValues(d, vals));
}

/**
 * `num` evenly spaced values from `start` to `stop` (inclusive when `endpoint`), computed in float64.
 *
 * @example
 * ```ts
 * np.linspace(0, 1, 3).toArray(); // [0, 0.5, 1]
 * ```
 */
export function linspace(
  start: number,
  stop: number,
  num = 50,
  endpoint = true,
  dtype: DType = "float32",
): Tensor {
  if (!Number.isInteger(num) || num < 0)
    throw new ConfigError(`num must be a non-negative integer, got ${num}`, "linspace");
  checkDType(dtype, "linspace");
  const div = endpoint ? num - 1 : num;
  const step = div > 0 ? (stop - start) / div : 0;
  const vals = new Float64Array(num);
  for (let i = 0; i < num; i++) vals[i] = start + i * step;
  if (endpoint && num > 1) vals[num - 1] = stop;
  return Tensor._fromBuffer([num], dtype, fromValues(dtype, vals));
}

/**
 * An `n × m` matrix with ones on diagonal `k`.
 *
 * @example
 * ```ts
 * np.eye(2).toArray(); // [[1, 0], [0, 1]]
 * ```
 */
export function eye(n: number, m?: number, k = 0, dtype: DType = "float32"): Tensor {
  const cols = m ?? n;
  const t = zeros([n, cols], dtype);
  for (let i = 0; i < n; i++) {
    const j = i + k;
    if (j >= 0 && j < cols) t._buf![i * cols + j] = 1;
  }
  return t;
}

/**
 * Casts to `dtype` (float to int truncates toward zero).
 *
 * @example
 * ```ts
 * np.astype(np.array([1.7]), "int32").toArray(); // [1]
 * ```
 */
export function astype(x: ArrayLike, dtype: DType): Tensor {
  const t = toTensor(x, "astype");
  checkDType(dtype, "astype");
  return t.dtype === dtype ? t : convertElementType(t, dtype, false);
}
