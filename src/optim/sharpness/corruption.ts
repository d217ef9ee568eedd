/**
 * Parameter corruption (Sun et al., "Exploring the vulnerability of deep neural networks: a study
 * of parameter corruption", 2020): how much the loss can rise when the weights are moved by at most
 * `ε` in the L2 or L∞ norm. The worst case is SAM's inner maximisation; random corruptions of the
 * same norm are the baseline that shows how much worse an adversary is than noise.
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import * as random from "../../core/random.js";
import type { Tensor } from "../../core/tensor.js";
import type { ParamPredicate } from "../select.js";
import {
  checkCount,
  checkPositive,
  firstOrderPoint,
  leavesNorm,
  linearMaximum,
  type PerturbLoss,
  perturbed,
  projectedAscent,
  type Region,
  type SampleSummary,
  splitKey,
  summarise,
} from "./perturb.js";

/** Options of {@link parameterCorruption}. */
export interface ParameterCorruptionOptions {
  /** The corruption budget `ε`, finite and `> 0`. */
  epsilon: number;
  /** `2`: `‖u‖₂ ≤ ε`; `Infinity`: `|u_i| ≤ ε` (default 2). */
  norm?: 2 | typeof Infinity;
  /** Projected ascent steps after the first-order point (default 10; 0 reports the first-order point). */
  steps?: number;
  /** Step length as a fraction of `ε` (default 0.25). */
  stepSize?: number;
  /** Random corruptions drawn for each baseline (default 16; 0 skips the baselines). */
  randomSamples?: number;
  /** Seeds the random baselines (default `random.key(0)`). */
  key?: Tensor;
  /** Only these leaves are corrupted (the norm is over them alone). */
  where?: ParamPredicate;
}

/** What {@link parameterCorruption} returns. */
export interface ParameterCorruptionResult {
  /** False when a loss was NaN or the gradient is zero (no first-order direction); `reason` says which. */
  defined: boolean;
  reason?: string;
  /** `L(w)`. */
  loss: number;
  /** `‖∇L(w)‖` in the dual norm (`‖g‖₂` for L2, `‖g‖₁` for L∞) over the corrupted leaves. */
  gradNorm: number;
  /** The first-order closed form of the worst-case increase: `ε ‖g‖₂` (L2) or `ε ‖g‖₁` (L∞). */
  firstOrder: number;
  /** `L(w + u₁) − L(w)` realised at the first-order point `u₁ = ε g/‖g‖₂` or `ε sign(g)`. */
  firstOrderIncrease: number;
  /** The multi-step projected estimate of the worst-case increase (never below `firstOrderIncrease`). */
  worstCase: number;
  /** The corruption that realises `worstCase`, a tree like `params` (zeros on other leaves). */
  perturbation: unknown;
  /** Increases under random corruptions of norm exactly `ε`: Gaussian and uniform directions. */
  random: { gaussian: SampleSummary; uniform: SampleSummary } | null;
  epsilon: number;
  norm: 2 | typeof Infinity;
  steps: number;
  stepSize: number;
  randomSamples: number;
  key: Tensor;
}

/**
 * The vulnerability of `loss` to corrupting `params` by at most `epsilon` (in the L2 or L∞ norm
 * over the selected leaves): the first-order closed form `ε ‖g‖_dual`, the increase realised at
 * the first-order point, the multi-step projected-ascent estimate started there (the best iterate
 * is kept, so it is at least the first-order increase), and baselines from random directions
 * (Gaussian and uniform entries, rescaled to norm `ε`). `data` is the list of arguments that
 * follow the parameters: `loss(params, ...data)`.
 *
 * @example
 * ```ts
 * const r = optim.sharpness.parameterCorruption(loss, params, [x, y], { epsilon: 0.01, norm: Infinity, steps: 5 });
 * r.worstCase / r.random!.gaussian.mean; // how much worse than noise the adversary is
 * ```
 */
export function parameterCorruption(
  loss: PerturbLoss,
  params: unknown,
  data: readonly unknown[],
  opts: ParameterCorruptionOptions,
): ParameterCorruptionResult {
  const op = "parameterCorruption";
  if (opts === null || typeof opts !== "object")
    throw new ConfigError("options { epsilon } are required", op);
  const epsilon = checkPositive(opts.epsilon, "epsilon", op);
  const norm = opts.norm ?? 2;
  if (norm !== 2 && norm !== Infinity)
    throw new ConfigError(`norm must be 2 or Infinity, got ${String(norm)}`, op);
  const steps = checkCount(opts.steps ?? 10, "steps", op, 0);
  const stepSize = checkPositive(opts.stepSize ?? 0.25, "stepSize", op);
  const randomSamples = checkCount(opts.randomSamples ?? 16, "randomSamples", op, 0);
  const key = opts.key ?? random.key(0);
  const [useKey] = splitKey(key, op);
  const p = perturbed(loss, params, data, opts.where, op);
  const region: Region =
    norm === 2
      ? { kind: "l2", radius: epsilon }
      : { kind: "box", radii: p.selected.map((w) => np.full([...w.shape], epsilon, w.dtype)) };
  const zeros = p.selected.map((w) => np.zerosLike(w));
  const common = { loss: p.base, epsilon, norm, steps, stepSize, randomSamples, key };
  const fail = (reason: string, gradNorm = NaN): ParameterCorruptionResult => ({
    defined: false,
    reason,
    gradNorm,
    firstOrder: NaN,
    firstOrderIncrease: NaN,
    worstCase: NaN,
    perturbation: p.toTree(zeros),
    random: null,
    ...common,
  });
  if (Number.isNaN(p.base)) return fail("the loss at params is NaN");
  const [, g] = p.valueAndGrad(zeros);
  const gradNorm = leavesNorm(g, norm === 2 ? 2 : 1);
  if (Number.isNaN(gradNorm)) return fail("the gradient at params is NaN");
  const start = firstOrderPoint(g, region);
  if (start === null)
    return fail(
      "the gradient is zero: there is no first-order corruption direction (at a minimiser, worstCaseSharpness starts from a random point instead)",
      gradNorm,
    );
  const firstOrder = linearMaximum(g, region);
  const ascent = projectedAscent(p, start, region, { steps, stepSize });
  if (ascent.nan) return fail("a loss on the ascent path is NaN", gradNorm);

  let baselines: ParameterCorruptionResult["random"] = null;
  if (randomSamples > 0) {
    const draw = (kind: "gaussian" | "uniform"): SampleSummary => {
      const k = random.foldIn(useKey, kind === "gaussian" ? 1 : 2);
      const raw = p.selected.map((w, i) =>
        kind === "gaussian"
          ? random.normal(random.foldIn(k, i), [randomSamples, ...w.shape], w.dtype)
          : random.uniform(random.foldIn(k, i), [randomSamples, ...w.shape], w.dtype, -1, 1),
      );
      // Each sample rescaled to norm exactly ε (in the chosen norm, over all selected leaves).
      const norms = sampleNorms(raw, randomSamples, norm);
      const scaleT = np.array(
        norms.map((n) => epsilon / n),
        raw[0]!.dtype,
      );
      const us = raw.map((r) =>
        np.multiply(r, np.reshape(scaleT, [randomSamples, ...new Array<number>(r.ndim - 1).fill(1)])),
      );
      return summarise(p.many(us));
    };
    baselines = { gaussian: draw("gaussian"), uniform: draw("uniform") };
    if ([...baselines.gaussian.values, ...baselines.uniform.values].some(Number.isNaN))
      return fail("a loss under a random corruption is NaN", gradNorm);
  }
  return {
    defined: true,
    gradNorm,
    firstOrder,
    firstOrderIncrease: ascent.startValue,
    worstCase: ascent.best,
    perturbation: p.toTree(ascent.bestPoint),
    random: baselines,
    ...common,
  };
}

/** The norm of each of `k` stacked samples (leading axis) over every selected leaf. */
function sampleNorms(raw: Tensor[], k: number, norm: 2 | typeof Infinity): number[] {
  const acc = new Array<number>(k).fill(0);
  for (const r of raw) {
    const per = r.size / k;
    const d = r.data() as Float32Array | Float64Array;
    for (let s = 0; s < k; s++)
      for (let j = s * per; j < (s + 1) * per; j++) {
        const a = Math.abs(d[j]!);
        acc[s] = norm === 2 ? acc[s]! + a * a : Math.max(acc[s]!, a);
      }
  }
  return norm === 2 ? acc.map(Math.sqrt) : acc;
}
