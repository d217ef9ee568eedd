/**
 * `optim.contrib`: optax.contrib's optimizers, starting with its two-optimizer form of SAM.
 *
 * @example const opt = contrib.sam(sgd(0.1), chain(contrib.normalize(), sgd(0.05)));
 */
export {
  type ContribSamOptions,
  type GradientTransformationExtraArgs,
  type SamExtraArgs,
  type SamState,
  normalize,
  sam,
} from "./sam.js";
