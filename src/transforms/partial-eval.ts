/**
 * Partial evaluation of a jaxpr: given which inputs are unknown, split it into a known jaxpr (run
 * now) and an unknown one (staged), connected by residuals. `linearize` and `vjp` use it to separate
 * the primal computation from the linear tangent computation, as JAX does.
 */
import { Jaxpr, type JaxprEqn, Lit, Var, type Atom } from "../core/jaxpr.js";

/**
 * A higher-order primitive's own partial evaluation (cond, scan, custom rules): given which inputs
 * are unknown, it replaces the equation by known equations (run now; they may define new residual
 * variables) and unknown equations (staged; they may read those residuals). Every output binder of
 * the original equation must be defined by exactly one of them; `outUnknowns` says which.
 * Registered as `prim.extra.partialEval`. Without one, an equation with any unknown input is
 * staged whole.
 */
export type PartialEvalRule = (
  eqn: JaxprEqn,
  unknownIns: boolean[],
) => { knownEqns: JaxprEqn[]; unknownEqns: JaxprEqn[]; outUnknowns: boolean[] };

export interface PartialEvalResult {
  /** Inputs: the original constvars and known inputs. Outputs: known outputs, then residuals. */
  known: Jaxpr;
  /** Inputs: residuals, then unknown inputs. Outputs: the unknown (or instantiated) outputs. */
  unknown: Jaxpr;
  /** For each original output, whether it comes out of the unknown jaxpr. */
  outUnknowns: boolean[];
  numResiduals: number;
}

/**
 * Splits `jaxpr` by which inputs are unknown. Outputs flagged in `instantiate` come out of the
 * unknown jaxpr even when they are known (they are then passed through as residuals).
 */
export function partialEvalJaxpr(jaxpr: Jaxpr, unknownIns: readonly boolean[], instantiate: readonly boolean[]): PartialEvalResult {
  const unknown = new Set<Var>();
  jaxpr.inBinders.forEach((v, i) => {
    if (unknownIns[i]) unknown.add(v);
  });
  const isUnknown = (a: Atom) => a instanceof Var && unknown.has(a);
  const knownEqns: JaxprEqn[] = [];
  const unknownEqns: JaxprEqn[] = [];
  const residuals = new Set<Var>();
  const useAsResidual = (a: Atom) => {
    if (a instanceof Var && !unknown.has(a)) residuals.add(a);
  };
  for (const eqn of jaxpr.eqns) {
    const rule = eqn.prim.extra.partialEval as PartialEvalRule | undefined;
    if (rule && eqn.inputs.some(isUnknown)) {
      const split = rule(eqn, eqn.inputs.map(isUnknown));
      knownEqns.push(...split.knownEqns);
      for (const u of split.unknownEqns) {
        unknownEqns.push(u);
        u.inputs.forEach(useAsResidual);
        for (const v of u.outBinders) unknown.add(v);
      }
      eqn.outBinders.forEach((v, i) => {
        if (split.outUnknowns[i]) unknown.add(v);
      });
    } else if (eqn.inputs.some(isUnknown)) {
      unknownEqns.push(eqn);
      eqn.inputs.forEach(useAsResidual);
      for (const v of eqn.outBinders) unknown.add(v);
    } else knownEqns.push(eqn);
  }
  const outUnknowns = jaxpr.outs.map((a, i) => isUnknown(a) || !!instantiate[i]);
  jaxpr.outs.forEach((a, i) => {
    if (outUnknowns[i] && !isUnknown(a)) useAsResidual(a);
  });
  const res = [...residuals];
  const knownOuts: Atom[] = jaxpr.outs.filter((_, i) => !outUnknowns[i]);
  const known = new Jaxpr(
    jaxpr.constBinders,
    jaxpr.inBinders.filter((_, i) => !unknownIns[i]),
    knownEqns,
    [...knownOuts, ...res],
  );
  const unknownJaxpr = new Jaxpr(
    [],
    [...res, ...jaxpr.inBinders.filter((_, i) => unknownIns[i])],
    unknownEqns,
    jaxpr.outs.filter((_, i) => outUnknowns[i]),
  );
  return { known, unknown: unknownJaxpr, outUnknowns, numResiduals: res.length };
}

export { Lit };
