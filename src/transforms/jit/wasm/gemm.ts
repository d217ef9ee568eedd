/**
 * The f32 GEMM of the WebAssembly backend, over a {@link WasmHeap}: a pointer-level entry point
 * for programs whose buffers live in linear memory, and a `Float32Array` convenience that stages
 * its operands in persistent buffers (grown when too small, never reallocated per call).
 */
import { ConfigError, ShapeError } from "../../../core/errors.js";
import {
  buildGemmModule,
  DEFAULT_SHAPE,
  type MicroKernelShape,
  relaxedSimdSupported,
  scratchLayout,
} from "./gemm-module.js";
import type { WasmHeap } from "./heap.js";

/** Cache blocking: KC (depth of a packed block), MC (rows of packed A), NC (columns of packed B). */
export interface GemmBlocks {
  kc: number;
  mc: number;
  nc: number;
}

/** KC·NR·4 = 8 KiB of B per micro-panel (L1), MC·KC·4 = 128 KiB of A (L2), KC·NC·4 = 1 MiB of B. */
export const DEFAULT_BLOCKS: GemmBlocks = { kc: 256, mc: 128, nc: 1024 };

/** Options of {@link WasmGemm.matmul}. */
export interface MatmulOptions {
  /** A is given as its transpose, a [K, M] row-major array. */
  transA?: boolean;
  /** B is given as its transpose, an [N, K] row-major array. */
  transB?: boolean;
  /** Threads to split the work over (needs a shared heap and a started pool: {@link WasmGemm.pool}); default 1. */
  threads?: number;
  /** Where to write C ([M, N] row-major); a fresh array by default. */
  out?: Float32Array;
}

/** A strided operand in linear memory: element (i, j) at byte `ptr + 4·(i·rs + j·cs)`. */
export interface StridedOperand {
  ptr: number;
  rs: number;
  cs: number;
}

/**
 * One GEMM cut into `chunks` ranges of `chunk` rows (`splitM`) or columns of C, the last one
 * shorter, all on micro-tile boundaries; `args(t)` gives the whole problem's 19 gemm arguments
 * with thread t's scratch (t = 0 is the caller).
 */
export interface GemmJob {
  splitM: boolean;
  extent: number;
  chunk: number;
  chunks: number;
  args: (thread: number) => number[];
}

/** Something that runs a GEMM's chunks on other threads too (see threads.ts). */
export interface GemmThreadPool {
  readonly threads: number;
  /**
   * Runs `job` on the caller (through `gemm`) and `helpers` workers, each claiming chunks until
   * none is left, and returns when all are done.
   */
  run(job: GemmJob, helpers: number, gemm: (...args: number[]) => void): void;
  terminate(): void;
}

let relaxedSimd: boolean | undefined;
/** {@link relaxedSimdSupported}, checked once (engine flags do not change under a running program). */
function hasRelaxedSimd(): boolean {
  relaxedSimd ??= relaxedSimdSupported();
  return relaxedSimd;
}

function checkDims(m: number, k: number, n: number): void {
  for (const [name, v] of [
    ["M", m],
    ["K", k],
    ["N", n],
  ] as const) {
    if (!Number.isInteger(v) || v < 0)
      throw new ShapeError(`${name} must be a non-negative integer, got ${v}`, "matmul");
  }
}

/**
 * The GEMM kernel bound to a heap.
 *
 * @example
 * ```ts
 * const gemm = new WasmGemm(new WasmHeap());
 * const c = gemm.matmul(a, b, m, k, n); // a: Float32Array(m*k), b: Float32Array(k*n)
 * ```
 */
export class WasmGemm {
  /** The module bytes (worker threads instantiate the same module on the same memory). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly module: WebAssembly.Module;
  private readonly gemmFn: (...args: number[]) => void;
  /** Scratch per thread: index 0 is the calling thread's. */
  private readonly scratch: number[] = [];
  private readonly layout: ReturnType<typeof scratchLayout>;
  private staging: { ptr: number; bytes: number } | undefined;
  pool: GemmThreadPool | undefined;
  /** Below this many flops (2·M·N·K) a GEMM stays on the calling thread: the handshake costs more. */
  minThreadFlops = 1 << 23;
  /**
   * Chunks per thread a threaded GEMM is cut into, so that a thread slowed down by other work on
   * its core takes fewer of them.
   */
  chunksPerThread = 3;
  /**
   * The smallest chunk (rows or columns of C): each chunk packs the whole of the other operand
   * again, so a 128-wide chunk repacks it once per 256 flops per element (about 3 % at the
   * measured packing speed of 0.2–0.3 ns per element).
   */
  minChunk = 128;

  constructor(
    readonly heap: WasmHeap,
    readonly shape: MicroKernelShape = DEFAULT_SHAPE,
    readonly blocks: GemmBlocks = DEFAULT_BLOCKS,
  ) {
    if (blocks.kc < 1 || blocks.mc < 1 || blocks.nc < 1) {
      throw new ConfigError(`block sizes must be positive, got ${JSON.stringify(blocks)}`, "WasmGemm");
    }
    // NC a multiple of NR keeps thread splits and NC blocks on micro-panel boundaries.
    this.blocks = { ...blocks, nc: Math.ceil(blocks.nc / shape.nr) * shape.nr };
    // FMA unless told otherwise, where the engine has relaxed SIMD.
    this.shape = { ...shape, fma: shape.fma ?? hasRelaxedSimd() };
    this.bytes = buildGemmModule(this.shape, { shared: heap.shared, maxPages: heap.maxPages });
    this.module = new WebAssembly.Module(this.bytes);
    const inst = new WebAssembly.Instance(this.module, { env: { memory: heap.memory } });
    this.gemmFn = inst.exports.gemm as (...args: number[]) => void;
    this.layout = scratchLayout(this.shape, this.blocks);
    this.scratch.push(heap.alloc(this.layout.total));
  }

  /** Scratch block of thread `t` (allocated on first use). */
  scratchFor(t: number): number {
    while (this.scratch.length <= t) this.scratch.push(this.heap.alloc(this.layout.total));
    return this.scratch[t]!;
  }

  /** The 19 arguments of the wasm `gemm` for a column range and a scratch block. */
  private args(
    m: number,
    n: number,
    k: number,
    a: StridedOperand,
    b: StridedOperand,
    c: number,
    ldc: number,
    n0: number,
    n1: number,
    scratch: number,
  ): number[] {
    // Equal blocks no larger than the configured ones (K = 288 runs as 2×144, not 256 + 32). The K
    // blocking depends on K alone, so row/column splits between threads leave results bitwise
    // unchanged; M blocks stay multiples of MR.
    const even = (size: number, max: number, multiple: number) => {
      const blocks = Math.max(1, Math.ceil(size / max));
      return Math.min(max, Math.ceil(Math.ceil(size / blocks) / multiple) * multiple);
    };
    const kc = even(k, this.blocks.kc, 1);
    const mc = even(m, this.blocks.mc, this.shape.mr);
    const nc = this.blocks.nc;
    const L = this.layout;
    return [
      m,
      n,
      k,
      a.ptr,
      a.rs,
      a.cs,
      b.ptr,
      b.rs,
      b.cs,
      c,
      ldc,
      scratch + L.pa,
      scratch + L.pb,
      scratch + L.tile,
      n0,
      n1,
      kc,
      mc,
      nc,
    ];
  }

  /**
   * C = A·B on operands already in linear memory (byte offsets, strides in elements); C is
   * [M, N] with row stride `ldc`. With `threads > 1` and a started pool, the longer of M and N is
   * cut into chunks on tile boundaries that the threads claim as they go; the result is bitwise
   * the same as with one thread.
   */
  gemmPtr(
    m: number,
    n: number,
    k: number,
    a: StridedOperand,
    b: StridedOperand,
    c: number,
    ldc = n,
    threads = 1,
  ): void {
    checkDims(m, k, n);
    if (m === 0 || n === 0) return;
    const pool = this.pool;
    const t = Math.min(threads, pool ? pool.threads + 1 : 1);
    // Split the longer of M and N (on tile boundaries): each thread packs the whole of the other
    // operand, so splitting a skinny N (convolutions, thin layers) would duplicate packing all of A.
    const splitM = m > n;
    const tile = splitM ? this.shape.mr : this.shape.nr;
    const extent = splitM ? m : n;
    if (t <= 1 || 2 * m * n * k < this.minThreadFlops || extent < 2 * tile) {
      this.gemmFn(...this.args(m, n, k, a, b, c, ldc, 0, n, this.scratch[0]!));
      return;
    }
    const tiles = Math.ceil(extent / tile);
    // Chunks of whole tiles, claimed dynamically (threads.ts); at least t of them, so that every
    // thread has work when the machine is quiet.
    const chunkTiles = Math.max(
      1,
      Math.ceil(this.minChunk / tile),
      Math.ceil(tiles / (this.chunksPerThread * t)),
    );
    const chunk = Math.min(chunkTiles, Math.ceil(tiles / t)) * tile;
    for (let i = 0; i < t; i++) this.scratchFor(i);
    pool!.run(
      {
        splitM,
        extent,
        chunk,
        chunks: Math.ceil(extent / chunk),
        args: (thread) => this.args(m, n, k, a, b, c, ldc, 0, n, this.scratch[thread]!),
      },
      t - 1,
      this.gemmFn,
    );
  }

  /**
   * C[M,N] = op(A)·op(B) for row-major Float32Arrays: A is [M,K] (or [K,M] with `transA`), B is
   * [K,N] (or [N,K] with `transB`). Operands are copied into persistent staging memory.
   */
  matmul(
    a: Float32Array,
    b: Float32Array,
    m: number,
    k: number,
    n: number,
    options: MatmulOptions = {},
  ): Float32Array {
    checkDims(m, k, n);
    if (a.length !== m * k)
      throw new ShapeError(`A has ${a.length} elements, expected M·K = ${m * k}`, "matmul");
    if (b.length !== k * n)
      throw new ShapeError(`B has ${b.length} elements, expected K·N = ${k * n}`, "matmul");
    const out = options.out ?? new Float32Array(m * n);
    if (out.length !== m * n)
      throw new ShapeError(`out has ${out.length} elements, expected ${m * n}`, "matmul");
    if (m === 0 || n === 0) return out;
    const round = (x: number) => Math.ceil(x / 16) * 16;
    const need = 4 * (round(a.length) + round(b.length) + round(m * n));
    if (!this.staging || this.staging.bytes < need) {
      if (this.staging) this.heap.free(this.staging.ptr);
      this.staging = { ptr: this.heap.alloc(need), bytes: need };
    }
    const pa = this.staging.ptr;
    const pb = pa + 4 * round(a.length);
    const pc = pb + 4 * round(b.length);
    const mem = this.heap.f32();
    mem.set(a, pa / 4);
    mem.set(b, pb / 4);
    const A: StridedOperand = options.transA ? { ptr: pa, rs: 1, cs: m } : { ptr: pa, rs: k, cs: 1 };
    const B: StridedOperand = options.transB ? { ptr: pb, rs: 1, cs: k } : { ptr: pb, rs: n, cs: 1 };
    this.gemmPtr(m, n, k, A, B, pc, n, options.threads ?? 1);
    out.set(this.heap.f32().subarray(pc / 4, pc / 4 + m * n));
    return out;
  }
}
