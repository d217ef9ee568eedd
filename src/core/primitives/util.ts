import { type DType, isFloat } from "../dtype.js";
import { DTypeError, ShapeError, fmtShape } from "../errors.js";
import { type Tangent, Zero } from "../primitive.js";
import { sizeOf } from "../shape.js";
import { type ShapedArray, Tensor, avalToString } from "../tensor.js";

/** A concrete tensor of zeros with the given aval. */
export function zerosOf(aval: ShapedArray): Tensor {
  return Tensor._zeros(aval.shape, aval.dtype, aval.weakType);
}

/** Replaces a symbolic zero by an array of zeros. */
export function instantiate(t: Tangent): Tensor {
  return t instanceof Zero ? zerosOf(t.aval) : t;
}

/** A concrete rank-0 tensor. */
export function scalar(value: number, dtype: DType, weakType = false): Tensor {
  const t = Tensor._zeros([], dtype, weakType);
  (t._buf as { [i: number]: number })[0] = dtype === "bool" ? (value ? 1 : 0) : value;
  return t;
}

/** A concrete tensor of one repeated value. */
export function filled(shape: readonly number[], dtype: DType, value: number): Tensor {
  const t = Tensor._zeros(shape, dtype);
  t._buf!.fill(value);
  return t;
}

export function checkSameShapes(op: string, avals: readonly ShapedArray[]): void {
  const s0 = avals[0]!.shape;
  for (let i = 1; i < avals.length; i++) {
    const s = avals[i]!.shape;
    if (s.length !== s0.length || s.some((d, k) => d !== s0[k])) {
      throw new ShapeError(`operands must have equal shapes, got ${avals.map((a) => fmtShape(a.shape)).join(" and ")} (argument ${i})`, op);
    }
  }
}

export function checkSameDTypes(op: string, avals: readonly ShapedArray[]): void {
  const d0 = avals[0]!.dtype;
  for (let i = 1; i < avals.length; i++) {
    if (avals[i]!.dtype !== d0) {
      throw new DTypeError(`operands must have equal dtypes, got ${avals.map(avalToString).join(" and ")} (argument ${i})`, op);
    }
  }
}

export function checkFloat(op: string, aval: ShapedArray): void {
  if (!isFloat(aval.dtype)) throw new DTypeError(`needs a floating-point operand, got ${avalToString(aval)}`, op);
}

export function allWeak(avals: readonly ShapedArray[]): boolean {
  return avals.every((a) => a.weakType);
}

export function isZero(t: Tangent): t is Zero {
  return t instanceof Zero;
}

export function numel(aval: ShapedArray): number {
  return sizeOf(aval.shape);
}
