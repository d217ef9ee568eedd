/**
 * `optim`: optax-style gradient transformations, optimizers and schedules.
 *
 * @example
 * ```ts
 * const opt = optim.sgd(0.1, { momentum: 0.9 });
 * let state = opt.init(params);
 * const [updates, s1] = opt.update(grads, state, params);
 * params = optim.applyUpdates(params, updates);
 * ```
 */
export * from "./base.js";
export * from "./tree-math.js";
export * from "./transforms.js";
export * from "./alias.js";
export * from "./schedules.js";
export {
  type AdaptiveOperator,
  type AdaptiveOptions,
  type DualVectorOptions,
  type GsamOptions,
  type LookSam,
  type LookSamOptions,
  type LookSamState,
  type SamDecayStep,
  type SamDiagnostics,
  type SamOptions,
  type SamTrainStepOptions,
  type SamWeightDecayOptions,
  type SamWeightDecayState,
  type WeightDecayConvention,
  dualVector,
  filterNorms,
  fisherDirection,
  gsam,
  gsamRhoSchedule,
  lookSam,
  projectToBall,
  sam,
  samOn,
  samOperator,
  samPerturbation,
  samTrainStep,
  samWeightDecayStep,
  samWithDiagnostics,
  usam,
} from "./sam/index.js";
export * as hessian from "./sharpness/hessian.js";
export * as sharpness from "./sharpness/index.js";
export * from "./select.js";
export {
  type ExtragradientGameOptions,
  type ExtragradientOptions,
  type GameDirections,
  type GameFn,
  type GameOptions,
  type GameSolver,
  type GameState,
  type OptimisticGradientOptions,
  type OptimisticGradientState,
  extragradient,
  extragradientGame,
  gradientDescentAscent,
  optimisticGradient,
} from "./extragradient.js";
export * as contrib from "./contrib/index.js";
