/**
 * jit: the compiler front end and its backends.
 *
 * `jit(f)` (jit.ts) stages `f` once per signature and binds the `pjit` primitive (pjit.ts), whose
 * JVP / transpose / batching / partial-evaluation rules re-stage the inner jaxpr and bind `pjit`
 * again. Evaluating `pjit` builds an Executable (executable.ts) once per (jaxpr, backend): the passes
 * (passes.ts: inline, fold constants, CSE, DCE), kernel grouping (fusion.ts, with lowering.ts's
 * table from primitives to the kernel IR in kernel-ir.ts), then one compiled kernel per group from
 * the backend, run in order with buffers released at their last use.
 *
 * Backends implement `KernelBackend` (backend.ts): `"wasm"` (wasm-backend.ts over wasm/, the own
 * WebAssembly SIMD backend and the default without a GPU), `"ts"` (kernel-eval.ts, the kernel-IR
 * oracle), `"gpu.js"` (gpujs-render.ts + gpujs-backend.ts; the default in a browser with WebGPU or
 * WebGL2), any value registered with `registerBackend`, and `"reference"`, which skips compilation
 * and interprets the jaxpr. `setDefaultBackend` changes the default.
 */
import { registerBackend } from "./backend.js";
import { gpuJsBackend } from "./gpujs-backend.js";
import { tsBackend } from "./kernel-eval.js";
import { wasmJitBackend } from "./wasm-backend.js";

registerBackend("ts", () => tsBackend);
registerBackend("gpu.js", (opts) =>
  gpuJsBackend({
    ...(opts.mode ? { mode: String(opts.mode) } : {}),
    ...(opts.require ? { require: String(opts.require) } : {}),
  }),
);
registerBackend("wasm", (opts) =>
  wasmJitBackend({
    ...(opts.threads !== undefined ? { threads: Number(opts.threads) } : {}),
    ...(opts.fallback !== undefined ? { fallback: opts.fallback as "gpu.js" | "ts" | "none" } : {}),
    ...(opts.shared !== undefined ? { shared: Boolean(opts.shared) } : {}),
    ...(opts.resultViewBytes !== undefined ? { resultViewBytes: Number(opts.resultViewBytes) } : {}),
    ...(opts.inputCacheBytes !== undefined ? { inputCacheBytes: Number(opts.inputCacheBytes) } : {}),
  }),
);

export {
  type BackendOption,
  type CompiledKernel,
  type KernelBackend,
  environmentDefaultBackend,
  getDefaultBackend,
  registerBackend,
  setDefaultBackend,
} from "./backend.js";
export { type WasmJitOptions, wasmJitBackend } from "./wasm-backend.js";
export type { KernelReport, LoweredReport } from "./executable.js";
export { jit, type JitOptions, type Jitted } from "./jit.js";
export type { Kernel, KExpr } from "./kernel-ir.js";
export { pjit_p } from "./pjit.js";
