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
 * Backends implement `KernelBackend` (backend.ts): `"ts"` (kernel-eval.ts, the kernel-IR oracle),
 * `"gpu.js"` (gpujs-render.ts + gpujs-backend.ts), any value registered with `registerBackend`
 * (the own WebAssembly backend plugs in there and can become the default with
 * `setDefaultBackend`), and `"reference"`, which skips compilation and interprets the jaxpr.
 */
import { registerBackend } from "./backend.js";
import { gpuJsBackend } from "./gpujs-backend.js";
import { tsBackend } from "./kernel-eval.js";

registerBackend("ts", () => tsBackend);
registerBackend("gpu.js", (opts) =>
  gpuJsBackend({
    ...(opts.mode ? { mode: String(opts.mode) } : {}),
    ...(opts.require ? { require: String(opts.require) } : {}),
  }),
);

export {
  type BackendOption,
  type CompiledKernel,
  type KernelBackend,
  registerBackend,
  setDefaultBackend,
} from "./backend.js";
export type { KernelReport, LoweredReport } from "./executable.js";
export { jit, type JitOptions, type Jitted } from "./jit.js";
export type { Kernel, KExpr } from "./kernel-ir.js";
export { pjit_p } from "./pjit.js";
