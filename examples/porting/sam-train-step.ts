/**
 * google-research/sam's `train_step` (flax_training.py, the `sam_rho > 0` branch) ported to tsjax
 * twice: written out line by line, and as the library's `optim.samTrainStep`. docs/porting-from-jax.md
 * shows this file next to the Python, and test/docs.test.ts checks that the two ports agree.
 */
import { type Tensor, nn, numpy as np, optim, tree, valueAndGrad } from "../../src/index.js";

/** The official flags that shape the step. */
export interface OfficialFlags {
  rho: number;
  /** `weight_decay`: λ of the `0.5·λ·Σ‖w‖²` penalty inside the loss. */
  weightDecay: number;
  labelSmoothing: number;
  /** `gradient_clipping` (the official default is 5). */
  gradClipNorm: number;
  learningRate: optim.Schedule;
  numClasses: number;
}

/** A batch as the official input pipeline yields it. */
export interface Batch {
  image: Tensor;
  label: Tensor;
}

// --8<-- [start:port]
export function officialTrainStep(model: nn.Layer, flags: OfficialFlags) {
  const { rho, weightDecay, labelSmoothing, gradClipNorm, numClasses } = flags;

  // 1. forward_and_loss: label-smoothed cross entropy plus 0.5·λ·Σ‖w‖² over every leaf.
  const forwardAndLoss = (params: unknown, modelState: unknown, batch: Batch, rng: Tensor) => {
    const [logits, newState] = model.apply(params, modelState, batch.image, { train: true, rng });
    const targets = nn.losses.smoothLabels(nn.oneHot(batch.label, numClasses), labelSmoothing);
    const ce = np.mean(nn.losses.softmaxCrossEntropy(logits, targets));
    const l2 = tree.leaves<Tensor>(params).reduce((s, w) => s.add(np.sum(w.mul(w))), np.array(0));
    return [ce.add(l2.mul(0.5 * weightDecay)), { modelState: newState, logits }] as const;
  };
  const gradFn = valueAndGrad(forwardAndLoss, { hasAux: true });
  // 9. flax.optim.Momentum(beta=0.9, nesterov=True), its learning rate from the schedule.
  const optimizer = optim.sgd(flags.learningRate, { momentum: 0.9, flaxNesterov: true });
  const clip = optim.clipByGlobalNorm(gradClipNorm);

  const step = (params: unknown, optState: unknown[], modelState: unknown, batch: Batch, rng: Tensor) => {
    // 2. First pass at the clean weights: g and the new model state (BN running averages).
    const [[, { modelState: innerState }], g] = gradFn(params, modelState, batch, rng);
    // 4-5. dual_vector (one global norm, no epsilon), then w + ρ·ĝ on every leaf.
    const eps = tree.map((d: Tensor) => d.mul(rho), optim.dualVector(g));
    const perturbed = tree.map((w: Tensor, e: Tensor) => w.add(e), params, eps);
    // 6. Second pass at w + ε: same incoming state, same rng; its state is dropped, its loss and
    //    logits are the logged metrics.
    const [[loss, { logits }], samGrad] = gradFn(perturbed, modelState, batch, rng);
    // 8. Global-norm clip of the SAM gradient, then 9. the base optimizer.
    const [clipped] = clip.update(samGrad, null);
    const [updates, newOptState] = optimizer.update(clipped, optState, params);
    return {
      params: optim.applyUpdates(params, updates),
      optState: newOptState,
      modelState: innerState,
      loss,
      logits,
    };
  };
  return { init: (params: unknown) => optimizer.init(params), step };
}

// The same step from the library: optim.samTrainStep adds the penalty, runs both passes with the
// same state and rng, keeps the clean pass's state, clips, and applies the optimizer.
export function libraryTrainStep(model: nn.Layer, flags: OfficialFlags) {
  const optimizer = optim.sgd(flags.learningRate, { momentum: 0.9, flaxNesterov: true });
  const step = optim.samTrainStep({
    loss: (params, modelState, batch: Batch, rng) => {
      const [logits, newState] = model.apply(params, modelState, batch.image, { train: true, rng });
      const targets = nn.losses.smoothLabels(nn.oneHot(batch.label, flags.numClasses), flags.labelSmoothing);
      return [np.mean(nn.losses.softmaxCrossEntropy(logits, targets)), { modelState: newState, logits }];
    },
    optimizer,
    rho: flags.rho,
    weightDecay: flags.weightDecay,
    gradClipNorm: flags.gradClipNorm,
  });
  return { init: (params: unknown) => optimizer.init(params), step };
}
// --8<-- [end:port]
