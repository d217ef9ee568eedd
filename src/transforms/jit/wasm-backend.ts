/**
 * The own WebAssembly SIMD backend as the jit's `"wasm"` backend: each kernel goes to the wasm
 * adapter (GEMM, fused row and column reductions, fused elementwise loops, epilogues as a second
 * fused loop).
 * Where the adapter declines a kernel (ops it lacks: sin, cos, pow; reductions over several axes
 * that do not merge) the kernel falls back, per kernel, to gpu.js `webasm` and, should gpu.js be
 * unavailable, to the kernel-IR evaluator; `ranOn` and `fallbackReason` report which and why.
 *
 * Its `memory` is the wasm heap: the jit runs plans resident in it (inputs placed once, every
 * kernel on heap offsets through `runPtr`, results returned as views into a shared heap), see
 * executable.ts and resident.ts.
 *
 * Escapes the fusion leaves (convolutions, pooling and its gradient, `rev`) run natively when
 * they fit (wasm-escapes.ts). Compiled kernels are cached per backend instance on the kernel's
 * hash, so retracing (or a second program with the same kernel) reuses the generated module.
 */
import { ConfigError } from "../../core/errors.js";
import type { CompiledKernel, DeviceMemory, KernelBackend } from "./backend.js";
import { gpuJsBackend } from "./gpujs-backend.js";
import { tsBackend } from "./kernel-eval.js";
import { type Affine, type Kernel, coalesce, forEachLoad, kernelHash, mapLoads } from "./kernel-ir.js";
import { wasmEscape } from "./wasm-escapes.js";
import { WasmBackend } from "./wasm/backend.js";
import { WasmKernelBackend } from "./wasm/kernel-adapter.js";

/** Options of the `"wasm"` backend (`jit(f, { backend: { name: "wasm", threads: 2 } })`). */
export interface WasmJitOptions {
  /** GEMM threads, the caller's included (default: 2 where worker threads and shared memory exist, else 1). */
  threads?: number;
  /**
   * Where a kernel the wasm backend cannot take runs: `"gpu.js"` (its `webasm` mode, the default)
   * or `"ts"` (the kernel-IR evaluator). `"none"` raises the adapter's ConfigError instead.
   */
  fallback?: "gpu.js" | "ts" | "none";
  /**
   * A shared memory (default: where SharedArrayBuffer exists). Only a shared memory returns
   * results as views into it; `false` (which needs `threads: 1`) copies every result out.
   */
  shared?: boolean;
  /**
   * The most bytes live result views may hold (default 64 MiB): a view's block is freed when the
   * view is garbage-collected, which happens between tasks, so a synchronous loop of calls gets
   * views for its first 16 MiB of results (`JOB_VIEW_BYTES` in resident.ts) and copies after.
   * 0 copies every result.
   *
   * @example
   * ```ts
   * jit(step, { backend: { name: "wasm", resultViewBytes: 0 } }); // results always copied out
   * ```
   */
  resultViewBytes?: number;
  /** The most bytes of cached heap copies of JS-side inputs (default 128 MiB; 0 caches none). */
  inputCacheBytes?: number;
}

const MAX_CACHED_KERNELS = 512;

/** Two threads where Node's worker_threads and SharedArrayBuffer are present and there are ≥ 2 cores. */
export function defaultWasmThreads(): number {
  const g = globalThis as { process?: { getBuiltinModule?: (m: string) => unknown } };
  if (typeof SharedArrayBuffer === "undefined") return 1;
  const os = g.process?.getBuiltinModule?.("os") as { availableParallelism?: () => number } | undefined;
  const wt = g.process?.getBuiltinModule?.("worker_threads");
  if (!os || !wt) return 1;
  return Math.min(2, Math.max(1, os.availableParallelism?.() ?? 1));
}

/**
 * Orders a multi-axis reduction's axes by the first load's strides (largest first), so that a
 * reduction over a transposed buffer (`max(abs(gᵀ))` over all its elements, say) becomes one
 * contiguous axis after `coalesce`, which the wasm row reduction takes. This changes only the order
 * in which elements are combined: exact for max and min, a reassociation (within the same float32
 * error bound) for sum and prod.
 */
export function orderReductionAxes(k: Kernel): Kernel {
  const red = k.reduction;
  if (!red || red.shape.length < 2) return k;
  let first: Affine | null = null;
  forEachLoad(red.body, (a) => {
    first ??= a;
  });
  if (first === null) return k;
  const coeff = (first as Affine).red;
  const order = red.shape.map((_, d) => d).sort((a, b) => Math.abs(coeff[b]!) - Math.abs(coeff[a]!) || a - b);
  if (order.every((d, i) => d === i)) return k;
  const remap = (a: Affine): Affine => ({ offset: a.offset, out: a.out, red: order.map((d) => a.red[d]!) });
  return {
    ...k,
    reduction: { op: red.op, shape: order.map((d) => red.shape[d]!), body: mapLoads(red.body, remap) },
    expr: mapLoads(k.expr, remap),
  };
}

/**
 * Creates the jit's wasm backend.
 *
 * @example
 * ```ts
 * registerBackend("wasm", (o) => wasmJitBackend({ threads: o.threads as number | undefined }));
 * jit(f, { backend: "wasm" }).lower(x).backend; // "wasm:gemm+wasm:elementwise"
 * ```
 */
export function wasmJitBackend(
  opts: WasmJitOptions = {},
): KernelBackend & { readonly memory: DeviceMemory; dispose(): void; memoryBytes(): number } {
  for (const key of ["resultViewBytes", "inputCacheBytes"] as const) {
    const v = opts[key];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0))
      throw new ConfigError(`${key} must be a non-negative number of bytes, got ${v}`, "wasm backend");
  }
  if (opts.shared === false && opts.threads !== undefined && opts.threads > 1)
    throw new ConfigError(`threads: ${opts.threads} needs a shared memory (shared: false)`, "wasm backend");
  const threads = opts.threads ?? (opts.shared === false ? 1 : defaultWasmThreads());
  const fallbackTo = opts.fallback ?? "gpu.js";
  let adapter: WasmKernelBackend | null = null;
  let wasm: WasmBackend | null = null;
  let memory: DeviceMemory | null = null;
  const shared = opts.shared !== undefined ? { shared: opts.shared } : {};
  const getAdapter = (): WasmKernelBackend => {
    if (adapter === null) {
      let be: WasmBackend;
      try {
        be = new WasmBackend({ threads, ...shared });
      } catch (e) {
        // No worker threads here after all (or they failed to start): one thread still works.
        if (threads === 1 || !(e instanceof ConfigError)) throw e;
        be = new WasmBackend({ threads: 1, ...shared });
      }
      wasm = be;
      adapter = new WasmKernelBackend(be);
      const heap = be.heap;
      // A new object per heap: resident state (cached inputs, result views) belongs to one heap.
      memory = {
        alloc: (bytes) => heap.alloc(bytes),
        free: (ptr) => heap.free(ptr),
        f32: () => heap.f32(),
        shared: heap.shared,
        ...(opts.resultViewBytes !== undefined ? { resultViewBytes: opts.resultViewBytes } : {}),
        ...(opts.inputCacheBytes !== undefined ? { inputCacheBytes: opts.inputCacheBytes } : {}),
      };
    }
    return adapter;
  };
  let gpu: KernelBackend | null = null;
  const cache = new Map<string, CompiledKernel>();

  const fallback = (kernel: Kernel, reason: string): CompiledKernel => {
    if (fallbackTo === "gpu.js") {
      try {
        gpu ??= gpuJsBackend({ mode: "webasm" });
        const c = gpu.compile(kernel);
        return {
          get ranOn() {
            return c.ranOn;
          },
          get fallbackReason() {
            return c.fallbackReason ? `${reason}; ${c.fallbackReason}` : reason;
          },
          reusesOutput: c.reusesOutput,
          ...(c.source !== undefined ? { source: c.source } : {}),
          run: (inputs, out) => c.run(inputs, out),
        };
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        reason = `${reason}; gpu.js unavailable: ${e.message}`;
      }
    }
    const t = tsBackend.compile(kernel);
    return { ...t, ranOn: "ts", fallbackReason: reason };
  };

  return {
    name: "wasm",
    /** The wasm heap (created on first use; a new one after `dispose`). */
    get memory(): DeviceMemory {
      getAdapter();
      return memory!;
    },
    compile(raw: Kernel): CompiledKernel {
      const kernel = coalesce(orderReductionAxes(coalesce(raw)));
      const key = kernelHash(kernel);
      const hit = cache.get(key);
      if (hit) {
        cache.delete(key);
        cache.set(key, hit);
        return hit;
      }
      if (cache.size >= MAX_CACHED_KERNELS) cache.delete(cache.keys().next().value!);
      let compiled: CompiledKernel;
      try {
        const w = getAdapter().compile(kernel);
        compiled = {
          ranOn: w.ranOn,
          reusesOutput: w.reusesOutput,
          run: (inputs, out) => w.run(inputs, out),
          runPtr: (inputs, out) => w.runPtr(inputs, out),
        };
      } catch (e) {
        if (!(e instanceof ConfigError) || fallbackTo === "none") throw e;
        compiled = fallback(kernel, `wasm declined: ${e.message}`);
      }
      cache.set(key, compiled);
      return compiled;
    },
    /** The size of the backend's linear memory (0 before its first kernel). */
    memoryBytes: () => wasm?.heap.memory.buffer.byteLength ?? 0,
    compileEscape: (eqn) => wasmEscape(() => getAdapter().backend, eqn),
    dispose(): void {
      adapter?.dispose();
      wasm?.dispose();
      adapter = null;
      wasm = null;
      memory = null;
      cache.clear();
    },
  };
}
