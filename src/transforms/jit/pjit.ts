/**
 * `pjit`: jit as a higher-order primitive (JAX's `pjit_p`, autodidax's `xla_call`). Its params hold
 * the staged closed jaxpr; evaluating it runs the compiled program; every transform meets it as one
 * equation whose rule transforms the inner jaxpr and binds `pjit` again, so `grad(jit(f))`,
 * `vmap(jit(f))` and `jvp(jit(f))` stay compiled. The transformed jaxprs are memoised per inner
 * jaxpr, so a jitted function differentiated in a loop compiles once.
 */
import { ShapeError, TraceError } from "../../core/errors.js";
import { ClosedJaxpr, type JaxprEqn, Var, evalJaxpr } from "../../core/jaxpr.js";
import { type BDim, type Tangent, UndefPrimal, definePrimitive } from "../../core/primitive.js";
import { instantiate, isZero } from "../../core/primitives/util.js";
import { type ShapedArray, type Tensor, avalToString } from "../../core/tensor.js";
import { bind } from "../../core/trace.js";
import { batchClosed, stage } from "../custom.js";
import { jvpFlat } from "../jvp.js";
import { type PartialEvalRule, partialEvalJaxpr } from "../partial-eval.js";
import { backwardPass } from "../transpose.js";
import type { BackendOption } from "./backend.js";
import { executableFor } from "./executable.js";

export interface PjitParams {
  jaxpr: ClosedJaxpr;
  name: string;
  backend: BackendOption;
}

/** Memo tables keyed by the inner jaxpr (weakly) and a text key of the transform's pattern. */
function memo<T>(table: WeakMap<ClosedJaxpr, Map<string, T>>, j: ClosedJaxpr, key: string, make: () => T): T {
  let m = table.get(j);
  if (m === undefined) {
    m = new Map();
    table.set(j, m);
  }
  let v = m.get(key);
  if (v === undefined) {
    v = make();
    m.set(key, v);
  }
  return v;
}

const jvpMemo = new WeakMap<ClosedJaxpr, Map<string, ClosedJaxpr>>();
const transposeMemo = new WeakMap<ClosedJaxpr, Map<string, ClosedJaxpr>>();
const batchMemo = new WeakMap<ClosedJaxpr, Map<string, ClosedJaxpr>>();
const partialMemo = new WeakMap<
  ClosedJaxpr,
  Map<
    string,
    {
      known: ClosedJaxpr;
      unknown: ClosedJaxpr;
      outUnknowns: boolean[];
      numResiduals: number;
      nKnownOuts: number;
    }
  >
>();

/** Stages without hoisted tracers (the inner jaxpr is closed, so none can appear). */
function stageClosed(
  f: (...xs: Tensor[]) => Tensor[],
  avals: readonly ShapedArray[],
  what: string,
): ClosedJaxpr {
  const { call, hoisted } = stage(f, avals);
  if (hoisted.length)
    throw new TraceError(`${what} of a jitted function captured a tracer (internal error)`, "jit");
  return call;
}

function runClosed(c: ClosedJaxpr, args: readonly Tensor[]): Tensor[] {
  return evalJaxpr(c.jaxpr, c.consts, args);
}

function sameAval(a: ShapedArray, b: ShapedArray): boolean {
  return (
    a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i])
  );
}

const pjitPartialEval: PartialEvalRule = (eqn, unknownIns) => {
  const p = eqn.params as PjitParams;
  const split = memo(partialMemo, p.jaxpr, unknownIns.map(Number).join(""), () => {
    const s = partialEvalJaxpr(p.jaxpr.jaxpr, unknownIns, []);
    const nKnownOuts = s.outUnknowns.filter((u) => !u).length;
    return {
      known: new ClosedJaxpr(s.known, p.jaxpr.consts),
      unknown: new ClosedJaxpr(s.unknown, []),
      outUnknowns: s.outUnknowns,
      numResiduals: s.numResiduals,
      nKnownOuts,
    };
  });
  const outU = split.outUnknowns;
  const resBinders = split.known.jaxpr.outs.slice(split.nKnownOuts).map((a) => new Var(a.aval));
  const knownEqns: JaxprEqn[] = [];
  const unknownEqns: JaxprEqn[] = [];
  if (split.nKnownOuts + split.numResiduals > 0) {
    knownEqns.push({
      prim: pjit_p,
      inputs: eqn.inputs.filter((_, i) => !unknownIns[i]),
      params: { ...p, jaxpr: split.known },
      outBinders: [...eqn.outBinders.filter((_, i) => !outU[i]), ...resBinders],
    });
  }
  if (split.nKnownOuts < outU.length) {
    unknownEqns.push({
      prim: pjit_p,
      inputs: [...resBinders, ...eqn.inputs.filter((_, i) => unknownIns[i])],
      params: { ...p, jaxpr: split.unknown },
      outBinders: eqn.outBinders.filter((_, i) => outU[i]),
    });
  }
  return { knownEqns, unknownEqns, outUnknowns: outU };
};

export const pjit_p = definePrimitive<PjitParams>({
  name: "pjit",
  abstractEval(avals, p) {
    const want = p.jaxpr.inAvals;
    if (avals.length !== want.length)
      throw new ShapeError(`${p.name} expects ${want.length} inputs, got ${avals.length}`, "pjit");
    avals.forEach((a, i) => {
      if (!sameAval(a, want[i]!))
        throw new ShapeError(
          `input ${i} of ${p.name} is ${avalToString(a)}, expected ${avalToString(want[i]!)}`,
          "pjit",
        );
    });
    return p.jaxpr.outAvals;
  },
  impl: (args, p) => executableFor(p.jaxpr, p.backend).run(args),
  jvp(primals, tangents, p) {
    const n = primals.length;
    const nonzero = tangents.map((t) => !isZero(t));
    const jvpJaxpr = memo(jvpMemo, p.jaxpr, nonzero.map(Number).join(""), () => {
      const tanAvals = primals.filter((_, i) => nonzero[i]).map((x) => x.aval);
      return stageClosed(
        (...xs) => {
          let k = n;
          const ts: Tangent[] = primals.map((_x, i) => (nonzero[i] ? xs[k++]! : (tangents[i] as Tangent)));
          const [outs, touts] = jvpFlat((...ys) => runClosed(p.jaxpr, ys), xs.slice(0, n), ts);
          return [...outs, ...touts.map(instantiate)];
        },
        [...primals.map((x) => x.aval), ...tanAvals],
        "differentiating",
      );
    });
    const all = bind(pjit_p, [...primals, ...(tangents.filter((_, i) => nonzero[i]) as Tensor[])], {
      ...p,
      jaxpr: jvpJaxpr,
      name: `jvp(${p.name})`,
    });
    const nOut = p.jaxpr.outAvals.length;
    return [all.slice(0, nOut), all.slice(nOut)];
  },
  transpose(cts, args, p) {
    const undef = args.map((a) => a instanceof UndefPrimal);
    const known = args.filter((a): a is Tensor => !(a instanceof UndefPrimal));
    const ctNonzero = cts.map((c) => !isZero(c));
    const key = `${undef.map(Number).join("")}|${ctNonzero.map(Number).join("")}`;
    const tJaxpr = memo(transposeMemo, p.jaxpr, key, () =>
      stageClosed(
        (...xs) => {
          let k = 0;
          const ins = args.map((a) => (a instanceof UndefPrimal ? a : xs[k++]!));
          const ctIns: Tangent[] = cts.map((c) => (isZero(c) ? c : xs[k++]!));
          return backwardPass(p.jaxpr.jaxpr, p.jaxpr.consts, ins, ctIns).map(instantiate);
        },
        [...known.map((x) => x.aval), ...(cts.filter((c) => !isZero(c)) as Tensor[]).map((c) => c.aval)],
        "transposing",
      ),
    );
    const grads = bind(pjit_p, [...known, ...(cts.filter((c) => !isZero(c)) as Tensor[])], {
      ...p,
      jaxpr: tJaxpr,
      name: `transpose(${p.name})`,
    });
    let k = 0;
    return args.map((a) => (a instanceof UndefPrimal ? grads[k++]! : null));
  },
  batch(args, dims, p, axisSize) {
    const key = `${dims.map((d) => (d === null ? "n" : d)).join(",")}|${axisSize}`;
    const batched = memo(batchMemo, p.jaxpr, key, () => batchClosed(p.jaxpr, args, dims, axisSize));
    const outs = bind(pjit_p, args, { ...p, jaxpr: batched, name: `vmap(${p.name})` });
    return [outs, outs.map((): BDim => 0)];
  },
  printParams: (p) => ({ jaxpr: p.jaxpr, name: p.name }),
  extra: { partialEval: pjitPartialEval },
});
