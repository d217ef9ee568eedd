/**
 * The WebAssembly SIMD CPU backend as one object: a persistent heap, the GEMM (optionally on
 * worker threads), and fused elementwise kernels cached by expression. This is the plain
 * Float32Array API the jit plugs in behind its kernel interface; everything here is usable on its
 * own.
 *
 * @example
 * ```ts
 * const be = new WasmBackend({ threads: 2 });
 * const c = be.matmul(a, b, 512, 512, 512);          // Float32Array(512*512)
 * const y = be.elementwise(ew.tanh(ew.input(0)), 1).run([{ data: x, shape: [x.length] }], [x.length]);
 * be.dispose();
 * ```
 */
import { ConfigError } from "../../../core/errors.js";
import { type Conv2dOptions, WasmConv } from "./conv.js";
import {
  compileElementwise,
  compileReduction,
  type ElementwiseKernel,
  type Expr,
  type ReduceKind,
} from "./elementwise.js";
import { DEFAULT_BLOCKS, type GemmBlocks, type MatmulOptions, WasmGemm } from "./gemm.js";
import { DEFAULT_SHAPE, type MicroKernelShape } from "./gemm-module.js";
import { type HeapOptions, WasmHeap } from "./heap.js";
import { GemmWorkerPool } from "./threads.js";

/** Options of {@link WasmBackend}. */
export interface WasmBackendOptions extends HeapOptions {
  /** Threads for large GEMMs, the caller's included (default 1; 2 uses one worker). */
  threads?: number;
  /** Micro-kernel shape (default 4×8, the largest tile V8 keeps in registers). */
  shape?: MicroKernelShape;
  /** Cache blocking (default {@link DEFAULT_BLOCKS}). */
  blocks?: GemmBlocks;
}

export class WasmBackend {
  readonly heap: WasmHeap;
  readonly gemm: WasmGemm;
  readonly threads: number;
  private readonly kernels = new Map<Expr, Map<string, ElementwiseKernel>>();
  private convolution: WasmConv | undefined;

  constructor(options: WasmBackendOptions = {}) {
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new ConfigError(`threads must be a positive integer, got ${threads}`, "WasmBackend");
    }
    if (threads > 1 && options.shared === false) {
      throw new ConfigError("threads > 1 needs a shared heap", "WasmBackend");
    }
    this.heap = new WasmHeap({ ...options, shared: options.shared ?? (threads > 1 || undefined) });
    this.gemm = new WasmGemm(this.heap, options.shape ?? DEFAULT_SHAPE, options.blocks ?? DEFAULT_BLOCKS);
    this.threads = threads;
    if (threads > 1) this.gemm.pool = GemmWorkerPool.start(this.heap, this.gemm.module, threads - 1);
  }

  /** C[M,N] = op(A)·op(B) (see {@link WasmGemm.matmul}); uses the backend's threads by default. */
  matmul(
    a: Float32Array,
    b: Float32Array,
    m: number,
    k: number,
    n: number,
    options: MatmulOptions = {},
  ): Float32Array {
    return this.gemm.matmul(a, b, m, k, n, { threads: this.threads, ...options });
  }

  /** The compiled kernel for `expr` (cached on the expression object and arity). */
  elementwise(expr: Expr, arity: number): ElementwiseKernel {
    return this.cached(expr, `${arity}`, () => compileElementwise(this.heap, expr, arity));
  }

  /** The compiled row reduction (sum/max over the last axis) of `expr` (cached). */
  reduction(expr: Expr, arity: number, kind: ReduceKind): ElementwiseKernel {
    return this.cached(expr, `${arity}/${kind}`, () => compileReduction(this.heap, expr, arity, kind));
  }

  /** The convolution kernels on this backend's heap (forward, kernel and input gradients). */
  get conv(): WasmConv {
    this.convolution ??= new WasmConv(this.gemm);
    return this.convolution;
  }

  /** NHWC × HWIO convolution by im2col + GEMM (see {@link WasmConv.conv2d}). */
  conv2d(
    x: Float32Array,
    xShape: readonly number[],
    w: Float32Array,
    wShape: readonly number[],
    options: Conv2dOptions & { threads?: number } = {},
  ): { data: Float32Array; shape: [number, number, number, number] } {
    return this.conv.conv2d(x, xShape, w, wShape, { threads: this.threads, ...options });
  }

  private cached(expr: Expr, key: string, make: () => ElementwiseKernel): ElementwiseKernel {
    let byKey = this.kernels.get(expr);
    if (!byKey) this.kernels.set(expr, (byKey = new Map()));
    let k = byKey.get(key);
    if (!k) byKey.set(key, (k = make()));
    return k;
  }

  /** Stops worker threads and drops cached kernels. */
  dispose(): void {
    this.gemm.pool?.terminate();
    this.gemm.pool = undefined;
    for (const m of this.kernels.values()) for (const k of m.values()) k.dispose();
    this.kernels.clear();
  }
}

let defaultBackend: WasmBackend | undefined;

/** A lazily created single-threaded backend shared by {@link matmul}. */
export function defaultWasmBackend(): WasmBackend {
  defaultBackend ??= new WasmBackend();
  return defaultBackend;
}

/**
 * C[M,N] = op(A)·op(B) for row-major Float32Arrays on the default (single-threaded) backend.
 *
 * @example
 * ```ts
 * const c = matmul(new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), 2, 2, 2);
 * // c = [19, 22, 43, 50]
 * ```
 */
export function matmul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  options: MatmulOptions = {},
): Float32Array {
  return defaultWasmBackend().matmul(a, b, m, k, n, options);
}
