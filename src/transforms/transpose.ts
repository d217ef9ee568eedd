/**
 * Transposition of linear jaxprs (JAX's `backward_pass`): walks the equations in reverse,
 * accumulating cotangents; the non-linear equations (those on residuals only) are evaluated first.
 */
import { type Atom, type Jaxpr, Lit, Var } from "../core/jaxpr.js";
import { TraceError } from "../core/errors.js";
import { type Tangent, UndefPrimal, Zero } from "../core/primitive.js";
import { add } from "../core/primitives/elementwise.js";
import type { Tensor } from "../core/tensor.js";
import { bind } from "../core/trace.js";

/**
 * Given a jaxpr linear in the inputs marked `UndefPrimal`, and cotangents of its outputs, returns
 * the cotangents of those inputs (symbolic zeros where nothing flows).
 */
export function backwardPass(jaxpr: Jaxpr, consts: readonly Tensor[], args: readonly (Tensor | UndefPrimal)[], cts: readonly Tangent[]): Tangent[] {
  const primal = new Map<Var, Tensor>();
  const linear = new Set<Var>();
  jaxpr.constBinders.forEach((v, i) => primal.set(v, consts[i]!));
  jaxpr.inBinders.forEach((v, i) => {
    const a = args[i]!;
    if (a instanceof UndefPrimal) linear.add(v);
    else primal.set(v, a);
  });
  const isLinear = (a: Atom) => a instanceof Var && linear.has(a);
  const read = (a: Atom): Tensor => (a instanceof Lit ? a.value : primal.get(a)!);
  const linearEqns = [];
  for (const eqn of jaxpr.eqns) {
    if (eqn.inputs.some(isLinear)) {
      linearEqns.push(eqn);
      for (const v of eqn.outBinders) linear.add(v);
    } else {
      const outs = bind(eqn.prim, eqn.inputs.map(read), eqn.params);
      eqn.outBinders.forEach((v, i) => primal.set(v, outs[i]!));
    }
  }
  const ctEnv = new Map<Var, Tangent>();
  const accumulate = (v: Var, ct: Tangent) => {
    if (ct instanceof Zero) return;
    const prev = ctEnv.get(v);
    ctEnv.set(v, prev === undefined || prev instanceof Zero ? ct : add(prev, ct));
  };
  jaxpr.outs.forEach((a, i) => {
    if (isLinear(a)) accumulate(a as Var, cts[i]!);
  });
  for (let k = linearEqns.length - 1; k >= 0; k--) {
    const eqn = linearEqns[k]!;
    const ctsOut = eqn.outBinders.map((v) => ctEnv.get(v) ?? new Zero(v.aval));
    for (const v of eqn.outBinders) ctEnv.delete(v);
    if (ctsOut.every((c) => c instanceof Zero)) continue;
    if (!eqn.prim.transpose) {
      throw new TraceError(`differentiation reached primitive ${eqn.prim.name}, which is not linear in its tangent input; reverse mode needs a transpose rule`, "transpose");
    }
    const ins = eqn.inputs.map((a) => (isLinear(a) ? new UndefPrimal(a.aval) : read(a)));
    const ctsIn = eqn.prim.transpose(ctsOut, ins, eqn.params);
    eqn.inputs.forEach((a, i) => {
      if (isLinear(a) && ctsIn[i] !== null && ctsIn[i] !== undefined) accumulate(a as Var, ctsIn[i]!);
    });
  }
  const result: Tangent[] = [];
  jaxpr.inBinders.forEach((v, i) => {
    if (args[i] instanceof UndefPrimal) result.push(ctEnv.get(v) ?? new Zero(v.aval));
  });
  return result;
}
