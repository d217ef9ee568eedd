/** optax's named optimizers, each a chain of the transformations in transforms.ts. */
import { type GradientTransformation, type ScalarOrSchedule, chain, checkNumber, checkScalarOrSchedule, identity } from "./base.js";
import {
  type Mask,
  addDecayedWeights,
  scaleByAdam,
  scaleByLearningRate,
  scaleByLion,
  scaleByRms,
  scaleByRss,
  scaleByTrustRatio,
  traceMomentum,
} from "./transforms.js";

/**
 * `optax.sgd`: `-lr·g`, or with momentum β `t ← g + β·t` and `-lr·t` (Nesterov: `-lr·(g + β·t)`).
 * `flaxNesterov` is flax.optim.Momentum's Nesterov form used by the SAM paper's code
 * (`v ← βv + g; w ← w - lr(g + βv)`), which is the same update as optax's Nesterov trace.
 *
 * @example sgd(0.1, { momentum: 0.9, nesterov: true })
 */
export function sgd(
  learningRate: ScalarOrSchedule,
  opts: { momentum?: number; nesterov?: boolean; flaxNesterov?: boolean } = {},
): GradientTransformation<unknown[]> {
  checkScalarOrSchedule("sgd", "learningRate", learningRate);
  const { momentum, nesterov = false, flaxNesterov = false } = opts;
  if (momentum !== undefined) checkNumber("sgd", "momentum", momentum, { min: 0, max: 1, maxExclusive: true });
  return chain(
    momentum !== undefined ? traceMomentum({ decay: momentum, nesterov: nesterov || flaxNesterov }) : identity(),
    scaleByLearningRate(learningRate),
  );
}

/** `optax.adam`. @example adam(1e-3) */
export function adam(
  learningRate: ScalarOrSchedule,
  opts: { b1?: number; b2?: number; eps?: number; epsRoot?: number } = {},
): GradientTransformation<unknown[]> {
  checkScalarOrSchedule("adam", "learningRate", learningRate);
  return chain(scaleByAdam(opts), scaleByLearningRate(learningRate));
}

/** `optax.adamw`: Adam with decoupled weight decay (`mask` limits it). @example adamw(1e-3, { weightDecay: 1e-4 }) */
export function adamw(
  learningRate: ScalarOrSchedule,
  opts: { b1?: number; b2?: number; eps?: number; epsRoot?: number; weightDecay?: number; mask?: Mask } = {},
): GradientTransformation<unknown[]> {
  checkScalarOrSchedule("adamw", "learningRate", learningRate);
  const { weightDecay = 1e-4, mask, ...adamOpts } = opts;
  return chain(scaleByAdam(adamOpts), addDecayedWeights(weightDecay, mask), scaleByLearningRate(learningRate));
}

/** `optax.rmsprop` (uncentered), with optional momentum. @example rmsprop(1e-3, { decay: 0.9 }) */
export function rmsprop(
  learningRate: ScalarOrSchedule,
  opts: { decay?: number; eps?: number; initialScale?: number; momentum?: number; nesterov?: boolean } = {},
): GradientTransformation<unknown[]> {
  checkScalarOrSchedule("rmsprop", "learningRate", learningRate);
  const { decay = 0.9, eps = 1e-8, initialScale = 0, momentum, nesterov = false } = opts;
  return chain(
    scaleByRms({ decay, eps, initialScale }),
    scaleByLearningRate(learningRate),
    momentum !== undefined ? traceMomentum({ decay: momentum, nesterov }) : identity(),
  );
}

/** `optax.adagrad`. @example adagrad(0.1) */
export function adagrad(
  learningRate: ScalarOrSchedule,
  opts: { initialAccumulatorValue?: number; eps?: number } = {},
): GradientTransformation<unknown[]> {
  checkScalarOrSchedule("adagrad", "learningRate", learningRate);
  return chain(scaleByRss(opts), scaleByLearningRate(learningRate));
}

/** `optax.lamb`: Adam moments, decoupled weight decay, layer-wise trust ratio. @example lamb(1e-3) */
export function lamb(
  learningRate: ScalarOrSchedule,
  opts: { b1?: number; b2?: number; eps?: number; epsRoot?: number; weightDecay?: number; mask?: Mask } = {},
): GradientTransformation<unknown[]> {
  checkScalarOrSchedule("lamb", "learningRate", learningRate);
  const { weightDecay = 0, mask, eps = 1e-6, ...rest } = opts;
  return chain(scaleByAdam({ ...rest, eps }), addDecayedWeights(weightDecay, mask), scaleByTrustRatio(), scaleByLearningRate(learningRate));
}

/** `optax.lion`. @example lion(1e-4, { weightDecay: 1e-3 }) */
export function lion(
  learningRate: ScalarOrSchedule,
  opts: { b1?: number; b2?: number; weightDecay?: number; mask?: Mask } = {},
): GradientTransformation<unknown[]> {
  checkScalarOrSchedule("lion", "learningRate", learningRate);
  const { b1 = 0.9, b2 = 0.99, weightDecay = 1e-3, mask } = opts;
  return chain(scaleByLion({ b1, b2 }), addDecayedWeights(weightDecay, mask), scaleByLearningRate(learningRate));
}
