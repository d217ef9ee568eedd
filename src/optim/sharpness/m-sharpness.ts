/**
 * The m-sharpness measure of Foret et al. (§4.1) and Andriushchenko & Flammarion (2022): split the
 * data into sub-batches of size m, take the max of the loss over the ρ-ball around `w` on each (the
 * max approximated by SAM's ascent step, or by projected ascent), and average the increases.
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { type SamOptions, samWithDiagnostics } from "../sam/gradient.js";

/** Options of {@link mSharpness}. */
export interface MSharpnessOptions {
  /** Radius of the ball, finite and `> 0`. */
  rho: number;
  /** Sub-batch size; it must divide the data's leading axis. */
  m: number;
  /** Ascent steps approximating the max (default 1: the SAM step; more: projected ascent, C.6). */
  ascentSteps?: number;
  /** Norm of the ball (2 or Infinity; default 2). */
  p?: number;
  /** ASAM's operator, for adaptive sharpness (Kwon et al.). */
  adaptive?: SamOptions["adaptive"];
  /** `loss` returns `[value, aux]`. */
  hasAux?: boolean;
}

/** What {@link mSharpness} returns. */
export interface MSharpnessResult {
  /** `(1/k) Σ_j [L_{S_j}(w + ε_j) − L_{S_j}(w)]`. */
  value: number;
  /** The k per-sub-batch increases, in sub-batch order. */
  perSubBatch: Float64Array;
}

/**
 * The m-sharpness of `loss` at `params` on `data` (the batch arguments of `loss`, every leaf with
 * the same leading axis of size `k·m`): the mean over the k sub-batches of the loss increase at
 * the ascent point `w + ε_j`, with `ε_j` the SAM perturbation of that sub-batch's own gradient.
 * `m` equal to the data size gives the plain (1-batch) sharpness; `m = 1` is per-example.
 *
 * @example mSharpness(loss, params, [x, y], { rho: 0.05, m: 16 }).value
 */
export function mSharpness(
  loss: (params: any, ...batch: any[]) => any,
  params: unknown,
  data: readonly unknown[],
  opts: MSharpnessOptions,
): MSharpnessResult {
  const op = "mSharpness";
  if (!Array.isArray(data) || data.length === 0)
    throw new ConfigError("data must be a non-empty array of the loss's batch arguments", op);
  if (opts === null || typeof opts !== "object") throw new ConfigError("options { rho, m } are required", op);
  const { rho, m } = opts;
  if (typeof rho !== "number" || !Number.isFinite(rho) || rho <= 0)
    throw new ConfigError(`rho must be a finite number > 0, got ${String(rho)}`, op);
  if (!Number.isInteger(m) || m < 1)
    throw new ConfigError(`m must be a positive integer, got ${String(m)}`, op);
  const first = tree.leaves<Tensor>(data)[0];
  const size = first?.shape[0];
  if (size === undefined) throw new ConfigError("data needs a leaf with a leading batch axis", op);
  if (size % m !== 0) throw new ConfigError(`the data size ${size} is not divisible by m = ${m}`, op);
  const d = samWithDiagnostics(loss, {
    rho,
    m,
    ascentSteps: opts.ascentSteps,
    p: opts.p,
    adaptive: opts.adaptive,
    hasAux: opts.hasAux,
  })(params, ...data);
  const per = Float64Array.from(np.astype(d.lossIncrease as Tensor, "float64").data() as Float64Array);
  const value = per.reduce((a, x) => a + x, 0) / per.length;
  return { value, perSubBatch: per };
}
