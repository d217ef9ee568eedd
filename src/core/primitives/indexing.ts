/**
 * Indexing primitives: `slice`, `pad`, `concatenate`, `iota`, `gather` / `scatterAdd` (a take along
 * one axis and its transpose), `dynamicSlice` / `dynamicUpdateSlice`. All but `iota` are linear in
 * their array operands, so each carries a transpose rule.
 */
import { type DType, allocate, isInteger } from "../dtype.js";
import { DTypeError, ShapeError, fmtShape } from "../errors.js";
import {
  type BDim,
  type Primitive,
  type Tangent,
  type UndefPrimal,
  Zero,
  definePrimitive,
} from "../primitive.js";
import { type Shape, checkShape, sizeOf, stridesOf } from "../shape.js";
import { type ShapedArray, Tensor, avalToString } from "../tensor.js";
import { bind1 } from "../trace.js";
import { add, and, convertElementType, ge, lt, max, min, select, sub } from "./elementwise.js";
import { reduceSum } from "./reduce.js";
import { broadcastInDim, moveBatchAxis, moveaxis, stridedCopy, tuple } from "./structural.js";
import { instantiate, isZero, scalar, zerosOf } from "./util.js";

const avalOf = (x: Tensor | UndefPrimal): ShapedArray => (x instanceof Tensor ? x.aval : x.aval);
const withShape = (x: ShapedArray, shape: Shape): ShapedArray => ({
  shape,
  dtype: x.dtype,
  weakType: x.weakType,
});
const allZero = (ts: readonly Tangent[]): boolean => ts.every(isZero);

function checkIndexDType(op: string, what: string, aval: ShapedArray): void {
  if (!isInteger(aval.dtype))
    throw new DTypeError(`${what} must be int32 or uint32, got ${avalToString(aval)}`, op);
}

function checkIntList(op: string, what: string, xs: readonly number[], rank: number, shape: Shape): void {
  if (!Array.isArray(xs) || xs.length !== rank || xs.some((v) => !Number.isInteger(v))) {
    throw new ShapeError(
      `${what} ${JSON.stringify(xs)} must be ${rank} integers for operand ${fmtShape(shape)}`,
      op,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// slice

export interface SliceParams {
  startIndices: readonly number[];
  limitIndices: readonly number[];
  /** `null` means unit strides. */
  strides: readonly number[] | null;
}

function sliceShape(x: ShapedArray, { startIndices: st, limitIndices: li, strides }: SliceParams): number[] {
  const op = "slice";
  const rank = x.shape.length;
  checkIntList(op, "start indices", st, rank, x.shape);
  checkIntList(op, "limit indices", li, rank, x.shape);
  if (strides !== null) {
    checkIntList(op, "strides", strides, rank, x.shape);
    if (strides.some((s) => s < 1))
      throw new ShapeError(`strides ${JSON.stringify(strides)} must be positive`, op);
  }
  return x.shape.map((d, i) => {
    const s = st[i]!;
    const l = li[i]!;
    if (s < 0 || l > d || s > l) {
      throw new ShapeError(
        `bounds [${st}]..[${li}] are out of range for operand ${fmtShape(x.shape)} (dimension ${i})`,
        op,
      );
    }
    return Math.ceil((l - s) / (strides?.[i] ?? 1));
  });
}

export const slice_p: Primitive<SliceParams> = definePrimitive<SliceParams>({
  name: "slice",
  abstractEval: ([x], params) => [withShape(x!, sliceShape(x!, params))],
  impl([x], { startIndices, strides }, [out]) {
    const inStrides = stridesOf(x!.shape);
    const offset = startIndices.reduce((acc, s, i) => acc + s * inStrides[i]!, 0);
    const steps = inStrides.map((s, i) => s * (strides?.[i] ?? 1));
    return [
      Tensor._fromBuffer(
        out!.shape,
        out!.dtype,
        stridedCopy(x!._buf!, out!.shape, steps, offset),
        out!.weakType,
      ),
    ];
  },
  jvp([x], [t], params) {
    const y = bind1(slice_p, [x!], params);
    return [[y], [isZero(t!) ? new Zero(y.aval) : bind1(slice_p, [t!], params)]];
  },
  transpose([ct], [x], { startIndices, strides }) {
    const aval = avalOf(x!);
    if (isZero(ct!)) return [new Zero(aval)];
    // Put each kept element back where it came from; the strides become interior padding.
    const config = aval.shape.map((d, i): PadConfig => {
      const n = ct!.shape[i]!;
      const s = strides?.[i] ?? 1;
      const lo = startIndices[i]!;
      if (n === 0) return [lo, d - lo, 0];
      return [lo, d - (lo + (n - 1) * s + 1), s - 1];
    });
    return [pad(ct!, scalar(0, ct!.dtype), config)];
  },
  batch([x], [b], { startIndices, limitIndices, strides }, n) {
    const bd = b!;
    const ins = <T>(xs: readonly T[], v: T) => [...xs.slice(0, bd), v, ...xs.slice(bd)];
    return [
      [slice(x!, ins(startIndices, 0), ins(limitIndices, n), strides === null ? undefined : ins(strides, 1))],
      [bd],
    ];
  },
  printParams: ({ startIndices, limitIndices, strides }) => ({
    start_indices: tuple(startIndices),
    limit_indices: tuple(limitIndices),
    strides: strides === null ? "None" : tuple(strides),
  }),
});

/**
 * `lax.slice`: the static window `start ≤ i < limit` with optional strides; bounds must lie inside.
 *
 * @example slice(x, [1], [3]); // x = [5, 6, 7, 8] gives [6, 7]
 */
export function slice(x: Tensor, startIndices: number[], limitIndices: number[], strides?: number[]): Tensor {
  return bind1(slice_p, [x], {
    startIndices: [...startIndices],
    limitIndices: [...limitIndices],
    strides: strides ? [...strides] : null,
  });
}

// ---------------------------------------------------------------------------------------------
// pad

/** `[lo, hi, interior]` per dimension; `lo` and `hi` may be negative (they then crop), as in XLA. */
export type PadConfig = [lo: number, hi: number, interior: number];

export interface PadParams {
  paddingConfig: readonly PadConfig[];
}

function padShape(x: ShapedArray, pv: ShapedArray, config: readonly PadConfig[]): number[] {
  const op = "pad";
  if (pv.shape.length !== 0)
    throw new ShapeError(`padding value must be a scalar, got ${avalToString(pv)}`, op);
  if (pv.dtype !== x.dtype)
    throw new DTypeError(
      `padding value ${avalToString(pv)} must have the operand's dtype ${avalToString(x)}`,
      op,
    );
  if (!Array.isArray(config) || config.length !== x.shape.length) {
    throw new ShapeError(
      `padding config ${JSON.stringify(config)} needs ${x.shape.length} entries for operand ${fmtShape(x.shape)}`,
      op,
    );
  }
  return x.shape.map((d, i) => {
    const c = config[i]!;
    if (!Array.isArray(c) || c.length !== 3 || c.some((v) => !Number.isInteger(v)) || c[2] < 0) {
      throw new ShapeError(
        `padding config entry ${JSON.stringify(c)} must be [lo, hi, interior] integers with interior ≥ 0 (dimension ${i})`,
        op,
      );
    }
    const out = c[0] + c[1] + d + Math.max(0, d - 1) * c[2];
    if (out < 0)
      throw new ShapeError(
        `padding ${JSON.stringify(c)} crops more than dimension ${i} of ${fmtShape(x.shape)} holds`,
        op,
      );
    return out;
  });
}

export const pad_p: Primitive<PadParams> = definePrimitive<PadParams>({
  name: "pad",
  abstractEval: ([x, pv], { paddingConfig }) => [withShape(x!, padShape(x!, pv!, paddingConfig))],
  impl([x, pv], { paddingConfig }, [out]) {
    const outShape = out!.shape;
    const buf = allocate(out!.dtype, sizeOf(outShape));
    buf.fill(pv!._buf![0]!);
    const src = x!._buf!;
    const inShape = x!.shape;
    const rank = inShape.length;
    if (src.length === 0 || buf.length === 0)
      return [Tensor._fromBuffer(outShape, out!.dtype, buf, out!.weakType)];
    // Per dimension, the output offset each input index lands at, or -1 where negative padding crops it.
    const outStrides = stridesOf(outShape);
    const where = inShape.map((d, k) => {
      const [lo, , interior] = paddingConfig[k]!;
      return Int32Array.from({ length: d }, (_, i) => {
        const o = lo + i * (interior + 1);
        return o >= 0 && o < outShape[k]! ? o * outStrides[k]! : -1;
      });
    });
    const idx = new Array<number>(rank).fill(0);
    for (let p = 0; p < src.length; p++) {
      let o = 0;
      let keep = true;
      for (let k = 0; k < rank; k++) {
        const w = where[k]![idx[k]!]!;
        if (w < 0) {
          keep = false;
          break;
        }
        o += w;
      }
      if (keep) buf[o] = src[p]!;
      for (let k = rank - 1; k >= 0; k--) {
        if (++idx[k]! < inShape[k]!) break;
        idx[k] = 0;
      }
    }
    return [Tensor._fromBuffer(outShape, out!.dtype, buf, out!.weakType)];
  },
  jvp([x, pv], [tx, tpv], params) {
    const y = bind1(pad_p, [x!, pv!], params);
    if (isZero(tx!) && isZero(tpv!)) return [[y], [new Zero(y.aval)]];
    return [[y], [bind1(pad_p, [instantiate(tx!), instantiate(tpv!)], params)]];
  },
  transpose([ct], [x, pv], { paddingConfig }) {
    const xAval = avalOf(x!);
    const pvAval = avalOf(pv!);
    const xLinear = !(x instanceof Tensor);
    const pvLinear = !(pv instanceof Tensor);
    if (isZero(ct!)) return [xLinear ? new Zero(xAval) : null, pvLinear ? new Zero(pvAval) : null];
    // Undo the edges (a pad by -lo, -hi: negative padding crops, positive restores what was cropped
    // with zeros), then drop the interior padding with a strided slice.
    const unpadded = pad(
      ct!,
      scalar(0, ct!.dtype),
      paddingConfig.map(([lo, hi]): PadConfig => [-lo, -hi, 0]),
    );
    const ctX = slice(
      unpadded,
      unpadded.shape.map(() => 0),
      [...unpadded.shape],
      paddingConfig.map(([, , interior]) => interior + 1),
    );
    const all = (t: Tensor) =>
      reduceSum(
        t,
        t.shape.map((_, i) => i),
      );
    // Every output position that did not come from the operand holds the padding value.
    return [xLinear ? ctX : null, pvLinear ? sub(all(ct!), all(ctX)) : null];
  },
  batch([x, pv], [bx, bpv], { paddingConfig }, n) {
    const config: PadConfig[] = [[0, 0, 0], ...paddingConfig];
    const x0 = moveBatchAxis(x!, bx!, 0, n);
    if (bpv === null) return [[pad(x0, pv!, config)], [0]];
    // A per-example padding value: pad with zeros, then fill the padded positions through a mask.
    const padded = pad(x0, scalar(0, x0.dtype), config);
    const ones = broadcastInDim(scalar(1, "bool"), x0.shape, []);
    const mask = pad(ones, scalar(0, "bool"), config);
    const pvs = broadcastInDim(moveaxis(pv!, bpv, 0), padded.shape, [0]);
    return [[select(mask, padded, pvs)], [0]];
  },
  printParams: ({ paddingConfig }) => ({
    padding_config: `(${paddingConfig.map((c) => `(${c.join(", ")})`).join(", ")}${paddingConfig.length === 1 ? "," : ""})`,
  }),
});

/**
 * `lax.pad`: pads each dimension with `lo` before, `hi` after and `interior` between elements, all
 * filled with the rank-0 `padValue`; negative `lo`/`hi` crop.
 *
 * @example pad(x, scalar(0, "float32"), [[1, 0, 1]]); // x = [1, 2] gives [0, 1, 0, 2]
 */
export function pad(
  x: Tensor,
  padValue: Tensor,
  config: [lo: number, hi: number, interior: number][] | readonly PadConfig[],
): Tensor {
  return bind1(pad_p, [x, padValue], { paddingConfig: config.map((c) => [c[0], c[1], c[2]] as PadConfig) });
}

// ---------------------------------------------------------------------------------------------
// concatenate

export interface ConcatenateParams {
  dimension: number;
}

export const concatenate_p: Primitive<ConcatenateParams> = definePrimitive<ConcatenateParams>({
  name: "concatenate",
  abstractEval(avals, { dimension }) {
    const op = "concatenate";
    if (avals.length === 0) throw new ShapeError("needs at least one operand", op);
    const a0 = avals[0]!;
    const rank = a0.shape.length;
    if (!Number.isInteger(dimension) || dimension < 0 || dimension >= rank) {
      throw new ShapeError(`dimension ${dimension} is out of bounds for operands of rank ${rank}`, op);
    }
    let total = 0;
    avals.forEach((a, k) => {
      if (a.dtype !== a0.dtype)
        throw new DTypeError(
          `operands must have equal dtypes, got ${avalToString(a0)} and ${avalToString(a)} (argument ${k})`,
          op,
        );
      if (a.shape.length !== rank || a.shape.some((d, i) => i !== dimension && d !== a0.shape[i])) {
        throw new ShapeError(
          `shapes ${fmtShape(a0.shape)} and ${fmtShape(a.shape)} differ outside dimension ${dimension} (argument ${k})`,
          op,
        );
      }
      total += a.shape[dimension]!;
    });
    const shape = [...a0.shape];
    shape[dimension] = total;
    return [{ shape, dtype: a0.dtype, weakType: avals.every((a) => a.weakType) }];
  },
  impl(xs, { dimension }, [out]) {
    const buf = allocate(out!.dtype, sizeOf(out!.shape));
    const outer = sizeOf(out!.shape.slice(0, dimension));
    const post = sizeOf(out!.shape.slice(dimension + 1));
    const rowLen = out!.shape[dimension]! * post;
    let col = 0;
    for (const x of xs) {
      const block = x.shape[dimension]! * post;
      const src = x._buf!;
      for (let o = 0; o < outer; o++) buf.set(src.subarray(o * block, (o + 1) * block), o * rowLen + col);
      col += block;
    }
    return [Tensor._fromBuffer(out!.shape, out!.dtype, buf, out!.weakType)];
  },
  jvp(xs, ts, params) {
    const y = bind1(concatenate_p, xs, params);
    if (allZero(ts)) return [[y], [new Zero(y.aval)]];
    return [[y], [bind1(concatenate_p, ts.map(instantiate), params)]];
  },
  transpose([ct], xs, { dimension }) {
    let start = 0;
    return xs.map((x) => {
      const aval = avalOf(x);
      const begin = start;
      start += aval.shape[dimension]!;
      if (x instanceof Tensor) return null;
      if (isZero(ct!)) return new Zero(aval);
      const lo = aval.shape.map((_, i) => (i === dimension ? begin : 0));
      const hi = aval.shape.map((d, i) => (i === dimension ? begin + d : ct!.shape[i]!));
      return slice(ct!, lo, hi);
    });
  },
  batch(xs, dims, { dimension }, n) {
    return [
      [
        concatenate(
          xs.map((x, i) => moveBatchAxis(x, dims[i]!, 0, n)),
          dimension + 1,
        ),
      ],
      [0],
    ];
  },
  printParams: ({ dimension }) => ({ dimension }),
});

/**
 * `lax.concatenate`: joins arrays of equal dtype along `dimension`; other dimensions must agree.
 *
 * @example concatenate([a, b], 0); // a = [1], b = [2, 3] gives [1, 2, 3]
 */
export function concatenate(xs: Tensor[], dimension: number): Tensor {
  if (xs.length === 1) return xs[0]!;
  return bind1(concatenate_p, xs, { dimension });
}

// ---------------------------------------------------------------------------------------------
// iota

export interface IotaParams {
  dtype: DType;
  shape: Shape;
  dimension: number;
}

export const iota_p: Primitive<IotaParams> = definePrimitive<IotaParams>({
  name: "iota",
  abstractEval(_avals, { dtype, shape, dimension }) {
    checkShape(shape, "iota");
    if (!Number.isInteger(dimension) || dimension < 0 || dimension >= shape.length) {
      throw new ShapeError(`dimension ${dimension} is out of bounds for shape ${fmtShape(shape)}`, "iota");
    }
    if (dtype === "bool") throw new DTypeError("does not accept dtype bool", "iota");
    return [{ shape, dtype, weakType: false }];
  },
  impl(_args, { shape, dimension }, [out]) {
    const buf = allocate(out!.dtype, sizeOf(shape));
    const inner = sizeOf(shape.slice(dimension + 1));
    const n = shape[dimension]!;
    for (let p = 0; p < buf.length; p++) buf[p] = Math.floor(p / inner) % n;
    return [Tensor._fromBuffer(shape, out!.dtype, buf)];
  },
  jvp(_x, _t, params) {
    const y = bind1(iota_p, [], params);
    return [[y], [new Zero(y.aval)]];
  },
  // No operands, so nothing is ever batched: the result is the same for every example.
  batch: (_args, _dims, params) => [[bind1(iota_p, [], params)], [null]],
  printParams: ({ dtype, shape, dimension }) => ({ dtype, shape: tuple(shape), dimension, sharding: "None" }),
});

/**
 * `lax.broadcasted_iota`: counts 0, 1, … along `dimension` of an array of `shape`.
 *
 * @example iota("int32", [3], 0); // [0, 1, 2]
 */
export function iota(dtype: DType, shape: number[], dimension: number): Tensor {
  return bind1(iota_p, [], { dtype, shape: [...shape], dimension });
}

// ---------------------------------------------------------------------------------------------
// gather / scatter_add: a take along one axis with leading batch dimensions shared with the indices.

export interface GatherParams {
  /** The operand axis indexed (at or after the batch dimensions). */
  axis: number;
  /** How many leading dimensions operand and indices share, elementwise. */
  batchDims: number;
}

/**
 * Splits the gather geometry: operand `[B…, pre…, N, post…]`, indices `[B…, idx…]`, output
 * `[B…, pre…, idx…, post…]`.
 */
function gatherGeometry(op: string, operand: Shape, indices: ShapedArray, { axis, batchDims }: GatherParams) {
  checkIndexDType(op, "indices", indices);
  const k = batchDims;
  if (!Number.isInteger(k) || k < 0 || k > indices.shape.length) {
    throw new ShapeError(
      `batchDims ${k} must lie in [0, ${indices.shape.length}] for indices ${fmtShape(indices.shape)}`,
      op,
    );
  }
  if (!Number.isInteger(axis) || axis < k || axis >= operand.length) {
    throw new ShapeError(
      `axis ${axis} must lie in [${k}, ${operand.length}) for operand ${fmtShape(operand)} with batchDims ${k}`,
      op,
    );
  }
  for (let i = 0; i < k; i++) {
    if (operand[i] !== indices.shape[i]) {
      throw new ShapeError(
        `operand ${fmtShape(operand)} and indices ${fmtShape(indices.shape)} differ in batch dimension ${i}`,
        op,
      );
    }
  }
  const idxShape = indices.shape.slice(k);
  const outShape = [...operand.slice(0, axis), ...idxShape, ...operand.slice(axis + 1)];
  return {
    B: sizeOf(operand.slice(0, k)),
    P: sizeOf(operand.slice(k, axis)),
    N: operand[axis]!,
    J: sizeOf(idxShape),
    Q: sizeOf(operand.slice(axis + 1)),
    outShape,
  };
}

export const gather_p: Primitive<GatherParams> = definePrimitive<GatherParams>({
  name: "gather",
  abstractEval([x, ind], params) {
    const g = gatherGeometry("gather", x!.shape, ind!, params);
    if (g.N === 0 && sizeOf(g.outShape) > 0) {
      throw new ShapeError(
        `cannot take from the empty axis ${params.axis} of operand ${fmtShape(x!.shape)}`,
        "gather",
      );
    }
    return [withShape(x!, g.outShape)];
  },
  impl([x, ind], params, [out]) {
    const { B, P, N, J, Q } = gatherGeometry("gather", x!.shape, ind!.aval, params);
    const src = x!._buf!;
    const ix = ind!._buf!;
    const buf = allocate(out!.dtype, sizeOf(out!.shape));
    for (let b = 0; b < B; b++) {
      for (let p = 0; p < P; p++) {
        const inBase = (b * P + p) * N;
        for (let j = 0; j < J; j++) {
          // Out-of-range indices clamp into [0, N-1] (JAX's default "clip" mode for gather).
          const i = Math.min(Math.max(ix[b * J + j]!, 0), N - 1);
          const o = ((b * P + p) * J + j) * Q;
          const s = (inBase + i) * Q;
          for (let q = 0; q < Q; q++) buf[o + q] = src[s + q]!;
        }
      }
    }
    return [Tensor._fromBuffer(out!.shape, out!.dtype, buf, out!.weakType)];
  },
  jvp([x, ind], [t], params) {
    const y = bind1(gather_p, [x!, ind!], params);
    return [[y], [isZero(t!) ? new Zero(y.aval) : bind1(gather_p, [t!, ind!], params)]];
  },
  transpose([ct], [x, ind], params) {
    const aval = avalOf(x!);
    if (!(ind instanceof Tensor)) throw new Error("gather transpose: the indices cannot be linear");
    if (isZero(ct!)) return [new Zero(aval), null];
    // Gather read out-of-range indices at the clamped position, so that is where their cotangent goes
    // (scatter would drop them).
    const N = aval.shape[params.axis]!;
    const c = (v: number) => broadcastInDim(scalar(v, ind.dtype), ind.shape, []);
    const clamped = max(min(ind, c(Math.max(N - 1, 0))), c(0));
    return [scatterAdd(zerosOf(aval), clamped, ct!, params), null];
  },
  batch([x, ind], [bx, bi], { axis, batchDims }) {
    if (bx !== null && bi !== null) {
      return [
        [gather(moveaxis(x!, bx, 0), moveaxis(ind!, bi, 0), { axis: axis + 1, batchDims: batchDims + 1 })],
        [0],
      ];
    }
    if (bi === null) {
      // The batch axis becomes the first of the operand's `pre…` dimensions.
      return [[gather(moveaxis(x!, bx!, batchDims), ind!, { axis: axis + 1, batchDims })], [batchDims]];
    }
    // Only the indices are batched: their batch axis becomes the first `idx…` dimension, which the
    // output places after the operand's `B…, pre…` dimensions, that is at `axis`.
    return [[gather(x!, moveaxis(ind!, bi, batchDims), { axis, batchDims })], [axis]];
  },
  printParams: ({ axis, batchDims }) => ({ axis, batch_dims: batchDims, mode: "clip" }),
});

/**
 * A take along `axis`: `out[b…, p…, j…, q…] = x[b…, p…, indices[b…, j…], q…]`, the first `batchDims`
 * dimensions shared by `x` and `indices`. Out-of-range indices are clamped into range (JAX's default
 * "clip" mode for gather), so the result is always defined.
 *
 * @example gather(x, idx, { axis: 0 }); // x = [10, 20, 30], idx = [2, 0] gives [30, 10]
 */
export function gather(
  operand: Tensor,
  indices: Tensor,
  { axis, batchDims = 0 }: { axis: number; batchDims?: number },
): Tensor {
  return bind1(gather_p, [operand, indices], { axis, batchDims });
}

export const scatterAdd_p: Primitive<GatherParams> = definePrimitive<GatherParams>({
  name: "scatter_add",
  abstractEval([x, ind, u], params) {
    const op = "scatter_add";
    const g = gatherGeometry(op, x!.shape, ind!, params);
    if (u!.dtype !== x!.dtype)
      throw new DTypeError(
        `updates ${avalToString(u!)} must have the operand's dtype ${avalToString(x!)}`,
        op,
      );
    if (u!.shape.length !== g.outShape.length || u!.shape.some((d, i) => d !== g.outShape[i])) {
      throw new ShapeError(
        `updates ${fmtShape(u!.shape)} must have shape ${fmtShape(g.outShape)} for operand ${fmtShape(x!.shape)} and indices ${fmtShape(ind!.shape)}`,
        op,
      );
    }
    return [{ shape: x!.shape, dtype: x!.dtype, weakType: x!.weakType && u!.weakType }];
  },
  impl([x, ind, u], params, [out]) {
    const { B, P, N, J, Q } = gatherGeometry("scatter_add", x!.shape, ind!.aval, params);
    const buf = x!._buf!.slice();
    const ix = ind!._buf!;
    const up = u!._buf!;
    const isBool = out!.dtype === "bool";
    for (let b = 0; b < B; b++) {
      for (let p = 0; p < P; p++) {
        const outBase = (b * P + p) * N;
        for (let j = 0; j < J; j++) {
          const i = ix[b * J + j]!;
          // Out-of-range indices are dropped (JAX's default mode for scatter).
          if (i < 0 || i >= N) continue;
          const s = ((b * P + p) * J + j) * Q;
          const o = (outBase + i) * Q;
          // Typed-array stores wrap int32/uint32 sums, as integer addition does.
          if (isBool) for (let q = 0; q < Q; q++) buf[o + q] = buf[o + q]! | up[s + q]!;
          else for (let q = 0; q < Q; q++) buf[o + q] = buf[o + q]! + up[s + q]!;
        }
      }
    }
    return [Tensor._fromBuffer(out!.shape, out!.dtype, buf, out!.weakType)];
  },
  jvp([x, ind, u], [tx, , tu], params) {
    const y = bind1(scatterAdd_p, [x!, ind!, u!], params);
    if (isZero(tx!) && isZero(tu!)) return [[y], [new Zero(y.aval)]];
    return [[y], [bind1(scatterAdd_p, [instantiate(tx!), ind!, instantiate(tu!)], params)]];
  },
  transpose([ct], [x, ind, u], params) {
    if (!(ind instanceof Tensor)) throw new Error("scatter_add transpose: the indices cannot be linear");
    const xLinear = !(x instanceof Tensor);
    const uLinear = !(u instanceof Tensor);
    if (isZero(ct!))
      return [xLinear ? new Zero(avalOf(x!)) : null, null, uLinear ? new Zero(avalOf(u!)) : null];
    // Dropped (out-of-range) updates get a zero cotangent, which clamping in gather would not give.
    let ctU: Tensor | null = null;
    if (uLinear) {
      const g = gather(ct!, ind, params);
      const N = ct!.shape[params.axis]!;
      const ok = and(
        ge(ind, broadcastInDim(scalar(0, ind.dtype), ind.shape, [])),
        lt(ind, broadcastInDim(scalar(N, ind.dtype), ind.shape, [])),
      );
      const okFull = broadcastInDim(
        ok,
        g.shape,
        ind.shape.map((_, i) => (i < params.batchDims ? i : i - params.batchDims + params.axis)),
      );
      ctU = select(okFull, g, zerosOf(g.aval));
    }
    return [xLinear ? ct! : null, null, ctU];
  },
  batch([x, ind, u], [bx, bi, bu], { axis, batchDims }, n) {
    if (bi === null) {
      // Shared indices: the batch axis joins the `pre…` dimensions of operand and updates alike.
      const x1 = moveBatchAxis(x!, bx!, batchDims, n);
      const u1 = moveBatchAxis(u!, bu!, batchDims, n);
      return [[scatterAdd(x1, ind!, u1, { axis: axis + 1, batchDims })], [batchDims]];
    }
    const x0 = moveBatchAxis(x!, bx!, 0, n);
    const u0 = moveBatchAxis(u!, bu!, 0, n);
    return [[scatterAdd(x0, moveaxis(ind!, bi, 0), u0, { axis: axis + 1, batchDims: batchDims + 1 })], [0]];
  },
  printParams: ({ axis, batchDims }) => ({ axis, batch_dims: batchDims, mode: "drop" }),
});

/**
 * The transpose of `gather`: `operand` plus `updates` added at `indices` along `axis` (repeated
 * indices accumulate). Out-of-range indices are dropped (JAX's default mode for scatter).
 *
 * @example scatterAdd(zeros3, idx, u, { axis: 0 }); // idx = [2, 2], u = [1, 1] gives [0, 0, 2]
 */
export function scatterAdd(
  operand: Tensor,
  indices: Tensor,
  updates: Tensor,
  { axis, batchDims = 0 }: { axis: number; batchDims?: number },
): Tensor {
  return bind1(scatterAdd_p, [operand, indices, updates], { axis, batchDims });
}

// ---------------------------------------------------------------------------------------------
// dynamic_slice / dynamic_update_slice

export interface DynamicSliceParams {
  sliceSizes: readonly number[];
}

function checkStarts(op: string, x: ShapedArray, starts: readonly ShapedArray[]): void {
  if (starts.length !== x.shape.length) {
    throw new ShapeError(
      `needs ${x.shape.length} start indices for operand ${fmtShape(x.shape)}, got ${starts.length}`,
      op,
    );
  }
  starts.forEach((s, i) => {
    if (s.shape.length !== 0)
      throw new ShapeError(`start index ${i} must be a scalar, got ${avalToString(s)}`, op);
    checkIndexDType(op, `start index ${i}`, s);
  });
}

/** Reads the start indices and clamps them so the window fits, as XLA does. */
function clampedStarts(x: Shape, starts: readonly Tensor[], sizes: readonly number[]): number[] {
  return starts.map((s, i) => Math.min(Math.max(s._buf![0]!, 0), x[i]! - sizes[i]!));
}

export const dynamicSlice_p: Primitive<DynamicSliceParams> = definePrimitive<DynamicSliceParams>({
  name: "dynamic_slice",
  abstractEval([x, ...starts], { sliceSizes }) {
    const op = "dynamic_slice";
    checkStarts(op, x!, starts);
    checkIntList(op, "slice sizes", sliceSizes, x!.shape.length, x!.shape);
    sliceSizes.forEach((s, i) => {
      if (s < 0 || s > x!.shape[i]!)
        throw new ShapeError(
          `slice sizes ${JSON.stringify(sliceSizes)} do not fit operand ${fmtShape(x!.shape)} (dimension ${i})`,
          op,
        );
    });
    return [withShape(x!, [...sliceSizes])];
  },
  impl([x, ...starts], { sliceSizes }, [out]) {
    const inStrides = stridesOf(x!.shape);
    const offset = clampedStarts(x!.shape, starts, sliceSizes).reduce(
      (acc, s, i) => acc + s * inStrides[i]!,
      0,
    );
    return [
      Tensor._fromBuffer(
        out!.shape,
        out!.dtype,
        stridedCopy(x!._buf!, out!.shape, inStrides, offset),
        out!.weakType,
      ),
    ];
  },
  jvp([x, ...starts], [t], params) {
    const y = bind1(dynamicSlice_p, [x!, ...starts], params);
    return [[y], [isZero(t!) ? new Zero(y.aval) : bind1(dynamicSlice_p, [t!, ...starts], params)]];
  },
  transpose([ct], [x, ...starts]) {
    const aval = avalOf(x!);
    const nulls = starts.map(() => null);
    if (isZero(ct!)) return [new Zero(aval), ...nulls];
    return [dynamicUpdateSlice(zerosOf(aval), ct!, starts as Tensor[]), ...nulls];
  },
  batch([x, ...starts], [bx, ...bs], { sliceSizes }, n) {
    if (bs.every((b) => b === null)) {
      const zero = scalar(0, "int32");
      return [[dynamicSlice(moveBatchAxis(x!, bx!, 0, n), [zero, ...starts], [n, ...sliceSizes])], [0]];
    }
    // Per-example starts: one batched gather per dimension, reading start + 0..size-1 along it.
    let cur = moveBatchAxis(x!, bx!, 0, n);
    const shape = x!.shape.filter((_, i) => bx === null || i !== bx);
    sliceSizes.forEach((size, d) => {
      const s = batchedStart(starts[d]!, bs[d]!, n, shape[d]! - size);
      const idx = add(
        broadcastInDim(s, [n, size], [0]),
        broadcastInDim(iota("int32", [size], 0), [n, size], [1]),
      );
      cur = gather(cur, idx, { axis: d + 1, batchDims: 1 });
    });
    return [[cur], [0]];
  },
  printParams: ({ sliceSizes }) => ({ slice_sizes: tuple(sliceSizes) }),
});

/** A start index as an int32 vector over the batch, clamped into `[0, hi]`. */
function batchedStart(s: Tensor, b: BDim, n: number, hi: number): Tensor {
  const v = convertElementType(b === null ? broadcastInDim(s, [n], []) : s, "int32");
  const c = (value: number) => broadcastInDim(scalar(value, "int32"), [n], []);
  return max(min(v, c(hi)), c(0));
}

/**
 * `lax.dynamic_slice`: the window of `sliceSizes` at run-time `startIndices` (rank-0 integers),
 * each start clamped so the window fits inside `x`, as XLA does.
 *
 * @example dynamicSlice(x, [i], [2]); // x = [5, 6, 7], i = 5 gives [6, 7] (clamped)
 */
export function dynamicSlice(x: Tensor, startIndices: Tensor[], sliceSizes: number[]): Tensor {
  return bind1(dynamicSlice_p, [x, ...startIndices], { sliceSizes: [...sliceSizes] });
}

export const dynamicUpdateSlice_p: Primitive<Record<string, never>> = definePrimitive({
  name: "dynamic_update_slice",
  abstractEval([x, u, ...starts]) {
    const op = "dynamic_update_slice";
    checkStarts(op, x!, starts);
    if (u!.dtype !== x!.dtype)
      throw new DTypeError(
        `update ${avalToString(u!)} must have the operand's dtype ${avalToString(x!)}`,
        op,
      );
    if (u!.shape.length !== x!.shape.length || u!.shape.some((d, i) => d > x!.shape[i]!)) {
      throw new ShapeError(
        `update ${fmtShape(u!.shape)} does not fit inside operand ${fmtShape(x!.shape)}`,
        op,
      );
    }
    return [{ shape: x!.shape, dtype: x!.dtype, weakType: x!.weakType && u!.weakType }];
  },
  impl([x, u, ...starts], _params, [out]) {
    const buf = x!._buf!.slice();
    const src = u!._buf!;
    if (src.length > 0) {
      const outStrides = stridesOf(x!.shape);
      const st = clampedStarts(x!.shape, starts, u!.shape);
      const offset = st.reduce((acc, s, i) => acc + s * outStrides[i]!, 0);
      const rank = u!.shape.length;
      const idx = new Array<number>(rank).fill(0);
      let o = offset;
      for (let p = 0; p < src.length; p++) {
        buf[o] = src[p]!;
        for (let k = rank - 1; k >= 0; k--) {
          o += outStrides[k]!;
          if (++idx[k]! < u!.shape[k]!) break;
          o -= outStrides[k]! * u!.shape[k]!;
          idx[k] = 0;
        }
      }
    }
    return [Tensor._fromBuffer(out!.shape, out!.dtype, buf, out!.weakType)];
  },
  jvp([x, u, ...starts], [tx, tu]) {
    const y = dynamicUpdateSlice(x!, u!, starts);
    if (isZero(tx!) && isZero(tu!)) return [[y], [new Zero(y.aval)]];
    return [[y], [dynamicUpdateSlice(instantiate(tx!), instantiate(tu!), starts)]];
  },
  transpose([ct], [x, u, ...starts]) {
    const xLinear = !(x instanceof Tensor);
    const uLinear = !(u instanceof Tensor);
    const uAval = avalOf(u!);
    const nulls = starts.map(() => null);
    if (isZero(ct!))
      return [xLinear ? new Zero(avalOf(x!)) : null, uLinear ? new Zero(uAval) : null, ...nulls];
    const st = starts as Tensor[];
    return [
      xLinear ? dynamicUpdateSlice(ct!, zerosOf(uAval), st) : null,
      uLinear ? dynamicSlice(ct!, st, [...uAval.shape]) : null,
      ...nulls,
    ];
  },
  batch([x, u, ...starts], [bx, bu, ...bs], _params, n) {
    const x0 = moveBatchAxis(x!, bx!, 0, n);
    const u0 = moveBatchAxis(u!, bu!, 0, n);
    if (bs.every((b) => b === null))
      return [[dynamicUpdateSlice(x0, u0, [scalar(0, "int32"), ...starts])], [0]];
    if (u0.size === 0) return [[x0], [0]];
    // Per-example starts: spread the update over the operand's shape with one batched gather per
    // dimension (reading update[i - start]), and keep it only inside the window.
    const D = x0.shape.slice(1);
    const S = u0.shape.slice(1);
    let cur = u0;
    let mask: Tensor | null = null;
    D.forEach((dim, d) => {
      const s = batchedStart(starts[d]!, bs[d]!, n, dim - S[d]!);
      const rel = sub(
        broadcastInDim(iota("int32", [dim], 0), [n, dim], [1]),
        broadcastInDim(s, [n, dim], [0]),
      );
      cur = gather(cur, rel, { axis: d + 1, batchDims: 1 });
      const c = (v: number) => broadcastInDim(scalar(v, "int32"), [n, dim], []);
      const inside = broadcastInDim(and(ge(rel, c(0)), lt(rel, c(S[d]!))), x0.shape, [0, d + 1]);
      mask = mask === null ? inside : and(mask, inside);
    });
    return [[select(mask!, cur, x0)], [0]];
  },
});

/**
 * `lax.dynamic_update_slice`: `x` with `update` written at run-time `startIndices` (rank-0
 * integers), each start clamped so the update fits, as XLA does.
 *
 * @example dynamicUpdateSlice(x, u, [i]); // x = [0, 0, 0], u = [1], i = 1 gives [0, 1, 0]
 */
export function dynamicUpdateSlice(x: Tensor, update: Tensor, startIndices: Tensor[]): Tensor {
  return bind1(dynamicUpdateSlice_p, [x, update, ...startIndices], {});
}
