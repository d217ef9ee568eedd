/**
 * Adapter from the jit's kernel IR (an output index space, affine loads, an optional reduction
 * with an epilogue reading `acc`) to this backend, as a `KernelBackend`-shaped object:
 *
 * - a reduction whose body is `load(A)·load(B)` with A independent of the last output axis and B
 *   of the one before (a matmul, batched over leading axes, any strides) runs on the GEMM;
 * - a reduction over the rows of a matrix (a column sum, strided in a row reduction) runs as a
 *   column reduction, vectorised along the output (column-reduction.ts);
 * - any other reduction over one (coalescable) reduction axis runs as a fused row reduction;
 * - everything else runs as one fused elementwise loop;
 * - an epilogue other than `acc` itself runs as a second fused loop reading the accumulator.
 *
 * The IR types are mirrored structurally here (src/transforms/jit/kernel-ir.ts defines them on the
 * jit's side), so this module compiles on its own. Kernels using ops this backend lacks (sin, cos,
 * pow) raise ConfigError from `compile`, so the caller can choose another backend.
 *
 * @example
 * ```ts
 * const backend = new WasmKernelBackend();
 * const k = backend.compile(kernel);           // kernel: the jit's Kernel
 * const y = k.run([x, w]);                      // Float32Array
 * ```
 */
import { ConfigError, ShapeError } from "../../../core/errors.js";
import { WasmBackend } from "./backend.js";
import { ColumnReduction } from "./column-reduction.js";
import { type Expr, ew, type ReduceKind } from "./elementwise.js";

/** `offset + Σ out[d]·o_d + Σ red[k]·r_k`. */
export interface AffineIndex {
  readonly offset: number;
  readonly out: readonly number[];
  readonly red: readonly number[];
}

export type KernelExpr =
  | { readonly op: "load"; readonly arg: number; readonly index: AffineIndex }
  | { readonly op: "const"; readonly value: number }
  | { readonly op: "unary"; readonly fn: string; readonly x: KernelExpr }
  | { readonly op: "binary"; readonly fn: string; readonly a: KernelExpr; readonly b: KernelExpr }
  | { readonly op: "select"; readonly c: KernelExpr; readonly t: KernelExpr; readonly f: KernelExpr }
  | { readonly op: "acc" };

export interface AffineKernel {
  readonly argSizes: readonly number[];
  readonly outShape: readonly number[];
  readonly outDType: "float32" | "bool";
  readonly reduction: {
    readonly op: string;
    readonly shape: readonly number[];
    readonly body: KernelExpr;
  } | null;
  readonly expr: KernelExpr;
}

/** What `compile` returns (the jit's `CompiledKernel`). */
export interface WasmCompiledKernel {
  run(inputs: readonly Float32Array[], out?: Float32Array): Float32Array;
  /**
   * The same on buffers already in the backend's heap: byte offsets of the flat float32 inputs
   * and of the output (which must not overlap an input); nothing is copied.
   */
  runPtr(inputs: readonly number[], out: number): void;
  readonly ranOn: string;
  readonly reusesOutput: boolean;
  /** Which path the kernel took: "gemm", "reduction" or "elementwise". */
  readonly path: "gemm" | "reduction" | "elementwise";
}

const UNARY = new Set([
  "neg",
  "exp",
  "log",
  "log1p",
  "expm1",
  "sqrt",
  "rsqrt",
  "tanh",
  "logistic",
  "abs",
  "sign",
  "floor",
  "ceil",
  "not",
]);
const BINARY = new Set([
  "add",
  "sub",
  "mul",
  "div",
  "max",
  "min",
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
  "and",
  "or",
]);
const REDUCE = new Set(["sum", "max", "min", "prod"]);

/** A distinct strided read: the input of a fused loop. */
interface Read {
  arg: number;
  offset: number;
  strides: number[];
}

/** Converts an IR expression; loads become inputs (deduplicated), `acc` becomes input `accInput`. */
function convert(
  e: KernelExpr,
  reads: Read[],
  strides: (a: AffineIndex) => number[],
  accInput?: () => number,
): Expr {
  switch (e.op) {
    case "load": {
      const st = strides(e.index);
      let i = reads.findIndex(
        (r) => r.arg === e.arg && r.offset === e.index.offset && r.strides.every((s, d) => s === st[d]),
      );
      if (i < 0) i = reads.push({ arg: e.arg, offset: e.index.offset, strides: st }) - 1;
      return ew.input(i);
    }
    case "const":
      return ew.c(e.value);
    case "acc":
      if (!accInput) throw new ConfigError("acc outside an epilogue", "wasm kernel");
      return ew.input(accInput());
    case "unary":
      if (!UNARY.has(e.fn))
        throw new ConfigError(`unary ${e.fn} is not supported by the wasm backend`, "wasm kernel");
      return (ew as unknown as Record<string, (x: Expr) => Expr>)[e.fn]!(
        convert(e.x, reads, strides, accInput),
      );
    case "binary":
      if (!BINARY.has(e.fn))
        throw new ConfigError(`binary ${e.fn} is not supported by the wasm backend`, "wasm kernel");
      return (ew as unknown as Record<string, (x: Expr, y: Expr) => Expr>)[e.fn]!(
        convert(e.a, reads, strides, accInput),
        convert(e.b, reads, strides, accInput),
      );
    case "select":
      return ew.select(
        convert(e.c, reads, strides, accInput),
        convert(e.t, reads, strides, accInput),
        convert(e.f, reads, strides, accInput),
      );
  }
}

/** Loads of an expression. */
function loads(e: KernelExpr, out: Extract<KernelExpr, { op: "load" }>[] = []) {
  if (e.op === "load") out.push(e);
  else if (e.op === "unary") loads(e.x, out);
  else if (e.op === "binary") {
    loads(e.a, out);
    loads(e.b, out);
  } else if (e.op === "select") {
    loads(e.c, out);
    loads(e.t, out);
    loads(e.f, out);
  }
  return out;
}

/** Merges the reduction axes into one when every load steps them contiguously; null if it cannot. */
function singleReductionAxis(
  shape: readonly number[],
  body: KernelExpr,
): { size: number; coeff: (a: AffineIndex) => number } | null {
  const axes = shape.map((n, d) => [n, d] as const).filter(([n]) => n !== 1);
  const ls = loads(body);
  for (let i = 0; i + 1 < axes.length; i++) {
    const [, p] = axes[i]!;
    const [n, d] = axes[i + 1]!;
    if (!ls.every((l) => l.index.red[p] === l.index.red[d]! * n)) return null;
  }
  const size = shape.reduce((a, b) => a * b, 1);
  const inner = axes.length ? axes[axes.length - 1]![1] : -1;
  return { size, coeff: (a) => (inner < 0 ? 0 : a.red[inner]!) };
}

function isAcc(e: KernelExpr): boolean {
  return e.op === "acc";
}

/**
 * The project's WebAssembly backend behind the jit's `KernelBackend` shape (`name`, `compile`).
 * `run` stages Float32Array inputs into the heap on each call and copies the result out; `runPtr`
 * works on heap offsets directly (the jit's resident plans), with only the epilogue's accumulator
 * in a scratch block of this adapter.
 */
export class WasmKernelBackend {
  readonly name = "wasm";
  readonly backend: WasmBackend;
  private readonly staging: { ptr: number; bytes: number }[] = [];

  private readonly owned: boolean;

  constructor(backend?: WasmBackend) {
    this.owned = backend === undefined;
    this.backend = backend ?? new WasmBackend();
  }

  /** Frees the staging buffers (and the backend, when this object created it). */
  dispose(): void {
    for (const s of this.staging) if (s) this.backend.heap.free(s.ptr);
    this.staging.length = 0;
    if (this.owned) this.backend.dispose();
  }

  /** Stages `data` into slot `slot` of persistent heap memory; returns its byte offset. */
  private stage(slot: number, bytes: number): number {
    const heap = this.backend.heap;
    const have = this.staging[slot];
    if (have && have.bytes >= bytes) return have.ptr;
    if (have) heap.free(have.ptr);
    const next = { ptr: heap.alloc(Math.max(bytes, 64)), bytes: Math.max(bytes, 64) };
    this.staging[slot] = next;
    return next.ptr;
  }

  compile(kernel: AffineKernel): WasmCompiledKernel {
    const outShape = kernel.outShape;
    const outSize = outShape.reduce((a, b) => a * b, 1);
    const heap = this.backend.heap;
    const be = this.backend;
    // Slots: 0 = output, 1 = accumulator, 2… = the arguments.
    const loadArgs = (inputs: readonly Float32Array[]): number[] => {
      if (inputs.length !== kernel.argSizes.length) {
        throw new ConfigError(
          `expected ${kernel.argSizes.length} inputs, got ${inputs.length}`,
          "wasm kernel",
        );
      }
      return inputs.map((x, i) => {
        if (x.length !== kernel.argSizes[i]) {
          throw new ShapeError(
            `input ${i} has ${x.length} elements, expected ${kernel.argSizes[i]}`,
            "wasm kernel",
          );
        }
        const p = this.stage(2 + i, 4 * x.length);
        heap.f32().set(x, p / 4);
        return p;
      });
    };
    const checkPtrs = (inputs: readonly number[]): void => {
      if (inputs.length !== kernel.argSizes.length) {
        throw new ConfigError(
          `expected ${kernel.argSizes.length} inputs, got ${inputs.length}`,
          "wasm kernel",
        );
      }
    };
    /** `run` on top of a pointer-level body: stage, compute into output slot 0, copy out. */
    const viaStaging =
      (exec: (args: readonly number[], out: number) => void) =>
      (inputs: readonly Float32Array[], out?: Float32Array): Float32Array => {
        const args = loadArgs(inputs);
        const o = this.stage(0, 4 * outSize);
        exec(args, o);
        return finish(o, out);
      };
    const viaPtrs =
      (exec: (args: readonly number[], out: number) => void) =>
      (inputs: readonly number[], out: number): void => {
        checkPtrs(inputs);
        exec(inputs, out);
      };
    const finish = (ptr: number, out?: Float32Array): Float32Array => {
      const view = heap.f32().subarray(ptr / 4, ptr / 4 + outSize);
      if (out) {
        if (out.length !== outSize)
          throw new ShapeError(`out has ${out.length} elements, expected ${outSize}`, "wasm kernel");
        out.set(view);
        return out;
      }
      return view.slice();
    };
    // The epilogue as a fused loop over [outShape] reading its own loads and acc (one more input).
    const epilogue = () => {
      const reads: Read[] = [];
      let acc = -1;
      const accIndex = () => {
        if (acc < 0) acc = reads.push({ arg: -1, offset: 0, strides: [] }) - 1;
        return acc;
      };
      const expr = convert(kernel.expr, reads, (a) => [...a.out], accIndex);
      return { expr, reads, accAt: acc };
    };

    const red = kernel.reduction;
    if (red && !REDUCE.has(red.op))
      throw new ConfigError(`reduction ${red.op} is not supported`, "wasm kernel");

    // The epilogue reads the accumulator (a scratch block) and its own loads, and writes `o`.
    const runEpilogue = (
      ep: NonNullable<ReturnType<typeof epilogue>>,
      epKernel: ReturnType<WasmBackend["elementwise"]>,
      args: readonly number[],
      acc: number,
      o: number,
    ): void => {
      epKernel.runPtr(
        o,
        outShape,
        ep.reads.map((r, i) =>
          i === ep.accAt
            ? { ptr: acc, shape: outShape }
            : { ptr: args[r.arg]! + 4 * r.offset, shape: outShape, strides: r.strides },
        ),
      );
    };

    // 1. Matmul: sum over one axis of load·load, operands independent of opposite output axes.
    const gemm =
      red?.op === "sum" && outShape.length >= 2 && red.body.op === "binary" && red.body.fn === "mul"
        ? matchGemm(kernel)
        : null;
    if (gemm) {
      const ep = isAcc(kernel.expr) ? null : epilogue();
      const epKernel = ep ? be.elementwise(ep.expr, ep.reads.length) : null;
      const [M, N] = outShape.slice(-2) as [number, number];
      const batch = outShape.slice(0, -2);
      const batchCount = batch.reduce((a, b) => a * b, 1);
      const A = gemm.a;
      const B = gemm.b;
      const exec = (args: readonly number[], o: number): void => {
        const c = ep ? this.stage(1, 4 * outSize) : o;
        const idx = batch.map(() => 0);
        for (let b = 0; b < batchCount; b++) {
          const boff = (coeffs: readonly number[]) => idx.reduce((s, v, d) => s + v * coeffs[d]!, 0);
          be.gemm.gemmPtr(
            M,
            N,
            gemm.k,
            { ptr: args[A.arg]! + 4 * (A.offset + boff(A.batch)), rs: A.rs, cs: A.cs },
            { ptr: args[B.arg]! + 4 * (B.offset + boff(B.batch)), rs: B.rs, cs: B.cs },
            c + 4 * b * M * N,
            N,
            be.threads,
          );
          for (let d = batch.length - 1; d >= 0; d--) {
            if (++idx[d]! < batch[d]!) break;
            idx[d] = 0;
          }
        }
        if (ep && epKernel) runEpilogue(ep, epKernel, args, c, o);
      };
      return {
        path: "gemm",
        ranOn: "wasm:gemm",
        reusesOutput: true,
        run: viaStaging(exec),
        runPtr: viaPtrs(exec),
      };
    }

    // 2. Other reductions: one reduction axis appended to the output space.
    if (red) {
      const axis = singleReductionAxis(red.shape, red.body);
      if (!axis)
        throw new ConfigError("reductions over several non-contiguous axes are not supported", "wasm kernel");
      const ep = isAcc(kernel.expr) ? null : epilogue();
      const epKernel = ep ? be.elementwise(ep.expr, ep.reads.length) : null;
      // A reduction over the rows of a matrix, ∘_r f(G[r, c], …) (a bias gradient), reads each
      // column with the row stride in a row reduction; the column reduction walks down the rows
      // with contiguous vectors of columns instead.
      const bodyLoads = loads(red.body);
      if (
        outShape.length === 1 &&
        outShape[0]! >= 4 &&
        axis.size >= 4 &&
        bodyLoads.every((l) => axis.coeff(l.index) !== 1) &&
        bodyLoads.some((l) => l.index.out[0] !== 0)
      ) {
        const reads: Read[] = [];
        const body = convert(red.body, reads, (a) => [axis.coeff(a), a.out[0]!]);
        const col = new ColumnReduction(be.heap, body, reads.length, red.op as ReduceKind);
        const [C] = outShape as [number];
        const R = axis.size;
        const exec = (args: readonly number[], o: number): void => {
          const acc = ep ? this.stage(1, 4 * outSize) : o;
          col.runPtr(
            acc,
            R,
            C,
            reads.map((r) => ({ ptr: args[r.arg]! + 4 * r.offset, rs: r.strides[0]!, cs: r.strides[1]! })),
          );
          if (ep && epKernel) runEpilogue(ep, epKernel, args, acc, o);
        };
        return {
          path: "reduction",
          ranOn: "wasm:column-reduction",
          reusesOutput: true,
          run: viaStaging(exec),
          runPtr: viaPtrs(exec),
        };
      }
      const reads: Read[] = [];
      const body = convert(red.body, reads, (a) => [...a.out, axis.coeff(a)]);
      const rk = be.reduction(body, reads.length, red.op as ReduceKind);
      const space = [...outShape, axis.size];
      const exec = (args: readonly number[], o: number): void => {
        const acc = ep ? this.stage(1, 4 * outSize) : o;
        rk.runPtr(
          acc,
          space,
          reads.map((r) => ({ ptr: args[r.arg]! + 4 * r.offset, shape: space, strides: r.strides })),
        );
        if (ep && epKernel) runEpilogue(ep, epKernel, args, acc, o);
      };
      return {
        path: "reduction",
        ranOn: "wasm:reduction",
        reusesOutput: true,
        run: viaStaging(exec),
        runPtr: viaPtrs(exec),
      };
    }

    // 3. Elementwise.
    const reads: Read[] = [];
    const expr = convert(kernel.expr, reads, (a) => [...a.out]);
    const k = be.elementwise(expr, reads.length);
    const exec = (args: readonly number[], o: number): void => {
      k.runPtr(
        o,
        outShape,
        reads.map((r) => ({ ptr: args[r.arg]! + 4 * r.offset, shape: outShape, strides: r.strides })),
      );
    };
    return {
      path: "elementwise",
      ranOn: "wasm:elementwise",
      reusesOutput: true,
      run: viaStaging(exec),
      runPtr: viaPtrs(exec),
    };
  }
}

/** A GEMM operand read from the IR: element (i, j) at offset + i·rs + j·cs (+ batch coefficients). */
interface GemmOperand {
  arg: number;
  offset: number;
  rs: number;
  cs: number;
  batch: number[];
}

function matchGemm(kernel: AffineKernel): { a: GemmOperand; b: GemmOperand; k: number } | null {
  const red = kernel.reduction!;
  const body = red.body as Extract<KernelExpr, { op: "binary" }>;
  if (body.a.op !== "load" || body.b.op !== "load") return null;
  const axis = singleReductionAxis(red.shape, body);
  if (!axis) return null;
  const r = kernel.outShape.length;
  const view = (l: Extract<KernelExpr, { op: "load" }>) => ({
    arg: l.arg,
    offset: l.index.offset,
    m: l.index.out[r - 2]!,
    n: l.index.out[r - 1]!,
    k: axis.coeff(l.index),
    batch: l.index.out.slice(0, r - 2),
  });
  const x = view(body.a);
  const y = view(body.b);
  // A must not move with the output column, B not with the output row.
  const asGemm = (a: typeof x, b: typeof x) =>
    a.n === 0 && b.m === 0
      ? {
          a: { arg: a.arg, offset: a.offset, rs: a.m, cs: a.k, batch: a.batch },
          b: { arg: b.arg, offset: b.offset, rs: b.k, cs: b.n, batch: b.batch },
          k: axis.size,
        }
      : null;
  return asGemm(x, y) ?? asGemm(y, x);
}
