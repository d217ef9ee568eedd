/** fast-check arbitraries for shapes and tensors, for tsjax's own tests and for users' property tests. */
import fc from "fast-check";
import { type DType, fromValues } from "../core/dtype.js";
import { sizeOf } from "../core/shape.js";
import { Tensor } from "../core/tensor.js";

export interface ShapeOptions {
  minRank?: number;
  maxRank?: number;
  /** Largest size of one axis (size-0 and size-1 axes are included when minDim allows). */
  maxDim?: number;
  minDim?: number;
}

/** Shapes of a bounded rank whose axes include the edge sizes 0 and 1. */
export function arbShape(opts: ShapeOptions = {}): fc.Arbitrary<number[]> {
  const { minRank = 0, maxRank = 3, maxDim = 4, minDim = 0 } = opts;
  return fc.array(fc.integer({ min: minDim, max: maxDim }), { minLength: minRank, maxLength: maxRank });
}

export interface TensorOptions {
  dtype?: DType;
  /** Values are drawn from [-bound, bound] (floats) or the same integer range. */
  bound?: number;
  /** Smallest magnitude for floats, to keep e.g. log or division away from 0. */
  minAbs?: number;
}

/** A tensor of the given shape with bounded values (floats are finite, never NaN). */
export function arbTensorOfShape(shape: readonly number[], opts: TensorOptions = {}): fc.Arbitrary<Tensor> {
  const { dtype = "float32", bound = 3, minAbs = 0 } = opts;
  const n = sizeOf(shape);
  const value: fc.Arbitrary<number> =
    dtype === "bool"
      ? fc.boolean().map((b) => (b ? 1 : 0))
      : dtype === "int32" || dtype === "uint32"
        ? fc.integer({ min: dtype === "uint32" ? 0 : -Math.floor(bound), max: Math.floor(bound) })
        : fc
            .double({ min: -bound, max: bound, noNaN: true, noDefaultInfinity: true })
            .map((v) => (Math.abs(v) < minAbs ? (v < 0 ? -minAbs : minAbs) : v));
  return fc.array(value, { minLength: n, maxLength: n }).map((vs) => Tensor._fromBuffer([...shape], dtype, fromValues(dtype, vs)));
}

/** A tensor of a random shape. */
export function arbTensor(shapeOpts: ShapeOptions = {}, opts: TensorOptions = {}): fc.Arbitrary<Tensor> {
  return arbShape(shapeOpts).chain((s) => arbTensorOfShape(s, opts));
}
