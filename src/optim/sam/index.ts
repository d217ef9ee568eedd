/**
 * `optim.sam`: the SAM gradient (Foret et al.) and its variants (ASAM, Fisher-SAM, p-norms,
 * projected multi-step ascent, m-sharpness) as compositions of `grad`, `stopGradient` and `vmap`.
 *
 * @example const g = sam.sam(loss, { rho: 0.05 })(params, x, y);
 */
export { checkP, dualVector, type DualVectorOptions } from "./dual-vector.js";
export {
  sam,
  samPerturbation,
  samWithDiagnostics,
  type AdaptiveOptions,
  type SamDiagnostics,
  type SamOptions,
} from "./gradient.js";
export {
  filterNorms,
  fisherDirection,
  projectToBall,
  samOperator,
  type AdaptiveOperator,
  type LeafPredicate,
} from "./operators.js";
export {
  gsam,
  gsamRhoSchedule,
  lookSam,
  samOn,
  usam,
  type GsamOptions,
  type LookSam,
  type LookSamOptions,
  type LookSamState,
  type SamOnOptions,
  type UsamOptions,
} from "./variants.js";
export {
  samTrainStep,
  type SamTrainStepOptions,
  type SamStepLoss,
  type SamStepMetrics,
  type SamStepResult,
} from "./train-step.js";
export {
  samWeightDecayStep,
  type SamDecayStep,
  type SamWeightDecayOptions,
  type SamWeightDecayState,
  type WeightDecayConvention,
} from "./weight-decay.js";
