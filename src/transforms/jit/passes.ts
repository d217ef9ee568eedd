/**
 * Jaxpr passes run before kernel grouping: inlining of call-like primitives (nested `jit`,
 * `checkpoint`, custom-rule calls: their rules matter only to transforms, which have already run),
 * constant folding, common-subexpression elimination and dead-code elimination. Each pass returns a
 * new closed jaxpr; inputs are never mutated.
 */
import { type Atom, ClosedJaxpr, Jaxpr, type JaxprEqn, Lit, Var } from "../../core/jaxpr.js";
import type { DotGeneralParams } from "../../core/primitives/contract.js";
import { type Tensor, Tensor as TensorClass } from "../../core/tensor.js";
import { Tracer } from "../../core/trace.js";

/** Where a call-like primitive keeps its body (`null`: not call-like). */
function callBody(eqn: JaxprEqn): ClosedJaxpr | null {
  switch (eqn.prim.name) {
    case "pjit":
    case "checkpoint":
      return eqn.params.jaxpr as ClosedJaxpr;
    case "custom_jvp_call":
    case "custom_vjp_call":
      return eqn.params.call as ClosedJaxpr;
    default:
      return null;
  }
}

/** A closed jaxpr under construction: fresh constants are appended as it goes. */
class Builder {
  readonly constBinders: Var[];
  readonly consts: Tensor[];
  readonly eqns: JaxprEqn[] = [];
  private readonly subst = new Map<Var, Atom>();
  constructor(closed: ClosedJaxpr) {
    this.constBinders = [...closed.jaxpr.constBinders];
    this.consts = [...closed.consts];
  }
  read(a: Atom): Atom {
    if (a instanceof Lit) return a;
    return this.subst.get(a) ?? a;
  }
  replace(v: Var, by: Atom): void {
    this.subst.set(v, by);
  }
  addConst(aval: Var["aval"], value: Tensor): Var {
    const v = new Var(aval);
    this.constBinders.push(v);
    this.consts.push(value);
    return v;
  }
  finish(inBinders: readonly Var[], outs: readonly Atom[]): ClosedJaxpr {
    return new ClosedJaxpr(
      new Jaxpr(
        this.constBinders,
        inBinders,
        this.eqns,
        outs.map((a) => this.read(a)),
      ),
      this.consts,
    );
  }
}

/** Inlines every call-like equation, recursively, with fresh variables per inlined copy. */
export function inlineCalls(closed: ClosedJaxpr): ClosedJaxpr {
  const b = new Builder(closed);
  // `rename` is null at the top level (variables are kept); inlined bodies get fresh variables,
  // since one body may be inlined several times.
  const emit = (eqns: readonly JaxprEqn[], rename: Map<Var, Atom> | null) => {
    const get = (a: Atom): Atom => (a instanceof Lit ? a : b.read(rename?.get(a) ?? a));
    for (const eqn of eqns) {
      const body = callBody(eqn);
      const inputs = eqn.inputs.map(get);
      if (body === null) {
        const outBinders = eqn.outBinders.map((v) => {
          if (rename === null) return v;
          const nv = new Var(v.aval);
          rename.set(v, nv);
          return nv;
        });
        b.eqns.push({ prim: eqn.prim, inputs, params: eqn.params, outBinders });
        continue;
      }
      const inner = new Map<Var, Atom>();
      body.jaxpr.constBinders.forEach((v, i) => inner.set(v, b.addConst(v.aval, body.consts[i]!)));
      body.jaxpr.inBinders.forEach((v, i) => inner.set(v, inputs[i]!));
      emit(body.jaxpr.eqns, inner);
      const outs = body.jaxpr.outs.map((a) => (a instanceof Lit ? a : (inner.get(a) ?? a)));
      eqn.outBinders.forEach((v, i) => {
        if (rename === null) b.replace(v, outs[i]!);
        else rename.set(v, outs[i]!);
      });
    }
  };
  emit(closed.jaxpr.eqns, null);
  return b.finish(closed.jaxpr.inBinders, closed.jaxpr.outs);
}

function isConcrete(t: Tensor): boolean {
  return !(t instanceof Tracer) && t._buf !== null;
}

/**
 * Folds equations whose inputs are all literals or constants, by running their CPU implementation.
 * Results that would be larger than their inputs (a broadcast of a scalar) are left to the kernels,
 * which compute them for free, instead of becoming large constants.
 */
export function foldConstants(closed: ClosedJaxpr): ClosedJaxpr {
  const b = new Builder(closed);
  const known = new Map<Var, Tensor>();
  closed.jaxpr.constBinders.forEach((v, i) => {
    const c = closed.consts[i]!;
    if (isConcrete(c)) known.set(v, c);
  });
  const constValue = (a: Atom): Tensor | undefined => (a instanceof Lit ? a.value : known.get(a));
  for (const eqn of closed.jaxpr.eqns) {
    const inputs = eqn.inputs.map((a) => b.read(a));
    const values = inputs.map(constValue);
    const inSize = values.reduce((s, t) => s + (t?.size ?? 0), 0);
    const outSize = eqn.outBinders.reduce((s, v) => s + v.aval.shape.reduce((p, d) => p * d, 1), 0);
    if (values.every((t) => t !== undefined) && outSize <= Math.max(1, inSize) && callBody(eqn) === null) {
      const args = values as Tensor[];
      const outAvals = eqn.prim.abstractEval(
        args.map((t) => t.aval),
        eqn.params,
      );
      const outs = eqn.prim.impl(args, eqn.params, outAvals);
      eqn.outBinders.forEach((v, i) => {
        const t = outs[i]!;
        if (t.ndim === 0) b.replace(v, new Lit(t));
        else {
          const c = b.addConst(v.aval, t);
          known.set(c, t);
          b.replace(v, c);
        }
      });
      continue;
    }
    b.eqns.push({ ...eqn, inputs });
  }
  return b.finish(closed.jaxpr.inBinders, closed.jaxpr.outs);
}

/** A parameter key for CSE, or null when params hold something without a value identity. */
function paramsKey(params: unknown): string | null {
  let ok = true;
  const text = JSON.stringify(params ?? null, (_k, v) => {
    if (typeof v === "function" || v instanceof ClosedJaxpr || v instanceof Jaxpr || v instanceof TensorClass)
      ok = false;
    if (typeof v === "number" && !Number.isFinite(v)) return String(v);
    return v;
  });
  return ok ? text : null;
}

/** Merges equations that apply the same primitive, with the same params, to the same inputs. */
export function eliminateCommonSubexpressions(closed: ClosedJaxpr): ClosedJaxpr {
  const b = new Builder(closed);
  const ids = new Map<Var, number>();
  const id = (v: Var) => {
    let i = ids.get(v);
    if (i === undefined) {
      i = ids.size;
      ids.set(v, i);
    }
    return i;
  };
  const atomKey = (a: Atom) =>
    a instanceof Lit ? `L${a.value.dtype}${a.value.weakType ? "w" : ""}:${a.value.item()}` : `v${id(a)}`;
  const seen = new Map<string, readonly Var[]>();
  for (const eqn of closed.jaxpr.eqns) {
    const inputs = eqn.inputs.map((a) => b.read(a));
    const pk = paramsKey(eqn.params);
    if (pk !== null) {
      const key = `${eqn.prim.name}(${inputs.map(atomKey).join(",")})${pk}`;
      const prev = seen.get(key);
      if (prev) {
        eqn.outBinders.forEach((v, i) => b.replace(v, prev[i]!));
        continue;
      }
      seen.set(key, eqn.outBinders);
    }
    b.eqns.push({ ...eqn, inputs });
  }
  return b.finish(closed.jaxpr.inBinders, closed.jaxpr.outs);
}

/** Drops equations whose outputs nothing reads, and constants nothing reads (every primitive is pure). */
export function eliminateDeadCode(closed: ClosedJaxpr): ClosedJaxpr {
  const j = closed.jaxpr;
  const live = new Set<Var>();
  for (const a of j.outs) if (a instanceof Var) live.add(a);
  const kept: JaxprEqn[] = [];
  for (let k = j.eqns.length - 1; k >= 0; k--) {
    const eqn = j.eqns[k]!;
    if (!eqn.outBinders.some((v) => live.has(v))) continue;
    kept.push(eqn);
    for (const a of eqn.inputs) if (a instanceof Var) live.add(a);
  }
  kept.reverse();
  const constBinders: Var[] = [];
  const consts: Tensor[] = [];
  j.constBinders.forEach((v, i) => {
    if (live.has(v)) {
      constBinders.push(v);
      consts.push(closed.consts[i]!);
    }
  });
  return new ClosedJaxpr(new Jaxpr(constBinders, j.inBinders, kept, j.outs), consts);
}

/**
 * Rewrites `transpose(dot_general(a, b))` whose permutation only swaps the two operands' free axes
 * into `dot_general(b, a)`, which produces that layout directly. Gradients are full of these (JAX's
 * transpose rule for the lhs cotangent ends in a transpose): without the rewrite the product is
 * written in one layout and read back transposed, which keeps the consumer (an optimizer update,
 * say) from fusing into the product as its epilogue and makes it read with a large stride. The
 * result is the same sum in the same order, so the value is bit-identical. Only a product read by
 * nothing else is rewritten (otherwise both layouts would be computed).
 */
export function absorbTransposesIntoDots(closed: ClosedJaxpr): ClosedJaxpr {
  const j = closed.jaxpr;
  const uses = new Map<Var, number>();
  for (const eqn of j.eqns)
    for (const a of eqn.inputs) if (a instanceof Var) uses.set(a, (uses.get(a) ?? 0) + 1);
  for (const a of j.outs) if (a instanceof Var) uses.set(a, (uses.get(a) ?? 0) + 1);
  const producer = new Map<Var, JaxprEqn>();
  for (const eqn of j.eqns) if (eqn.prim.name === "dot_general") producer.set(eqn.outBinders[0]!, eqn);
  const absorbed = new Set<JaxprEqn>();
  const eqns: JaxprEqn[] = [];
  for (const eqn of j.eqns) {
    const src = eqn.inputs[0];
    const dot = eqn.prim.name === "transpose" && src instanceof Var ? producer.get(src) : undefined;
    const swapped = dot && uses.get(src as Var) === 1 ? swapOperands(dot, eqn) : null;
    if (swapped === null) {
      eqns.push(eqn);
      continue;
    }
    absorbed.add(dot!);
    eqns.push(swapped);
  }
  if (absorbed.size === 0) return closed;
  // The swapped product takes the transpose's place, after both operands exist; drop the original.
  const kept = eqns.filter((e) => !absorbed.has(e));
  return new ClosedJaxpr(new Jaxpr(j.constBinders, j.inBinders, kept, j.outs), closed.consts);
}

/** `dot_general(b, a)` writing `transposeEqn`'s output, or null when its permutation is not the operand swap. */
function swapOperands(dot: JaxprEqn, transposeEqn: JaxprEqn): JaxprEqn | null {
  const { dimensionNumbers: dn, preferredElementType } = dot.params as DotGeneralParams;
  const perm = (transposeEqn.params as { permutation: readonly number[] }).permutation;
  const [l, r] = dot.inputs as [Atom, Atom];
  const lRank = l.aval.shape.length;
  const rRank = r.aval.shape.length;
  const nb = dn.batch[0].length;
  const nl = lRank - nb - dn.contracting[0].length;
  const nr = rRank - nb - dn.contracting[1].length;
  if (nl === 0 || nr === 0) return null;
  const want = [
    ...Array.from({ length: nb }, (_, i) => i),
    ...Array.from({ length: nr }, (_, i) => nb + nl + i),
    ...Array.from({ length: nl }, (_, i) => nb + i),
  ];
  if (perm.length !== want.length || perm.some((p, i) => p !== want[i])) return null;
  const params: DotGeneralParams = {
    dimensionNumbers: {
      contracting: [dn.contracting[1], dn.contracting[0]],
      batch: [dn.batch[1], dn.batch[0]],
    },
    preferredElementType,
  };
  return { prim: dot.prim, inputs: [r, l], params, outBinders: transposeEqn.outBinders };
}

/** The pass pipeline jit runs before grouping into kernels. */
export function optimize(closed: ClosedJaxpr): ClosedJaxpr {
  let c = inlineCalls(closed);
  c = foldConstants(c);
  c = eliminateCommonSubexpressions(c);
  c = eliminateDeadCode(c);
  c = absorbTransposesIntoDots(c);
  return c;
}
