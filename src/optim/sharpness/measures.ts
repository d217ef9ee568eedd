/**
 * The sharpness-based generalisation measures of Jiang et al., "Fantastic generalization measures
 * and where to find them" (2019), whose worst-case form is SAM's inner maximisation:
 *
 * - worst-case sharpness `max_{u ∈ R} L(w+u) − L(w)` by projected gradient ascent, over the L2 ball
 *   `‖u‖₂ ≤ α` or the magnitude-aware box `|u_i| ≤ α(|w_i| + offset)`;
 * - PAC-Bayes flatness: the largest `σ` with `E_{u∼N(0,σ²I)} L(w+u) − L(w) ≤ d`, by bisection
 *   over `σ` on a seeded Monte-Carlo estimate, and the magnitude-aware version with
 *   `u_i ∼ N(0, σ²w_i² + ε²)`.
 *
 * Each result carries the inputs that define it (α, σ range, d, samples, key, ...) so it can be
 * reproduced, and `defined: false` with a reason instead of a number when a loss was NaN.
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
  type PerturbLoss,
  perturbed,
  projectedAscent,
  type Region,
  randomPoint,
  splitKey,
  summarise,
} from "./perturb.js";

/** Options of {@link worstCaseSharpness}. */
export interface WorstCaseSharpnessOptions {
  /** Radius `α` of the region, finite and `> 0`. */
  alpha: number;
  /** `"l2"` (default): `‖u‖₂ ≤ α`. `"magnitude"`: the box `|u_i| ≤ α(|w_i| + offset)`. */
  region?: "l2" | "magnitude";
  /** The magnitude-aware box's additive term (default 1, as in Jiang et al.), finite and `>= 0`. */
  offset?: number;
  /** Projected ascent steps after the start point (default 20). */
  steps?: number;
  /** Step length as a fraction of the radius (default 0.25). */
  stepSize?: number;
  /**
   * `"sam"` (default): SAM's first-order point (`α g/‖g‖₂`, or `r ⊙ sign(g)` in the box), falling
   * back to a random boundary point when `g = 0` (at a minimiser); `"random"`: always random.
   */
  start?: "sam" | "random";
  /** Seeds a random start (default `random.key(0)`). */
  key?: Tensor;
  /** Arguments passed to `loss` after the parameters. */
  batch?: readonly unknown[];
  /** Only these leaves are perturbed (the region's norm is over them alone). */
  where?: ParamPredicate;
}

/** What {@link worstCaseSharpness} returns. */
export interface WorstCaseSharpnessResult {
  /** False when a loss evaluation was NaN; `sharpness` is then NaN and `reason` says why. */
  defined: boolean;
  reason?: string;
  /** The best `L(w+u) − L(w)` found (a lower bound on the true maximum over the region). */
  sharpness: number;
  /** `L(w)`. */
  loss: number;
  /** `L(w+u) − L(w)` at the start point (the ascent never reports less). */
  startIncrease: number;
  /** Which start was used (`"random"` when SAM's point is undefined because `g = 0`). */
  start: "sam" | "random";
  /** The maximising perturbation, a tree like `params` (zeros on unselected leaves). */
  perturbation: unknown;
  /** Value-and-gradient evaluations made. */
  evaluations: number;
  alpha: number;
  region: "l2" | "magnitude";
  offset: number;
  steps: number;
  stepSize: number;
  /** The key that seeded a random start. */
  key: Tensor;
}

/**
 * Worst-case sharpness `max_{u ∈ R} L(w+u) − L(w)` by projected gradient ascent from SAM's
 * first-order point: over the L2 ball `‖u‖₂ ≤ α` or the magnitude-aware box
 * `|u_i| ≤ α(|w_i| + offset)`. The best iterate is reported, so the value is at least the increase
 * at the start. At the minimiser of `½ wᵀHw` (H PSD) the L2 value is `α² λmax(H) / 2`.
 *
 * @example
 * ```ts
 * const r = optim.sharpness.worstCaseSharpness(loss, params, { alpha: 0.05, batch: [x, y] });
 * r.sharpness; // the largest increase found; r.alpha, r.steps, r.key reproduce it
 * ```
 */
export function worstCaseSharpness(
  loss: PerturbLoss,
  params: unknown,
  opts: WorstCaseSharpnessOptions,
): WorstCaseSharpnessResult {
  const op = "worstCaseSharpness";
  if (opts === null || typeof opts !== "object") throw new ConfigError("options { alpha } are required", op);
  const alpha = checkPositive(opts.alpha, "alpha", op);
  const region = opts.region ?? "l2";
  if (region !== "l2" && region !== "magnitude")
    throw new ConfigError(`region must be "l2" or "magnitude", got ${String(region)}`, op);
  const offset = opts.offset ?? 1;
  if (typeof offset !== "number" || !Number.isFinite(offset) || offset < 0)
    throw new ConfigError(`offset must be a finite number >= 0, got ${String(offset)}`, op);
  const steps = checkCount(opts.steps ?? 20, "steps", op, 0);
  const stepSize = checkPositive(opts.stepSize ?? 0.25, "stepSize", op);
  const startOpt = opts.start ?? "sam";
  if (startOpt !== "sam" && startOpt !== "random")
    throw new ConfigError(`start must be "sam" or "random", got ${String(startOpt)}`, op);
  const key = opts.key ?? random.key(0);
  splitKey(key, op);
  const p = perturbed(loss, params, opts.batch ?? [], opts.where, op);

  const reg: Region =
    region === "l2"
      ? { kind: "l2", radius: alpha }
      : { kind: "box", radii: p.selected.map((w) => np.multiply(np.add(np.abs(w), offset), alpha)) };
  if (reg.kind === "box" && reg.radii.every((r) => np.all(np.equal(r, 0)).item()))
    throw new ConfigError(
      "the magnitude-aware box is empty (every selected weight is 0 and offset is 0)",
      op,
    );
  const common = { alpha, region, offset, steps, stepSize, key, loss: p.base };
  if (Number.isNaN(p.base))
    return undefinedResult(
      common,
      "the loss at params is NaN",
      startOpt,
      p.toTree(p.selected.map((w) => np.zerosLike(w))),
    );

  let start: Tensor[] | null = null;
  let used: "sam" | "random" = startOpt;
  let extra = 0;
  if (startOpt === "sam") {
    const [, g] = p.valueAndGrad(p.selected.map((w) => np.zerosLike(w)));
    extra = 1;
    start = firstOrderPoint(g, reg);
  }
  if (start === null) {
    used = "random";
    start = randomPoint(key, p.selected, reg);
  }
  const res = projectedAscent(p, start, reg, { steps, stepSize });
  const perturbation = p.toTree(res.bestPoint);
  if (res.nan)
    return undefinedResult(common, "a loss on the ascent path is NaN", used, perturbation, res.evaluations + extra);
  return {
    defined: true,
    sharpness: res.best,
    startIncrease: res.startValue,
    start: used,
    perturbation,
    evaluations: res.evaluations + extra,
    ...common,
  };
}

function undefinedResult(
  common: Omit<
    WorstCaseSharpnessResult,
    "defined" | "sharpness" | "startIncrease" | "start" | "perturbation" | "evaluations"
  >,
  reason: string,
  start: "sam" | "random",
  perturbation: unknown,
  evaluations = 0,
): WorstCaseSharpnessResult {
  return {
    defined: false,
    reason,
    sharpness: NaN,
    startIncrease: NaN,
    start,
    perturbation,
    evaluations,
    ...common,
  };
}

// ------------------------------------------------------------------------------------------------
// PAC-Bayes flatness.

/** Options of {@link pacBayesFlatness}. */
export interface PacBayesOptions {
  /** The allowed expected increase `d` of the loss, finite and `> 0`. */
  deviation: number;
  /** Monte-Carlo samples of `u` (default 64); the same draws serve every σ (common random numbers). */
  samples?: number;
  /** Seeds the draws (default `random.key(0)`). */
  key?: Tensor;
  /** `[σlo, σhi]` with `0 <= σlo < σhi`, which must bracket `d` (default `[0, 1]`). */
  sigmaRange?: readonly [number, number];
  /** Bisection stops when `σhi − σlo <= tolerance · σhi` (default 1e-3). */
  tolerance?: number;
  /** At most this many bisection steps (default 60). */
  maxIterations?: number;
  /** Magnitude-aware: `u_i ∼ N(0, σ² w_i² + ε²)`; `true` uses `ε = 1e-3`. Default false (`N(0, σ²I)`). */
  magnitudeAware?: boolean | { epsilon: number };
  /** Arguments passed to `loss` after the parameters. */
  batch?: readonly unknown[];
  /** Only these leaves are perturbed. */
  where?: ParamPredicate;
}

/** What {@link pacBayesFlatness} returns. */
export interface PacBayesResult {
  /** False when an estimate was NaN; `sigma` is then NaN and `reason` says why. */
  defined: boolean;
  reason?: string;
  /** The largest σ found whose estimated expected increase is `<= deviation` (the bracket's low end). */
  sigma: number;
  /** The bracket's high end (its estimate exceeds `deviation`). */
  sigmaUpper: number;
  /** The estimated `E L(w+u) − L(w)` at `sigma`, and its Monte-Carlo standard error. */
  increase: number;
  stderr: number;
  /** `L(w)`. */
  loss: number;
  /** Bisection steps taken (each is one batched evaluation of `samples` losses). */
  iterations: number;
  /** Whether the bracket shrank to `tolerance` within `maxIterations`. */
  converged: boolean;
  deviation: number;
  samples: number;
  key: Tensor;
  sigmaRange: readonly [number, number];
  tolerance: number;
  /** `ε` of the magnitude-aware noise, or `false` for isotropic noise. */
  magnitudeAware: false | { epsilon: number };
}

/**
 * PAC-Bayes flatness (Jiang et al. 2019): the largest `σ` such that the Monte-Carlo estimate of
 * `E_u L(w+u) − L(w)` is at most `deviation`, with `u ∼ N(0, σ²I)` or, magnitude-aware,
 * `u_i ∼ N(0, σ² w_i² + ε²)`, found by bisection over `σ` in `sigmaRange`. The same seeded draws
 * `z` serve every `σ` (`u = σ z`), so the estimate is a smooth function of σ and the search is
 * reproducible from `key`. On a quadratic the expectation is `σ² tr(H) / 2`, so
 * `σ = sqrt(2d / tr(H))`. Bounds that do not bracket `d` raise a `ConfigError`.
 *
 * @example
 * ```ts
 * const r = optim.sharpness.pacBayesFlatness(loss, params, { deviation: 0.1, samples: 64, key: random.key(1), batch: [x, y] });
 * r.sigma; // larger is flatter
 * ```
 */
export function pacBayesFlatness(loss: PerturbLoss, params: unknown, opts: PacBayesOptions): PacBayesResult {
  const op = "pacBayesFlatness";
  if (opts === null || typeof opts !== "object")
    throw new ConfigError("options { deviation } are required", op);
  const deviation = checkPositive(opts.deviation, "deviation", op);
  const samples = checkCount(opts.samples ?? 64, "samples", op);
  const key = opts.key ?? random.key(0);
  const [lo0, hi0] = opts.sigmaRange ?? [0, 1];
  if (!(Number.isFinite(lo0) && Number.isFinite(hi0) && lo0 >= 0 && hi0 > lo0))
    throw new ConfigError(`sigmaRange must be [lo, hi] with 0 <= lo < hi, finite, got [${lo0}, ${hi0}]`, op);
  const tolerance = checkPositive(opts.tolerance ?? 1e-3, "tolerance", op);
  const maxIterations = checkCount(opts.maxIterations ?? 60, "maxIterations", op);
  const ma = opts.magnitudeAware ?? false;
  let magnitudeAware: false | { epsilon: number } = false;
  if (ma === true) magnitudeAware = { epsilon: 1e-3 };
  else if (ma !== false) {
    if (typeof ma !== "object" || ma === null)
      throw new ConfigError("magnitudeAware must be a boolean or { epsilon }", op);
    const e = ma.epsilon;
    if (typeof e !== "number" || !Number.isFinite(e) || e < 0)
      throw new ConfigError(`magnitudeAware.epsilon must be a finite number >= 0, got ${String(e)}`, op);
    magnitudeAware = { epsilon: e };
  }
  const [useKey] = splitKey(key, op);
  const p = perturbed(loss, params, opts.batch ?? [], opts.where, op);
  const z = p.selected.map((w, i) => random.normal(random.foldIn(useKey, i), [samples, ...w.shape], w.dtype));
  const sq = (w: Tensor) => np.square(w);
  const noise = (sigma: number): Tensor[] =>
    magnitudeAware === false
      ? z.map((zi) => np.multiply(zi, sigma))
      : z.map((zi, i) =>
          np.multiply(
            zi,
            np.sqrt(np.add(np.multiply(sq(p.selected[i]!), sigma * sigma), magnitudeAware.epsilon ** 2)),
          ),
        );
  const estimate = (sigma: number) => summarise(p.many(noise(sigma)));

  const common = {
    loss: p.base,
    deviation,
    samples,
    key,
    sigmaRange: [lo0, hi0] as const,
    tolerance,
    magnitudeAware: magnitudeAware as false | { epsilon: number },
  };
  const fail = (reason: string, iterations: number, hi = NaN): PacBayesResult => ({
    defined: false,
    reason,
    sigma: NaN,
    sigmaUpper: hi,
    increase: NaN,
    stderr: NaN,
    iterations,
    converged: false,
    ...common,
  });
  if (Number.isNaN(p.base)) return fail("the loss at params is NaN", 0);
  let lo = lo0;
  let hi = hi0;
  let atLo = estimate(lo);
  if (Number.isNaN(atLo.mean)) return fail(`the estimate at sigma = ${lo} is NaN`, 0);
  if (atLo.mean > deviation)
    throw new ConfigError(
      `sigmaRange does not bracket the deviation: the increase at sigma = ${lo} is already ${atLo.mean} > ${deviation}; lower sigmaRange[0]`,
      op,
    );
  const atHi = estimate(hi);
  // A loss that overflows to +Infinity at σhi still brackets; NaN is undefined.
  if (Number.isNaN(atHi.mean)) return fail(`the estimate at sigma = ${hi} is NaN; lower sigmaRange[1]`, 0);
  if (!(atHi.mean > deviation))
    throw new ConfigError(
      `sigmaRange does not bracket the deviation: the increase at sigma = ${hi} is only ${atHi.mean} <= ${deviation}; raise sigmaRange[1]`,
      op,
    );
  let iterations = 0;
  while (hi - lo > tolerance * hi && iterations < maxIterations) {
    const mid = 0.5 * (lo + hi);
    const m = estimate(mid);
    iterations++;
    if (Number.isNaN(m.mean)) return fail(`the estimate at sigma = ${mid} is NaN`, iterations, hi);
    if (m.mean <= deviation) {
      lo = mid;
      atLo = m;
    } else hi = mid;
  }
  const converged = hi - lo <= tolerance * hi;
  return {
    defined: true,
    sigma: lo,
    sigmaUpper: hi,
    increase: atLo.mean,
    stderr: atLo.stderr,
    iterations,
    converged,
    ...common,
  };
}
