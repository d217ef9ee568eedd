/**
 * SAM (Foret et al., ICLR 2021) as a gradient transform: `grad(loss)` evaluated at the constant
 * point `w + ε(w)`, with `ε = ρ · dualVector(∇L(w))` (or ASAM's `ρ T² g / ‖T g‖`, or Fisher-SAM's
 * `ρ F⁻¹g/√(gᵀF⁻¹g)`), optionally by multi-step projected ascent or with the second-order term, and
 * the m-sharpness lane form as a `vmap` over sub-batches.
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import { stopGradient } from "../../core/primitives/elementwise.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { valueAndGrad, vmap } from "../../transforms/index.js";
import { type Schedule, checkSchedule } from "../base.js";
import { hessianVectorProduct } from "../sharpness/hessian.js";
import { treeNorm, treeScale, treeSub, treeVdot } from "../tree-math.js";
import { checkP, dualVector } from "./dual-vector.js";
import {
  type AdaptiveOperator,
  type LeafPredicate,
  applyOperator,
  fisherDirection,
  projectToBall,
  samOperator,
  scaleBy,
} from "./operators.js";

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

/** Options of {@link sam}. */
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

/** What {@link samWithDiagnostics} returns (per lane, stacked on axis 0, when `m` is set without sync). */
export interface SamDiagnostics<G = unknown> {
  /** The SAM gradient (averaged over lanes with `m`). */
  grads: G;
  /** `‖∇L(w)‖`. */
  gradNorm: Tensor;
  /** `‖∇L(w + ε)‖`. */
  samGradNorm: Tensor;
  /** Cosine between `∇L(w)` and `∇L(w + ε)`. */
  cosine: Tensor;
  /** `L(w + ε) − L(w)`. */
  lossIncrease: Tensor;
  /** The clean pass's aux (with `hasAux`). */
  aux?: unknown;
}

interface Resolved {
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

function resolve(opts: SamOptions, op: string): Resolved {
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

const dualOf = (x: unknown, r: Resolved): unknown =>
  r.mirror ? dualVector(x) : dualVector(x, { p: r.p, eps: r.eps });

/** The operator tree of ASAM at `params`, or null for plain SAM. */
const operatorAt = (params: unknown, r: Resolved): unknown =>
  r.adaptive ? samOperator(params, r.adaptive) : null;

/** Zeros on the leaves `perturbOnly` rejects (identity without it), so norms cover the chosen set only. */
function chosen<T>(x: T, r: Resolved): T {
  const keep = r.perturbOnly;
  if (keep === null) return x;
  return tree.mapWithPath((path, l: Tensor) => (keep(path, l) ? l : np.zerosLike(l)), x) as unknown as T;
}

/** The one-step ε for the clean gradient `g` at `params`. */
function onePerturbation(g0: unknown, params: unknown, r: Resolved, rho: number | Tensor): unknown {
  const g = chosen(g0, r);
  if (r.fisherEta !== null) return scaleBy(fisherDirection(g, { eta: r.fisherEta, eps: r.eps }), rho);
  const t = operatorAt(params, r);
  if (t === null) return scaleBy(dualOf(g, r), rho);
  // ε = ρ T · dual(T g): for p = 2 that is ρ T² g / ‖T g‖, so ‖T⁻¹ ε‖ = ρ.
  return scaleBy(applyOperator(t, dualOf(applyOperator(t, g), r)), rho);
}

/**
 * ε by multi-step projected ascent in the operator's coordinates `u = T⁻¹ε` (T = I without ASAM):
 * the ball constraint `‖T⁻¹ε‖ <= ρ` is then the plain ball `‖u‖ <= ρ`.
 */
function projectedAscent(
  g: unknown,
  params: unknown,
  r: Resolved,
  rho: number | Tensor,
  gradAt: (point: unknown) => unknown,
): unknown {
  const t = operatorAt(params, r);
  const T = <X>(x: X): X => (t === null ? x : applyOperator(t, x));
  const alpha = r.ascentStepSize ?? rho;
  let u: unknown = tree.map((x: Tensor) => np.zerosLike(x), g);
  let gt = chosen(g, r);
  for (let s = 0; s < r.ascentSteps; s++) {
    if (s > 0) gt = chosen(gradAt(shift(params, T(u))), r);
    u = projectToBall(
      tree.map(
        (ui: Tensor, d: Tensor) => np.add(ui, np.astype(d, ui.dtype)),
        u,
        scaleBy(dualOf(T(gt), r), alpha),
      ),
      rho,
      r.p,
    );
  }
  return T(u);
}

/** `w + stopGradient(ε)`: the perturbed point is a constant (paper eq. 3; C.4 found it helps). */
function shift(params: unknown, e: unknown): unknown {
  return tree.map((w: Tensor, ei: Tensor) => np.add(w, stopGradient(np.astype(ei, w.dtype))), params, e);
}

/** Projected ascent runs for several steps, or for one step of a given size (`Proj(α·dual(T g))`). */
const usesAscent = (r: Resolved): boolean => r.ascentSteps > 1 || r.ascentStepSize !== null;

function perturbation(
  g: unknown,
  params: unknown,
  r: Resolved,
  rho: number | Tensor,
  gradAt: (point: unknown) => unknown,
): unknown {
  return usesAscent(r) ? projectedAscent(g, params, r, rho, gradAt) : onePerturbation(g, params, r, rho);
}

/** The second-order term `(ρ/‖g‖) H (S − ⟨ĝ,S⟩ĝ)` (zero where `g = 0`). */
function secondOrderTerm(
  g: unknown,
  s: unknown,
  rho: number | Tensor,
  hvp: (v: unknown) => unknown,
): unknown {
  const n = treeNorm(g);
  const pos = np.greater(n, 0);
  const safe = np.where(pos, n, np.onesLike(n));
  const ghat = scaleBy(g, np.divide(1, safe));
  const v = treeSub(s, treeScale(treeVdot(ghat, s), ghat));
  const coef = np.where(
    pos,
    np.multiply(np.divide(1, safe), typeof rho === "number" ? rho : np.astype(rho, n.dtype)),
    np.zerosLike(n),
  );
  return scaleBy(hvp(v), coef);
}

interface LaneOut {
  grads: unknown;
  aux?: unknown;
  gradNorm: Tensor;
  samGradNorm: Tensor;
  cosine: Tensor;
  lossIncrease: Tensor;
}

type Loss = (...args: any[]) => any;

/** The loss as a scalar function of the parameters alone (aux dropped), for HVPs. */
function scalarOfParams(loss: Loss, r: Resolved, args: unknown[]): (p: unknown) => Tensor {
  return (p: unknown) => {
    const full = args.slice();
    full[r.argnums] = p;
    const out = loss(...full);
    return r.hasAux ? (out as [Tensor, unknown])[0] : (out as Tensor);
  };
}

function stats(
  r: Resolved,
  diagnostics: boolean,
  g: unknown,
  grads: unknown,
  aux: unknown,
  l0: Tensor,
  l1: Tensor,
): LaneOut {
  // Only defined fields: the record is a vmap output tree.
  const base = (r.hasAux ? { grads, aux } : { grads }) as LaneOut;
  if (!diagnostics) return base;
  const gn = treeNorm(g);
  const sn = treeNorm(grads);
  return {
    ...base,
    gradNorm: gn,
    samGradNorm: sn,
    cosine: np.divide(treeVdot(g, grads), np.multiply(gn, sn)),
    lossIncrease: np.subtract(l1, l0),
  };
}

/** One SAM evaluation on one (sub-)batch. */
function lane(loss: Loss, r: Resolved, rho: number | Tensor, diagnostics: boolean, args: unknown[]): LaneOut {
  const vg = valueAndGrad(loss, { argnums: r.argnums, hasAux: r.hasAux });
  const value = (v: unknown): [Tensor, unknown] =>
    r.hasAux ? (v as [Tensor, unknown]) : [v as Tensor, undefined];
  const [v0, g] = vg(...args);
  const [l0, aux] = value(v0);
  // The official code branches on rho > 0: rho = 0 is exactly the base gradient, never 0 · NaN.
  if (r.mirror && rho === 0) return stats(r, diagnostics, g, g, aux, l0, l0);
  const params = args[r.argnums];
  const at = (point: unknown): [unknown, unknown] => {
    const full = args.slice();
    full[r.argnums] = point;
    return vg(...full);
  };
  const e = perturbation(g, params, r, rho, (pt) => at(pt)[1]);
  const [v1, s] = at(shift(params, e));
  let grads = s;
  if (r.secondOrder) {
    const f = scalarOfParams(loss, r, args);
    const term = secondOrderTerm(g, s, rho, (v) => hessianVectorProduct(f, params, v));
    grads = tree.map((a: Tensor, b: Tensor) => np.add(a, np.astype(b, a.dtype)), s, term);
  }
  return stats(r, diagnostics, g, grads, aux, l0, value(v1)[0]);
}

/** Splits every batch leaf's leading axis [B, ...] into [B/m, m, ...] for the lanes. */
function splitBatch(args: unknown[], r: Resolved, op: string): unknown[] {
  const m = r.m!;
  let B: number | undefined;
  const out = args.map((a, i) => {
    if (i === r.argnums) return a;
    return tree.map((x: Tensor) => {
      const n = x.shape[0];
      if (n === undefined)
        throw new ConfigError(`m-sharpness needs a leading batch axis; argument ${i} has a scalar leaf`, op);
      if (B !== undefined && n !== B)
        throw new ConfigError(`batch leaves disagree on the leading axis: ${B} and ${n} (argument ${i})`, op);
      B = n;
      if (n % m !== 0)
        throw new ConfigError(`batch size ${n} is not divisible by m = ${m} (argument ${i})`, op);
      return np.reshape(x, [n / m, m, ...x.shape.slice(1)]);
    }, a);
  });
  if (B === undefined)
    throw new ConfigError("m-sharpness needs at least one batch argument with a leading axis", op);
  return out;
}

const laneMean = (x: unknown): unknown => tree.map((l: Tensor) => np.mean(l, 0), x);

/**
 * `syncPerturbations`: the clean gradients of all lanes are averaged into one ε (as a pmean before
 * the dual vector), then every lane takes its gradient at `w + ε` and those are averaged.
 */
function synced(
  loss: Loss,
  r: Resolved,
  rho: number | Tensor,
  diagnostics: boolean,
  args: unknown[],
  op: string,
): LaneOut {
  const lanesArgs = splitBatch(args, r, op);
  const inAxes = args.map((_, i) => (i === r.argnums ? null : 0));
  const vg = valueAndGrad(loss, { argnums: r.argnums, hasAux: r.hasAux });
  const perLane = vmap(
    (...xs: unknown[]) => {
      const [v, g] = vg(...xs);
      return r.hasAux
        ? { l: (v as [Tensor, unknown])[0], aux: (v as [Tensor, unknown])[1], g }
        : { l: v as Tensor, g };
    },
    { inAxes },
  );
  const at = (point: unknown) => {
    const full = lanesArgs.slice();
    full[r.argnums] = point;
    return perLane(...full) as { l: Tensor; aux?: unknown; g: unknown };
  };
  const params = args[r.argnums];
  const clean = at(params);
  const g = laneMean(clean.g);
  const l0 = np.mean(clean.l);
  if (r.mirror && rho === 0) return stats(r, diagnostics, g, g, clean.aux, l0, l0);
  const e = perturbation(g, params, r, rho, (pt) => laneMean(at(pt).g));
  const pert = at(shift(params, e));
  let grads = laneMean(pert.g);
  if (r.secondOrder) {
    const hvpLanes = vmap(
      (v: unknown, ...xs: unknown[]) => hessianVectorProduct(scalarOfParams(loss, r, xs), xs[r.argnums], v),
      {
        inAxes: [null, ...inAxes],
      },
    );
    const term = secondOrderTerm(g, grads, rho, (v) => laneMean(hvpLanes(v, ...lanesArgs)));
    grads = tree.map((a: Tensor, b: Tensor) => np.add(a, np.astype(b, a.dtype)), grads, term);
  }
  return stats(r, diagnostics, g, grads, clean.aux, l0, np.mean(pert.l));
}

function run(loss: Loss, r: Resolved, diagnostics: boolean, rawArgs: unknown[], op: string): LaneOut {
  let args = rawArgs;
  let rho: number | Tensor = r.rho ?? 0;
  if (r.rhoSchedule) {
    if (args.length === 0)
      throw new ConfigError("rho is a schedule: call the gradient as (step, params, ...batch)", op);
    rho = np.astype(r.rhoSchedule(args[0] as Tensor), "float32");
    args = args.slice(1);
  }
  if (r.argnums >= args.length)
    throw new ConfigError(`argnums ${r.argnums} is out of range for ${args.length} arguments`, op);
  if (r.m === undefined) return lane(loss, r, rho, diagnostics, args);
  if (r.sync) return synced(loss, r, rho, diagnostics, args, op);
  const lanes = vmap((...xs: unknown[]) => lane(loss, r, rho, diagnostics, xs), {
    inAxes: args.map((_, i) => (i === r.argnums ? null : 0)),
  })(...splitBatch(args, r, op)) as LaneOut;
  return { ...lanes, grads: laneMean(lanes.grads) };
}

/**
 * The SAM gradient with `grad`'s signature: `(params, ...batch) → grads` (`[grads, aux]` with
 * `hasAux`), computing `∇L(w + stopGradient(ε))` with `ε = ρ · dualVector(∇L(w))`.
 * With `m`, the lanes' aux values are stacked on axis 0. With `rho` a schedule, the int32 step
 * comes first: `(step, params, ...batch)`.
 *
 * @example const g = sam(loss, { rho: 0.05 })(params, x, y);
 */
export function sam(loss: Loss, opts: SamOptions): (...args: any[]) => any {
  const r = resolve(opts, "sam");
  return (...args: unknown[]) => {
    const out = run(loss, r, false, args, "sam");
    return r.hasAux ? [out.grads, out.aux] : out.grads;
  };
}

/**
 * {@link sam} plus `‖g‖`, `‖g̃‖`, `cos(g, g̃)` and `L(w+ε) − L(w)` (per lane, stacked, with `m`;
 * over the synchronised mean gradients with `syncPerturbations`). With `rho = 0` in mirror mode the
 * second pass is skipped: `g̃ = g` and the increase is 0. `g̃` includes the second-order term when
 * `secondOrder` is set.
 *
 * @example const { grads, lossIncrease } = samWithDiagnostics(loss, { rho: 0.05 })(params, x, y);
 */
export function samWithDiagnostics(loss: Loss, opts: SamOptions): (...args: any[]) => SamDiagnostics {
  const r = resolve(opts, "samWithDiagnostics");
  return (...args: unknown[]) => {
    const out = run(loss, r, true, args, "samWithDiagnostics");
    const d: SamDiagnostics = {
      grads: out.grads,
      gradNorm: out.gradNorm,
      samGradNorm: out.samGradNorm,
      cosine: out.cosine,
      lossIncrease: out.lossIncrease,
    };
    if (r.hasAux) d.aux = out.aux;
    return d;
  };
}

/**
 * The one-step perturbation `ε` that {@link sam} applies at `params` for the clean gradient `g`
 * (multi-step ascent needs the loss, so `ascentSteps` is rejected here). `step` is required when
 * `rho` is a schedule.
 *
 * @example samPerturbation(g, params, { rho: 0.05 })
 */
export function samPerturbation<T>(g: T, params: unknown, opts: SamOptions, step?: Tensor): T {
  const r = resolve(opts, "samPerturbation");
  if (r.ascentSteps > 1)
    throw new ConfigError("ascentSteps > 1 needs the loss: use sam or samWithDiagnostics", "samPerturbation");
  let rho: number | Tensor = r.rho ?? 0;
  if (r.rhoSchedule) {
    if (step === undefined) throw new ConfigError("rho is a schedule: pass the step", "samPerturbation");
    rho = np.astype(r.rhoSchedule(step), "float32");
  }
  // One step never needs a second gradient.
  return perturbation(g, params, r, rho, () => null) as T;
}
