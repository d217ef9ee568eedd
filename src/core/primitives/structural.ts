/**
 * Layout primitives that move or replicate data without arithmetic: `broadcastInDim`, `reshape`,
 * `transpose`, `squeeze`.
 */
import { type TypedArray, allocate } from "../dtype.js";
import { ShapeError, fmtShape } from "../errors.js";
import { type BDim, type Primitive, Zero, definePrimitive } from "../primitive.js";
import { type Shape, checkPermutation, normalizeAxis, sizeOf, stridesOf } from "../shape.js";
import { type ShapedArray, Tensor } from "../tensor.js";
import { bind1 } from "../trace.js";
import { reduceSum } from "./reduce.js";
import { isZero } from "./util.js";

/**
 * Copies `src` into a fresh contiguous array of `outShape`, reading element `idx` at
 * `offset + Σ idx[d] · strides[d]` (stride 0 replicates along a dimension).
 */
export function stridedCopy(src: TypedArray, outShape: Shape, strides: readonly number[], offset = 0): TypedArray {
  const n = sizeOf(outShape);
  const out = allocate(dtypeOfBuffer(src), n);
  if (n === 0) return out;
  const rank = outShape.length;
  if (rank === 0) {
    out[0] = src[offset]!;
    return out;
  }
  const idx = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const lastDim = outShape[last]!;
  const lastStride = strides[last]!;
  let base = offset;
  for (let o = 0; o < n; o += lastDim) {
    let p = base;
    for (let j = 0; j < lastDim; j++, p += lastStride) out[o + j] = src[p]!;
    // Advance the multi-index over all but the last dimension.
    for (let d = last - 1; d >= 0; d--) {
      idx[d]!++;
      base += strides[d]!;
      if (idx[d]! < outShape[d]!) break;
      base -= strides[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

function dtypeOfBuffer(buf: TypedArray) {
  if (buf instanceof Float32Array) return "float32" as const;
  if (buf instanceof Float64Array) return "float64" as const;
  if (buf instanceof Int32Array) return "int32" as const;
  if (buf instanceof Uint32Array) return "uint32" as const;
  return "bool" as const;
}

const withShape = (x: ShapedArray, shape: Shape): ShapedArray => ({ shape, dtype: x.dtype, weakType: x.weakType });

// ---------------------------------------------------------------------------------------------

export interface BroadcastInDimParams {
  shape: Shape;
  broadcastDimensions: readonly number[];
}

export const broadcastInDim_p: Primitive<BroadcastInDimParams> = definePrimitive<BroadcastInDimParams>({
  name: "broadcast_in_dim",
  abstractEval([x], { shape, broadcastDimensions: bd }) {
    const op = "broadcast_in_dim";
    if (bd.length !== x!.shape.length) {
      throw new ShapeError(`operand ${fmtShape(x!.shape)} needs ${x!.shape.length} broadcast dimensions, got ${JSON.stringify(bd)}`, op);
    }
    for (let i = 0; i < bd.length; i++) {
      const d = bd[i]!;
      if (!Number.isInteger(d) || d < 0 || d >= shape.length || (i > 0 && d <= bd[i - 1]!)) {
        throw new ShapeError(`broadcast dimensions ${JSON.stringify(bd)} must be increasing and inside ${fmtShape(shape)}`, op);
      }
      const s = x!.shape[i]!;
      if (s !== 1 && s !== shape[d]) {
        throw new ShapeError(`operand ${fmtShape(x!.shape)} cannot broadcast to ${fmtShape(shape)} along dimensions ${JSON.stringify(bd)}`, op);
      }
    }
    return [withShape(x!, shape)];
  },
  impl([x], { shape, broadcastDimensions: bd }, [out]) {
    const inStrides = stridesOf(x!.shape);
    const strides = new Array<number>(shape.length).fill(0);
    bd.forEach((d, i) => {
      strides[d] = x!.shape[i] === 1 ? 0 : inStrides[i]!;
    });
    return [Tensor._fromBuffer(shape, out!.dtype, stridedCopy(x!._buf!, shape, strides), out!.weakType)];
  },
  jvp([x], [t], params) {
    const y = bind1(broadcastInDim_p, [x!], params);
    return [[y], [isZero(t!) ? new Zero(y.aval) : bind1(broadcastInDim_p, [t!], params)]];
  },
  transpose([ct], [x], { shape, broadcastDimensions: bd }) {
    const inShape = (x as { aval: ShapedArray }).aval.shape;
    if (isZero(ct!)) return [new Zero((x as { aval: ShapedArray }).aval)];
    // Sum over the new dimensions and over the ones that were stretched from size 1.
    const keep = new Set(bd.filter((d, i) => inShape[i] === shape[d]));
    const summed = shape.map((_, i) => i).filter((i) => !keep.has(i));
    const s = summed.length ? reduceSum(ct!, summed) : ct!;
    return [reshape(s, inShape)];
  },
  batch([x], [b], { shape, broadcastDimensions }, n) {
    const xs = moveaxis(x!, b!, 0);
    return [[broadcastInDim(xs, [n, ...shape], [0, ...broadcastDimensions.map((d) => d + 1)])], [0]];
  },
  printParams: ({ shape, broadcastDimensions }) => ({ shape: tuple(shape), broadcast_dimensions: tuple(broadcastDimensions) }),
});

/** Renders a list the way JAX prints a tuple parameter: `(3,)`, `(2, 3)`. */
export function tuple(xs: readonly number[]): string {
  return xs.length === 1 ? `(${xs[0]},)` : `(${xs.join(", ")})`;
}

export interface ReshapeParams {
  newSizes: Shape;
}

export const reshape_p: Primitive<ReshapeParams> = definePrimitive<ReshapeParams>({
  name: "reshape",
  abstractEval([x], { newSizes }) {
    if (sizeOf(newSizes) !== sizeOf(x!.shape)) {
      throw new ShapeError(`cannot reshape ${fmtShape(x!.shape)} (size ${sizeOf(x!.shape)}) into ${fmtShape(newSizes)}`, "reshape");
    }
    return [withShape(x!, newSizes)];
  },
  impl: ([x], { newSizes }, [out]) => [Tensor._fromBuffer(newSizes, out!.dtype, x!._buf!, out!.weakType)],
  jvp([x], [t], params) {
    const y = bind1(reshape_p, [x!], params);
    return [[y], [isZero(t!) ? new Zero(y.aval) : bind1(reshape_p, [t!], params)]];
  },
  transpose([ct], [x]) {
    const aval = (x as { aval: ShapedArray }).aval;
    return [isZero(ct!) ? new Zero(aval) : reshape(ct!, aval.shape)];
  },
  batch([x], [b], { newSizes }, n) {
    return [[reshape(moveaxis(x!, b!, 0), [n, ...newSizes])], [0]];
  },
  printParams: ({ newSizes }) => ({ new_sizes: tuple(newSizes), dimensions: "None" }),
});

export interface TransposeParams {
  permutation: readonly number[];
}

export const transpose_p: Primitive<TransposeParams> = definePrimitive<TransposeParams>({
  name: "transpose",
  abstractEval([x], { permutation }) {
    checkPermutation(permutation, x!.shape.length, "transpose");
    return [withShape(x!, permutation.map((p) => x!.shape[p]!))];
  },
  impl([x], { permutation }, [out]) {
    const inStrides = stridesOf(x!.shape);
    const strides = permutation.map((p) => inStrides[p]!);
    return [Tensor._fromBuffer(out!.shape, out!.dtype, stridedCopy(x!._buf!, out!.shape, strides), out!.weakType)];
  },
  jvp([x], [t], params) {
    const y = bind1(transpose_p, [x!], params);
    return [[y], [isZero(t!) ? new Zero(y.aval) : bind1(transpose_p, [t!], params)]];
  },
  transpose([ct], [x], { permutation }) {
    if (isZero(ct!)) return [new Zero((x as { aval: ShapedArray }).aval)];
    const inverse = new Array<number>(permutation.length);
    permutation.forEach((p, i) => {
      inverse[p] = i;
    });
    return [transpose(ct!, inverse)];
  },
  batch([x], [b], { permutation }) {
    return [[transpose(moveaxis(x!, b!, 0), [0, ...permutation.map((p) => p + 1)])], [0]];
  },
  printParams: ({ permutation }) => ({ permutation: tuple(permutation) }),
});

export interface SqueezeParams {
  dimensions: readonly number[];
}

export const squeeze_p: Primitive<SqueezeParams> = definePrimitive<SqueezeParams>({
  name: "squeeze",
  abstractEval([x], { dimensions }) {
    for (const d of dimensions) {
      if (x!.shape[d] !== 1) throw new ShapeError(`cannot squeeze dimension ${d} of ${fmtShape(x!.shape)}: its size is not 1`, "squeeze");
    }
    return [withShape(x!, x!.shape.filter((_, i) => !dimensions.includes(i)))];
  },
  impl: ([x], _p, [out]) => [Tensor._fromBuffer(out!.shape, out!.dtype, x!._buf!, out!.weakType)],
  jvp([x], [t], params) {
    const y = bind1(squeeze_p, [x!], params);
    return [[y], [isZero(t!) ? new Zero(y.aval) : bind1(squeeze_p, [t!], params)]];
  },
  transpose([ct], [x]) {
    const aval = (x as { aval: ShapedArray }).aval;
    return [isZero(ct!) ? new Zero(aval) : reshape(ct!, aval.shape)];
  },
  batch([x], [b], { dimensions }) {
    return [[squeeze(moveaxis(x!, b!, 0), dimensions.map((d) => d + 1))], [0]];
  },
  printParams: ({ dimensions }) => ({ dimensions: tuple(dimensions) }),
});

// ---------------------------------------------------------------------------------------------

export function broadcastInDim(x: Tensor, shape: Shape, broadcastDimensions: readonly number[]): Tensor {
  if (x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i])) return x;
  return bind1(broadcastInDim_p, [x], { shape: [...shape], broadcastDimensions: [...broadcastDimensions] });
}

export function reshape(x: Tensor, newSizes: Shape): Tensor {
  if (x.shape.length === newSizes.length && x.shape.every((d, i) => d === newSizes[i])) return x;
  return bind1(reshape_p, [x], { newSizes: [...newSizes] });
}

export function transpose(x: Tensor, permutation: readonly number[]): Tensor {
  if (permutation.every((p, i) => p === i) && permutation.length === x.ndim) return x;
  return bind1(transpose_p, [x], { permutation: [...permutation] });
}

export function squeeze(x: Tensor, dimensions: readonly number[]): Tensor {
  const dims = dimensions.map((d) => normalizeAxis(d, x.ndim, "squeeze"));
  if (dims.length === 0) return x;
  return bind1(squeeze_p, [x], { dimensions: dims.sort((a, b) => a - b) });
}

/** `lax.expand_dims`: inserts size-1 axes (a `broadcastInDim`, as in JAX). */
export function expandDims(x: Tensor, dimensions: readonly number[]): Tensor {
  const outRank = x.ndim + dimensions.length;
  const dims = dimensions.map((d) => normalizeAxis(d, outRank, "expand_dims"));
  const shape: number[] = [];
  const bd: number[] = [];
  let k = 0;
  for (let i = 0; i < outRank; i++) {
    if (dims.includes(i)) shape.push(1);
    else {
      shape.push(x.shape[k++]!);
      bd.push(i);
    }
  }
  return broadcastInDim(x, shape, bd);
}

/** Moves axis `from` to position `to` (a transpose). */
export function moveaxis(x: Tensor, from: number, to: number): Tensor {
  if (from === to) return x;
  const perm = x.shape.map((_, i) => i).filter((i) => i !== from);
  perm.splice(to, 0, from);
  return transpose(x, perm);
}

/** Moves a batch dimension to `to`, broadcasting an unmapped value to `axisSize` there. */
export function moveBatchAxis(x: Tensor, from: BDim, to: number, axisSize: number): Tensor {
  if (from === null) {
    const shape = [...x.shape];
    shape.splice(to, 0, axisSize);
    return broadcastInDim(x, shape, x.shape.map((_, i) => (i < to ? i : i + 1)));
  }
  return moveaxis(x, from, to);
}
