/**
 * SAM (Foret et al., ICLR 2021) as a gradient transform: `grad(loss)` evaluated at the constant
 * point `w + ε(w)`, with `ε = ρ · dualVector(∇L(w))` (or ASAM's `ρ T² g / ‖T g‖`), and the
 * m-sharpness lane form as a `vmap` over sub-batches.
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import { stopGradient } from "../../core/primitives/elementwise.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { valueAndGrad, vmap } from "../../transforms/index.js";
import { treeNorm, treeVdot } from "../tree-math.js";
import { checkP, dualVector } from "./dual-vector.js";

/** ASAM's element-wise operator `T = |w| + eta` (1 on exempt leaves). */
export interface AdaptiveOptions {
  /** Stabiliser added to `|w|` (Kwon et al. use 0.01; their example CLI runs with 0). Default 0.01. */
  eta?: number;
  /** Leaves with `T = 1` (the official code exempts parameters not named `weight`, e.g. biases). */
  exempt?: (path: tree.KeyPath, leaf: Tensor) => boolean;
}

/** Options of {@link sam}. */
export interface SamOptions {
  /** Radius of the perturbation ball, finite and `>= 0`. */
  rho: number;
  /**
   * `"mirror"`: google-research/sam exactly: `g / ‖g‖` with no guard (a zero gradient gives NaN),
   * and `rho = 0` takes the plain-gradient path. `"beyond"` (default): scaled, `eps`-guarded norm.
   */
  mode?: "mirror" | "beyond";
  /** Added to the norm in beyond mode (default 1e-12). */
  eps?: number;
  /** Norm of the ball, `p > 1` or `Infinity` (default 2; beyond mode only). */
  p?: number;
  /** ASAM (beyond mode only): `false` (default), `"elementwise"` (eta 0.01, no exemptions), or options. */
  adaptive?: false | "elementwise" | AdaptiveOptions;
  /** `loss` returns `[value, aux]`; the aux of the clean pass (e.g. BN state) is returned. */
  hasAux?: boolean;
  /** Position of the parameters among the arguments (default 0); the others are the batch. */
  argnums?: number;
  /**
   * m-sharpness: sub-batch size. The leading axis (size B) of every batch leaf is split into B/m
   * lanes, each perturbed by its own ε_j; the lanes' SAM gradients are averaged.
   */
  m?: number;
}

/** What {@link samWithDiagnostics} returns (per lane, stacked on axis 0, when `m` is set). */
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
  rho: number;
  mirror: boolean;
  eps: number;
  p: number;
  adaptive: { eta: number; exempt: (path: tree.KeyPath, leaf: Tensor) => boolean } | null;
  hasAux: boolean;
  argnums: number;
  m: number | undefined;
}

function resolve(opts: SamOptions, op: string): Resolved {
  if (opts === null || typeof opts !== "object") throw new ConfigError("options { rho, ... } are required", op);
  const { rho } = opts;
  if (typeof rho !== "number" || !Number.isFinite(rho) || rho < 0) {
    throw new ConfigError(`rho must be a finite number >= 0, got ${String(rho)}`, op);
  }
  const mode = opts.mode ?? "beyond";
  if (mode !== "mirror" && mode !== "beyond") throw new ConfigError(`mode must be "mirror" or "beyond", got ${String(mode)}`, op);
  const mirror = mode === "mirror";
  const eps = opts.eps ?? 1e-12;
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) throw new ConfigError(`eps must be a finite number >= 0, got ${String(eps)}`, op);
  const p = opts.p ?? 2;
  checkP(p, op);
  let adaptive: Resolved["adaptive"] = null;
  const a = opts.adaptive ?? false;
  if (a === "elementwise") adaptive = { eta: 0.01, exempt: () => false };
  else if (a !== false) {
    if (typeof a !== "object" || a === null) throw new ConfigError(`adaptive must be false, "elementwise" or { eta, exempt }, got ${String(a)}`, op);
    const eta = a.eta ?? 0.01;
    if (typeof eta !== "number" || !Number.isFinite(eta) || eta < 0) throw new ConfigError(`adaptive.eta must be a finite number >= 0, got ${String(eta)}`, op);
    adaptive = { eta, exempt: a.exempt ?? (() => false) };
  }
  if (mirror) {
    // Mirror mode is the official code and nothing else: reject options it does not have.
    if (opts.eps !== undefined) throw new ConfigError("eps is a beyond-mode option (mirror mode has no guard)", op);
    if (p !== 2) throw new ConfigError(`p must be 2 in mirror mode, got ${p}`, op);
    if (adaptive) throw new ConfigError("adaptive is a beyond-mode option", op);
  }
  const argnums = opts.argnums ?? 0;
  if (!Number.isInteger(argnums) || argnums < 0) throw new ConfigError(`argnums must be an integer >= 0, got ${String(argnums)}`, op);
  const m = opts.m;
  if (m !== undefined && (!Number.isInteger(m) || m < 1)) throw new ConfigError(`m must be a positive integer, got ${String(m)}`, op);
  return { rho, mirror, eps, p, adaptive, hasAux: opts.hasAux ?? false, argnums, m };
}

/** ε for the clean gradient `g` at `params`. */
function perturbation(g: unknown, params: unknown, r: Resolved): unknown {
  const dual = (x: unknown) => (r.mirror ? dualVector(x) : dualVector(x, { p: r.p, eps: r.eps }));
  if (!r.adaptive) return tree.map((d: Tensor) => np.multiply(d, r.rho), dual(g));
  const { eta, exempt } = r.adaptive;
  const t = tree.mapWithPath((path, w: Tensor) => (exempt(path, w) ? np.onesLike(w) : np.add(np.abs(w), eta)), params) as unknown;
  // ε = ρ T · dual(T g): for p = 2 that is ρ T² g / ‖T g‖, so ‖T⁻¹ ε‖ = ρ.
  const tg = tree.map((x: Tensor, ti: Tensor) => np.multiply(ti, x), g, t) as unknown;
  return tree.map((d: Tensor, ti: Tensor) => np.multiply(np.multiply(ti, d), r.rho), dual(tg), t);
}

interface LaneOut {
  grads: unknown;
  aux?: unknown;
  gradNorm: Tensor;
  samGradNorm: Tensor;
  cosine: Tensor;
  lossIncrease: Tensor;
}

/** One SAM evaluation on one (sub-)batch. */
function lane(loss: (...args: any[]) => any, r: Resolved, diagnostics: boolean, args: unknown[]): LaneOut {
  const vg = valueAndGrad(loss, { argnums: r.argnums, hasAux: r.hasAux });
  const [v0, g] = vg(...args);
  const [l0, aux] = r.hasAux ? (v0 as [Tensor, unknown]) : [v0 as Tensor, undefined];
  const stats = (grads: unknown, l1: Tensor): LaneOut => {
    // Only defined fields: the record is a vmap output tree.
    const base = (r.hasAux ? { grads, aux } : { grads }) as LaneOut;
    if (!diagnostics) return base;
    const gn = treeNorm(g);
    const sn = treeNorm(grads);
    return { ...base, gradNorm: gn, samGradNorm: sn, cosine: np.divide(treeVdot(g, grads), np.multiply(gn, sn)), lossIncrease: np.subtract(l1, l0) };
  };
  // The official code branches on rho > 0: rho = 0 is exactly the base gradient, never 0 · NaN.
  if (r.mirror && r.rho === 0) return stats(g, l0);
  const params = args[r.argnums];
  const e = perturbation(g, params, r);
  // The perturbed point is a constant: dropping dε/dw is the paper's eq. 3 (and C.4: it helps).
  const shifted = tree.map((w: Tensor, ei: Tensor) => np.add(w, stopGradient(np.astype(ei, w.dtype))), params, e);
  const full = args.slice();
  full[r.argnums] = shifted;
  const [v1, grads] = vg(...full);
  return stats(grads, r.hasAux ? (v1 as [Tensor, unknown])[0] : (v1 as Tensor));
}

/** Splits every batch leaf's leading axis [B, ...] into [B/m, m, ...] for the lanes. */
function splitBatch(args: unknown[], r: Resolved, op: string): unknown[] {
  const m = r.m!;
  let B: number | undefined;
  const out = args.map((a, i) => {
    if (i === r.argnums) return a;
    return tree.map((x: Tensor) => {
      const n = x.shape[0];
      if (n === undefined) throw new ConfigError(`m-sharpness needs a leading batch axis; argument ${i} has a scalar leaf`, op);
      if (B !== undefined && n !== B) throw new ConfigError(`batch leaves disagree on the leading axis: ${B} and ${n} (argument ${i})`, op);
      B = n;
      if (n % m !== 0) throw new ConfigError(`batch size ${n} is not divisible by m = ${m} (argument ${i})`, op);
      return np.reshape(x, [n / m, m, ...x.shape.slice(1)]);
    }, a);
  });
  if (B === undefined) throw new ConfigError("m-sharpness needs at least one batch argument with a leading axis", op);
  return out;
}

function run(loss: (...args: any[]) => any, r: Resolved, diagnostics: boolean, args: unknown[], op: string): LaneOut {
  if (r.argnums >= args.length) throw new ConfigError(`argnums ${r.argnums} is out of range for ${args.length} arguments`, op);
  if (r.m === undefined) return lane(loss, r, diagnostics, args);
  const lanes = vmap((...xs: unknown[]) => lane(loss, r, diagnostics, xs), {
    inAxes: args.map((_, i) => (i === r.argnums ? null : 0)),
  })(...splitBatch(args, r, op)) as LaneOut;
  return { ...lanes, grads: tree.map((x: Tensor) => np.mean(x, 0), lanes.grads) };
}

/**
 * The SAM gradient with `grad`'s signature: `(params, ...batch) → grads` (`[grads, aux]` with
 * `hasAux`), computing `∇L(w + stopGradient(ε))` with `ε = ρ · dualVector(∇L(w))`.
 * With `m`, the lanes' aux values are stacked on axis 0.
 *
 * @example const g = sam(loss, { rho: 0.05 })(params, x, y);
 */
export function sam(loss: (...args: any[]) => any, opts: SamOptions): (...args: any[]) => any {
  const r = resolve(opts, "sam");
  return (...args: unknown[]) => {
    const out = run(loss, r, false, args, "sam");
    return r.hasAux ? [out.grads, out.aux] : out.grads;
  };
}

/**
 * {@link sam} plus `‖g‖`, `‖g̃‖`, `cos(g, g̃)` and `L(w+ε) − L(w)` (per lane, stacked, with `m`).
 * With `rho = 0` in mirror mode the second pass is skipped: `g̃ = g` and the increase is 0.
 *
 * @example const { grads, lossIncrease } = samWithDiagnostics(loss, { rho: 0.05 })(params, x, y);
 */
export function samWithDiagnostics(loss: (...args: any[]) => any, opts: SamOptions): (...args: any[]) => SamDiagnostics {
  const r = resolve(opts, "samWithDiagnostics");
  return (...args: unknown[]) => {
    const out = run(loss, r, true, args, "samWithDiagnostics");
    const d: SamDiagnostics = { grads: out.grads, gradNorm: out.gradNorm, samGradNorm: out.samGradNorm, cosine: out.cosine, lossIncrease: out.lossIncrease };
    if (r.hasAux) d.aux = out.aux;
    return d;
  };
}

/** The perturbation `ε` that {@link sam} applies at `params` for the clean gradient `g`. @example samPerturbation(g, params, { rho: 0.05 }) */
export function samPerturbation<T>(g: T, params: unknown, opts: SamOptions): T {
  return perturbation(g, params, resolve(opts, "samPerturbation")) as T;
}
