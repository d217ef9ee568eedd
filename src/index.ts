/**
 * tsjax: a functional, pure-TypeScript neural-net framework with JAX's transforms.
 *
 * @example
 * ```ts
 * import { numpy as np, grad } from "tsjax";
 * grad((x) => np.sum(np.sin(x)))(np.array([0, 1])); // cos(x)
 * ```
 *
 * @module tsjax
 */
export * from "./core/index.js";
import * as coreLax from "./core/lax.js";
import { cond, foriLoop, scan, switchCase, whileLoop } from "./transforms/control-flow.js";
/** `lax`: the primitives by JAX's names in camelCase, plus control flow (`cond`, `switch`, `scan`, `whileLoop`, `foriLoop`). */
export const lax = { ...coreLax, cond, switch: switchCase, scan, whileLoop, foriLoop };
export * as nn from "./nn/index.js";
export * as optim from "./optim/index.js";
export {
  checkpoint,
  customJvp,
  customVjp,
  grad,
  hessian,
  hvp,
  jacfwd,
  jacrev,
  jit,
  jvp,
  linearize,
  makeJaxpr,
  valueAndGrad,
  vjp,
  vmap,
  type GradOptions,
  type JitOptions,
  type VmapOptions,
} from "./transforms/index.js";
export { stopGradient } from "./core/primitives/elementwise.js";
