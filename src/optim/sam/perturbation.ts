/**
 * The SAM perturbation ε from a resolved configuration: the one-step dual direction (plain, ASAM,
 * Fisher), multi-step projected ascent, the perturbed point `w + stopGradient(ε)`, and the
 * second-order term that plain SAM drops.
 */
import * as np from "../../core/numpy/index.js";
import { stopGradient } from "../../core/primitives/elementwise.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { treeNorm, treeScale, treeSub, treeVdot } from "../tree-math.js";
import { dualVector } from "./dual-vector.js";
import { applyOperator, fisherDirection, projectToBall, samOperator, scaleBy } from "./operators.js";
import type { Resolved } from "./options.js";

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
export function onePerturbation(g0: unknown, params: unknown, r: Resolved, rho: number | Tensor): unknown {
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
export function projectedAscent(
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
export function shift(params: unknown, e: unknown): unknown {
  return tree.map((w: Tensor, ei: Tensor) => np.add(w, stopGradient(np.astype(ei, w.dtype))), params, e);
}

/** Projected ascent runs for several steps, or for one step of a given size (`Proj(α·dual(T g))`). */
export const usesAscent = (r: Resolved): boolean => r.ascentSteps > 1 || r.ascentStepSize !== null;

export function perturbation(
  g: unknown,
  params: unknown,
  r: Resolved,
  rho: number | Tensor,
  gradAt: (point: unknown) => unknown,
): unknown {
  return usesAscent(r) ? projectedAscent(g, params, r, rho, gradAt) : onePerturbation(g, params, r, rho);
}

/** The second-order term `(ρ/‖g‖) H (S − ⟨ĝ,S⟩ĝ)` (zero where `g = 0`). */
export function secondOrderTerm(
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
