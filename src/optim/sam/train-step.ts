/**
 * google-research/sam's `train_step` (flax_training.py, `sam_rho > 0` branch) as a pure function:
 * L2 inside the loss, clean pass for g and the new model state, perturbed pass with the same rng
 * for the gradient and the metrics, global-norm clip, base optimizer.
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { valueAndGrad, vmap } from "../../transforms/index.js";
import { type GradientTransformation, applyUpdates, checkNumber } from "../base.js";
import { clipByGlobalNorm } from "../transforms.js";
import { samPerturbation } from "./gradient.js";

/** What the user's loss returns: `[lossValue, aux]`, with the new model state in `aux.modelState`. */
export type SamStepLoss = (
  params: any,
  modelState: any,
  batch: any,
  rng: any,
) => [Tensor, { modelState: unknown; [k: string]: unknown }];

/** Options of {@link samTrainStep}. */
export interface SamTrainStepOptions {
  loss: SamStepLoss;
  optimizer: GradientTransformation<any>;
  /** Perturbation radius (`>= 0`); 0 takes the official single-pass branch. */
  rho: number;
  /** λ of the `0.5·λ·Σ‖w‖²` penalty added inside the loss (both passes). */
  weightDecay: number;
  /** Global-norm clip of the final gradient; `0` disables it. Default 5 (the official flag). */
  gradClipNorm?: number;
  /** Leaves the penalty covers (default all; e.g. `(_, w) => w.ndim > 1` for `no_weight_decay_on_bn`). */
  decayMask?: (path: tree.KeyPath, leaf: Tensor) => boolean;
  /**
   * The official per-device SAM on one machine: every batch leaf's leading axis (B) is split into
   * B/m lanes (devices) of m examples, each lane takes both passes with its own ε and its own batch
   * statistics, then the lanes' gradients are averaged before the clip (the official pmean). The
   * new model state and the metrics are lane means (float leaves; other leaves from lane 0), which
   * is the official eval-time pmean of per-device states.
   */
  m?: number;
  /** With `m`: `rng` carries one key per lane on its leading axis (e.g. `random.split(key, B/m)`); default: one rng shared by all lanes. */
  rngPerLane?: boolean;
}

/** The step's metrics: taken at the perturbed weights when `rho > 0`, as the official code logs them. */
export interface SamStepMetrics {
  /** `J = L + 0.5·λ·Σ‖w‖²`. */
  loss: Tensor;
  /** `L` alone (the official `train_loss`). */
  dataLoss: Tensor;
  /** The loss's aux from that pass, without `modelState`. */
  aux: Record<string, unknown>;
}

/** Result of one step. */
export interface SamStepResult<P, S, M> {
  params: P;
  optState: S;
  modelState: M;
  metrics: SamStepMetrics;
}

/** `0.5·λ·Σ‖w‖²` over the selected leaves (λ = 0 adds nothing, so the loss is untouched). */
function l2Penalty(params: unknown, wd: number, mask: SamTrainStepOptions["decayMask"]): Tensor | null {
  if (wd === 0) return null;
  const [leaves] = tree.flattenWithPath<Tensor>(params);
  let s: Tensor | null = null;
  for (const [path, w] of leaves) {
    if (mask && !mask(path, w)) continue;
    const t = np.sum(np.multiply(w, w));
    s = s === null ? t : np.add(s, t);
  }
  return s === null ? null : np.multiply(s, 0.5 * wd);
}

/**
 * One SAM training step, mirror mode: `(params, optState, modelState, batch, rng) →
 * { params, optState, modelState, metrics }`. The returned model state (e.g. BN running stats)
 * comes from the clean pass; both passes start from the incoming state and use the same `rng`.
 *
 * @example const step = samTrainStep({ loss, optimizer: sgd(0.1, { momentum: 0.9, flaxNesterov: true }), rho: 0.05, weightDecay: 5e-4 });
 */
export function samTrainStep(opts: SamTrainStepOptions) {
  const op = "samTrainStep";
  if (opts === null || typeof opts !== "object")
    throw new ConfigError("options { loss, optimizer, rho, weightDecay } are required", op);
  const { loss, optimizer, rho, weightDecay, gradClipNorm = 5.0, decayMask, m, rngPerLane = false } = opts;
  if (m !== undefined && (!Number.isInteger(m) || m < 1))
    throw new ConfigError(`m must be a positive integer, got ${String(m)}`, op);
  if (rngPerLane && m === undefined) throw new ConfigError("rngPerLane needs m", op);
  if (typeof loss !== "function") throw new ConfigError("loss must be a function", op);
  if (!optimizer || typeof optimizer.update !== "function")
    throw new ConfigError("optimizer must be a GradientTransformation", op);
  checkNumber(op, "rho", rho, { min: 0 });
  checkNumber(op, "weightDecay", weightDecay, { min: 0 });
  checkNumber(op, "gradClipNorm", gradClipNorm, { min: 0 });
  const clip = gradClipNorm > 0 ? clipByGlobalNorm(gradClipNorm) : null;

  const objective = (
    params: unknown,
    modelState: unknown,
    batch: unknown,
    rng: unknown,
  ): [Tensor, { dataLoss: Tensor; aux: any }] => {
    const [l, aux] = loss(params, modelState, batch, rng);
    const pen = l2Penalty(params, weightDecay, decayMask);
    return [pen === null ? l : np.add(l, np.astype(pen, l.dtype)), { dataLoss: l, aux }];
  };
  const vg = valueAndGrad(objective, { argnums: 0, hasAux: true });
  const metricsOf = (j: Tensor, extra: { dataLoss: Tensor; aux: any }): SamStepMetrics => {
    const { modelState: _dropped, ...rest } = (extra.aux ?? {}) as Record<string, unknown>;
    return { loss: j, dataLoss: extra.dataLoss, aux: rest };
  };

  /** Both passes on one (sub-)batch: the gradient fed to the optimizer, the clean pass's new state, the metrics. */
  const lanePasses = (params: unknown, modelState: unknown, batch: unknown, rng: unknown) => {
    const [[j0, extra0], g0] = vg(params, modelState, batch, rng) as [
      [Tensor, { dataLoss: Tensor; aux: any }],
      unknown,
    ];
    const newModelState = extra0.aux?.modelState;
    // The official code branches on rho > 0: rho = 0 never forms 0·g/‖g‖ (NaN at g = 0).
    if (!(rho > 0)) return { g: g0, modelState: newModelState, metrics: metricsOf(j0, extra0) };
    const eps = samPerturbation(g0, params, { rho, mode: "mirror" });
    const shifted = tree.map((w: Tensor, e: Tensor) => np.add(w, np.astype(e, w.dtype)), params, eps);
    // Same incoming model state and same rng as the clean pass; its new state is discarded.
    const [[j1, extra1], g1] = vg(shifted, modelState, batch, rng) as [
      [Tensor, { dataLoss: Tensor; aux: any }],
      unknown,
    ];
    return { g: g1, modelState: newModelState, metrics: metricsOf(j1, extra1) };
  };

  /** The lanes' mean for float leaves; lane 0 for the others (e.g. int32 counters, equal in every lane). */
  const laneMean = (x: unknown): unknown =>
    tree.map(
      (l: Tensor) => (l.dtype === "float32" || l.dtype === "float64" ? np.mean(l, 0) : np.take(l, 0, 0)),
      x,
    );

  const lanes = (params: unknown, modelState: unknown, batch: unknown, rng: unknown) => {
    const sizes = new Set(tree.leaves<Tensor>(batch).map((x) => x.shape[0]));
    const [size] = [...sizes];
    if (sizes.size !== 1 || size === undefined)
      throw new ConfigError("with m, every batch leaf needs the same leading axis", op);
    if (size % m! !== 0) throw new ConfigError(`batch size ${size} is not divisible by m = ${m}`, op);
    const k = size / m!;
    const split = tree.map((x: Tensor) => np.reshape(x, [k, m!, ...x.shape.slice(1)]), batch);
    const out = vmap(lanePasses, { inAxes: [null, null, 0, rngPerLane ? 0 : null] })(
      params,
      modelState,
      split,
      rng,
    ) as ReturnType<typeof lanePasses>;
    return {
      g: laneMean(out.g),
      modelState: laneMean(out.modelState),
      metrics: laneMean(out.metrics) as SamStepMetrics,
    };
  };

  return <P, S, M>(
    params: P,
    optState: S,
    modelState: M,
    batch: unknown,
    rng: unknown,
  ): SamStepResult<P, S, M> => {
    const out =
      m === undefined ? lanePasses(params, modelState, batch, rng) : lanes(params, modelState, batch, rng);
    let g = out.g;
    if (clip) g = clip.update(g, null)[0];
    const [updates, newOptState] = optimizer.update(g, optState, params);
    return {
      params: applyUpdates(params, updates),
      optState: newOptState as S,
      modelState: out.modelState as M,
      metrics: out.metrics,
    };
  };
}
