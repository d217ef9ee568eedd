/**
 * Staging: the jaxpr trace records every primitive applied to its tracers into a jaxpr (JAX's
 * `make_jaxpr`, with a dynamic trace so even operations on constants are recorded).
 */
import { ClosedJaxpr, type Jaxpr, type JaxprEqn, Jaxpr as JaxprClass, Lit, Var } from "../core/jaxpr.js";
import type { Primitive } from "../core/primitive.js";
import { type ShapedArray, Tensor } from "../core/tensor.js";
import { type MainTrace, Trace, Tracer, withDynamicTrace, withMainTrace } from "../core/trace.js";
import { TraceError } from "../core/errors.js";
import { type TreeDef, flatten, unflatten } from "../core/tree.js";
import { asTensor } from "./util.js";

class JaxprTracer extends Tracer {
  constructor(
    trace: Trace,
    readonly _avalValue: ShapedArray,
  ) {
    super(trace);
  }
  override get aval(): ShapedArray {
    return this._avalValue;
  }
}

interface PendingEqn {
  prim: Primitive;
  inputs: JaxprTracer[];
  params: unknown;
  outs: JaxprTracer[];
}

class JaxprBuilder {
  readonly eqns: PendingEqn[] = [];
  readonly consts = new Map<JaxprTracer, Tensor>();
  readonly constOf = new Map<Tensor, JaxprTracer>();
}

class JaxprTrace extends Trace {
  private get builder(): JaxprBuilder {
    return this.main.globalData as JaxprBuilder;
  }
  pure(x: Tensor): Tensor {
    // Constants (concrete arrays, or tracers of lower traces) become constvars of the jaxpr.
    const b = this.builder;
    let t = b.constOf.get(x);
    if (t === undefined) {
      t = new JaxprTracer(this, x.aval);
      b.constOf.set(x, t);
      b.consts.set(t, x);
    }
    return t;
  }
  newArg(aval: ShapedArray): JaxprTracer {
    return new JaxprTracer(this, aval);
  }
  processPrimitive(prim: Primitive, tracers: Tensor[], params: unknown): Tensor[] {
    const ins = tracers as JaxprTracer[];
    const avals = prim.abstractEval(
      ins.map((t) => t.aval),
      params,
    );
    const outs = avals.map((a) => new JaxprTracer(this, a));
    this.builder.eqns.push({ prim, inputs: ins, params, outs });
    return outs;
  }
}

function buildJaxpr(builder: JaxprBuilder, ins: JaxprTracer[], outs: JaxprTracer[]): ClosedJaxpr {
  const vars = new Map<JaxprTracer, Var | Lit>();
  const constBinders: Var[] = [];
  const constVals: Tensor[] = [];
  for (const [t, value] of builder.consts) {
    // Concrete scalars are inlined as literals, as JAX prints them (`mul b 2.0:f32[]`).
    if (!(value instanceof Tracer) && value.ndim === 0) vars.set(t, new Lit(value));
    else {
      const v = new Var(t.aval);
      vars.set(t, v);
      constBinders.push(v);
      constVals.push(value);
    }
  }
  const inBinders = ins.map((t) => {
    const v = new Var(t.aval);
    vars.set(t, v);
    return v;
  });
  const eqns: JaxprEqn[] = builder.eqns.map((e) => ({
    prim: e.prim,
    inputs: e.inputs.map((t) => lookup(vars, t)),
    params: e.params,
    outBinders: e.outs.map((t) => {
      const v = new Var(t.aval);
      vars.set(t, v);
      return v;
    }),
  }));
  return new ClosedJaxpr(new JaxprClass(constBinders, inBinders, eqns, outs.map((t) => lookup(vars, t))), constVals);
}

function lookup(vars: Map<JaxprTracer, Var | Lit>, t: JaxprTracer): Var | Lit {
  const v = vars.get(t);
  if (v === undefined) throw new TraceError("a value from another staging trace reached this jaxpr (leaked tracer)", "makeJaxpr");
  return v;
}

/** Stages a function of flat arrays into a closed jaxpr, given the input avals. */
export function makeJaxprFlat(f: (...args: Tensor[]) => Tensor[], avals: readonly ShapedArray[]): ClosedJaxpr {
  return withMainTrace(JaxprTrace, new JaxprBuilder(), (main: MainTrace) =>
    withDynamicTrace(main, () => {
      const trace = new JaxprTrace(main);
      const ins = avals.map((a) => trace.newArg(a));
      const outs = f(...ins).map((o) => raiseTo(trace, o));
      return buildJaxpr(main.globalData as JaxprBuilder, ins, outs);
    }),
  );
}

function raiseTo(trace: JaxprTrace, x: Tensor): JaxprTracer {
  if (x instanceof JaxprTracer && x._trace.main === trace.main) return x;
  // A constant or an outer tracer returned as is: it becomes a constvar (or literal) output.
  return trace.pure(x) as JaxprTracer;
}

/**
 * `jax.make_jaxpr`: stages `f` at the given example arguments and returns the closed jaxpr, whose
 * `toString()` prints JAX's text form.
 *
 * @example
 * ```ts
 * makeJaxpr((x) => np.sin(x))(np.zeros([3])).toString();
 * // { lambda ; a:f32[3]. let b:f32[3] = sin a in (b,) }
 * ```
 */
export function makeJaxpr<A extends unknown[]>(f: (...args: A) => unknown): (...args: A) => ClosedJaxpr & { outTree: TreeDef } {
  return (...args: A) => {
    const [leaves, inTree] = flatten(args);
    const tensors = leaves.map((l) => asTensor(l, "makeJaxpr"));
    let outTree: TreeDef | null = null;
    const closed = makeJaxprFlat(
      (...ins) => {
        const out = f(...(unflatten(inTree, ins) as A));
        const [outLeaves, tree] = flatten(out);
        outTree = tree;
        return outLeaves.map((l) => asTensor(l, "makeJaxpr"));
      },
      tensors.map((t) => t.aval),
    );
    return Object.assign(closed, { outTree: outTree! });
  };
}

export type { Jaxpr };
