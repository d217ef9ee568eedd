/**
 * The options of `sam` and their validation: every hyper-parameter is checked once, at
 * construction, and resolved into a plain record the gradient code reads.
 */
import { ConfigError } from "../../core/errors.js";
import type { Tensor } from "../../core/tensor.js";
import type * as tree from "../../core/tree.js";
import { type Schedule, checkSchedule } from "../base.js";
import { checkP } from "./dual-vector.js";
import type { AdaptiveOperator, LeafPredicate } from "./operators.js";

/** ASAM's operator `T = |w| + eta` (element-wise) or `‖w_f‖ + eta` (filter-wise), 1 on exempt leaves. */
export interface AdaptiveOptions {
  /** `"elementwise"` (default, Kwon et al.'s choice) or `"filterwise"` (per filter along `filterAxis`). */
  operator?: AdaptiveOperator;
  /** Stabiliser added to `T` (Kwon et al. use 0.01; their example CLI runs with 0). Default 0.01. */
  eta?: number;
  /** Leaves with `T = 1` (the official code exempts parameters not named `weight`, e.g. biases). */
  exempt?: LeafPredicate;
  /** Filter-wise only: the axis whose slices are filters (default -1, the output channel). */
  filterAxis?: number;
}

/** Options of `sam` and `samWithDiagnostics` (gradient.ts). */
export interface SamOptions {
  /**
   * Radius of the perturbation ball, finite and `>= 0`, or a schedule of the step count (beyond
   * mode). With a schedule the returned function takes the int32 step first: `(step, params, ...batch)`.
   */
  rho: number | Schedule;
  /**
   * `"mirror"`: google-research/sam exactly: `g / ‖g‖` with no guard (a zero gradient gives NaN),
   * and `rho = 0` takes the plain-gradient path. `"beyond"` (default): scaled, `eps`-guarded norm.
   */
  mode?: "mirror" | "beyond";
  /** Added to the norm in beyond mode (default 1e-12). */
  eps?: number;
  /** Norm of the ball, `p > 1` or `Infinity` (default 2; beyond mode only). */
  p?: number;
  /**
   * ASAM (beyond mode only): `false` (default), `"elementwise"` (eta 0.01, no exemptions),
   * `"filterwise"` (eta 0.01), or options. davda54's `adaptive=True` is `{ eta: 0 }`.
   */
  adaptive?: false | AdaptiveOperator | AdaptiveOptions;
  /**
   * SAM-ON (Müller et al., 2023; beyond mode): only leaves whose key path satisfies the predicate
   * are perturbed, with the norm over those leaves only (`ε_N = ρ g_N/‖g_N‖`, the rest 0). Combines
   * with `adaptive` (ASAM-ON), `p` and `ascentSteps`.
   */
  perturbOnly?: (path: tree.KeyPath, leaf: Tensor) => boolean;
  /** Fisher-SAM (beyond mode, p = 2): `ε = ρ F⁻¹g/√(gᵀF⁻¹g)` with `F = diag(1 + eta·g²)` (eta default 1). */
  fisher?: { eta?: number };
  /**
   * Multi-step projected ascent (paper C.6, beyond mode, p ∈ {2, ∞}): `ascentSteps` steps
   * `u ← Proj_{‖u‖ <= ρ}(u + α · dual(T ∇L(w + T u)))` from `u = 0`, then `ε = T u`. Default 1.
   */
  ascentSteps?: number;
  /** The step `α` of the projected ascent (default `rho`, so the first step is SAM's ε). */
  ascentStepSize?: number;
  /**
   * Adds the term SAM drops (paper eq. 3 vs C.4): `(dε/dw)ᵀ ∇L(w+ε) = (ρ/‖g‖) H (S − ⟨ĝ,S⟩ĝ)`, with
   * one Hessian-vector product at `w` (forward-over-reverse). Beyond mode, plain p = 2 SAM only;
   * the derivative of the tiny `eps` guard is ignored.
   */
  secondOrder?: boolean;
  /** `loss` returns `[value, aux]`; the aux of the clean pass (e.g. BN state) is returned. */
  hasAux?: boolean;
  /** Position of the parameters among the arguments (default 0); the others are the batch. */
  argnums?: number;
  /**
   * m-sharpness: sub-batch size. The leading axis (size B) of every batch leaf is split into B/m
   * lanes, each perturbed by its own ε_j; the lanes' SAM gradients are averaged.
   */
  m?: number;
  /**
   * With `m`: one ε from the lanes' mean clean gradient (the official `sync_perturbations`); the
   * second gradients are still taken per lane and averaged, which is standard SAM on the full batch.
   */
  syncPerturbations?: boolean;
}

export interface Resolved {
  rho: number | null;
  rhoSchedule: Schedule | null;
  mirror: boolean;
  eps: number;
  p: number;
  adaptive: { operator: AdaptiveOperator; eta: number; exempt: LeafPredicate; filterAxis: number } | null;
  fisherEta: number | null;
  perturbOnly: ((path: tree.KeyPath, leaf: Tensor) => boolean) | null;
  ascentSteps: number;
  ascentStepSize: number | null;
  secondOrder: boolean;
  hasAux: boolean;
  argnums: number;
  m: number | undefined;
  sync: boolean;
}

const finiteNonNeg = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;

function resolveAdaptive(a: SamOptions["adaptive"], op: string): Resolved["adaptive"] {
  if (a === undefined || a === false) return null;
  if (a === "elementwise" || a === "filterwise")
    return { operator: a, eta: 0.01, exempt: () => false, filterAxis: -1 };
  if (typeof a !== "object" || a === null)
    throw new ConfigError(
      `adaptive must be false, "elementwise", "filterwise" or { operator, eta, exempt }, got ${String(a)}`,
      op,
    );
  const operator = a.operator ?? "elementwise";
  if (operator !== "elementwise" && operator !== "filterwise")
    throw new ConfigError(
      `adaptive.operator must be "elementwise" or "filterwise", got ${String(operator)}`,
      op,
    );
  const eta = a.eta ?? 0.01;
  if (!finiteNonNeg(eta))
    throw new ConfigError(`adaptive.eta must be a finite number >= 0, got ${String(eta)}`, op);
  const filterAxis = a.filterAxis ?? -1;
  if (!Number.isInteger(filterAxis))
    throw new ConfigError(`adaptive.filterAxis must be an integer, got ${String(filterAxis)}`, op);
  return { operator, eta, exempt: a.exempt ?? (() => false), filterAxis };
}

export function resolve(opts: SamOptions, op: string): Resolved {
  if (opts === null || typeof opts !== "object")
    throw new ConfigError("options { rho, ... } are required", op);
  const { rho } = opts;
  let rhoNum: number | null = null;
  let rhoSchedule: Schedule | null = null;
  if (typeof rho === "function") {
    checkSchedule(op, "rho", rho, true);
    rhoSchedule = rho;
  } else if (!finiteNonNeg(rho)) {
    throw new ConfigError(`rho must be a finite number >= 0 or a schedule, got ${String(rho)}`, op);
  } else rhoNum = rho;
  const mode = opts.mode ?? "beyond";
  if (mode !== "mirror" && mode !== "beyond")
    throw new ConfigError(`mode must be "mirror" or "beyond", got ${String(mode)}`, op);
  const mirror = mode === "mirror";
  const eps = opts.eps ?? 1e-12;
  if (!finiteNonNeg(eps)) throw new ConfigError(`eps must be a finite number >= 0, got ${String(eps)}`, op);
  const p = opts.p ?? 2;
  checkP(p, op);
  const adaptive = resolveAdaptive(opts.adaptive, op);
  let fisherEta: number | null = null;
  if (opts.fisher !== undefined) {
    if (typeof opts.fisher !== "object" || opts.fisher === null)
      throw new ConfigError("fisher must be an object { eta }", op);
    fisherEta = opts.fisher.eta ?? 1;
    if (!finiteNonNeg(fisherEta))
      throw new ConfigError(`fisher.eta must be a finite number >= 0, got ${String(fisherEta)}`, op);
    if (adaptive) throw new ConfigError("fisher and adaptive cannot be combined", op);
    if (p !== 2) throw new ConfigError(`fisher needs p = 2, got ${p}`, op);
  }
  const perturbOnly = opts.perturbOnly ?? null;
  if (perturbOnly !== null && typeof perturbOnly !== "function")
    throw new ConfigError("perturbOnly must be a function (path, leaf) => boolean", op);
  const ascentSteps = opts.ascentSteps ?? 1;
  if (!Number.isInteger(ascentSteps) || ascentSteps < 1)
    throw new ConfigError(`ascentSteps must be an integer >= 1, got ${String(ascentSteps)}`, op);
  const ascentStepSize = opts.ascentStepSize ?? null;
  if (ascentStepSize !== null && !finiteNonNeg(ascentStepSize))
    throw new ConfigError(`ascentStepSize must be a finite number >= 0, got ${String(ascentStepSize)}`, op);
  const ascent = ascentSteps > 1 || ascentStepSize !== null;
  if (ascent && p !== 2 && p !== Infinity)
    throw new ConfigError(
      `ascentSteps/ascentStepSize need p = 2 or Infinity (a closed-form projection), got ${p}`,
      op,
    );
  if (ascent && fisherEta !== null)
    throw new ConfigError("ascentSteps/ascentStepSize are not defined for fisher", op);
  const secondOrder = opts.secondOrder ?? false;
  if (secondOrder && (adaptive || fisherEta !== null || p !== 2 || ascent || perturbOnly !== null))
    throw new ConfigError(
      "secondOrder is implemented for plain p = 2 SAM with one ascent step (no adaptive, fisher, perturbOnly or ascentSteps)",
      op,
    );
  if (mirror) {
    // Mirror mode is the official code and nothing else: reject options it does not have.
    if (opts.eps !== undefined)
      throw new ConfigError("eps is a beyond-mode option (mirror mode has no guard)", op);
    if (p !== 2) throw new ConfigError(`p must be 2 in mirror mode, got ${p}`, op);
    if (adaptive) throw new ConfigError("adaptive is a beyond-mode option", op);
    if (fisherEta !== null) throw new ConfigError("fisher is a beyond-mode option", op);
    if (perturbOnly !== null) throw new ConfigError("perturbOnly is a beyond-mode option", op);
    if (ascent) throw new ConfigError("ascentSteps and ascentStepSize are beyond-mode options", op);
    if (secondOrder) throw new ConfigError("secondOrder is a beyond-mode option", op);
    if (rhoSchedule)
      throw new ConfigError(
        "rho as a schedule is a beyond-mode option (the official code has a fixed rho)",
        op,
      );
  }
  const argnums = opts.argnums ?? 0;
  if (!Number.isInteger(argnums) || argnums < 0)
    throw new ConfigError(`argnums must be an integer >= 0, got ${String(argnums)}`, op);
  const m = opts.m;
  if (m !== undefined && (!Number.isInteger(m) || m < 1))
    throw new ConfigError(`m must be a positive integer, got ${String(m)}`, op);
  const sync = opts.syncPerturbations ?? false;
  if (sync && m === undefined)
    throw new ConfigError("syncPerturbations needs m (the lanes whose gradients are synchronised)", op);
  return {
    rho: rhoNum,
    rhoSchedule,
    mirror,
    eps,
    p,
    adaptive,
    fisherEta,
    perturbOnly,
    ascentSteps,
    ascentStepSize,
    secondOrder,
    hasAux: opts.hasAux ?? false,
    argnums,
    m,
    sync,
  };
}
