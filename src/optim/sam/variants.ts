/**
 * SAM variants as transforms of the loss (SAM.md §5): USAM, SAM-ON, GSAM and LookSAM. Each returns
 * a gradient function with `grad`'s signature `(params, ...batch) → grads` (params first), built
 * from `grad`, `stopGradient` and, for LookSAM, `cond`.
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import { stopGradient } from "../../core/primitives/elementwise.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { cond, grad } from "../../transforms/index.js";
import { type Schedule, checkNumber, checkSchedule } from "../base.js";
import { treeAdd, treeNorm, treeScale, treeSub, treeVdot } from "../tree-math.js";
import { dualVector } from "./dual-vector.js";

type Loss = (...args: any[]) => any;

function checkRho(rho: unknown, op: string): number {
  if (typeof rho !== "number" || !Number.isFinite(rho) || rho < 0) {
    throw new ConfigError(`rho must be a finite number >= 0, got ${String(rho)}`, op);
  }
  return rho;
}

function checkAlpha(alpha: unknown, op: string): number {
  if (typeof alpha !== "number" || !Number.isFinite(alpha))
    throw new ConfigError(`alpha must be a finite number, got ${String(alpha)}`, op);
  return alpha;
}

/** `∇L(w + stopGradient(ε))` for the batch `rest`. */
function gradAt(g: (...a: any[]) => any, params: unknown, e: unknown, rest: unknown[]): unknown {
  const shifted = tree.map(
    (w: Tensor, ei: Tensor) => np.add(w, stopGradient(np.astype(ei, w.dtype))),
    params,
    e,
  );
  return g(shifted, ...rest);
}

/** The guarded SAM ε = ρ g/‖g‖ (as `sam`'s beyond mode, eps 1e-12), so variants reduce to `sam` exactly. */
const samEps = (g: unknown, rho: number | Tensor): unknown =>
  tree.map(
    (d: Tensor) => np.multiply(d, typeof rho === "number" ? rho : np.astype(rho, d.dtype)),
    dualVector(g, { eps: 1e-12 }),
  );

/** `a − (⟨a, b⟩/‖b‖²) b`: the part of `a` orthogonal to `b` (`a` itself when `b = 0`). */
function orthogonalPart<T>(a: T, b: unknown): T {
  const bb = treeVdot(b, b);
  const pos = np.greater(bb, 0);
  const coef = np.where(pos, np.divide(treeVdot(a, b), np.where(pos, bb, np.onesLike(bb))), np.zerosLike(bb));
  return treeSub(a, treeScale(coef, b));
}

/** Options of {@link usam}. */
export interface UsamOptions {
  /** Step of the unnormalised ascent, finite and `>= 0`. */
  rho: number;
}

/**
 * USAM (Andriushchenko & Flammarion, 2022): `∇L(w + stopGradient(ρ ∇L(w)))`, no normalisation.
 *
 * @example const g = usam(loss, { rho: 0.05 })(params, x, y);
 */
export function usam(loss: Loss, opts: UsamOptions): (params: any, ...batch: any[]) => any {
  const rho = checkRho(opts?.rho, "usam");
  const g = grad(loss);
  return (params: unknown, ...rest: unknown[]) => {
    const g0 = g(params, ...rest);
    return gradAt(g, params, treeScale(rho, g0), rest);
  };
}

/** Options of {@link samOn}. */
export interface SamOnOptions {
  /** Radius of the perturbation ball over the selected leaves. */
  rho: number;
  /** Selects the perturbed leaves by key path (`tree.keyPathToString`, e.g. `"layers[0].norm.scale"`). */
  perturbOnly: (path: string) => boolean;
}

/**
 * SAM-ON (Müller et al., 2023): only leaves whose path satisfies `perturbOnly` are perturbed, by
 * `ρ g_N/‖g_N‖` with the norm over those leaves only; the others get `ε = 0`.
 *
 * @example const g = samOn(loss, { rho: 1, perturbOnly: (p) => p.includes("norm") })(params, x, y);
 */
export function samOn(loss: Loss, opts: SamOnOptions): (params: any, ...batch: any[]) => any {
  const rho = checkRho(opts?.rho, "samOn");
  const pred = opts.perturbOnly;
  if (typeof pred !== "function")
    throw new ConfigError("perturbOnly must be a function (path: string) => boolean", "samOn");
  const g = grad(loss);
  return (params: unknown, ...rest: unknown[]) => {
    const g0 = g(params, ...rest);
    const [pairs, def] = tree.flattenWithPath<Tensor>(g0);
    const sel = pairs.map(([path]) => pred(tree.keyPathToString(path)));
    const chosen = pairs.filter((_, i) => sel[i]).map(([, x]) => x);
    const dirs = tree.leaves<Tensor>(samEps(chosen, rho));
    let j = 0;
    const e = tree.unflatten(
      def,
      pairs.map(([, x], i) => (sel[i] ? dirs[j++]! : np.zerosLike(x))),
    );
    return gradAt(g, params, e, rest);
  };
}

/** Options of {@link gsam}. */
export interface GsamOptions {
  /**
   * Radius of the perturbation ball, or a schedule of the step (e.g. {@link gsamRhoSchedule}); with a
   * schedule the gradient takes the int32 step first: `(step, params, ...batch)`.
   */
  rho: number | Schedule;
  /** Weight of the ascent along the surrogate gap (0 gives SAM). */
  alpha: number;
}

/**
 * GSAM (Zhuang et al., 2022), SAM.md §5: `S − α (g − ⟨g, Ŝ⟩Ŝ)` with `S = ∇L(w + ρĝ)`, so the
 * correction is orthogonal to `S`. GSAM's ρ_t ∝ lr_t is {@link gsamRhoSchedule}, passed as `rho`.
 *
 * @example const g = gsam(loss, { rho: 0.05, alpha: 0.6 })(params, x, y);
 */
export function gsam(loss: Loss, opts: GsamOptions): (...args: any[]) => any {
  const scheduled = typeof opts?.rho === "function";
  if (scheduled) checkSchedule("gsam", "rho", opts.rho as Schedule, true);
  const rho = scheduled ? null : checkRho(opts?.rho, "gsam");
  const alpha = checkAlpha(opts.alpha, "gsam");
  const g = grad(loss);
  const at = (r: number | Tensor, params: unknown, rest: unknown[]) => {
    const g0 = g(params, ...rest);
    const s = gradAt(g, params, samEps(g0, r), rest);
    return treeSub(s, treeScale(alpha, orthogonalPart(g0, s)));
  };
  if (!scheduled) return (params: unknown, ...rest: unknown[]) => at(rho!, params, rest);
  return (step: Tensor, params: unknown, ...rest: unknown[]) =>
    at(np.astype((opts.rho as Schedule)(step), "float32"), params, rest);
}

/**
 * GSAM's radius schedule (Zhuang et al.; SAM.md T17): ρ follows the learning rate linearly,
 * `ρ_t = ρ_min + (ρ_max − ρ_min)(lr_t − lr_min)/(lr_max − lr_min)`, and `ρ_t = ρ_max` when
 * `lr_max = lr_min`.
 *
 * @example gsamRhoSchedule({ learningRate: cosineDecaySchedule(0.1, 1000), lrMax: 0.1, lrMin: 0, rhoMax: 0.6, rhoMin: 0.1 })
 */
export function gsamRhoSchedule(opts: {
  learningRate: Schedule;
  lrMax: number;
  lrMin: number;
  rhoMax: number;
  rhoMin: number;
}): Schedule {
  const op = "gsamRhoSchedule";
  const { learningRate, lrMax, lrMin, rhoMax, rhoMin } = opts;
  checkSchedule(op, "learningRate", learningRate);
  checkNumber(op, "lrMax", lrMax);
  checkNumber(op, "lrMin", lrMin, { max: lrMax });
  checkNumber(op, "rhoMax", rhoMax, { min: 0 });
  checkNumber(op, "rhoMin", rhoMin, { min: 0, max: rhoMax });
  if (lrMax === lrMin) return () => np.array(rhoMax, "float32");
  return (step) => {
    const lr = np.astype(learningRate(step), "float32");
    return np.add(np.multiply(np.subtract(lr, lrMin), (rhoMax - rhoMin) / (lrMax - lrMin)), rhoMin);
  };
}

/** Options of {@link lookSam}. */
export interface LookSamOptions {
  /** Radius of the perturbation ball. */
  rho: number;
  /** The SAM gradient is recomputed every `k` steps (integer >= 1). */
  k: number;
  /** Weight of the reused orthogonal component. */
  alpha: number;
}

/** LookSAM's state: the step counter and the stored `g_v` (a tree like the gradient). */
export interface LookSamState<G = unknown> {
  count: Tensor;
  gv: G;
}

/** A stateful gradient: `step` returns the gradient to feed the optimizer and the next state. */
export interface LookSam {
  init(params: unknown): LookSamState;
  step(state: LookSamState, params: unknown, ...batch: unknown[]): [unknown, LookSamState];
}

/**
 * LookSAM (Liu et al., 2022), SAM.md §5: on steps `t ≡ 0 (mod k)` return `S` and store
 * `g_v = S − ⟨S, ĝ⟩ĝ`; on the others return `g + α (‖g‖/‖g_v‖) g_v` (just `g` while `g_v = 0`).
 * The branch is a `cond`, so only the chosen pass runs and the step is traceable.
 *
 * @example const ls = lookSam(loss, { rho: 0.05, k: 5, alpha: 0.7 }); let s = ls.init(params); [g, s] = ls.step(s, params, x, y);
 */
export function lookSam(loss: Loss, opts: LookSamOptions): LookSam {
  const rho = checkRho(opts?.rho, "lookSam");
  const alpha = checkAlpha(opts.alpha, "lookSam");
  const k = opts.k;
  if (!Number.isInteger(k) || k < 1)
    throw new ConfigError(`k must be a positive integer, got ${String(k)}`, "lookSam");
  const g = grad(loss);
  return {
    init(params: unknown): LookSamState {
      return { count: np.array(0, "int32"), gv: tree.map((w: Tensor) => np.zerosLike(w), params) };
    },
    step(state: LookSamState, params: unknown, ...rest: unknown[]): [unknown, LookSamState] {
      const g0 = g(params, ...rest);
      const refresh = (gc: unknown, p: unknown, _gv: unknown, ...b: unknown[]) => {
        const s = gradAt(g, p, samEps(gc, rho), b);
        return [s, orthogonalPart(s, gc)];
      };
      const reuse = (gc: unknown, _p: unknown, gv: unknown) => {
        const nv = treeNorm(gv);
        const pos = np.greater(nv, 0);
        const scale = np.where(
          pos,
          np.divide(np.multiply(treeNorm(gc), alpha), np.where(pos, nv, np.onesLike(nv))),
          np.zerosLike(nv),
        );
        return [treeAdd(gc, treeScale(scale, gv)), gv];
      };
      const pred = np.equal(np.mod(state.count, k), 0);
      const [out, gv] = cond(pred, refresh, reuse, g0, params, state.gv, ...rest) as [unknown, unknown];
      return [out, { count: np.add(state.count, np.array(1, "int32")), gv }];
    },
  };
}
