/** jit: the compiler front end (passes, kernel grouping, kernel IR) and its backends. */
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
