/** Reductions over a set of axes: `reduceSum`, `reduceMax`, `reduceMin`, `reduceProd`, `argmax`, `argmin`. */
import { type DType, allocate } from "../dtype.js";
import { DTypeError, ShapeError, fmtShape } from "../errors.js";
import { type Primitive, Zero, definePrimitive } from "../primitive.js";
import { type Shape, sizeOf, stridesOf } from "../shape.js";
import { type ShapedArray, Tensor, avalToString } from "../tensor.js";
import { bind1 } from "../trace.js";
import { convertElementType, div, eq, mul, select } from "./elementwise.js";
import { broadcastInDim, moveaxis, reshape, transpose, tuple } from "./structural.js";
import { filled, instantiate, isZero } from "./util.js";

export interface ReduceParams {
  axes: readonly number[];
}

function checkAxes(op: string, x: ShapedArray, axes: readonly number[]): void {
  const seen = new Set<number>();
  for (const a of axes) {
    if (!Number.isInteger(a) || a < 0 || a >= x.shape.length || seen.has(a)) {
      throw new ShapeError(`invalid reduction axes ${JSON.stringify(axes)} for operand ${fmtShape(x.shape)}`, op);
    }
    seen.add(a);
  }
}

function keptShape(shape: Shape, axes: readonly number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

/**
 * Folds `x` over `axes` with `combine`, starting from `init`. Walks the input once in row-major
 * order, so the inner loop is contiguous whatever the axes.
 */
function foldAxes(x: Tensor, axes: readonly number[], out: ShapedArray, init: number, combine: (acc: number, v: number) => number): Tensor {
  const shape = x.shape;
  const src = x._buf!;
  const acc = new Float64Array(sizeOf(out.shape)).fill(init);
  const outStridesKept = stridesOf(out.shape);
  const strides = new Array<number>(shape.length).fill(0);
  let k = 0;
  for (let i = 0; i < shape.length; i++) if (!axes.includes(i)) strides[i] = outStridesKept[k++]!;
  const idx = new Array<number>(shape.length).fill(0);
  let o = 0;
  for (let p = 0; p < src.length; p++) {
    acc[o] = combine(acc[o]!, src[p]!);
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]!++;
      o += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      o -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  const buf = allocate(out.dtype, acc.length);
  if (out.dtype === "bool") for (let i = 0; i < acc.length; i++) buf[i] = acc[i] ? 1 : 0;
  else buf.set(out.dtype === "int32" ? Int32Array.from(acc, (v) => v | 0) : out.dtype === "uint32" ? Uint32Array.from(acc, (v) => v >>> 0) : acc);
  return Tensor._fromBuffer(out.shape, out.dtype, buf, out.weakType);
}

function batchReduce(prim: Primitive<ReduceParams>): Primitive<ReduceParams>["batch"] {
  return ([x], [b], { axes, ...rest }) => [[bind1(prim, [moveaxis(x!, b!, 0)], { ...rest, axes: axes.map((a) => a + 1) })], [0]];
}

function defineReduction(name: string, init: (dtype: DType) => number, combine: (a: number, b: number) => number, jvp: Primitive<ReduceParams>["jvp"], transpose?: Primitive<ReduceParams>["transpose"]): Primitive<ReduceParams> {
  const prim: Primitive<ReduceParams> = definePrimitive<ReduceParams>({
    name,
    abstractEval([x], { axes }) {
      checkAxes(name, x!, axes);
      if (name !== "reduce_sum" && x!.dtype === "bool" && name === "reduce_prod") throw new DTypeError(`does not accept ${avalToString(x!)}`, name);
      return [{ shape: keptShape(x!.shape, axes), dtype: x!.dtype, weakType: x!.weakType }];
    },
    impl: ([x], { axes }, [out]) => [foldAxes(x!, axes, out!, init(x!.dtype), combine)],
    jvp,
    batch: (args, dims, params, n) => batchReduce(prim)(args, dims, params, n),
    ...(transpose ? { transpose } : {}),
    printParams: ({ axes }) => ({ axes: tuple(axes) }),
  });
  return prim;
}

const maxInit = (d: DType) => (d === "int32" ? -2147483648 : d === "uint32" || d === "bool" ? 0 : Number.NEGATIVE_INFINITY);
const minInit = (d: DType) => (d === "int32" ? 2147483647 : d === "uint32" ? 4294967295 : d === "bool" ? 1 : Number.POSITIVE_INFINITY);
const nanMax = (a: number, b: number) => (a > b || Number.isNaN(a) ? a : b);
const nanMin = (a: number, b: number) => (a < b || Number.isNaN(a) ? a : b);

export const reduceSum_p: Primitive<ReduceParams> = defineReduction(
  "reduce_sum",
  () => 0,
  (a, b) => a + b,
  ([x], [t], params) => {
    const y = bind1(reduceSum_p, [x!], params);
    return [[y], [isZero(t!) ? new Zero(y.aval) : bind1(reduceSum_p, [t!], params)]];
  },
  ([ct], [x], { axes }) => {
    const aval = (x as { aval: ShapedArray }).aval;
    if (isZero(ct!)) return [new Zero(aval)];
    const kept = aval.shape.map((_, i) => i).filter((i) => !axes.includes(i));
    return [broadcastInDim(ct!, aval.shape, kept)];
  },
);

/** JVP of max/min: the tangent averaged over the positions that attain the extreme, as JAX does. */
function extremumJvp(prim: () => Primitive<ReduceParams>): Primitive<ReduceParams>["jvp"] {
  return ([x], [t], params) => {
    const y = bind1(prim(), [x!], params);
    if (isZero(t!)) return [[y], [new Zero(y.aval)]];
    const kept = x!.shape.map((_, i) => i).filter((i) => !params.axes.includes(i));
    const location = convertElementType(eq(x!, broadcastInDim(y, x!.shape, kept)), x!.dtype);
    const counts = reduceSum(location, params.axes);
    return [[y], [div(reduceSum(mul(t!, location), params.axes), counts)]];
  };
}

export const reduceMax_p: Primitive<ReduceParams> = defineReduction("reduce_max", maxInit, nanMax, extremumJvp(() => reduceMax_p));
export const reduceMin_p: Primitive<ReduceParams> = defineReduction("reduce_min", minInit, nanMin, extremumJvp(() => reduceMin_p));

export const reduceProd_p: Primitive<ReduceParams> = defineReduction(
  "reduce_prod",
  () => 1,
  (a, b) => a * b,
  ([x], [t], params) => {
    const y = bind1(reduceProd_p, [x!], params);
    if (isZero(t!)) return [[y], [new Zero(y.aval)]];
    // d prod = Σ_i t_i · Π_{j≠i} x_j. The products of the others are formed directly (no division),
    // so zeros in x are handled exactly: move the reduced axes last, flatten them to K, and take the
    // product over a K×K grid whose diagonal is replaced by one.
    const { axes } = params;
    const keptAxes = x!.shape.map((_, i) => i).filter((i) => !axes.includes(i));
    const kept = keptAxes.map((i) => x!.shape[i]!);
    const K = sizeOf(axes.map((a) => x!.shape[a]!));
    const flat = (v: Tensor) => reshape(transpose(v, [...keptAxes, ...axes]), [...kept, K]);
    const xf = flat(x!);
    const grid = broadcastInDim(xf, [...kept, K, K], [...kept.map((_, i) => i), kept.length + 1]);
    const eye = Tensor._zeros([K, K], "bool");
    for (let i = 0; i < K; i++) eye._buf![i * K + i] = 1;
    const diag = broadcastInDim(eye, [...kept, K, K], [kept.length, kept.length + 1]);
    const others = reduceProd(select(diag, filled([...kept, K, K], x!.dtype, 1), grid), [kept.length + 1]);
    return [[y], [reduceSum(mul(flat(instantiate(t!)), others), [kept.length])]];
  },
);

export interface ArgParams {
  axes: readonly number[];
  indexDtype: DType;
}

function defineArg(name: string, better: (a: number, b: number) => boolean): Primitive<ArgParams> {
  const prim: Primitive<ArgParams> = definePrimitive<ArgParams>({
    name,
    abstractEval([x], { axes, indexDtype }) {
      checkAxes(name, x!, axes);
      if (axes.length !== 1) throw new ShapeError(`takes exactly one axis, got ${JSON.stringify(axes)}`, name);
      if (x!.shape[axes[0]!] === 0) throw new ShapeError(`cannot reduce an empty axis of ${fmtShape(x!.shape)}`, name);
      return [{ shape: keptShape(x!.shape, axes), dtype: indexDtype, weakType: false }];
    },
    impl([x], { axes }, [out]) {
      const axis = axes[0]!;
      const shape = x!.shape;
      const n = shape[axis]!;
      const inner = sizeOf(shape.slice(axis + 1));
      const outer = sizeOf(shape.slice(0, axis));
      const src = x!._buf!;
      const buf = allocate(out!.dtype, outer * inner);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          let best = src[o * n * inner + i]!;
          let arg = 0;
          for (let k = 1; k < n; k++) {
            const v = src[(o * n + k) * inner + i]!;
            // NaN wins and stays (first NaN), as NumPy's argmax does.
            if (!Number.isNaN(best) && (Number.isNaN(v) || better(v, best))) {
              best = v;
              arg = k;
            }
          }
          buf[o * inner + i] = arg;
        }
      }
      return [Tensor._fromBuffer(out!.shape, out!.dtype, buf)];
    },
    jvp([x], _t, params) {
      const y = bind1(prim, [x!], params);
      return [[y], [new Zero(y.aval)]];
    },
    batch: ([x], [b], { axes, indexDtype }) => [[bind1(prim, [moveaxis(x!, b!, 0)], { axes: axes.map((a) => a + 1), indexDtype })], [0]],
    printParams: ({ axes, indexDtype }) => ({ axes: tuple(axes), index_dtype: indexDtype }),
  });
  return prim;
}

export const argmax_p = defineArg("argmax", (a, b) => a > b);
export const argmin_p = defineArg("argmin", (a, b) => a < b);

export const reduceSum = (x: Tensor, axes: readonly number[]): Tensor => (axes.length === 0 ? x : bind1(reduceSum_p, [x], { axes: [...axes] }));
export const reduceMax = (x: Tensor, axes: readonly number[]): Tensor => (axes.length === 0 ? x : bind1(reduceMax_p, [x], { axes: [...axes] }));
export const reduceMin = (x: Tensor, axes: readonly number[]): Tensor => (axes.length === 0 ? x : bind1(reduceMin_p, [x], { axes: [...axes] }));
export const reduceProd = (x: Tensor, axes: readonly number[]): Tensor => (axes.length === 0 ? x : bind1(reduceProd_p, [x], { axes: [...axes] }));
export const argmax = (x: Tensor, axis: number, indexDtype: DType = "int32"): Tensor => bind1(argmax_p, [x], { axes: [axis], indexDtype });
export const argmin = (x: Tensor, axis: number, indexDtype: DType = "int32"): Tensor => bind1(argmin_p, [x], { axes: [axis], indexDtype });
