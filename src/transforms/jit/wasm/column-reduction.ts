/**
 * Column reductions: `out[c] = ∘_r expr(r, c)` for an outer reduced axis `r` and a contiguous
 * output axis `c` (a bias gradient sums a [batch, features] cotangent over the batch). The row
 * reduction of elementwise.ts vectorises along the reduced axis, which here has a large stride, so
 * it gathers four lanes per vector; this kernel vectorises along the output instead: blocks of 16
 * columns (four f32x4 accumulators in registers) walk down the rows, so every load is a plain
 * v128 load of contiguous columns. Sums are two-level (CHUNK_ROWS rows into a partial, partials
 * into the total), so the rounding error grows like CHUNK_ROWS + rows/CHUNK_ROWS, not rows.
 *
 * @example
 * ```ts
 * const colSum = new ColumnReduction(heap, ew.input(0), 1, "sum");
 * colSum.runPtr(out, rows, cols, [{ ptr: x, rs: cols, cs: 1 }]); // out[c] = Σ_r x[r, c]
 * ```
 */
import { ConfigError, ShapeError } from "../../../core/errors.js";
import { I32, ModuleBuilder, Op, Simd, V128 } from "./assembler.js";
import { emitExpr, type Expr, instantiateRun, REDUCE, type ReduceKind, topo } from "./elementwise.js";
import type { WasmHeap } from "./heap.js";
import { VecEmitter } from "./simd-math.js";

/** An input in linear memory: element (r, c) at byte `ptr + 4·(r·rs + c·cs)`. */
export interface ColumnInput {
  ptr: number;
  rs: number;
  cs: number;
}

/** Rows per first-level partial. */
const CHUNK_ROWS = 64;
/** f32x4 accumulators per column block. */
const BLOCK_VECTORS = 4;

type ColumnKind = "contiguous" | "broadcast" | "strided";

function buildModule(
  order: Expr[],
  kinds: ColumnKind[],
  memory: { shared: boolean; maxPages: number },
  reduce: ReduceKind,
) {
  const n = kinds.length;
  const m = new ModuleBuilder();
  m.importMemory("env", "memory", { shared: memory.shared, maxPages: memory.maxPages });
  // run(out, rows, cols, per input: ptr, rs, cs)
  const f = m.func("run", Array(3 + 3 * n).fill(I32), []);
  const [OUT, ROWS, COLS] = [0, 1, 2];
  const P = (i: number) => 3 + 3 * i;
  const RS = (i: number) => 4 + 3 * i;
  const CS = (i: number) => 5 + 3 * i;
  const [c, r, rc, rEnd, end16, end4] = [0, 1, 2, 3, 4, 5].map(() => f.local(I32));
  const rowPtr = kinds.map(() => f.local(I32));
  const acc = Array.from({ length: BLOCK_VECTORS }, () => f.local(V128));
  const total = Array.from({ length: BLOCK_VECTORS }, () => f.local(V128));
  const { vec: combine, identity } = REDUCE[reduce];

  /** A column block of `w` vectors starting at column `c` (`tail`: one column, in lane 0). */
  const block = (w: number, tail: boolean) => {
    for (let k = 0; k < w; k++) f.f32x4Const(identity).localSet(total[k]!);
    f.forRange(
      rc,
      () => f.i32Const(0),
      () => f.localGet(ROWS),
      CHUNK_ROWS,
      () => {
        for (let k = 0; k < w; k++) f.f32x4Const(identity).localSet(acc[k]!);
        f.localGet(rc).i32Const(CHUNK_ROWS).op(Op.i32_add).localSet(rEnd);
        f.localGet(rEnd)
          .localGet(ROWS)
          .localGet(rEnd)
          .localGet(ROWS)
          .op(Op.i32_lt_s)
          .op(Op.select)
          .localSet(rEnd);
        f.forRange(
          r,
          () => f.localGet(rc),
          () => f.localGet(rEnd),
          1,
          () => {
            kinds.forEach((_, i) => {
              // rowPtr = ptr + 4·(r·rs + c·cs)
              f.localGet(P(i)).localGet(r).localGet(RS(i)).op(Op.i32_mul);
              f.localGet(c).localGet(CS(i)).op(Op.i32_mul).op(Op.i32_add);
              f.i32Const(2).op(Op.i32_shl).op(Op.i32_add).localSet(rowPtr[i]!);
            });
            for (let k = 0; k < w; k++) {
              const v = new VecEmitter(f);
              const load = (i: number): number => {
                const kind = kinds[i]!;
                // One column (the tail), or an input constant along the columns: splat its element.
                if (tail || kind === "broadcast")
                  return v.let(() => f.localGet(rowPtr[i]!).simdMem(Simd.v128_load32_splat, 0, 2));
                if (kind === "contiguous") return v.let(() => f.localGet(rowPtr[i]!).v128Load(16 * k));
                // Strided columns: gather four lanes, columns 4k … 4k+3 of the block.
                const base = f.local(I32);
                f.localGet(rowPtr[i]!)
                  .localGet(CS(i))
                  .i32Const(16 * k)
                  .op(Op.i32_mul)
                  .op(Op.i32_add)
                  .localSet(base);
                let lanes = v.let(() => f.localGet(base).simdMem(Simd.v128_load32_splat, 0, 2));
                for (let lane = 1; lane < 4; lane++) {
                  f.localGet(base).localGet(CS(i)).i32Const(2).op(Op.i32_shl).op(Op.i32_add).localSet(base);
                  const prev = lanes;
                  lanes = v.let(() =>
                    f.localGet(prev).localGet(base).f32Load().simdLane(Simd.f32x4_replace_lane, lane),
                  );
                }
                return lanes;
              };
              const res = emitExpr(v, order, load);
              f.localGet(acc[k]!).localGet(res).simd(combine).localSet(acc[k]!);
            }
          },
        );
        for (let k = 0; k < w; k++) f.localGet(total[k]!).localGet(acc[k]!).simd(combine).localSet(total[k]!);
      },
    );
    for (let k = 0; k < w; k++) {
      f.localGet(OUT).localGet(c).i32Const(2).op(Op.i32_shl).op(Op.i32_add);
      if (tail) f.localGet(total[k]!).simdLane(Simd.f32x4_extract_lane, 0).f32Store();
      else f.localGet(total[k]!).v128Store(16 * k);
    }
  };
  f.localGet(COLS).i32Const(-16).op(Op.i32_and).localSet(end16);
  f.localGet(COLS).i32Const(-4).op(Op.i32_and).localSet(end4);
  f.forRange(
    c,
    () => f.i32Const(0),
    () => f.localGet(end16),
    16,
    () => block(BLOCK_VECTORS, false),
  );
  f.forRange(
    c,
    () => f.localGet(end16),
    () => f.localGet(end4),
    4,
    () => block(1, false),
  );
  f.forRange(
    c,
    () => f.localGet(end4),
    () => f.localGet(COLS),
    1,
    () => block(1, true),
  );
  return m.toBytes();
}

/** A compiled column reduction of `expr` over `arity` inputs on `heap` (modules cached per access pattern). */
export class ColumnReduction {
  private readonly order: Expr[];
  private readonly modules = new Map<string, (...args: number[]) => void>();

  constructor(
    readonly heap: WasmHeap,
    readonly expr: Expr,
    readonly arity: number,
    readonly reduce: ReduceKind,
  ) {
    if (!(reduce in REDUCE))
      throw new ConfigError(`reduce must be sum, max, min or prod, got ${reduce}`, "column reduction");
    this.order = topo(expr, arity);
  }

  /** Writes `out[c]` for `c < cols` (contiguous, at byte offset `out`), reducing over `rows` rows. */
  runPtr(out: number, rows: number, cols: number, inputs: readonly ColumnInput[]): void {
    if (inputs.length !== this.arity)
      throw new ConfigError(`expected ${this.arity} inputs, got ${inputs.length}`, "column reduction");
    for (const d of [rows, cols])
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(`bad size ${d}`, "column reduction");
    if (cols === 0) return;
    const kinds: ColumnKind[] = inputs.map((x) =>
      x.cs === 1 ? "contiguous" : x.cs === 0 ? "broadcast" : "strided",
    );
    const key = kinds.join(",");
    let fn = this.modules.get(key);
    if (!fn) {
      const bytes = buildModule(
        this.order,
        kinds,
        { shared: this.heap.shared, maxPages: this.heap.maxPages },
        this.reduce,
      );
      fn = instantiateRun(this.heap, bytes);
      this.modules.set(key, fn);
    }
    const args = [out, rows, cols];
    for (const x of inputs) args.push(x.ptr, x.rs, x.cs);
    fn(...args);
  }
}
