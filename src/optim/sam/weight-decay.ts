/**
 * The four weight-decay placements of SAM.md §1.4, named, each as a full SAM step with a base
 * optimizer, so a user picks one explicitly instead of inheriting it from an implementation:
 *
 * | name | ε from | gradient fed to the optimizer | who |
 * |---|---|---|---|
 * | `"l2InLoss"` (A) | `∇L(w) + λw` | `∇L(w+ε) + λ(w+ε)` | google-research/sam |
 * | `"outsideMax"` (B) | `∇L(w)` | `∇L(w+ε) + λw` | the paper's eq. 1 |
 * | `"coupled"` (C) | `∇L(w)` | `∇L(w+ε)`, then the optimizer adds `λw` before its moments | davda54, ASAM, GSAM-pytorch |
 * | `"decoupled"` (D) | `∇L(w)` | `∇L(w+ε)`; the step also subtracts `lr_t·λ·w` | optax outer optimizer with decayed weights |
 *
 * B and C give the same numbers (C is B with the decay moved into the optimizer chain).
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import {
  type GradientTransformation,
  type ScalarOrSchedule,
  applyUpdates,
  chain,
  checkNumber,
  checkScalarOrSchedule,
} from "../base.js";
import { addDecayedWeights, byPath } from "../transforms.js";
import { safeIncrement } from "../tree-math.js";
import { type SamOptions, sam } from "./gradient.js";

/** The weight-decay placements of SAM.md §1.4. */
export type WeightDecayConvention = "l2InLoss" | "outsideMax" | "coupled" | "decoupled";

/** Options of {@link samWeightDecayStep}. */
export interface SamWeightDecayOptions {
  /** λ, as in `0.5·λ‖w‖²` (JAX) and torch's `weight_decay` (both add `λw` to the gradient). */
  rate: number;
  convention: WeightDecayConvention;
  /** Leaves that decay (default all). */
  mask?: (path: tree.KeyPath, leaf: Tensor) => boolean;
  /** `"decoupled"` only: the learning rate multiplying the decay (a number or a schedule of the step). */
  learningRate?: ScalarOrSchedule;
}

/** State of {@link samWeightDecayStep}: the optimizer's state and the step count. */
export interface SamWeightDecayState {
  opt: unknown;
  count: Tensor;
}

/** A SAM step: `step(state, params, ...batch) → [newParams, newState]`. */
export interface SamDecayStep {
  init(params: unknown): SamWeightDecayState;
  step(state: SamWeightDecayState, params: unknown, ...batch: unknown[]): [unknown, SamWeightDecayState];
}

const CONVENTIONS: readonly WeightDecayConvention[] = ["l2InLoss", "outsideMax", "coupled", "decoupled"];

/** `λ·w` on the masked leaves, zero elsewhere. */
function decayTerm(params: unknown, rate: number, mask: SamWeightDecayOptions["mask"]): unknown {
  return tree.mapWithPath(
    (path, w: Tensor) => (mask && !mask(path, w) ? np.zerosLike(w) : np.multiply(w, rate)),
    params,
  );
}

/**
 * One SAM step with weight decay placed by a named convention (see the module table). `loss` takes
 * `(params, ...batch)`; `samOpts` are {@link sam}'s options (without `hasAux`, `argnums` or a
 * schedule for `rho`: the step owns the signature).
 *
 * @example
 * ```ts
 * const s = samWeightDecayStep(loss, { rho: 0.05 }, { rate: 5e-4, convention: "coupled" }, sgd(0.1, { momentum: 0.9 }));
 * let st = s.init(params);
 * [params, st] = s.step(st, params, x, y);
 * ```
 */
export function samWeightDecayStep(
  loss: (params: any, ...batch: any[]) => Tensor,
  samOpts: SamOptions,
  decay: SamWeightDecayOptions,
  optimizer: GradientTransformation<any>,
): SamDecayStep {
  const op = "samWeightDecayStep";
  if (typeof loss !== "function") throw new ConfigError("loss must be a function", op);
  if (!optimizer || typeof optimizer.update !== "function")
    throw new ConfigError("optimizer must be a GradientTransformation", op);
  if (decay === null || typeof decay !== "object")
    throw new ConfigError("decay options { rate, convention } are required", op);
  const { rate, convention, mask, learningRate } = decay;
  checkNumber(op, "rate", rate, { min: 0 });
  if (!CONVENTIONS.includes(convention))
    throw new ConfigError(
      `convention must be one of ${CONVENTIONS.join(", ")}, got ${String(convention)}`,
      op,
    );
  if (samOpts?.hasAux || (samOpts?.argnums ?? 0) !== 0 || typeof samOpts?.rho === "function")
    throw new ConfigError("samOpts may not set hasAux, argnums or a rho schedule here", op);
  if (convention === "decoupled") {
    if (learningRate === undefined) throw new ConfigError("the decoupled convention needs learningRate", op);
    checkScalarOrSchedule(op, "learningRate", learningRate);
  } else if (learningRate !== undefined)
    throw new ConfigError(`learningRate is only used by the decoupled convention, not ${convention}`, op);

  const objective = (params: unknown, ...batch: unknown[]): Tensor => {
    const l = loss(params, ...batch);
    let pen: Tensor | null = null;
    for (const [path, w] of tree.leavesWithPath<Tensor>(params)) {
      if (mask && !mask(path, w)) continue;
      const t = np.sum(np.multiply(w, w));
      pen = pen === null ? t : np.add(pen, t);
    }
    return pen === null || rate === 0 ? l : np.add(l, np.astype(np.multiply(pen, 0.5 * rate), l.dtype));
  };
  const samGrad = sam(convention === "l2InLoss" ? objective : loss, samOpts);
  const opt =
    convention === "coupled"
      ? chain(
          addDecayedWeights(rate, mask ? byPath((_s, leaf, keyPath) => mask(keyPath, leaf)) : undefined),
          optimizer,
        )
      : optimizer;

  return {
    init: (params) => ({ opt: opt.init(params), count: np.array(0, "int32") }),
    step: (state, params, ...batch) => {
      let g = samGrad(params, ...batch) as unknown;
      if (convention === "outsideMax")
        g = tree.map(
          (a: Tensor, b: Tensor) => np.add(a, np.astype(b, a.dtype)),
          g,
          decayTerm(params, rate, mask),
        );
      let [updates, optState] = opt.update(g, state.opt, params);
      if (convention === "decoupled") {
        // A number keeps the leaf's dtype; schedules return float32 scalars (as optax's do).
        const lr = typeof learningRate === "number" ? learningRate : learningRate!(state.count);
        updates = tree.map(
          (u: Tensor, d: Tensor) =>
            np.subtract(
              u,
              np.multiply(typeof lr === "number" ? lr : np.astype(lr, u.dtype), np.astype(d, u.dtype)),
            ),
          updates,
          decayTerm(params, rate, mask),
        );
      }
      return [applyUpdates(params, updates), { opt: optState, count: safeIncrement(state.count) }];
    },
  };
}
