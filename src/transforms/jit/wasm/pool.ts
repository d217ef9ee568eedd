/**
 * Window kernels of the wasm backend on flat row-major float32 buffers: `reduce_window` (sum, max,
 * min), `select_and_scatter_add` (max/min pooling's gradient) and `rev` (the flipped kernel of a
 * convolution's input gradient).
 *
 * Sum, max and min pooling and the max/min gradient, with the untouched trailing axes (NHWC's
 * channels) a multiple of 4, run as generated WebAssembly SIMD over a per-geometry window table
 * (8–20× the JS loops). Everything else (NCHW pooling, say) runs as JS loops that take an array and
 * an element offset: a Tensor's own buffer (offset 0) or the heap's Float32Array view (offset =
 * byte pointer / 4), so one loop serves `run` and `runPtr`.
 *
 * Results match the reference implementations (src/core/primitives/window.ts, conv.ts) bit for bit:
 * the same visiting order, the same tie and NaN rules, sums accumulated in float64 and rounded once.
 */
import type { WindowParams } from "../../../core/primitives/window.js";
import { I32, ModuleBuilder, Op, Simd, V128 } from "./assembler.js";
import type { WasmHeap } from "./heap.js";

/**
 * A window geometry brought to five axes: the operand is viewed as [p0, ia, p1, ib, p2] where `ia`
 * and `ib` are the (at most two) windowed axes and p0, p1, p2 are the products of the untouched
 * axes before, between and after them. The output is [p0, oa, p1, ob, p2].
 */
export interface WindowGeometry {
  p0: number;
  p1: number;
  p2: number;
  ia: number;
  ib: number;
  oa: number;
  ob: number;
  /** Window sizes, strides, window dilations and low paddings of the two windowed axes. */
  ka: number;
  kb: number;
  sa: number;
  sb: number;
  da: number;
  db: number;
  pa: number;
  pb: number;
}

/**
 * Plans a window reduction over `shape` (output `outShape`), or null when it does not fit this
 * kernel: base dilation, or more than two axes with a window, a stride or padding.
 *
 * @example
 * ```ts
 * const g = planWindow([8, 24, 24, 64], [8, 12, 12, 64], maxPool2x2Params);
 * // { p0: 8, ia: 24, oa: 12, p1: 1, ib: 24, ob: 12, p2: 64, ka: 2, sa: 2, … }
 * ```
 */
export function planWindow(
  shape: readonly number[],
  outShape: readonly number[],
  p: WindowParams,
): WindowGeometry | null {
  const r = shape.length;
  if (outShape.length !== r || p.baseDilation.some((d) => d !== 1)) return null;
  const active: number[] = [];
  for (let d = 0; d < r; d++) {
    const [lo, hi] = p.padding[d]!;
    if (p.windowDimensions[d] !== 1 || p.windowStrides[d] !== 1 || lo !== 0 || hi !== 0) active.push(d);
    else if (outShape[d] !== shape[d]) return null;
  }
  if (active.length > 2) return null;
  const prod = (a: number, b: number) => shape.slice(a, b).reduce((x, y) => x * y, 1);
  // One windowed axis (or none): a dummy second axis of size 1 right after it keeps the untouched
  // trailing axes in the contiguous innermost block p2.
  const a = active[0] ?? 0;
  const b = active[1];
  const axis = (d: number | undefined) =>
    d === undefined
      ? { i: 1, o: 1, k: 1, s: 1, dil: 1, pad: 0 }
      : {
          i: shape[d]!,
          o: outShape[d]!,
          k: p.windowDimensions[d]!,
          s: p.windowStrides[d]!,
          dil: p.windowDilation[d]!,
          pad: p.padding[d]![0],
        };
  const A = active.length === 0 ? axis(undefined) : axis(a);
  const B = axis(b);
  const p0 = active.length === 0 ? 1 : prod(0, a);
  const p1 = b === undefined ? 1 : prod(a + 1, b);
  const p2 = active.length === 0 ? prod(0, r) : prod((b ?? a) + 1, r);
  return {
    p0,
    p1,
    p2,
    ia: A.i,
    ib: B.i,
    oa: A.o,
    ob: B.o,
    ka: A.k,
    kb: B.k,
    sa: A.s,
    sb: B.s,
    da: A.dil,
    db: B.dil,
    pa: A.pad,
    pb: B.pad,
  };
}

/** Per output index of one axis, the input indices its window reads (in tap order), padding skipped. */
function tapTable(
  n: number,
  out: number,
  k: number,
  s: number,
  d: number,
  pad: number,
): { idx: Int32Array; count: Int32Array } {
  const idx = new Int32Array(Math.max(out * k, 1));
  const count = new Int32Array(Math.max(out, 1));
  for (let o = 0; o < out; o++) {
    let c = 0;
    for (let t = 0; t < k; t++) {
      const q = o * s + t * d - pad;
      if (q >= 0 && q < n) idx[o * k + c++] = q;
    }
    count[o] = c;
  }
  return { idx, count };
}

/**
 * Whether no operand element lies in two windows (then scatter-adds never meet and need no float64
 * accumulator): along each windowed axis the stride is at least the dilated window.
 */
export function windowsDisjoint(g: WindowGeometry): boolean {
  const fits = (k: number, s: number, d: number) => k <= 1 || s >= (k - 1) * d + 1;
  return fits(g.ka, g.sa, g.da) && fits(g.kb, g.sb, g.db);
}

/**
 * Calls `body(srcBase, dstBase, offs, n)` for each output position of the outer four axes: the
 * operand offset of the position's p-block, the output offset, and the `n` valid window taps as
 * operand offsets relative to `srcBase` (in the reference's row-major window order).
 */
function forEachWindow(
  g: WindowGeometry,
  body: (srcBase: number, dstBase: number, offs: Int32Array, n: number) => void,
): void {
  const A = tapTable(g.ia, g.oa, g.ka, g.sa, g.da, g.pa);
  const B = tapTable(g.ib, g.ob, g.kb, g.sb, g.db, g.pb);
  const sB = g.p2;
  const sP1 = g.ib * sB;
  const sA = g.p1 * sP1;
  const sP0 = g.ia * sA;
  const oP1 = g.ob * g.p2;
  const oA = g.p1 * oP1;
  const oP0 = g.oa * oA;
  const offs = new Int32Array(Math.max(g.ka * g.kb, 1));
  for (let p0 = 0; p0 < g.p0; p0++)
    for (let oa = 0; oa < g.oa; oa++) {
      const na = A.count[oa]!;
      for (let ob = 0; ob < g.ob; ob++) {
        const nb = B.count[ob]!;
        let n = 0;
        for (let ta = 0; ta < na; ta++) {
          const ra = A.idx[oa * g.ka + ta]! * sA;
          for (let tb = 0; tb < nb; tb++) offs[n++] = ra + B.idx[ob * g.kb + tb]! * sB;
        }
        for (let p1 = 0; p1 < g.p1; p1++)
          body(p0 * sP0 + p1 * sP1, p0 * oP0 + oa * oA + p1 * oP1 + ob * g.p2, offs, n);
      }
    }
}

/** Elements of the operand / of the output of a geometry. */
export const operandSize = (g: WindowGeometry): number => g.p0 * g.ia * g.p1 * g.ib * g.p2;
export const windowOutputSize = (g: WindowGeometry): number => g.p0 * g.oa * g.p1 * g.ob * g.p2;

/**
 * `reduce_window` on float32: `dst[dOff …]` (the output, [p0, oa, p1, ob, p2]) from `src[sOff …]`.
 * max and min propagate the first NaN and keep the first of equal elements (so −0 vs +0 is the
 * first one), an empty window gives the identity (∓∞, or 0 for sum); sums add in float64 in window
 * order, as the reference does.
 *
 * @example
 * ```ts
 * const g = planWindow(x.shape, [1, 1, 1, 1], params)!; // 2×2 max over a [1, 2, 2, 1] input
 * reduceWindowF32(new Float32Array([1, 4, 3, 2]), 0, out, 0, g, "max"); // out[0] = 4
 * ```
 */
export function reduceWindowF32(
  src: Float32Array,
  sOff: number,
  dst: Float32Array,
  dOff: number,
  g: WindowGeometry,
  op: "sum" | "max" | "min",
): void {
  const P2 = g.p2;
  forEachWindow(g, (sb, db, offs, n) => {
    const s0 = sOff + sb;
    const d0 = dOff + db;
    if (op === "sum") {
      for (let k = 0; k < P2; k++) {
        let acc = 0;
        for (let t = 0; t < n; t++) acc += src[s0 + offs[t]! + k]!;
        dst[d0 + k] = acc;
      }
    } else if (op === "max") {
      for (let k = 0; k < P2; k++) {
        let acc = Number.NEGATIVE_INFINITY;
        for (let t = 0; t < n; t++) {
          const v = src[s0 + offs[t]! + k]!;
          // Once acc is NaN neither test passes for a number, so the NaN stays.
          if (v > acc || Number.isNaN(v)) acc = v;
        }
        dst[d0 + k] = acc;
      }
    } else {
      for (let k = 0; k < P2; k++) {
        let acc = Number.POSITIVE_INFINITY;
        for (let t = 0; t < n; t++) {
          const v = src[s0 + offs[t]! + k]!;
          if (v < acc || Number.isNaN(v)) acc = v;
        }
        dst[d0 + k] = acc;
      }
    }
  });
}

/**
 * `select_and_scatter_add` on float32: `dst` (the operand's shape) is overwritten with, for each
 * window, `source`'s value added at the element the window selects in `operand` (its first maximum,
 * or minimum; the first NaN once one is seen, as the reference's selection does). Where windows
 * overlap, each element's contributions are summed in float64 in window order and rounded once.
 *
 * @example
 * ```ts
 * selectAndScatterAddF32(dy, 0, x, 0, dx, 0, planWindow(x.shape, dy.shape, params)!, "max");
 * ```
 */
export function selectAndScatterAddF32(
  source: Float32Array,
  srcOff: number,
  operand: Float32Array,
  xOff: number,
  dst: Float32Array,
  dOff: number,
  g: WindowGeometry,
  select: "max" | "min",
): void {
  const size = operandSize(g);
  const disjoint = windowsDisjoint(g);
  // Disjoint windows add at most one value to each element: 0 + v in float32 is exact (and turns
  // −0 into +0, as the reference's float64 0 + v does).
  const acc: Float32Array | Float64Array = disjoint ? dst : new Float64Array(size);
  const aOff = disjoint ? dOff : 0;
  acc.fill(0, aOff, aOff + size);
  const P2 = g.p2;
  const isMax = select === "max";
  forEachWindow(g, (sb, db, offs, n) => {
    if (n === 0) return;
    const x0 = xOff + sb;
    const s0 = srcOff + db;
    for (let k = 0; k < P2; k++) {
      let best = offs[0]! + k;
      let bv = operand[x0 + best]!;
      for (let t = 1; t < n; t++) {
        if (Number.isNaN(bv)) break;
        const i = offs[t]! + k;
        const v = operand[x0 + i]!;
        if (isMax ? v > bv || Number.isNaN(v) : v < bv || Number.isNaN(v)) {
          best = i;
          bv = v;
        }
      }
      acc[aOff + sb + best] += source[s0 + k]!;
    }
  });
  if (!disjoint) for (let i = 0; i < size; i++) dst[dOff + i] = acc[i]!;
}

/**
 * `rev` on float32: `dst[dOff …]` is `src[sOff …]` (row-major, `shape`) reversed along `dims`.
 * Adjacent axes that are both reversed (or both kept) are merged first, so the innermost loop is
 * as long as possible: a forward copy or a reversed one.
 *
 * @example
 * ```ts
 * revF32(new Float32Array([1, 2, 3, 4, 5, 6]), 0, out, 0, [2, 3], [1]); // out = [3, 2, 1, 6, 5, 4]
 * ```
 */
export function revF32(
  src: Float32Array,
  sOff: number,
  dst: Float32Array,
  dOff: number,
  shape: readonly number[],
  dims: readonly number[],
): void {
  const total = shape.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  const sizes: number[] = [];
  const flips: boolean[] = [];
  shape.forEach((n, d) => {
    if (n === 1) return;
    const f = dims.includes(d);
    if (sizes.length > 0 && flips[flips.length - 1] === f) sizes[sizes.length - 1]! *= n;
    else {
      sizes.push(n);
      flips.push(f);
    }
  });
  if (sizes.length === 0) {
    dst[dOff] = src[sOff]!;
    return;
  }
  const m = sizes.length;
  const strides = new Array<number>(m);
  let st = 1;
  for (let d = m - 1; d >= 0; d--) {
    strides[d] = st;
    st *= sizes[d]!;
  }
  // Source offset of the destination's first element, and signed source strides.
  let base = sOff;
  const sst = strides.map((s, d) => {
    if (!flips[d]) return s;
    base += (sizes[d]! - 1) * s;
    return -s;
  });
  const inner = sizes[m - 1]!;
  const innerFlip = flips[m - 1]!;
  const idx = new Array<number>(m - 1).fill(0);
  let s = base;
  for (let o = dOff, end = dOff + total; o < end; o += inner) {
    if (innerFlip) for (let k = 0; k < inner; k++) dst[o + k] = src[s - k]!;
    else dst.set(src.subarray(s, s + inner), o);
    // Advance the odometer over the outer axes.
    for (let d = m - 2; d >= 0; d--) {
      idx[d]!++;
      s += sst[d]!;
      if (idx[d]! < sizes[d]!) break;
      s -= sst[d]! * sizes[d]!;
      idx[d] = 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// WebAssembly SIMD: max/min pooling and its disjoint-window gradient, four channels per vector.

/**
 * The windows of a geometry as a table for the SIMD loops: one row of `taps + 2` i32 per output
 * position, `[outByteOffset, n, tap0, …]`, taps as byte offsets into the operand (valid ones only,
 * in the reference's window order).
 */
export function windowTable(g: WindowGeometry): { table: Int32Array; rows: number; taps: number } {
  const taps = Math.max(g.ka * g.kb, 1);
  const rows = g.p0 * g.oa * g.ob * g.p1;
  const table = new Int32Array(rows * (taps + 2));
  let r = 0;
  forEachWindow(g, (sb, db, offs, n) => {
    const at = r++ * (taps + 2);
    table[at] = 4 * db;
    table[at + 1] = n;
    for (let t = 0; t < n; t++) table[at + 2 + t] = 4 * (sb + offs[t]!);
  });
  return { table, rows, taps };
}

/** The largest window table (in i32) the SIMD paths build; above it the JS loops run. */
const MAX_TABLE = 1 << 23;

/** Whether the SIMD loops take a geometry: whole vectors of channels and a table of bounded size. */
export function simdFits(g: WindowGeometry): boolean {
  return g.p2 % 4 === 0 && g.p0 * g.oa * g.ob * g.p1 * (g.ka * g.kb + 2) <= MAX_TABLE;
}

// Float64 opcodes the assembler's tables do not name (memargs: log2 alignment 3, offset 0).
const F64_LOAD = 0x2b;
const F64_STORE = 0x39;
const F64_ADD = 0xa0;
const F64_PROMOTE_F32 = 0xbb;
const F32_DEMOTE_F64 = 0xb6;
const F64X2_PROMOTE_LOW_F32X4 = 0x5f;
const F32X4_DEMOTE_F64X2_ZERO = 0x5e;
const F64X2_ADD = 0xf0;

function buildPoolModule(memory: { shared: boolean; maxPages: number }): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder();
  m.importMemory("env", "memory", { shared: memory.shared, maxPages: memory.maxPages });
  for (const kind of ["max", "min", "sum"] as const) {
    // pool_<kind>(src, dst, table, rows, taps, channelBytes); sums add each lane in float64 (two
    // f64x2 accumulators per vector) and round once, as the reference does.
    const f = m.func(`pool_${kind}`, [I32, I32, I32, I32, I32, I32], []);
    const [SRC, DST, TAB, ROWS, TAPS, CB] = [0, 1, 2, 3, 4, 5];
    const [r, row, d, n, c, t, rowB] = Array.from({ length: 7 }, () => f.local(I32));
    const [acc, v, hi] = [f.local(V128), f.local(V128), f.local(V128)];
    f.localGet(TAPS).i32Const(2).op(Op.i32_add).i32Const(2).op(Op.i32_shl).localSet(rowB);
    f.localGet(TAB).localSet(row);
    f.forRange(
      r,
      () => f.i32Const(0),
      () => f.localGet(ROWS),
      1,
      () => {
        f.localGet(DST).localGet(row).i32Load().op(Op.i32_add).localSet(d);
        f.localGet(row).i32Load(4).localSet(n);
        f.forRange(
          c,
          () => f.i32Const(0),
          () => f.localGet(CB),
          16,
          () => {
            if (kind === "sum") f.i32x4Const(0).localTee(acc).localSet(hi);
            else
              f.f32x4Const(kind === "max" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY).localSet(
                acc,
              );
            f.forRange(
              t,
              () => f.i32Const(0),
              () => f.localGet(n),
              1,
              () => {
                f.localGet(SRC);
                f.localGet(row).localGet(t).i32Const(2).op(Op.i32_shl).op(Op.i32_add).i32Load(8);
                f.op(Op.i32_add).localGet(c).op(Op.i32_add).v128Load().localSet(v);
                if (kind === "sum") {
                  f.localGet(acc).localGet(v).simd(F64X2_PROMOTE_LOW_F32X4).simd(F64X2_ADD).localSet(acc);
                  f.localGet(hi).localGet(v).localGet(v).shuffle32([2, 3, 0, 1]);
                  f.simd(F64X2_PROMOTE_LOW_F32X4).simd(F64X2_ADD).localSet(hi);
                  return;
                }
                // acc = (v beats acc or v is NaN) ? v : acc; a NaN acc is never beaten.
                f.localGet(v).localGet(acc);
                f.localGet(v)
                  .localGet(acc)
                  .simd(kind === "max" ? Simd.f32x4_gt : Simd.f32x4_lt);
                f.localGet(v).localGet(v).simd(Simd.f32x4_ne).simd(Simd.v128_or);
                f.simd(Simd.v128_bitselect).localSet(acc);
              },
            );
            if (kind === "sum") {
              // [lo0, lo1, 0, 0] and [hi0, hi1, 0, 0] → [lo0, lo1, hi0, hi1]
              f.localGet(acc).simd(F32X4_DEMOTE_F64X2_ZERO).localGet(hi).simd(F32X4_DEMOTE_F64X2_ZERO);
              f.shuffle32([0, 1, 4, 5]).localSet(acc);
            }
            f.localGet(d).localGet(c).op(Op.i32_add).localGet(acc).v128Store();
          },
        );
        f.localGet(row).localGet(rowB).op(Op.i32_add).localSet(row);
      },
    );
  }
  for (const [kind, overlapping] of [
    ["max", false],
    ["min", false],
    ["max", true],
    ["min", true],
  ] as const) {
    // scatter_<kind>(source, operand, dst, table, rows, taps, channelBytes), disjoint windows: every
    // element of a window is written (the selected one gets source + 0, the others 0).
    // scatter64_<kind>(…, acc, …), any windows: each lane's source value is added in float64 at
    // its selected element of `acc` (float64, zeroed, at byte 2·(the element's operand offset)).
    const f = m.func(`scatter${overlapping ? "64" : ""}_${kind}`, [I32, I32, I32, I32, I32, I32, I32], []);
    const [SRCV, X, DST, TAB, ROWS, TAPS, CB] = [0, 1, 2, 3, 4, 5, 6];
    const [r, row, s0, n, c, t, rowB, tap] = Array.from({ length: 8 }, () => f.local(I32));
    const [bv, bi, v, mask, s] = Array.from({ length: 5 }, () => f.local(V128));
    f.localGet(TAPS).i32Const(2).op(Op.i32_add).i32Const(2).op(Op.i32_shl).localSet(rowB);
    f.localGet(TAB).localSet(row);
    const tapAt = () => {
      f.localGet(row).localGet(t).i32Const(2).op(Op.i32_shl).op(Op.i32_add).i32Load(8).localSet(tap);
    };
    f.forRange(
      r,
      () => f.i32Const(0),
      () => f.localGet(ROWS),
      1,
      () => {
        f.localGet(SRCV).localGet(row).i32Load().op(Op.i32_add).localSet(s0);
        f.localGet(row).i32Load(4).localSet(n);
        // A window of padding only selects nothing.
        f.localGet(n);
        f.if(() =>
          f.forRange(
            c,
            () => f.i32Const(0),
            () => f.localGet(CB),
            16,
            () => {
              f.localGet(X).localGet(row).i32Load(8).op(Op.i32_add).localGet(c).op(Op.i32_add);
              f.v128Load().localSet(bv);
              f.i32x4Const(0).localSet(bi);
              f.forRange(
                t,
                () => f.i32Const(1),
                () => f.localGet(n),
                1,
                () => {
                  tapAt();
                  f.localGet(X)
                    .localGet(tap)
                    .op(Op.i32_add)
                    .localGet(c)
                    .op(Op.i32_add)
                    .v128Load()
                    .localSet(v);
                  // Switch where v beats the best (or is the first NaN) and the best is no NaN yet.
                  f.localGet(v)
                    .localGet(bv)
                    .simd(kind === "max" ? Simd.f32x4_gt : Simd.f32x4_lt);
                  f.localGet(v).localGet(v).simd(Simd.f32x4_ne).simd(Simd.v128_or);
                  f.localGet(bv).localGet(bv).simd(Simd.f32x4_eq).simd(Simd.v128_and).localSet(mask);
                  f.localGet(v).localGet(bv).localGet(mask).simd(Simd.v128_bitselect).localSet(bv);
                  f.localGet(t).simd(Simd.i32x4_splat).localGet(bi).localGet(mask);
                  f.simd(Simd.v128_bitselect).localSet(bi);
                },
              );
              if (overlapping) {
                f.localGet(s0).localGet(c).op(Op.i32_add).v128Load().localSet(s);
                for (let lane = 0; lane < 4; lane++) {
                  // addr = acc + 2·(tap[bi[lane]] + c + 4·lane); acc[addr] += f64(s[lane])
                  f.localGet(row).localGet(bi).simdLane(Simd.i32x4_extract_lane, lane);
                  f.i32Const(2).op(Op.i32_shl).op(Op.i32_add).i32Load(8);
                  f.localGet(c)
                    .op(Op.i32_add)
                    .i32Const(4 * lane)
                    .op(Op.i32_add);
                  f.i32Const(1).op(Op.i32_shl).localGet(DST).op(Op.i32_add).localTee(tap);
                  f.localGet(tap).op(F64_LOAD, 3, 0);
                  f.localGet(s).simdLane(Simd.f32x4_extract_lane, lane).op(F64_PROMOTE_F32, F64_ADD);
                  f.op(F64_STORE, 3, 0);
                }
                return;
              }
              // source + 0 turns −0 into +0, as the reference's float64 0 + v does.
              f.localGet(s0)
                .localGet(c)
                .op(Op.i32_add)
                .v128Load()
                .f32x4Const(0)
                .simd(Simd.f32x4_add)
                .localSet(s);
              f.forRange(
                t,
                () => f.i32Const(0),
                () => f.localGet(n),
                1,
                () => {
                  tapAt();
                  f.localGet(DST).localGet(tap).op(Op.i32_add).localGet(c).op(Op.i32_add);
                  f.localGet(s).localGet(bi).localGet(t).simd(Simd.i32x4_splat).simd(Simd.i32x4_eq);
                  f.simd(Simd.v128_and).v128Store();
                },
              );
            },
          ),
        );
        f.localGet(row).localGet(rowB).op(Op.i32_add).localSet(row);
      },
    );
  }
  // demote(acc, dst, count): dst[i] = f32(acc[i]), the float64 accumulator rounded once.
  const f = m.func("demote", [I32, I32, I32], []);
  const i = f.local(I32);
  f.forRange(
    i,
    () => f.i32Const(0),
    () => f.localGet(2),
    1,
    () => {
      f.localGet(1).localGet(i).i32Const(2).op(Op.i32_shl).op(Op.i32_add);
      f.localGet(0).localGet(i).i32Const(3).op(Op.i32_shl).op(Op.i32_add).op(F64_LOAD, 3, 0);
      f.op(F32_DEMOTE_F64).f32Store();
    },
  );
  return m.toBytes();
}

type PoolFn = (...args: number[]) => void;

const pools = new WeakMap<WasmHeap, WasmPool>();

/**
 * The SIMD pooling loops bound to a heap: operands and results are byte offsets in it.
 *
 * @example
 * ```ts
 * const pool = WasmPool.forHeap(heap);
 * pool.reduceMaxPtr(g, x, y);            // y = max pooling of x (both heap offsets)
 * pool.scatterPtr(g, dy, x, dx, "max");  // dx = its gradient
 * ```
 */
export class WasmPool {
  private readonly fns: Record<string, PoolFn>;
  private readonly tables = new Map<WindowGeometry, ReturnType<typeof windowTable>>();

  private constructor(readonly heap: WasmHeap) {
    const bytes = buildPoolModule({ shared: heap.shared, maxPages: heap.maxPages });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: heap.memory } });
    this.fns = inst.exports as unknown as Record<string, PoolFn>;
  }

  /** The pool for `heap` (built once per heap). */
  static forHeap(heap: WasmHeap): WasmPool {
    let p = pools.get(heap);
    if (!p) pools.set(heap, (p = new WasmPool(heap)));
    return p;
  }

  /** Runs `f` with the geometry's window table staged in the heap. */
  private withTable(g: WindowGeometry, f: (ptr: number, rows: number, taps: number) => void): void {
    let t = this.tables.get(g);
    if (!t) {
      t = windowTable(g);
      if (this.tables.size >= 64) this.tables.delete(this.tables.keys().next().value!);
      this.tables.set(g, t);
    }
    const ptr = this.heap.alloc(4 * t.table.length);
    try {
      this.heap.i32().set(t.table, ptr / 4);
      f(ptr, t.rows, t.taps);
    } finally {
      this.heap.free(ptr);
    }
  }

  /** Max, min or sum pooling of `x` into `y` (heap byte offsets); needs {@link simdFits}. */
  reducePtr(g: WindowGeometry, x: number, y: number, op: "max" | "min" | "sum"): void {
    this.withTable(g, (tab, rows, taps) => this.fns[`pool_${op}`]!(x, y, tab, rows, taps, 4 * g.p2));
  }

  /**
   * `select_and_scatter_add` of `source` at the selections in `operand` into `dst` (heap byte
   * offsets, dst overwritten); needs {@link simdFits}. Overlapping windows accumulate in a float64
   * buffer, rounded to dst at the end.
   */
  scatterPtr(g: WindowGeometry, source: number, operand: number, dst: number, select: "max" | "min"): void {
    const size = operandSize(g);
    if (windowsDisjoint(g)) {
      this.heap.f32().fill(0, dst / 4, dst / 4 + size);
      this.withTable(g, (tab, rows, taps) =>
        this.fns[`scatter_${select}`]!(source, operand, dst, tab, rows, taps, 4 * g.p2),
      );
      return;
    }
    const acc = this.heap.alloc(8 * size);
    try {
      this.heap.f32().fill(0, acc / 4, acc / 4 + 2 * size);
      this.withTable(g, (tab, rows, taps) =>
        this.fns[`scatter64_${select}`]!(source, operand, acc, tab, rows, taps, 4 * g.p2),
      );
      this.fns.demote!(acc, dst, size);
    } finally {
      this.heap.free(acc);
    }
  }
}
