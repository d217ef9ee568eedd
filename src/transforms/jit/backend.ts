/**
 * The kernel backend interface: a backend turns one kernel-IR kernel into something that runs on
 * flat float32 buffers. The jit's plan calls compiled kernels in order and never looks inside, so a
 * new target (the project's own WebAssembly SIMD backend, WebGPU) plugs in as one value.
 */
import { ConfigError } from "../../core/errors.js";
import type { JaxprEqn } from "../../core/jaxpr.js";
import type { Tensor } from "../../core/tensor.js";
import type { Kernel } from "./kernel-ir.js";

/** A kernel ready to run. */
export interface CompiledKernel {
  /**
   * Computes the kernel on flat row-major inputs. When the backend `reusesOutput`, it writes into
   * `out` if one is given (the plan passes recycled buffers); otherwise it returns a fresh array.
   */
  run(inputs: readonly Float32Array[], out?: Float32Array): Float32Array;
  /** Where it ran, e.g. `"ts"`, `"gpu.js:webasm"`; filled in after the first run where the target decides late. */
  readonly ranOn: string;
  /** Whether `run` honours the `out` argument. */
  readonly reusesOutput: boolean;
  /** Why this kernel did not run on the requested target (a fallback), if it did not. */
  readonly fallbackReason?: string;
  /** The generated source text, for targets that generate text. */
  readonly source?: string;
  /**
   * Runs on buffers already in the backend's {@link DeviceMemory}: byte offsets of the flat
   * float32 inputs and of the output (which must not overlap an input). Backends with a memory
   * offer it so a program's intermediates never leave that memory.
   */
  runPtr?(inputs: readonly number[], out: number): void;
}

/**
 * A backend's own linear memory (the wasm heap), in which a program's buffers can stay resident
 * between kernels and between calls. Offsets are bytes; buffers are float32 and 64-byte aligned.
 */
export interface DeviceMemory {
  alloc(bytes: number): number;
  free(ptr: number): void;
  /** A Float32Array over the whole memory; re-fetch it after any `alloc` (the memory may grow). */
  f32(): Float32Array;
  /**
   * Whether the memory is a SharedArrayBuffer: growing it never detaches views, so program results
   * may be returned as views into it. A non-shared memory's results are copied out.
   */
  readonly shared: boolean;
  /**
   * The most bytes that live result views may hold (default 64 MiB; 0 copies every result out).
   * Their blocks are freed only when a view is garbage-collected, and finalizers run between
   * tasks, so a synchronous loop of calls gets views for its first 16 MiB of results only and
   * copies after, as if there were no views.
   * The memory never shrinks: the cap is also how far views alone can make it grow.
   */
  readonly resultViewBytes?: number;
  /**
   * The most bytes of cached heap copies of JS-side inputs (default 128 MiB; 0 caches none): a
   * tensor passed again is not copied again (least recently used copies are dropped first).
   */
  readonly inputCacheBytes?: number;
}

/** An equation outside the kernel IR (a convolution, say) that a backend runs natively. */
export interface CompiledEscape {
  run(inputs: readonly Tensor[]): Tensor[];
  /**
   * The same on buffers in the backend's {@link DeviceMemory}: byte offsets of the flat row-major
   * float32 inputs (in the equation's order) and of preallocated outputs (the equation's shapes).
   */
  runPtr?(inputs: readonly number[], outputs: readonly number[]): void;
  /** Where it runs, e.g. `"wasm:conv"`. */
  readonly ranOn: string;
}

export interface KernelBackend {
  /** Short name, e.g. `"ts"`, `"gpu.js"`. */
  readonly name: string;
  compile(kernel: Kernel): CompiledKernel;
  /**
   * Optionally takes over an equation the fusion leaves to the CPU implementations (an escape);
   * `null` declines, and the primitive's reference implementation runs.
   */
  compileEscape?(eqn: JaxprEqn): CompiledEscape | null;
  /** The backend's memory, when its kernels can run on resident buffers (`runPtr`). */
  readonly memory?: DeviceMemory;
}

/** `jit`'s `backend` option. */
export type BackendOption =
  | "reference"
  | "ts"
  | "gpu.js"
  | "wasm"
  | KernelBackend
  | {
      /** `"wasm"`: the own WebAssembly SIMD backend (the default where no GPU is available). */
      name: "wasm";
      /** GEMM threads, the caller's included (default 2 in Node on ≥ 2 cores, else 1). */
      threads?: number;
      /** Where kernels the wasm backend declines run (default `"gpu.js"`, i.e. its webasm mode). */
      fallback?: "gpu.js" | "ts" | "none";
      /** A shared memory (default: where SharedArrayBuffer exists; `false` needs `threads: 1`). */
      shared?: boolean;
      /** See {@link DeviceMemory.resultViewBytes} (default 64 MiB). */
      resultViewBytes?: number;
      /** See {@link DeviceMemory.inputCacheBytes} (default 128 MiB). */
      inputCacheBytes?: number;
    }
  | {
      /** `"gpu.js"`: kernels become gpu.js kernel source text. */
      name: "gpu.js";
      /** gpu.js's `mode`; omitted, gpu.js chooses (GL when a context exists, else its CPU paths). */
      mode?: "cpu" | "webasm" | "gpu" | "headlessgl" | "webgl" | "webgl2" | "webgpu";
      /**
       * What must actually run: `"gpu"` (any GL or WebGPU kernel), `"webasm"`, `"cpu"`, ... A kernel
       * that gpu.js built for anything else raises a ConfigError instead of falling back in silence.
       */
      require?: string;
    };

const registry = new Map<string, (opts: Record<string, unknown>) => KernelBackend>();

/**
 * Registers a named backend factory (`jit(f, { backend: name })`); the last registration wins.
 *
 * @example
 * ```ts
 * registerBackend("mine", () => ({ name: "mine", compile: (k) => myCompile(k) }));
 * jit(f, { backend: "mine" });
 * ```
 */
export function registerBackend(
  name: string,
  factory: (opts: Record<string, unknown>) => KernelBackend,
): void {
  registry.set(name, factory);
}

/**
 * The backend for this environment: gpu.js (which picks WebGPU / WebGL) in a browser that offers a
 * GPU API, the own WebAssembly SIMD backend everywhere else (Node, workers, browsers without a GPU).
 */
export function environmentDefaultBackend(): BackendOption {
  const g = globalThis as {
    navigator?: { gpu?: unknown };
    document?: { createElement?: (t: string) => { getContext?: (k: string) => unknown } };
  };
  if (g.navigator?.gpu) return "gpu.js";
  try {
    if (g.document?.createElement?.("canvas").getContext?.("webgl2")) return "gpu.js";
  } catch {
    // no canvas: no GL either
  }
  return "wasm";
}

let defaultBackend: BackendOption | null = null;

/**
 * Sets the backend `jit` uses when none is given (initially {@link environmentDefaultBackend}:
 * `"wasm"` without a GPU, `"gpu.js"` in a browser with WebGPU or WebGL2).
 *
 * @example
 * ```ts
 * setDefaultBackend("ts");
 * ```
 */
export function setDefaultBackend(b: BackendOption): void {
  defaultBackend = b;
}

export function getDefaultBackend(): BackendOption {
  defaultBackend ??= environmentDefaultBackend();
  return defaultBackend;
}

const instances = new Map<string, KernelBackend>();

/** A stable text key of a backend option (compiled programs are cached per jaxpr and key). */
export function backendKey(b: BackendOption): string {
  if (typeof b === "string") return b;
  if ("compile" in b) return `custom:${b.name}`;
  if (b.name === "wasm") {
    const memory = [b.shared, b.resultViewBytes, b.inputCacheBytes];
    const base = `wasm:${b.threads ?? "auto"}:${b.fallback ?? ""}`;
    return memory.every((o) => o === undefined) ? base : `${base}:${memory.map((o) => o ?? "").join(":")}`;
  }
  return `gpu.js:${b.mode ?? "auto"}:${b.require ?? ""}`;
}

/** Resolves an option to a backend (`null` for `"reference"`: run the jaxpr interpreter). */
export function resolveBackend(b: BackendOption): KernelBackend | null {
  if (b === "reference") return null;
  if (typeof b === "object" && "compile" in b) return b;
  const key = backendKey(b);
  const cached = instances.get(key);
  if (cached) return cached;
  const name = typeof b === "string" ? b : b.name;
  const factory = registry.get(name);
  if (!factory)
    throw new ConfigError(
      `unknown backend ${JSON.stringify(name)}; known: reference, ${[...registry.keys()].join(", ")}`,
      "jit",
    );
  const inst = factory(typeof b === "string" ? {} : (b as Record<string, unknown>));
  instances.set(key, inst);
  return inst;
}
