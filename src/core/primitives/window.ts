/**
 * Windowed reductions (pooling): `reduceWindow` with sum, max or min, and the two helper primitives
 * that make max/min pooling differentiable to any order, as in JAX: `select_and_gather_add` (the
 * tangent at each window's selected element; linear in the tangent) and its transpose
 * `select_and_scatter_add` (each window's cotangent added at its selected element).
 */
import { allocate, type DType } from "../dtype.js";
import { ConfigError, DTypeError, fmtShape, ShapeError } from "../errors.js";
import { definePrimitive, type Primitive, Zero } from "../primitive.js";
import { sizeOf, stridesOf } from "../shape.js";
import { avalToString, type ShapedArray, Tensor } from "../tensor.js";
import { bind1 } from "../trace.js";
import { dilateDim } from "./conv.js";
import { moveaxis, moveBatchAxis, tuple } from "./structural.js";
import { isZero } from "./util.js";

export type WindowOp = "sum" | "max" | "min";

/** The window geometry shared by the three primitives; every list has one entry per operand axis. */
export interface WindowParams {
  windowDimensions: readonly number[];
  windowStrides: readonly number[];
  padding: readonly (readonly [number, number])[];
  baseDilation: readonly number[];
  windowDilation: readonly number[];
}

export interface ReduceWindowParams extends WindowParams {
  op: WindowOp;
}

export interface SelectParams extends WindowParams {
  /** Which element a window selects: its maximum (`"max"`, JAX's `ge`) or minimum (`"min"`). */
  select: "max" | "min";
}

function checkWindow(op: string, shape: readonly number[], p: WindowParams): number[] {
  const r = shape.length;
  for (const [name, v] of [
    ["windowDimensions", p.windowDimensions],
    ["windowStrides", p.windowStrides],
    ["baseDilation", p.baseDilation],
    ["windowDilation", p.windowDilation],
  ] as const) {
    if (v.length !== r || v.some((s) => !Number.isInteger(s) || s < (name === "windowDimensions" ? 0 : 1))) {
      throw new ShapeError(
        `${name} ${JSON.stringify(v)} must hold ${r} ${name === "windowDimensions" ? "non-negative" : "positive"} integers for operand ${fmtShape(shape)}`,
        op,
      );
    }
  }
  if (
    p.padding.length !== r ||
    p.padding.some((q) => q.length !== 2 || !Number.isInteger(q[0]) || !Number.isInteger(q[1]))
  ) {
    throw new ShapeError(
      `padding ${JSON.stringify(p.padding)} must hold ${r} integer pairs for operand ${fmtShape(shape)}`,
      op,
    );
  }
  return shape.map((n, i) => {
    const inD = dilateDim(n, p.baseDilation[i]!) + p.padding[i]![0] + p.padding[i]![1];
    const wD = dilateDim(p.windowDimensions[i]!, p.windowDilation[i]!);
    if (inD < 0)
      throw new ShapeError(
        `padding ${JSON.stringify(p.padding)} makes dimension ${i} of operand ${fmtShape(shape)} negative`,
        op,
      );
    return inD >= wD ? Math.floor((inD - wD) / p.windowStrides[i]!) + 1 : 0;
  });
}

/**
 * For each output position and each window offset, the flat operand index it reads, or -1 in
 * padding and in the holes of the base dilation. Rows are output positions, in row-major order.
 */
/**
 * Window tables, cached by geometry: a training step pools (and scatters back) the same shapes every
 * call, and building the table costs more than the pooling itself. Tables are never written after
 * they are built. The cache holds at most `TABLE_CACHE_BYTES` of tables, least recently used first out.
 */
const tableCache = new Map<string, { table: Int32Array; W: number }>();
const TABLE_CACHE_BYTES = 64 * 2 ** 20;
let tableCacheBytes = 0;

function windowTable(
  shape: readonly number[],
  outShape: readonly number[],
  p: WindowParams,
): { table: Int32Array; W: number } {
  const key = JSON.stringify([
    shape,
    outShape,
    p.windowDimensions,
    p.windowStrides,
    p.padding,
    p.baseDilation,
    p.windowDilation,
  ]);
  const hit = tableCache.get(key);
  if (hit) {
    tableCache.delete(key);
    tableCache.set(key, hit);
    return hit;
  }
  const built = buildWindowTable(shape, outShape, p);
  const bytes = built.table.byteLength;
  if (bytes <= TABLE_CACHE_BYTES) {
    while (tableCacheBytes + bytes > TABLE_CACHE_BYTES) {
      const [oldKey, old] = tableCache.entries().next().value!;
      tableCache.delete(oldKey);
      tableCacheBytes -= old.table.byteLength;
    }
    tableCache.set(key, built);
    tableCacheBytes += bytes;
  }
  return built;
}

function buildWindowTable(
  shape: readonly number[],
  outShape: readonly number[],
  p: WindowParams,
): { table: Int32Array; W: number } {
  const r = shape.length;
  const perDim: Int32Array[] = [];
  for (let d = 0; d < r; d++) {
    const k = p.windowDimensions[d]!;
    const t = new Int32Array(outShape[d]! * k);
    const bd = p.baseDilation[d]!;
    const dilated = dilateDim(shape[d]!, bd);
    for (let o = 0; o < outShape[d]!; o++) {
      for (let w = 0; w < k; w++) {
        const q = o * p.windowStrides[d]! + w * p.windowDilation[d]! - p.padding[d]![0];
        t[o * k + w] = q < 0 || q >= dilated || q % bd !== 0 ? -1 : q / bd;
      }
    }
    perDim.push(t);
  }
  const P = sizeOf(outShape);
  const W = sizeOf(p.windowDimensions);
  const strides = stridesOf(shape);
  const table = new Int32Array(P * W);
  const oIdx = new Array<number>(r).fill(0);
  for (let po = 0; po < P; po++) {
    let rem = po;
    for (let d = r - 1; d >= 0; d--) {
      oIdx[d] = rem % outShape[d]!;
      rem = Math.floor(rem / outShape[d]!);
    }
    for (let w = 0; w < W; w++) {
      let wr = w;
      let off = 0;
      for (let d = r - 1; d >= 0; d--) {
        const k = p.windowDimensions[d]!;
        const v = perDim[d]![oIdx[d]! * k + (wr % k)]!;
        wr = Math.floor(wr / k);
        if (v < 0 || off < 0) off = -1;
        else off += v * strides[d]!;
      }
      table[po * W + w] = off;
    }
  }
  return { table, W };
}

function identity(op: WindowOp, dtype: DType): number {
  if (op === "sum") return 0;
  if (dtype === "int32") return op === "max" ? -2147483648 : 2147483647;
  if (dtype === "uint32") return op === "max" ? 0 : 4294967295;
  if (dtype === "bool") return op === "max" ? 0 : 1;
  return op === "max" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
}

function store(out: ShapedArray, vals: Float64Array): Tensor {
  const buf = allocate(out.dtype, vals.length);
  if (out.dtype === "int32") for (let i = 0; i < vals.length; i++) buf[i] = vals[i]! | 0;
  else if (out.dtype === "uint32") for (let i = 0; i < vals.length; i++) buf[i] = vals[i]! >>> 0;
  else buf.set(vals);
  return Tensor._fromBuffer(out.shape, out.dtype, buf, out.weakType);
}

/**
 * The operand index each window selects (first maximum or minimum among its real elements, or the
 * first NaN, which is what the window reduces to), or -1 for a window made only of padding. Gather and scatter share it,
 * which makes them exact transposes of each other.
 */
function selectIndices(operand: Tensor, outShape: readonly number[], p: SelectParams): Int32Array {
  const { table, W } = windowTable(operand.shape, outShape, p);
  const x = operand._buf!;
  const P = sizeOf(outShape);
  const sel = new Int32Array(P).fill(-1);
  const better = p.select === "max" ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
  for (let po = 0; po < P; po++) {
    let best = -1;
    let bv = 0;
    for (let w = 0; w < W; w++) {
      const i = table[po * W + w]!;
      if (i < 0) continue;
      const v = x[i]!;
      if (best < 0 || (!Number.isNaN(bv) && (Number.isNaN(v) || better(v, bv)))) {
        best = i;
        bv = v;
      }
    }
    sel[po] = best;
  }
  return sel;
}

const windowPrint = (p: WindowParams) => ({
  window_dimensions: tuple(p.windowDimensions),
  window_strides: tuple(p.windowStrides),
  padding: `(${p.padding.map(([lo, hi]) => `(${lo}, ${hi})`).join(", ")}${p.padding.length === 1 ? "," : ""})`,
  base_dilation: tuple(p.baseDilation),
  window_dilation: tuple(p.windowDilation),
});

/** The window parameters with a new leading axis of window 1, stride 1 and no padding. */
function withLeadingAxis<P extends WindowParams>(p: P): P {
  return {
    ...p,
    windowDimensions: [1, ...p.windowDimensions],
    windowStrides: [1, ...p.windowStrides],
    padding: [[0, 0], ...p.padding],
    baseDilation: [1, ...p.baseDilation],
    windowDilation: [1, ...p.windowDilation],
  };
}

// ---------------------------------------------------------------------------------------------

export const reduceWindow_p: Primitive<ReduceWindowParams> = definePrimitive<ReduceWindowParams>({
  name: "reduce_window",
  abstractEval([x], p) {
    const op = `reduce_window_${p.op}`;
    if (!["sum", "max", "min"].includes(p.op))
      throw new ConfigError(
        `unknown reduction ${JSON.stringify(p.op)}; expected sum, max or min`,
        "reduce_window",
      );
    if (x!.dtype === "bool" && p.op === "sum")
      throw new DTypeError(`does not accept ${avalToString(x!)}`, op);
    return [{ shape: checkWindow(op, x!.shape, p), dtype: x!.dtype, weakType: x!.weakType }];
  },
  impl([x], p, [out]) {
    const { table, W } = windowTable(x!.shape, out!.shape, p);
    const src = x!._buf!;
    const P = sizeOf(out!.shape);
    const init = identity(p.op, x!.dtype);
    const vals = new Float64Array(P);
    for (let po = 0; po < P; po++) {
      let acc = init;
      const base = po * W;
      if (p.op === "sum") {
        for (let w = 0; w < W; w++) {
          const i = table[base + w]!;
          if (i >= 0) acc += src[i]!;
        }
      } else {
        const isMax = p.op === "max";
        for (let w = 0; w < W; w++) {
          const i = table[base + w]!;
          if (i < 0) continue;
          const v = src[i]!;
          // NaN propagates, as XLA's max/min do.
          if (Number.isNaN(v) || (isMax ? v > acc : v < acc)) acc = v;
          if (Number.isNaN(acc)) break;
        }
      }
      vals[po] = acc;
    }
    return [store(out!, vals)];
  },
  jvp([x], [t], p) {
    const y = bind1(reduceWindow_p, [x!], p);
    if (isZero(t!)) return [[y], [new Zero(y.aval)]];
    if (p.op === "sum") return [[y], [bind1(reduceWindow_p, [t!], p)]];
    const { op: _op, ...geom } = p;
    return [[y], [selectAndGatherAdd(t!, x!, p.op, geom)]];
  },
  transpose([ct], [x], p) {
    const aval = (x as { aval: ShapedArray }).aval;
    if (p.op !== "sum") throw new Error(`reduce_window transpose: reduce_window_${p.op} is not linear`);
    if (isZero(ct!)) return [new Zero(aval)];
    // JAX's `_reduce_window_sum_transpose_rule`: each input element receives the sum of the
    // cotangents of the windows that cover it, i.e. a window sum over the cotangent dilated by the
    // strides and padded as for a convolution's lhs transpose.
    const pads = aval.shape.map((n, i): [number, number] => {
      const inD = dilateDim(n, p.baseDilation[i]!);
      const wD = dilateDim(p.windowDimensions[i]!, p.windowDilation[i]!);
      const outD = dilateDim(ct!.shape[i]!, p.windowStrides[i]!);
      const before = wD - p.padding[i]![0] - 1;
      return [before, inD + wD - 1 - outD - before];
    });
    const res = bind1(reduceWindow_p, [ct!], {
      op: "sum",
      windowDimensions: p.windowDimensions,
      windowStrides: p.baseDilation,
      padding: pads,
      baseDilation: p.windowStrides,
      windowDilation: p.windowDilation,
    } satisfies ReduceWindowParams);
    return [res];
  },
  batch([x], [b], p) {
    return [[bind1(reduceWindow_p, [moveaxis(x!, b!, 0)], withLeadingAxis(p))], [0]];
  },
  printParams: (p) => ({ op: p.op, ...windowPrint(p) }),
});

function selectAbstractEval(
  name: string,
  first: ShapedArray,
  operand: ShapedArray,
  p: SelectParams,
  scatter: boolean,
): ShapedArray {
  if (p.select !== "max" && p.select !== "min")
    throw new ConfigError(`unknown selection ${JSON.stringify(p.select)}; expected max or min`, name);
  if (first.dtype !== operand.dtype)
    throw new DTypeError(
      `operands must have equal dtypes, got ${avalToString(first)} and ${avalToString(operand)}`,
      name,
    );
  const outShape = checkWindow(name, operand.shape, p);
  const expect = scatter ? outShape : operand.shape;
  if (first.shape.length !== expect.length || first.shape.some((d, i) => d !== expect[i])) {
    const what = scatter ? "source (the window outputs)" : "tangent (the operand's shape)";
    throw new ShapeError(
      `${what} must have shape ${fmtShape(expect)}, got ${fmtShape(first.shape)} for operand ${fmtShape(operand.shape)}`,
      name,
    );
  }
  return { shape: scatter ? operand.shape : outShape, dtype: first.dtype, weakType: first.weakType };
}

/** Batches a (linear, operand) pair: both batch axes go first, an unmapped one is broadcast. */
function selectBatch(prim: () => Primitive<SelectParams>): Primitive<SelectParams>["batch"] {
  return ([a, operand], [ba, bo], p, n) => {
    const a0 = moveBatchAxis(a!, ba!, 0, n);
    const o0 = moveBatchAxis(operand!, bo!, 0, n);
    return [[bind1(prim(), [a0, o0], withLeadingAxis(p))], [0]];
  };
}

/**
 * `select_and_gather_add(tangent, operand)`: for each window of `operand`, the tangent at the
 * element the window selects (its max or min). Linear in `tangent`.
 */
export const selectAndGatherAdd_p: Primitive<SelectParams> = definePrimitive<SelectParams>({
  name: "select_and_gather_add",
  abstractEval: ([t, x], p) => [selectAbstractEval("select_and_gather_add", t!, x!, p, false)],
  impl([t, x], p, [out]) {
    const sel = selectIndices(x!, out!.shape, p);
    const tb = t!._buf!;
    const vals = new Float64Array(sel.length);
    for (let i = 0; i < sel.length; i++) vals[i] = sel[i]! >= 0 ? tb[sel[i]!]! : 0;
    return [store(out!, vals)];
  },
  jvp([t, x], [tt], p) {
    const y = bind1(selectAndGatherAdd_p, [t!, x!], p);
    // The selection is piecewise constant in the operand, so only the tangent's tangent matters.
    return [[y], [isZero(tt!) ? new Zero(y.aval) : bind1(selectAndGatherAdd_p, [tt!, x!], p)]];
  },
  transpose([ct], [t, x], p) {
    const aval = (t as { aval: ShapedArray }).aval;
    if (!(x instanceof Tensor))
      throw new Error("select_and_gather_add transpose: the operand cannot be linear");
    if (isZero(ct!)) return [new Zero(aval), null];
    return [bind1(selectAndScatterAdd_p, [ct!, x], p), null];
  },
  batch: (args, dims, p, n) => selectBatch(() => selectAndGatherAdd_p)(args, dims, p, n),
  printParams: (p) => ({ select_prim: p.select === "max" ? "ge" : "le", ...windowPrint(p) }),
});

/**
 * `select_and_scatter_add(source, operand)`: adds each window's `source` value at the element of
 * `operand` that the window selects; the result has the operand's shape. Linear in `source`.
 */
export const selectAndScatterAdd_p: Primitive<SelectParams> = definePrimitive<SelectParams>({
  name: "select_and_scatter_add",
  abstractEval: ([s, x], p) => [selectAbstractEval("select_and_scatter_add", s!, x!, p, true)],
  impl([s, x], p, [out]) {
    const sel = selectIndices(x!, s!.shape, p);
    const sb = s!._buf!;
    const vals = new Float64Array(sizeOf(out!.shape));
    for (let i = 0; i < sel.length; i++) if (sel[i]! >= 0) vals[sel[i]!]! += sb[i]!;
    return [store(out!, vals)];
  },
  jvp([s, x], [ts], p) {
    const y = bind1(selectAndScatterAdd_p, [s!, x!], p);
    return [[y], [isZero(ts!) ? new Zero(y.aval) : bind1(selectAndScatterAdd_p, [ts!, x!], p)]];
  },
  transpose([ct], [s, x], p) {
    const aval = (s as { aval: ShapedArray }).aval;
    if (!(x instanceof Tensor))
      throw new Error("select_and_scatter_add transpose: the operand cannot be linear");
    if (isZero(ct!)) return [new Zero(aval), null];
    return [bind1(selectAndGatherAdd_p, [ct!, x], p), null];
  },
  batch: (args, dims, p, n) => selectBatch(() => selectAndScatterAdd_p)(args, dims, p, n),
  printParams: (p) => ({ select_prim: p.select === "max" ? "ge" : "le", ...windowPrint(p) }),
});

/** `select_and_gather_add` with explicit geometry (used by max/min pooling's JVP). */
export function selectAndGatherAdd(
  tangent: Tensor,
  operand: Tensor,
  select: "max" | "min",
  geom: WindowParams,
): Tensor {
  return bind1(selectAndGatherAdd_p, [tangent, operand], { ...geom, select } satisfies SelectParams);
}

/** `select_and_scatter_add` with explicit geometry (max/min pooling's VJP). */
export function selectAndScatterAdd(
  source: Tensor,
  operand: Tensor,
  select: "max" | "min",
  geom: WindowParams,
): Tensor {
  return bind1(selectAndScatterAdd_p, [source, operand], { ...geom, select } satisfies SelectParams);
}

export interface ReduceWindowOptions {
  baseDilation?: readonly number[];
  windowDilation?: readonly number[];
}

/**
 * `lax.reduce_window` for sum, max and min: reduces each window of `x` (one window entry, stride
 * and `[lo, hi]` padding per axis; padding holds the reduction's identity).
 *
 * @example
 * reduceWindow(x, "max", [1, 2, 2, 1], [1, 2, 2, 1], [[0, 0], [0, 0], [0, 0], [0, 0]]); // 2×2 max pooling, NHWC
 */
export function reduceWindow(
  x: Tensor,
  op: WindowOp,
  windowDimensions: readonly number[],
  windowStrides: readonly number[],
  padding: readonly (readonly [number, number])[],
  opts: ReduceWindowOptions = {},
): Tensor {
  const ones = x.shape.map(() => 1);
  return bind1(reduceWindow_p, [x], {
    op,
    windowDimensions: [...windowDimensions],
    windowStrides: [...windowStrides],
    padding: padding.map(([lo, hi]) => [lo, hi] as [number, number]),
    baseDilation: [...(opts.baseDilation ?? ones)],
    windowDilation: [...(opts.windowDilation ?? ones)],
  } satisfies ReduceWindowParams);
}
