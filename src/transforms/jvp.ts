/** Forward mode: the JVP trace carries a tangent beside each primal (`jax.jvp`). */
import { ShapeError, DTypeError, fmtShape } from "../core/errors.js";
import { isFloat } from "../core/dtype.js";
import { type Primitive, type Tangent, Zero } from "../core/primitive.js";
import { instantiate } from "../core/primitives/util.js";
import { type ShapedArray, type Tensor, avalToString } from "../core/tensor.js";
import { type MainTrace, Trace, Tracer, withMainTrace } from "../core/trace.js";
import { flatten, treedefEqual, unflatten } from "../core/tree.js";
import { asTensor } from "./util.js";

class JVPTracer extends Tracer {
  constructor(
    trace: Trace,
    readonly primal: Tensor,
    readonly tangent: Tangent,
  ) {
    super(trace);
  }
  override get aval(): ShapedArray {
    return this.primal.aval;
  }
}

class JVPTrace extends Trace {
  pure(x: Tensor): Tensor {
    return new JVPTracer(this, x, new Zero(x.aval));
  }
  processPrimitive(prim: Primitive, tracers: Tensor[], params: unknown): Tensor[] {
    const ts = tracers as JVPTracer[];
    const [outs, touts] = prim.jvp(
      ts.map((t) => t.primal),
      ts.map((t) => t.tangent),
      params,
    );
    return outs.map((o, i) => new JVPTracer(this, o, touts[i]!));
  }
}

/** JVP of a function of flat arrays; output tangents may be symbolic zeros. */
export function jvpFlat(f: (...xs: Tensor[]) => Tensor[], primals: readonly Tensor[], tangents: readonly Tangent[]): [Tensor[], Tangent[]] {
  return withMainTrace(JVPTrace, null, (main: MainTrace) => {
    const trace = new JVPTrace(main);
    const ins = primals.map((p, i) => new JVPTracer(trace, p, tangents[i]!));
    const outs = f(...ins);
    const primalsOut: Tensor[] = [];
    const tangentsOut: Tangent[] = [];
    for (const o of outs) {
      if (o instanceof JVPTracer && o._trace.main === main) {
        primalsOut.push(o.primal);
        tangentsOut.push(o.tangent);
      } else {
        primalsOut.push(o);
        tangentsOut.push(new Zero(o.aval));
      }
    }
    return [primalsOut, tangentsOut];
  });
}

/**
 * `jax.jvp`: evaluates `f` at `primals` and its directional derivative along `tangents` (both lists
 * of pytrees, one entry per argument). Returns `[out, outTangent]`.
 *
 * @example
 * ```ts
 * const [y, dy] = jvp((x) => np.sin(x), [np.array(0)], [np.array(1)]); // y = 0, dy = 1
 * ```
 */
export function jvp<Out = any>(f: (...args: any[]) => Out, primals: readonly unknown[], tangents: readonly unknown[]): [Out, Out] {
  const [pLeaves, pTree] = flatten([...primals]);
  const [tLeaves, tTree] = flatten([...tangents]);
  if (!treedefEqual(pTree, tTree)) {
    throw new ShapeError(`primals and tangents must have the same tree structure, got ${pTree} and ${tTree}`, "jvp");
  }
  const ps = pLeaves.map((l) => asTensor(l, "jvp"));
  const ts = tLeaves.map((l, i) => {
    const t = asTensor(l, "jvp");
    const p = ps[i]!;
    if (t.shape.length !== p.shape.length || t.shape.some((d, k) => d !== p.shape[k])) {
      throw new ShapeError(`tangent ${i} has shape ${fmtShape(t.shape)} but its primal has shape ${fmtShape(p.shape)}`, "jvp");
    }
    if (isFloat(p.dtype) && t.dtype !== p.dtype) {
      throw new DTypeError(`tangent ${i} has dtype ${avalToString(t.aval)} but its primal is ${avalToString(p.aval)}`, "jvp");
    }
    return t;
  });
  let outTree: ReturnType<typeof flatten>[1] | null = null;
  const [outs, touts] = jvpFlat(
    (...xs) => {
      const out = f(...(unflatten(pTree, xs) as unknown[]));
      const [leaves, tree] = flatten(out);
      outTree = tree;
      return leaves.map((l) => asTensor(l, "jvp"));
    },
    ps,
    ts,
  );
  return [unflatten(outTree!, outs) as Out, unflatten(outTree!, touts.map(instantiate)) as Out];
}
