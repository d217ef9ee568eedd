/**
 * SAM (Foret et al., ICLR 2021) as a gradient transform: `grad(loss)` evaluated at the constant
 * point `w + ε(w)`, with `ε = ρ · dualVector(∇L(w))` (or ASAM's `ρ T² g / ‖T g‖`, or Fisher-SAM's
 * `ρ F⁻¹g/√(gᵀF⁻¹g)`), optionally by multi-step projected ascent or with the second-order term, and
 * the m-sharpness lane form as a `vmap` over sub-batches.
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { valueAndGrad, vmap } from "../../transforms/index.js";
import { hessianVectorProduct } from "../sharpness/hessian.js";
import { treeNorm, treeVdot } from "../tree-math.js";
import { type Resolved, type SamOptions, resolve } from "./options.js";
import { perturbation, secondOrderTerm, shift } from "./perturbation.js";

export type { AdaptiveOptions, SamOptions } from "./options.js";

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
