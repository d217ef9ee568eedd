/**
 * From a {@link TrainConfig} to the pieces of a run: the model, its loss, the base optimizer and
 * one training step that feeds the chosen gradient (plain, SAM, ASAM, GSAM, USAM, LookSAM,
 * m-sharpness) to it. Everything is built from `nn` and `optim`; nothing here is specific to the
 * command line except the choice of defaults.
 */
import * as np from "../../core/numpy/index.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { jit, valueAndGrad } from "../../transforms/index.js";
import * as nn from "../../nn/index.js";
import type { Layer } from "../../nn/layer.js";
import * as optim from "../../optim/index.js";
import type { TrainConfig } from "./config.js";

/** The mutable-free state of a run between steps (everything a checkpoint holds but the key). */
export interface StepState {
  params: unknown;
  optState: unknown;
  /** BatchNorm running statistics and the like (`{}` for MLP and CNN). */
  modelState: unknown;
  /** LookSAM's `{count, gv}`; `null` for the others. */
  samState: unknown;
}

/** What one step measured (scalars, float32 as computed). */
export interface StepMetrics {
  loss: number;
  /** Correct predictions in the batch (against the possibly noisy labels). */
  correct: number;
  /** SAM diagnostics, for sam and asam only. */
  sam: { gradNorm: number; samGradNorm: number; cosine: number; lossIncrease: number } | null;
}

/** {@link StepMetrics} before they leave the compiled step: scalar tensors. */
interface StepTensors {
  loss: Tensor;
  correct: Tensor;
  sam: { gradNorm: Tensor; samGradNorm: Tensor; cosine: Tensor; lossIncrease: Tensor } | null;
}

/** The assembled pieces of a run. */
export interface Setup {
  model: Layer;
  init(key: Tensor, batchShape: number[]): StepState;
  step(s: StepState, x: Tensor, y: Tensor): [StepState, StepMetrics];
  /** Summed loss and number of correct predictions over a batch, in evaluation mode. */
  evaluate(s: StepState, x: Tensor, y: Tensor): { lossSum: number; correct: number };
  /** The mean loss in evaluation mode as a function of the params (for Hessian diagnostics). */
  evalLoss(s: StepState): (params: unknown, x: Tensor, y: Tensor) => Tensor;
}

/**
 * The network `--model` names.
 *
 * @example
 * ```ts
 * buildModel(resolveTrainConfig({ hidden: "64" }), 10).name; // "MLP"
 * ```
 */
export function buildModel(cfg: TrainConfig, numClasses: number): Layer {
  switch (cfg.model) {
    case "mlp":
      return nn.models.MLP([...cfg.hidden, numClasses]);
    case "cnn":
      return nn.models.CNN({ numClasses });
    case "wrn":
      return nn.models.WideResNet({ depth: cfg.depth, widen: cfg.width, numClasses });
  }
}

function baseOptimizer(cfg: TrainConfig, stepsPerEpoch: number): optim.GradientTransformation<any> {
  const kind =
    cfg.optimizer === "sgd" || cfg.optimizer === "momentum" || cfg.optimizer === "adam"
      ? cfg.optimizer
      : cfg.base;
  const lr: optim.ScalarOrSchedule =
    cfg.schedule === "cosine" ? optim.cosineDecaySchedule(cfg.lr, cfg.epochs * stepsPerEpoch) : cfg.lr;
  switch (kind) {
    case "sgd":
      return optim.sgd(lr);
    case "momentum":
      return optim.sgd(lr, { momentum: cfg.momentum });
    case "adam":
      return optim.adam(lr);
  }
}

type Aux = { modelState: unknown; correct: Tensor; loss: Tensor };

/**
 * Builds a run's model, loss and step. The training loss is the batch mean of softmax cross
 * entropy with integer labels; its aux carries the new model state and the batch's correct count.
 *
 * @example
 * ```ts
 * const setup = buildSetup(resolveTrainConfig({ optimizer: "sam" }), 10, 100);
 * let s = setup.init(random.key(0), [128, 784]);
 * ```
 */
export function buildSetup(cfg: TrainConfig, numClasses: number, stepsPerEpoch: number): Setup {
  const model = buildModel(cfg, numClasses);
  const opt = baseOptimizer(cfg, stepsPerEpoch);

  const loss = (params: unknown, modelState: unknown, x: Tensor, y: Tensor): [Tensor, Aux] => {
    const [logits, newState] = model.apply(params, modelState, x, { train: true });
    const l = np.mean(nn.losses.softmaxCrossEntropyWithIntegerLabels(logits, y));
    const correct = np.sum(np.astype(np.equal(np.argmax(logits, -1), y), "float32"));
    return [l, { modelState: newState, correct, loss: l }];
  };
  const scalarLoss = (params: unknown, modelState: unknown, x: Tensor, y: Tensor): Tensor =>
    loss(params, modelState, x, y)[0];

  type GradOut = { grads: unknown; aux: Aux; sam: StepTensors["sam"]; samState: unknown };
  let gradient: (s: StepState, x: Tensor, y: Tensor) => GradOut;
  const clean = valueAndGrad(loss, { hasAux: true });
  // For the variants whose gradient functions take a scalar loss, the clean forward pass supplies
  // the logged loss, accuracy and model state.
  const cleanAux = (s: StepState, x: Tensor, y: Tensor): Aux => loss(s.params, s.modelState, x, y)[1];

  switch (cfg.optimizer) {
    case "sgd":
    case "momentum":
    case "adam":
      gradient = (s, x, y) => {
        const [[, aux], grads] = clean(s.params, s.modelState, x, y) as [[Tensor, Aux], unknown];
        return { grads, aux, sam: null, samState: null };
      };
      break;
    case "sam":
    case "asam": {
      const opts: optim.SamOptions = { rho: cfg.rho, hasAux: true };
      if (cfg.optimizer === "asam") opts.adaptive = { eta: 0.01, exempt: (_p, w) => w.ndim <= 1 };
      if (cfg.m > 0) opts.m = cfg.m;
      const f = optim.samWithDiagnostics(loss, opts);
      gradient = (s, x, y) => {
        const d = f(s.params, s.modelState, x, y);
        let aux = d.aux as Aux;
        const mean = (t: Tensor) => np.mean(t);
        if (cfg.m > 0) {
          // Lanes stack their aux on axis 0: average the losses and states, add the counts.
          aux = {
            modelState: tree.map((t: Tensor) => np.mean(t, 0), aux.modelState),
            correct: np.sum(aux.correct),
            loss: np.mean(aux.loss),
          };
        }
        const sam = {
          gradNorm: mean(d.gradNorm),
          samGradNorm: mean(d.samGradNorm),
          cosine: mean(d.cosine),
          lossIncrease: mean(d.lossIncrease),
        };
        return { grads: d.grads, aux, sam, samState: null };
      };
      break;
    }
    case "gsam": {
      const f = optim.gsam(scalarLoss, { rho: cfg.rho, alpha: cfg.alpha });
      gradient = (s, x, y) => ({
        grads: f(s.params, s.modelState, x, y),
        aux: cleanAux(s, x, y),
        sam: null,
        samState: null,
      });
      break;
    }
    case "usam": {
      const f = optim.usam(scalarLoss, { rho: cfg.rho });
      gradient = (s, x, y) => ({
        grads: f(s.params, s.modelState, x, y),
        aux: cleanAux(s, x, y),
        sam: null,
        samState: null,
      });
      break;
    }
    case "looksam": {
      const ls = optim.lookSam(scalarLoss, { rho: cfg.rho, k: cfg.k, alpha: cfg.alpha });
      gradient = (s, x, y) => {
        const [grads, samState] = ls.step(s.samState as never, s.params, s.modelState, x, y);
        return { grads, aux: cleanAux(s, x, y), sam: null, samState };
      };
      break;
    }
  }

  const pureStep = (s: StepState, x: Tensor, y: Tensor): [StepState, StepTensors] => {
    const out = gradient(s, x, y);
    const g =
      cfg.weightDecay > 0 ? optim.treeAdd(out.grads, optim.treeScale(cfg.weightDecay, s.params)) : out.grads;
    const [updates, optState] = opt.update(g, s.optState, s.params);
    const next: StepState = {
      params: optim.applyUpdates(s.params, updates),
      optState,
      modelState: out.aux.modelState,
      samState: out.samState,
    };
    return [next, { loss: out.aux.loss, correct: out.aux.correct, sam: out.sam }];
  };
  const pureEvaluate = (params: unknown, modelState: unknown, x: Tensor, y: Tensor): Tensor[] => {
    const [logits] = model.apply(params, modelState, x, { train: false });
    const lossSum = np.sum(nn.losses.softmaxCrossEntropyWithIntegerLabels(logits, y));
    const correct = np.sum(np.astype(np.equal(np.argmax(logits, -1), y), "float32"));
    return [lossSum, correct];
  };
  // Compiled once per batch shape on jit's default backend (the WebAssembly SIMD one in Node);
  // `--eager` runs the same functions op by op on the reference implementations.
  const step = cfg.eager ? pureStep : jit(pureStep);
  const evaluate = cfg.eager ? pureEvaluate : jit(pureEvaluate);

  return {
    model,
    init(key, batchShape) {
      const { params, state } = model.init(key, batchShape);
      const samState =
        cfg.optimizer === "looksam"
          ? optim.lookSam(scalarLoss, { rho: cfg.rho, k: cfg.k, alpha: cfg.alpha }).init(params)
          : null;
      return { params, optState: opt.init(params), modelState: state, samState };
    },
    step(s, x, y) {
      const [next, m] = step(s, x, y);
      const sam = m.sam && {
        gradNorm: m.sam.gradNorm.item(),
        samGradNorm: m.sam.samGradNorm.item(),
        cosine: m.sam.cosine.item(),
        lossIncrease: m.sam.lossIncrease.item(),
      };
      return [next, { loss: m.loss.item(), correct: m.correct.item(), sam }];
    },
    evaluate(s, x, y) {
      const [lossSum, correct] = evaluate(s.params, s.modelState, x, y);
      return { lossSum: lossSum!.item(), correct: correct!.item() };
    },
    evalLoss(s) {
      return (params, x, y) => {
        const [logits] = model.apply(params, s.modelState, x, { train: false });
        return np.mean(nn.losses.softmaxCrossEntropyWithIntegerLabels(logits, y));
      };
    },
  };
}
