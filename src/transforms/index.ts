/** The transforms: JAX's `jvp`, `linearize`, `vjp`, `grad`, `vmap`, `makeJaxpr` and friends. */
export { grad, hessian, hvp, jacfwd, jacrev, linearize, linearizeFlat, valueAndGrad, vjp, type GradOptions } from "./autodiff.js";
export { jvp, jvpFlat } from "./jvp.js";
export { partialEvalJaxpr, type PartialEvalRule } from "./partial-eval.js";
export { makeJaxpr, makeJaxprFlat } from "./staging.js";
export { backwardPass } from "./transpose.js";
export { vmap, vmapFlat, type VmapOptions } from "./vmap.js";
export { checkpoint, customJvp, customVjp, type CheckpointOptions, type CustomJvpOptions, type CustomVjpOptions } from "./custom.js";
export { cond, foriLoop, scan, switchCase, whileLoop, type ScanOptions } from "./control-flow.js";
export { jit, pjit_p, registerBackend, setDefaultBackend, type BackendOption, type JitOptions, type Jitted, type KernelBackend, type LoweredReport } from "./jit/index.js";
