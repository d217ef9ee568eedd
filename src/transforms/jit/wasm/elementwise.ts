/**
 * Fused elementwise kernels: an expression DAG over broadcast inputs and constants, compiled to one
 * f32x4 loop (4-d after collapsing contiguous dimensions; the innermost dimension vectorised, its
 * tail run through the same vector code one lane at a time so every element rounds identically).
 *
 * @example
 * ```ts
 * import { ew, WasmHeap, compileElementwise } from "./index.js";
 * const x = ew.input(0);
 * const k = compileElementwise(new WasmHeap(), ew.mul(ew.tanh(ew.add(ew.mul(x, ew.c(2)), ew.c(1))), ew.c(3)), 1);
 * const y = k.run([{ data, shape: [n] }], [n]); // Float32Array
 * ```
 */
import { ConfigError, ShapeError } from "../../../core/errors.js";
import { I32, ModuleBuilder, Op, Simd, V128 } from "./assembler.js";
import type { WasmHeap } from "./heap.js";
import { emitExp, emitExpm1, emitLog, emitLog1p, emitLogistic, emitTanh, VecEmitter } from "./simd-math.js";

const UNARY_OPS = [
  "neg",
  "abs",
  "exp",
  "expm1",
  "log",
  "log1p",
  "tanh",
  "logistic",
  "sqrt",
  "rsqrt",
  "floor",
  "ceil",
  "sign",
  "not",
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];
export type BinaryOp = "add" | "sub" | "mul" | "div" | "max" | "min" | "and" | "or";
export type CompareOp = "lt" | "le" | "gt" | "ge" | "eq" | "ne";
/** Reductions over the last axis. */
export type ReduceKind = "sum" | "max" | "min" | "prod";

/**
 * A node of the expression DAG. Shared sub-expressions (the same object used twice) are computed
 * once. Comparisons yield booleans: 1.0 / 0.0 when stored or used arithmetically; `select` takes
 * any value as its condition (nonzero is true).
 */
export type Expr =
  | { readonly op: "input"; readonly index: number }
  | { readonly op: "const"; readonly value: number }
  | { readonly op: UnaryOp; readonly x: Expr }
  | { readonly op: BinaryOp | CompareOp; readonly x: Expr; readonly y: Expr }
  | { readonly op: "select"; readonly cond: Expr; readonly x: Expr; readonly y: Expr };

/** Constructors of {@link Expr} nodes. `select(c, a, b)` is `c ? a : b`. */
export const ew = {
  input: (index: number): Expr => ({ op: "input", index }),
  c: (value: number): Expr => ({ op: "const", value }),
  neg: (x: Expr): Expr => ({ op: "neg", x }),
  abs: (x: Expr): Expr => ({ op: "abs", x }),
  exp: (x: Expr): Expr => ({ op: "exp", x }),
  log: (x: Expr): Expr => ({ op: "log", x }),
  tanh: (x: Expr): Expr => ({ op: "tanh", x }),
  logistic: (x: Expr): Expr => ({ op: "logistic", x }),
  sqrt: (x: Expr): Expr => ({ op: "sqrt", x }),
  expm1: (x: Expr): Expr => ({ op: "expm1", x }),
  log1p: (x: Expr): Expr => ({ op: "log1p", x }),
  rsqrt: (x: Expr): Expr => ({ op: "rsqrt", x }),
  floor: (x: Expr): Expr => ({ op: "floor", x }),
  ceil: (x: Expr): Expr => ({ op: "ceil", x }),
  /** −1, 0 or 1; ±0 and NaN pass through. */
  sign: (x: Expr): Expr => ({ op: "sign", x }),
  /** Logical not (zero is false). */
  not: (x: Expr): Expr => ({ op: "not", x }),
  /** Logical and / or of truth values (nonzero is true). */
  and: (x: Expr, y: Expr): Expr => ({ op: "and", x, y }),
  or: (x: Expr, y: Expr): Expr => ({ op: "or", x, y }),
  add: (x: Expr, y: Expr): Expr => ({ op: "add", x, y }),
  sub: (x: Expr, y: Expr): Expr => ({ op: "sub", x, y }),
  mul: (x: Expr, y: Expr): Expr => ({ op: "mul", x, y }),
  div: (x: Expr, y: Expr): Expr => ({ op: "div", x, y }),
  max: (x: Expr, y: Expr): Expr => ({ op: "max", x, y }),
  min: (x: Expr, y: Expr): Expr => ({ op: "min", x, y }),
  lt: (x: Expr, y: Expr): Expr => ({ op: "lt", x, y }),
  le: (x: Expr, y: Expr): Expr => ({ op: "le", x, y }),
  gt: (x: Expr, y: Expr): Expr => ({ op: "gt", x, y }),
  ge: (x: Expr, y: Expr): Expr => ({ op: "ge", x, y }),
  eq: (x: Expr, y: Expr): Expr => ({ op: "eq", x, y }),
  ne: (x: Expr, y: Expr): Expr => ({ op: "ne", x, y }),
  select: (cond: Expr, x: Expr, y: Expr): Expr => ({ op: "select", cond, x, y }),
};

const BINARY: Record<Exclude<BinaryOp, "and" | "or"> | CompareOp, number> = {
  add: Simd.f32x4_add,
  sub: Simd.f32x4_sub,
  mul: Simd.f32x4_mul,
  div: Simd.f32x4_div,
  max: Simd.f32x4_max,
  min: Simd.f32x4_min,
  lt: Simd.f32x4_lt,
  le: Simd.f32x4_le,
  gt: Simd.f32x4_gt,
  ge: Simd.f32x4_ge,
  eq: Simd.f32x4_eq,
  ne: Simd.f32x4_ne,
};
const COMPARE = new Set(["lt", "le", "gt", "ge", "eq", "ne"]);

/** How the innermost (vectorised) dimension reads an input. */
type InnerKind = "contiguous" | "broadcast" | "strided";

export const REDUCE: Record<ReduceKind, { vec: number; scalar: number; identity: number }> = {
  sum: { vec: Simd.f32x4_add, scalar: Op.f32_add, identity: 0 },
  prod: { vec: Simd.f32x4_mul, scalar: Op.f32_mul, identity: 1 },
  max: { vec: Simd.f32x4_max, scalar: Op.f32_max, identity: -Infinity },
  min: { vec: Simd.f32x4_min, scalar: Op.f32_min, identity: Infinity },
};

/** Elements per first-level partial sum of a reduction. */
const CHUNK = 1024;

/** Rank of the generated loop nest; higher ranks are looped over in JavaScript. */
const RANK = 4;

/** Checks the DAG and returns its nodes in post-order (each once). */
export function topo(expr: Expr, arity: number): Expr[] {
  const seen = new Set<Expr>();
  const order: Expr[] = [];
  const visit = (e: Expr) => {
    if (seen.has(e)) return;
    seen.add(e);
    switch (e.op) {
      case "input":
        if (!Number.isInteger(e.index) || e.index < 0 || e.index >= arity) {
          throw new ConfigError(`input index ${e.index} out of range for ${arity} inputs`, "elementwise");
        }
        break;
      case "const":
        break;
      case "select":
        visit(e.cond);
        visit(e.x);
        visit(e.y);
        break;
      default:
        if (!("x" in e)) throw new ConfigError(`unknown op ${(e as { op: string }).op}`, "elementwise");
        visit(e.x);
        if ("y" in e) visit(e.y);
        else if (!(UNARY_OPS as readonly string[]).includes(e.op)) {
          throw new ConfigError(`unknown op ${e.op}`, "elementwise");
        }
        if ("y" in e && !(e.op in BINARY) && e.op !== "and" && e.op !== "or") {
          throw new ConfigError(`unknown op ${e.op}`, "elementwise");
        }
    }
    order.push(e);
  };
  visit(expr);
  return order;
}

/**
 * Emits the DAG once per vector: `load(i)` leaves input i's vector on the stack. Returns the
 * local holding the f32 result.
 */
export function emitExpr(v: VecEmitter, order: Expr[], load: (i: number) => number): number {
  const val = new Map<Expr, number>();
  const isMask = new Set<Expr>();
  const asF32 = (e: Expr): number => {
    const l = val.get(e)!;
    return isMask.has(e) ? v.let(() => v.f.localGet(l).f32x4Const(1).simd(Simd.v128_and)) : l;
  };
  const asMask = (e: Expr): number => {
    const l = val.get(e)!;
    return isMask.has(e) ? l : v.let(() => v.f.localGet(l).f32x4Const(0).simd(Simd.f32x4_ne));
  };
  for (const e of order) {
    let out: number;
    switch (e.op) {
      case "input":
        out = load(e.index);
        break;
      case "const":
        out = v.constF(e.value);
        break;
      case "select":
        out = v.select(asF32(e.x), asF32(e.y), asMask(e.cond));
        break;
      case "neg":
        out = v.un(Simd.f32x4_neg, asF32(e.x));
        break;
      case "abs":
        out = v.un(Simd.f32x4_abs, asF32(e.x));
        break;
      case "sqrt":
        out = v.un(Simd.f32x4_sqrt, asF32(e.x));
        break;
      case "exp":
        out = emitExp(v, asF32(e.x));
        break;
      case "log":
        out = emitLog(v, asF32(e.x));
        break;
      case "tanh":
        out = emitTanh(v, asF32(e.x));
        break;
      case "logistic":
        out = emitLogistic(v, asF32(e.x));
        break;
      case "expm1":
        out = emitExpm1(v, asF32(e.x));
        break;
      case "log1p":
        out = emitLog1p(v, asF32(e.x));
        break;
      case "rsqrt":
        out = v.let(() =>
          v.f
            .f32x4Const(1)
            .localGet(v.un(Simd.f32x4_sqrt, asF32(e.x)))
            .simd(Simd.f32x4_div),
        );
        break;
      case "floor":
        out = v.un(Simd.f32x4_floor, asF32(e.x));
        break;
      case "ceil":
        out = v.un(Simd.f32x4_ceil, asF32(e.x));
        break;
      case "sign": {
        const x = asF32(e.x);
        const s = v.select(v.constF(-1), x, v.binC(Simd.f32x4_lt, x, 0));
        out = v.select(v.constF(1), s, v.binC(Simd.f32x4_gt, x, 0));
        break;
      }
      case "not":
        out = v.un(Simd.v128_not, asMask(e.x));
        isMask.add(e);
        break;
      case "and":
      case "or":
        out = v.bin(e.op === "and" ? Simd.v128_and : Simd.v128_or, asMask(e.x), asMask(e.y));
        isMask.add(e);
        break;
      default:
        out = v.bin(BINARY[e.op], asF32(e.x), asF32(e.y));
        if (COMPARE.has(e.op)) isMask.add(e);
    }
    val.set(e, out);
  }
  return asF32(order[order.length - 1]!);
}

/**
 * Module for one DAG and one choice of inner kinds. Export `run(out, d0, d1, d2, d3, …per input:
 * ptr, s0, s1, s2, s3)`: pointers are byte offsets, strides in elements, out is contiguous.
 */
function buildModule(
  order: Expr[],
  kinds: InnerKind[],
  memory: { shared: boolean; maxPages: number },
  reduce: ReduceKind | undefined,
) {
  const n = kinds.length;
  const m = new ModuleBuilder();
  m.importMemory("env", "memory", { shared: memory.shared, maxPages: memory.maxPages });
  const f = m.func("run", Array(5 + 5 * n).fill(I32), []);
  const OUT = 0;
  const D = [1, 2, 3, 4];
  const P = (i: number) => 5 + 5 * i;
  const S = (i: number, d: number) => 5 + 5 * i + 1 + d;
  const [i0, i1, i2, j, end4, o] = [0, 1, 2, 3, 4, 5].map(() => f.local(I32));
  const rowPtr = kinds.map(() => f.local(I32));
  const hoisted = kinds.map((k) => (k === "broadcast" ? f.local(V128) : -1));
  const acc = f.local(V128);
  const total = f.local(V128);
  const [jc, jEnd] = [f.local(I32), f.local(I32)];
  const combine = reduce ? REDUCE[reduce].vec : Simd.f32x4_add;
  const body = (tail: boolean) => {
    const v = new VecEmitter(f);
    const load = (i: number): number => {
      const kind = kinds[i]!;
      if (kind === "broadcast") return hoisted[i]!;
      // element address = row + j * stride * 4
      const addr = () => {
        f.localGet(rowPtr[i]!).localGet(j);
        if (kind === "strided") f.localGet(S(i, 3)).op(Op.i32_mul);
        f.i32Const(2).op(Op.i32_shl).op(Op.i32_add);
      };
      if (tail) {
        return v.let(() => {
          addr();
          f.simdMem(Simd.v128_load32_splat, 0, 2);
        });
      }
      if (kind === "contiguous") {
        return v.let(() => {
          addr();
          f.v128Load();
        });
      }
      // Strided: gather four lanes.
      const base = f.local(I32);
      const step = f.local(I32);
      addr();
      f.localSet(base);
      f.localGet(S(i, 3)).i32Const(2).op(Op.i32_shl).localSet(step);
      let acc = v.let(() => f.localGet(base).simdMem(Simd.v128_load32_splat, 0, 2));
      for (let lane = 1; lane < 4; lane++) {
        f.localGet(base).localGet(step).op(Op.i32_add).localSet(base);
        const prev = acc;
        acc = v.let(() => f.localGet(prev).localGet(base).f32Load().simdLane(Simd.f32x4_replace_lane, lane));
      }
      return acc;
    };
    const res = emitExpr(v, order, load);
    if (reduce) {
      // Tail vectors hold one element in every lane: max/min may take all four, a sum or product
      // only lane 0 (the others become the identity).
      f.localGet(acc);
      if (tail && (reduce === "sum" || reduce === "prod")) {
        f.localGet(res).f32x4Const(REDUCE[reduce].identity).i32x4Const(-1, 0, 0, 0).simd(Simd.v128_bitselect);
      } else f.localGet(res);
      f.simd(combine).localSet(acc);
      return;
    }
    f.localGet(o).localGet(j).i32Const(2).op(Op.i32_shl).op(Op.i32_add);
    if (tail) f.localGet(res).simdLane(Simd.f32x4_extract_lane, 0).f32Store();
    else f.localGet(res).v128Store();
  };
  const forDim = (idx: number, dim: number, inner: () => void) =>
    f.forRange(
      idx,
      () => f.i32Const(0),
      () => f.localGet(D[dim]!),
      1,
      inner,
    );
  f.localGet(D[3]!).i32Const(-4).op(Op.i32_and).localSet(end4);
  f.localGet(OUT).localSet(o);
  forDim(i0, 0, () =>
    forDim(i1, 1, () =>
      forDim(i2, 2, () => {
        kinds.forEach((_, i) => {
          // rowPtr = ptr + (i0*s0 + i1*s1 + i2*s2) * 4
          f.localGet(P(i));
          f.localGet(i0).localGet(S(i, 0)).op(Op.i32_mul);
          f.localGet(i1).localGet(S(i, 1)).op(Op.i32_mul).op(Op.i32_add);
          f.localGet(i2).localGet(S(i, 2)).op(Op.i32_mul).op(Op.i32_add);
          f.i32Const(2).op(Op.i32_shl).op(Op.i32_add).localSet(rowPtr[i]!);
          if (hoisted[i]! >= 0)
            f.localGet(rowPtr[i]!).simdMem(Simd.v128_load32_splat, 0, 2).localSet(hoisted[i]!);
        });
        const identity = () => f.f32x4Const(reduce ? REDUCE[reduce].identity : 0);
        if (reduce) {
          // Two-level sum: chunks of CHUNK elements into acc, chunk sums into total, so the
          // rounding error grows like CHUNK/4 + n/CHUNK instead of n/4.
          identity().localSet(total);
          f.forRange(
            jc,
            () => f.i32Const(0),
            () => f.localGet(end4),
            CHUNK,
            () => {
              identity().localSet(acc);
              f.localGet(jc).i32Const(CHUNK).op(Op.i32_add).localSet(jEnd);
              f.localGet(jEnd)
                .localGet(end4)
                .localGet(jEnd)
                .localGet(end4)
                .op(Op.i32_lt_s)
                .op(Op.select)
                .localSet(jEnd);
              f.forRange(
                j,
                () => f.localGet(jc),
                () => f.localGet(jEnd),
                4,
                () => body(false),
              );
              f.localGet(total).localGet(acc).simd(combine).localSet(total);
            },
          );
          f.localGet(total).localSet(acc);
        } else {
          f.forRange(
            j,
            () => f.i32Const(0),
            () => f.localGet(end4),
            4,
            () => body(false),
          );
        }
        f.forRange(
          j,
          () => f.localGet(end4),
          () => f.localGet(D[3]!),
          1,
          () => body(true),
        );
        if (reduce) {
          // Horizontal: (l0 ∘ l1) ∘ (l2 ∘ l3), then one f32 per row.
          const scalar = REDUCE[reduce].scalar;
          const lane = (l: number) => f.localGet(acc).simdLane(Simd.f32x4_extract_lane, l);
          f.localGet(o);
          lane(0);
          lane(1);
          f.op(scalar);
          lane(2);
          lane(3);
          f.op(scalar).op(scalar).f32Store();
          f.localGet(o).i32Const(4).op(Op.i32_add).localSet(o);
        } else f.localGet(o).localGet(D[3]!).i32Const(2).op(Op.i32_shl).op(Op.i32_add).localSet(o);
      }),
    ),
  );
  return m.toBytes();
}

/**
 * An input in linear memory: byte offset and shape (broadcast against the output shape), and
 * optionally its strides in elements (row-major by default), e.g. `[1, rows]` for a transpose.
 */
export interface PtrInput {
  ptr: number;
  shape: readonly number[];
  strides?: readonly number[];
}

/** An input as a Float32Array with its shape. */
export interface ArrayInput {
  data: Float32Array;
  shape: readonly number[];
}

/** Output shape, the (collapsed, padded to 4-d) loop dims and each input's strides. */
interface Plan {
  dims: number[];
  strides: number[][];
}

function plan(
  outShape: readonly number[],
  inputs: readonly { shape: readonly number[]; strides?: readonly number[] }[],
  keepLast = false,
): Plan {
  const rank = outShape.length;
  const strides = inputs.map(({ shape: s, strides: given }, i) => {
    if (s.length > rank) {
      throw new ShapeError(`input ${i} has rank ${s.length} > output rank ${rank}`, "elementwise");
    }
    // Negative strides (reversed axes) are fine: addresses are computed in i32 arithmetic.
    if (given && (given.length !== s.length || given.some((g) => !Number.isInteger(g)))) {
      throw new ShapeError(`input ${i} strides [${given}] do not fit shape [${s}]`, "elementwise");
    }
    const st = Array(rank).fill(0);
    let acc = 1;
    for (let d = s.length - 1; d >= 0; d--) {
      const od = d + rank - s.length;
      if (s[d] === outShape[od]) st[od] = s[d] === 1 ? 0 : given ? given[d]! : acc;
      else if (s[d] !== 1) {
        throw new ShapeError(`input ${i} shape [${s}] does not broadcast to [${outShape}]`, "elementwise");
      }
      acc *= s[d]!;
    }
    return st;
  });
  // Drop size-1 dims, then merge dim d into d+1 when every input is contiguous across them.
  let dims: number[] = [];
  let st: number[][] = strides.map(() => []);
  outShape.forEach((size, d) => {
    if (size === 1 && !(keepLast && d === outShape.length - 1)) return;
    dims.push(size);
    strides.forEach((s, i) => st[i]!.push(s[d]!));
  });
  for (let d = dims.length - (keepLast ? 3 : 2); d >= 0; d--) {
    if (st.every((s) => s[d] === s[d + 1]! * dims[d + 1]!)) {
      dims[d + 1]! *= dims[d]!;
      dims.splice(d, 1);
      st.forEach((s) => s.splice(d, 1));
    }
  }
  while (dims.length < RANK) {
    dims = [1, ...dims];
    st = st.map((s) => [0, ...s]);
  }
  return { dims, strides: st };
}

/** A planned call: the module, JS-looped leading dims, the 4-d loop dims, strides, outputs per call. */
interface Prepared {
  fn: (...args: number[]) => void;
  lead: number[];
  loop: number[];
  strides: number[][];
  inner: number;
}

/**
 * A compiled fused elementwise kernel over a heap. Modules are built lazily per inner-dimension
 * access pattern (contiguous / broadcast / strided per input) and cached.
 */
export class ElementwiseKernel {
  private readonly order: Expr[];
  private readonly cache = new Map<string, (...args: number[]) => void>();
  /** Loop plans by shape/stride signature (bounded). */
  private readonly plans = new Map<string, Prepared | null>();
  private staging: { ptr: number; bytes: number } | undefined;

  constructor(
    readonly heap: WasmHeap,
    readonly expr: Expr,
    readonly arity: number,
    /** Reduce the last axis of the expression's value (sum or max) instead of storing it. */
    readonly reduce?: ReduceKind,
  ) {
    if (reduce !== undefined && !(reduce in REDUCE)) {
      throw new ConfigError(`reduce must be sum, max, min or prod, got ${reduce}`, "elementwise");
    }
    if (!Number.isInteger(arity) || arity < 0)
      throw new ConfigError(`arity must be a non-negative integer`, "elementwise");
    this.order = topo(expr, arity);
  }

  /** Number of modules compiled so far (one per access pattern). */
  get compiled(): number {
    return this.cache.size;
  }

  private fn(kinds: InnerKind[]): (...args: number[]) => void {
    const key = kinds.join(",");
    let fn = this.cache.get(key);
    if (!fn) {
      const bytes = buildModule(
        this.order,
        kinds,
        { shared: this.heap.shared, maxPages: this.heap.maxPages },
        this.reduce,
      );
      fn = instantiateRun(this.heap, bytes);
      this.cache.set(key, fn);
    }
    return fn;
  }

  /**
   * Writes the result (contiguous, row-major) at byte offset `out`. `shape` is the shape the
   * inputs broadcast to; the result has that shape, or, for a reduction, that shape without its
   * last axis (reduced).
   */
  runPtr(out: number, shape: readonly number[], inputs: readonly PtrInput[]): void {
    if (inputs.length !== this.arity) {
      throw new ConfigError(`expected ${this.arity} inputs, got ${inputs.length}`, "elementwise");
    }
    const prepared = this.prepare(shape, inputs);
    if (!prepared) return;
    const { fn, lead, loop, strides, inner } = prepared;
    if (lead.length === 0) {
      // Rank ≤ 4 after collapsing: one call (the common case; kept allocation-light for eager use).
      const args: number[] = [out, loop[0]!, loop[1]!, loop[2]!, loop[3]!];
      for (let i = 0; i < inputs.length; i++) {
        const s = strides[i]!;
        args.push(inputs[i]!.ptr, s[0]!, s[1]!, s[2]!, s[3]!);
      }
      fn(...args);
      return;
    }
    // Ranks above 4 (after collapsing): loop over the leading indices here.
    const count = lead.reduce((a, b) => a * b, 1);
    const idx = lead.map(() => 0);
    for (let c = 0; c < count; c++) {
      const args: number[] = [out + 4 * c * inner, ...loop];
      inputs.forEach((x, i) => {
        const s = strides[i]!;
        let off = 0;
        idx.forEach((v, d) => (off += v * s[d]!));
        args.push(x.ptr + 4 * off, ...s.slice(s.length - RANK));
      });
      fn(...args);
      for (let d = lead.length - 1; d >= 0; d--) {
        if (++idx[d]! < lead[d]!) break;
        idx[d] = 0;
      }
    }
  }

  /** Plans (and caches per shape/stride signature) the loop nest; null when there is nothing to do. */
  private prepare(shape: readonly number[], inputs: readonly PtrInput[]): Prepared | null {
    let key = shape.join(",");
    for (const x of inputs) key += `|${x.shape.join(",")}${x.strides ? `:${x.strides.join(",")}` : ""}`;
    const hit = this.plans.get(key);
    if (hit !== undefined) return hit;
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(`bad output shape [${shape}]`, "elementwise");
    }
    if (this.reduce && shape.length === 0) {
      throw new ShapeError("a reduction needs at least one axis", "elementwise");
    }
    const { dims, strides } = plan(shape, inputs, this.reduce !== undefined);
    // An empty reduced axis still writes the identity; any other empty axis writes nothing.
    let prepared: Prepared | null = null;
    if (!(dims.slice(0, -1).includes(0) || (!this.reduce && dims.includes(0)))) {
      const lead = dims.slice(0, dims.length - RANK);
      const loop = dims.slice(dims.length - RANK);
      const kinds: InnerKind[] = strides.map((st) => {
        const innerStride = st[st.length - 1]!;
        return innerStride === 1 ? "contiguous" : innerStride === 0 ? "broadcast" : "strided";
      });
      // Output elements per 4-d call: the whole block, or its rows for a reduction.
      const inner = loop.reduce((a, b) => a * b, 1) / (this.reduce ? loop[RANK - 1]! || 1 : 1);
      prepared = {
        fn: this.fn(kinds),
        lead,
        loop,
        strides: strides.map((st) => (lead.length ? st : st.slice(-RANK))),
        inner,
      };
    }
    if (this.plans.size >= 256) this.plans.clear();
    this.plans.set(key, prepared);
    return prepared;
  }

  /**
   * Copies the inputs into persistent staging memory, runs, and returns the result: in `out` if
   * given (a fresh array costs more than the copy itself for large results: page faults).
   */
  run(inputs: readonly ArrayInput[], shape: readonly number[], out?: Float32Array): Float32Array {
    const outShape = this.reduce ? shape.slice(0, -1) : shape;
    const size = outShape.reduce((a, b) => a * b, 1);
    if (out && out.length !== size) {
      throw new ShapeError(`out has ${out.length} elements, expected ${size}`, "elementwise");
    }
    inputs.forEach((x, i) => {
      const n = x.shape.reduce((a, b) => a * b, 1);
      if (n !== x.data.length) {
        throw new ShapeError(
          `input ${i} has ${x.data.length} elements for shape [${x.shape}]`,
          "elementwise",
        );
      }
    });
    const r = (n: number) => Math.ceil(n / 16) * 16;
    const need = 4 * (r(size) + inputs.reduce((a, x) => a + r(x.data.length), 0));
    if (!this.staging || this.staging.bytes < need) {
      if (this.staging) this.heap.free(this.staging.ptr);
      this.staging = { ptr: this.heap.alloc(need), bytes: need };
    }
    let p = this.staging.ptr + 4 * r(size);
    const mem = this.heap.f32();
    const ptrs = inputs.map((x) => {
      mem.set(x.data, p / 4);
      const q = p;
      p += 4 * r(x.data.length);
      return { ptr: q, shape: x.shape };
    });
    this.runPtr(this.staging.ptr, shape, ptrs);
    const base = this.staging.ptr / 4;
    const result = this.heap.f32().subarray(base, base + size);
    if (out) {
      out.set(result);
      return out;
    }
    return result.slice();
  }

  /** Frees the staging buffer (compiled modules stay cached until the kernel is dropped). */
  dispose(): void {
    if (this.staging) this.heap.free(this.staging.ptr);
    this.staging = undefined;
  }
}

/** Instantiates a generated module on `heap`'s memory and returns its exported `run`. */
export function instantiateRun(heap: WasmHeap, bytes: BufferSource): (...args: number[]) => void {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: heap.memory } });
  return inst.exports.run as (...args: number[]) => void;
}

/** Compiles `expr` over `arity` inputs on `heap`. */
export function compileElementwise(heap: WasmHeap, expr: Expr, arity: number): ElementwiseKernel {
  return new ElementwiseKernel(heap, expr, arity);
}

/**
 * Compiles a row reduction fused with its elementwise producer: `sum` or `max` over the last
 * axis of `expr`'s value (e.g. `ew.mul(x, x)` with "sum" is a row-wise sum of squares).
 *
 * @example
 * ```ts
 * const rowMax = compileReduction(heap, ew.input(0), 1, "max");
 * rowMax.run([{ data, shape: [rows, cols] }], [rows, cols]); // Float32Array(rows)
 * ```
 */
export function compileReduction(
  heap: WasmHeap,
  expr: Expr,
  arity: number,
  kind: ReduceKind,
): ElementwiseKernel {
  return new ElementwiseKernel(heap, expr, arity, kind);
}
