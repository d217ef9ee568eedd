/**
 * User-defined differentiation rules and rematerialisation, as JAX builds them: `customJvp`
 * (`jax.custom_jvp`), `customVjp` (`jax.custom_vjp`) and `checkpoint` (`jax.checkpoint` / remat).
 * Each is a higher-order primitive whose params hold the staged function, so every transform sees
 * one equation and applies its own rule to it.
 */
import { isFloat } from "../core/dtype.js";
import { DTypeError, fmtShape, ShapeError, TraceError } from "../core/errors.js";
import { ClosedJaxpr, evalJaxpr, Jaxpr, type JaxprEqn, Var } from "../core/jaxpr.js";
import { type BDim, definePrimitive, UndefPrimal, Zero } from "../core/primitive.js";
import { moveBatchAxis } from "../core/primitives/structural.js";
import { instantiate, isZero } from "../core/primitives/util.js";
import { avalToString, type ShapedArray, type Tensor } from "../core/tensor.js";
import { bind, Tracer } from "../core/trace.js";
import { flatten, type TreeDef, treedefEqual, unflatten } from "../core/tree.js";
import { jvpFlat } from "./jvp.js";
import { type PartialEvalRule, partialEvalJaxpr } from "./partial-eval.js";
import { makeJaxprFlat } from "./staging.js";
import { backwardPass } from "./transpose.js";
import { asTensor, normalizeArgnums } from "./util.js";
import { vmapFlat } from "./vmap.js";

// ---------------------------------------------------------------------------------------------
// Shared helpers.

/**
 * Stages `f` at `avals`. Constants that are tracers of enclosing transforms are hoisted into
 * leading inputs: a tracer hidden in params would escape the transforms that own it.
 */
export function stage(
  f: (...xs: Tensor[]) => Tensor[],
  avals: readonly ShapedArray[],
): { call: ClosedJaxpr; hoisted: Tensor[] } {
  const closed = makeJaxprFlat(f, avals);
  const j = closed.jaxpr;
  const keptBinders = [];
  const keptConsts: Tensor[] = [];
  const hoistedBinders = [];
  const hoisted: Tensor[] = [];
  for (let i = 0; i < j.constBinders.length; i++) {
    const c = closed.consts[i]!;
    if (c instanceof Tracer) {
      hoistedBinders.push(j.constBinders[i]!);
      hoisted.push(c);
    } else {
      keptBinders.push(j.constBinders[i]!);
      keptConsts.push(c);
    }
  }
  return {
    call: new ClosedJaxpr(
      new Jaxpr(keptBinders, [...hoistedBinders, ...j.inBinders], j.eqns, j.outs),
      keptConsts,
    ),
    hoisted,
  };
}

function runClosed(call: ClosedJaxpr, args: readonly Tensor[]): Tensor[] {
  return evalJaxpr(call.jaxpr, call.consts, args);
}

/** Re-stages `call` vmapped over the given batch dims, with every output batched along axis 0. */
export function batchClosed(
  call: ClosedJaxpr,
  args: readonly Tensor[],
  dims: readonly BDim[],
  axisSize: number,
): ClosedJaxpr {
  const { call: batched, hoisted } = stage(
    (...xs) =>
      vmapFlat(
        (...ys) => runClosed(call, ys),
        xs,
        dims,
        (n) => Array(n).fill(0),
        axisSize,
      ),
    args.map((a) => a.aval),
  );
  if (hoisted.length)
    throw new TraceError("batching a staged call captured a tracer (internal error)", "vmap");
  return batched;
}

function moveAllToFront(args: readonly Tensor[], dims: readonly BDim[], axisSize: number): Tensor[] {
  return args.map((a, i) => moveBatchAxis(a, dims[i]!, 0, axisSize));
}

function batchedAval(a: ShapedArray, axisSize: number): ShapedArray {
  return { shape: [axisSize, ...a.shape], dtype: a.dtype, weakType: a.weakType };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Checks that a user rule's output matches the expected aval (tangents of int outputs: shape only). */
function checkAval(got: ShapedArray, want: ShapedArray, what: string, op: string, strictDType = true): void {
  if (!sameShape(got.shape, want.shape)) {
    throw new ShapeError(
      `${what} has shape ${fmtShape(got.shape)} (${avalToString(got)}), expected ${avalToString(want)}`,
      op,
    );
  }
  if (strictDType && got.dtype !== want.dtype) {
    throw new DTypeError(`${what} has dtype ${avalToString(got)}, expected ${avalToString(want)}`, op);
  }
}

function fnName(f: unknown): string {
  return typeof f === "function" && f.name ? f.name : "<fn>";
}

function splitArgs(
  args: readonly unknown[],
  nondiff: readonly number[],
): { diff: unknown[]; fixed: unknown[] } {
  const diff: unknown[] = [];
  const fixed: unknown[] = [];
  args.forEach((a, i) => (nondiff.includes(i) ? fixed : diff).push(a));
  return { diff, fixed };
}

function mergeArgs(
  diff: readonly unknown[],
  fixed: readonly unknown[],
  nondiff: readonly number[],
): unknown[] {
  const out: unknown[] = [];
  let d = 0;
  let k = 0;
  for (let i = 0; i < diff.length + fixed.length; i++) out.push(nondiff.includes(i) ? fixed[k++] : diff[d++]);
  return out;
}

function toTensors(tree: unknown, op: string): [Tensor[], TreeDef] {
  const [leaves, def] = flatten(tree);
  return [leaves.map((l) => asTensor(l, op)), def];
}

// ---------------------------------------------------------------------------------------------
// custom_jvp

/** A flat JVP rule: primals and (instantiated) tangents of the differentiable inputs. */
type FlatJvpRule = (primals: Tensor[], tangents: Tensor[]) => [Tensor[], Tensor[]];

interface CustomJvpParams {
  call: ClosedJaxpr;
  jvp: FlatJvpRule;
  /** Leading inputs that are hoisted tracer constants of `call` (treated as non-differentiable). */
  numConsts: number;
  name: string;
}

export const customJvpCall_p = definePrimitive<CustomJvpParams>({
  name: "custom_jvp_call",
  abstractEval: (_avals, p) => p.call.outAvals,
  impl: (args, p) => runClosed(p.call, args),
  jvp: (primals, tangents, p) => {
    const argTangents = tangents.slice(p.numConsts);
    if (argTangents.every(isZero)) {
      const outs = bind(customJvpCall_p, primals, p);
      return [outs, outs.map((o) => new Zero(o.aval))];
    }
    const [outs, touts] = p.jvp(primals.slice(p.numConsts), argTangents.map(instantiate));
    const want = p.call.outAvals;
    if (outs.length !== want.length || touts.length !== want.length) {
      throw new TraceError(
        `the JVP rule of ${p.name} returned ${outs.length} primal and ${touts.length} tangent leaves; the function has ${want.length} outputs`,
        "custom_jvp",
      );
    }
    outs.forEach((o, i) =>
      checkAval(o.aval, want[i]!, `primal output ${i} of the JVP rule of ${p.name}`, "custom_jvp"),
    );
    touts.forEach((t, i) =>
      checkAval(
        t.aval,
        want[i]!,
        `tangent output ${i} of the JVP rule of ${p.name}`,
        "custom_jvp",
        isFloat(want[i]!.dtype),
      ),
    );
    return [outs, touts];
  },
  batch: (args, dims, p, axisSize) => {
    const moved = moveAllToFront(args, dims, axisSize);
    const call = batchClosed(
      p.call,
      moved,
      moved.map(() => 0),
      axisSize,
    );
    const nOut = p.call.outAvals.length;
    const rule: FlatJvpRule = (primals, tangents) => {
      const k = primals.length;
      const all = vmapFlat(
        (...ys) => {
          const [o, t] = p.jvp(ys.slice(0, k), ys.slice(k));
          return [...o, ...t];
        },
        [...primals, ...tangents],
        [...primals, ...tangents].map(() => 0),
        (n) => Array(n).fill(0),
        axisSize,
      );
      return [all.slice(0, nOut), all.slice(nOut)];
    };
    const outs = bind(customJvpCall_p, moved, { ...p, call, jvp: rule });
    return [outs, outs.map(() => 0)];
  },
  printParams: (p) => ({ call_jaxpr: p.call, jvp_jaxpr_fun: p.name, num_consts: p.numConsts }),
});

export interface CustomJvpOptions {
  /** Arguments that are not differentiated; they are passed first to the JVP rule, as in JAX. */
  nondiffArgnums?: number[];
}

/** A function with a user-defined JVP rule (see {@link customJvp}). */
export interface CustomJvpFunction<F extends (...args: any[]) => any> {
  (...args: Parameters<F>): ReturnType<F>;
  /** Sets the rule `(primals, tangents) => [primalOut, tangentOut]` (nondiff args come first). */
  defJvp(rule: (...args: any[]) => [unknown, unknown]): CustomJvpFunction<F>;
}

/**
 * `jax.custom_jvp`: `f` with a JVP rule of your own; reverse mode transposes the rule's (linear)
 * tangent computation.
 *
 * @example
 * ```ts
 * const log1pexp = customJvp((x: Tensor) => lax.log(lax.add(one, lax.exp(x))));
 * log1pexp.defJvp(([x], [t]) => [log1pexp(x), lax.mul(lax.logistic(x), t)]);
 * ```
 */
export function customJvp<F extends (...args: any[]) => any>(
  f: F,
  opts: CustomJvpOptions = {},
): CustomJvpFunction<F> {
  let userRule: ((...args: any[]) => [unknown, unknown]) | null = null;
  const wrapped = ((...args: unknown[]) => {
    if (userRule === null)
      throw new TraceError(`no JVP rule defined for ${fnName(f)}: call defJvp first`, "custom_jvp");
    const rule = userRule;
    const nondiff = normalizeArgnums(opts.nondiffArgnums ?? [], args.length, "custom_jvp");
    const { diff, fixed } = splitArgs(args, nondiff);
    const [leaves, inTree] = toTensors(diff, "custom_jvp");
    let outTree: TreeDef | null = null;
    const { call, hoisted } = stage(
      (...xs) => {
        const [outs, tree] = toTensors(
          f(...mergeArgs(unflatten(inTree, xs) as unknown[], fixed, nondiff)),
          "custom_jvp",
        );
        outTree = tree;
        return outs;
      },
      leaves.map((l) => l.aval),
    );
    const flatRule: FlatJvpRule = (primals, tangents) => {
      const res = rule(...fixed, unflatten(inTree, primals), unflatten(inTree, tangents));
      if (!Array.isArray(res) || res.length !== 2) {
        throw new TraceError(
          `the JVP rule of ${fnName(f)} must return [primalOut, tangentOut]`,
          "custom_jvp",
        );
      }
      const [outs, pTree] = toTensors(res[0], "custom_jvp");
      const [touts, tTree] = toTensors(res[1], "custom_jvp");
      if (!treedefEqual(pTree, outTree!) || !treedefEqual(tTree, outTree!)) {
        throw new TraceError(
          `the JVP rule of ${fnName(f)} returned primal ${pTree} and tangent ${tTree}; the function returns ${outTree}`,
          "custom_jvp",
        );
      }
      return [outs, touts];
    };
    const outs = bind(customJvpCall_p, [...hoisted, ...leaves], {
      call,
      jvp: flatRule,
      numConsts: hoisted.length,
      name: fnName(f),
    });
    return unflatten(outTree!, outs);
  }) as unknown as CustomJvpFunction<F>;
  wrapped.defJvp = (rule) => {
    userRule = rule;
    return wrapped;
  };
  return wrapped;
}

// ---------------------------------------------------------------------------------------------
// custom_vjp

type FlatFwd = (args: Tensor[]) => [Tensor[], Tensor[]];
type FlatBwd = (res: Tensor[], cts: Tensor[]) => Tensor[];

interface CustomVjpParams {
  call: ClosedJaxpr;
  fwd: FlatFwd;
  bwd: FlatBwd;
  numConsts: number;
  name: string;
}

interface CustomLinParams {
  bwd: FlatBwd;
  numRes: number;
  /** Avals of the output tangents (the function's outputs). */
  outAvals: ShapedArray[];
  /** Avals of the input tangents (the differentiable arguments). */
  inAvals: ShapedArray[];
  name: string;
}

function noForwardMode(): never {
  throw new TraceError("can't apply forward-mode autodiff (jvp) to a custom_vjp function", "custom_vjp");
}

/** The tangent map of a custom_vjp function: linear in its tangent inputs, known only by its transpose `bwd`. */
export const customLin_p = definePrimitive<CustomLinParams>({
  name: "custom_lin",
  abstractEval: (_avals, p) => p.outAvals,
  impl: noForwardMode,
  jvp: noForwardMode,
  transpose: (cts, args, p) => {
    const res = args.slice(0, p.numRes).map((r) => {
      if (r instanceof UndefPrimal)
        throw new TraceError(
          "a residual of a custom_vjp function is itself being differentiated (internal error)",
          "custom_vjp",
        );
      return r;
    });
    const grads = p.bwd(
      res,
      cts.map((c) => instantiate(c)),
    );
    if (grads.length !== p.inAvals.length) {
      throw new TraceError(
        `the bwd rule of ${p.name} returned ${grads.length} cotangent leaves; expected ${p.inAvals.length}, one per input leaf`,
        "custom_vjp",
      );
    }
    grads.forEach((g, i) =>
      checkAval(g.aval, p.inAvals[i]!, `cotangent ${i} returned by the bwd rule of ${p.name}`, "custom_vjp"),
    );
    return [...res.map(() => null), ...grads];
  },
  batch: (args, dims, p, axisSize) => {
    const moved = moveAllToFront(args, dims, axisSize);
    const bwd: FlatBwd = (res, cts) =>
      vmapFlat(
        (...ys) => p.bwd(ys.slice(0, res.length), ys.slice(res.length)),
        [...res, ...cts],
        [...res, ...cts].map(() => 0),
        (n) => Array(n).fill(0),
        axisSize,
      );
    const outs = bind(customLin_p, moved, {
      ...p,
      bwd,
      outAvals: p.outAvals.map((a) => batchedAval(a, axisSize)),
      inAvals: p.inAvals.map((a) => batchedAval(a, axisSize)),
    });
    return [outs, outs.map(() => 0)];
  },
  printParams: (p) => ({ bwd: p.name, num_res: p.numRes }),
});

export const customVjpCall_p = definePrimitive<CustomVjpParams>({
  name: "custom_vjp_call",
  abstractEval: (_avals, p) => p.call.outAvals,
  impl: (args, p) => runClosed(p.call, args),
  jvp: (primals, tangents, p) => {
    const argTangents = tangents.slice(p.numConsts);
    if (argTangents.every(isZero)) {
      const outs = bind(customVjpCall_p, primals, p);
      return [outs, outs.map((o) => new Zero(o.aval))];
    }
    const args = primals.slice(p.numConsts);
    const [outs, res] = p.fwd(args);
    const want = p.call.outAvals;
    if (outs.length !== want.length) {
      throw new TraceError(
        `the fwd rule of ${p.name} returned ${outs.length} output leaves; the function has ${want.length}`,
        "custom_vjp",
      );
    }
    outs.forEach((o, i) =>
      checkAval(o.aval, want[i]!, `output ${i} of the fwd rule of ${p.name}`, "custom_vjp"),
    );
    const touts = bind(customLin_p, [...res, ...argTangents.map(instantiate)], {
      bwd: p.bwd,
      numRes: res.length,
      outAvals: want,
      inAvals: args.map((a) => a.aval),
      name: p.name,
    });
    return [outs, touts];
  },
  batch: (args, dims, p, axisSize) => {
    const moved = moveAllToFront(args, dims, axisSize);
    const call = batchClosed(
      p.call,
      moved,
      moved.map(() => 0),
      axisSize,
    );
    const nOut = p.call.outAvals.length;
    const fwd: FlatFwd = (xs) => {
      const all = vmapFlat(
        (...ys) => {
          const [o, r] = p.fwd(ys);
          return [...o, ...r];
        },
        xs,
        xs.map(() => 0),
        (n) => Array(n).fill(0),
        axisSize,
      );
      return [all.slice(0, nOut), all.slice(nOut)];
    };
    const bwd: FlatBwd = (res, cts) =>
      vmapFlat(
        (...ys) => p.bwd(ys.slice(0, res.length), ys.slice(res.length)),
        [...res, ...cts],
        [...res, ...cts].map(() => 0),
        (n) => Array(n).fill(0),
        axisSize,
      );
    const outs = bind(customVjpCall_p, moved, { ...p, call, fwd, bwd });
    return [outs, outs.map(() => 0)];
  },
  printParams: (p) => ({ call_jaxpr: p.call, fwd: p.name, bwd: p.name, num_consts: p.numConsts }),
});

export interface CustomVjpOptions {
  /** Arguments that are not differentiated; they are passed first to `bwd`, as in JAX. */
  nondiffArgnums?: number[];
}

/** A function with a user-defined VJP (see {@link customVjp}). */
export interface CustomVjpFunction<F extends (...args: any[]) => any> {
  (...args: Parameters<F>): ReturnType<F>;
  /**
   * Sets `fwd(...args) => [out, residuals]` and `bwd(...nondiffArgs, residuals, ct) => [ct per
   * differentiable argument]`.
   */
  defVjp(
    fwd: (...args: any[]) => [unknown, unknown],
    bwd: (...args: any[]) => unknown[],
  ): CustomVjpFunction<F>;
}

/**
 * `jax.custom_vjp`: `f` with a reverse-mode rule of your own. Forward mode (`jvp`) of it raises, as
 * in JAX. Values `f` closes over are treated as constants.
 *
 * @example
 * ```ts
 * const clip = customVjp((x: Tensor) => x).defVjp((x) => [x, null], (_r, g) => [lax.max(lax.min(g, one), negOne)]);
 * ```
 */
export function customVjp<F extends (...args: any[]) => any>(
  f: F,
  opts: CustomVjpOptions = {},
): CustomVjpFunction<F> {
  let rules: { fwd: (...args: any[]) => [unknown, unknown]; bwd: (...args: any[]) => unknown[] } | null =
    null;
  const wrapped = ((...args: unknown[]) => {
    if (rules === null)
      throw new TraceError(`no VJP rule defined for ${fnName(f)}: call defVjp first`, "custom_vjp");
    const { fwd, bwd } = rules;
    const name = fnName(f);
    const nondiff = normalizeArgnums(opts.nondiffArgnums ?? [], args.length, "custom_vjp");
    const { diff, fixed } = splitArgs(args, nondiff);
    const [leaves, inTree] = toTensors(diff, "custom_vjp");
    let outTree: TreeDef | null = null;
    let resTree: TreeDef | null = null;
    const { call, hoisted } = stage(
      (...xs) => {
        const [outs, tree] = toTensors(
          f(...mergeArgs(unflatten(inTree, xs) as unknown[], fixed, nondiff)),
          "custom_vjp",
        );
        outTree = tree;
        return outs;
      },
      leaves.map((l) => l.aval),
    );
    const flatFwd: FlatFwd = (xs) => {
      const r = fwd(...mergeArgs(unflatten(inTree, xs) as unknown[], fixed, nondiff));
      if (!Array.isArray(r) || r.length !== 2)
        throw new TraceError(`the fwd rule of ${name} must return [out, residuals]`, "custom_vjp");
      const [outs, oTree] = toTensors(r[0], "custom_vjp");
      if (!treedefEqual(oTree, outTree!)) {
        throw new TraceError(
          `the fwd rule of ${name} returned output structure ${oTree}; the function returns ${outTree}`,
          "custom_vjp",
        );
      }
      const [res, rTree] = toTensors(r[1], "custom_vjp");
      resTree = rTree;
      return [outs, res];
    };
    const flatBwd: FlatBwd = (res, cts) => {
      const r = bwd(...fixed, unflatten(resTree!, res), unflatten(outTree!, cts));
      if (!Array.isArray(r) || r.length !== diff.length) {
        throw new TraceError(
          `the bwd rule of ${name} must return an array of ${diff.length} cotangent(s), one per differentiable argument`,
          "custom_vjp",
        );
      }
      const [grads, gTree] = toTensors(r, "custom_vjp");
      if (!treedefEqual(gTree, inTree)) {
        throw new TraceError(
          `the bwd rule of ${name} returned cotangent structure ${gTree}; the arguments have structure ${inTree}`,
          "custom_vjp",
        );
      }
      return grads;
    };
    const outs = bind(customVjpCall_p, [...hoisted, ...leaves], {
      call,
      fwd: flatFwd,
      bwd: flatBwd,
      numConsts: hoisted.length,
      name,
    });
    return unflatten(outTree!, outs);
  }) as unknown as CustomVjpFunction<F>;
  wrapped.defVjp = (fwd, bwd) => {
    rules = { fwd, bwd };
    return wrapped;
  };
  return wrapped;
}

// ---------------------------------------------------------------------------------------------
// checkpoint (remat)

/** Which intermediate values reverse mode may save: none (recompute everything) or all. */
export type CheckpointPolicy = "nothing_saveable" | "everything_saveable";

interface CheckpointParams {
  jaxpr: ClosedJaxpr;
  policy: CheckpointPolicy;
}

function checkpointEqn(
  jaxpr: ClosedJaxpr,
  policy: CheckpointPolicy,
  inputs: JaxprEqn["inputs"],
  outBinders: JaxprEqn["outBinders"],
): JaxprEqn {
  return { prim: checkpoint_p, inputs, params: { jaxpr, policy }, outBinders };
}

/**
 * Partial evaluation without saved intermediates: the known side computes only the known outputs;
 * the unknown side re-runs the whole body from the known inputs (which become the only residuals).
 */
const checkpointPartialEval: PartialEvalRule = (eqn, unknownIns) => {
  const p = eqn.params as CheckpointParams;
  const inner = p.jaxpr.jaxpr;
  const split = partialEvalJaxpr(inner, unknownIns, []);
  const outU = split.outUnknowns;
  const nKnownOuts = outU.filter((u) => !u).length;
  const knownEqns: JaxprEqn[] = [];
  const unknownEqns: JaxprEqn[] = [];
  if (p.policy === "everything_saveable") {
    // The ordinary split, each side still wrapped in a checkpoint.
    const resBinders = split.known.outs.slice(nKnownOuts).map((a) => new Var(a.aval));
    if (nKnownOuts + split.numResiduals > 0) {
      knownEqns.push(
        checkpointEqn(
          new ClosedJaxpr(split.known, p.jaxpr.consts),
          p.policy,
          eqn.inputs.filter((_, i) => !unknownIns[i]),
          [...eqn.outBinders.filter((_, i) => !outU[i]), ...resBinders],
        ),
      );
    }
    if (nKnownOuts < outU.length) {
      unknownEqns.push(
        checkpointEqn(
          new ClosedJaxpr(split.unknown, []),
          p.policy,
          [...resBinders, ...eqn.inputs.filter((_, i) => unknownIns[i])],
          eqn.outBinders.filter((_, i) => outU[i]),
        ),
      );
    }
    return { knownEqns, unknownEqns, outUnknowns: outU };
  }
  if (nKnownOuts > 0) {
    const known = new Jaxpr(
      split.known.constBinders,
      split.known.inBinders,
      split.known.eqns,
      split.known.outs.slice(0, nKnownOuts),
    );
    knownEqns.push(
      checkpointEqn(
        new ClosedJaxpr(known, p.jaxpr.consts),
        p.policy,
        eqn.inputs.filter((_, i) => !unknownIns[i]),
        eqn.outBinders.filter((_, i) => !outU[i]),
      ),
    );
  }
  if (nKnownOuts < outU.length) {
    const remat = new Jaxpr(
      inner.constBinders,
      inner.inBinders,
      inner.eqns,
      inner.outs.filter((_, i) => outU[i]),
    );
    unknownEqns.push(
      checkpointEqn(
        new ClosedJaxpr(remat, p.jaxpr.consts),
        p.policy,
        eqn.inputs,
        eqn.outBinders.filter((_, i) => outU[i]),
      ),
    );
  }
  return { knownEqns, unknownEqns, outUnknowns: outU };
};

export const checkpoint_p = definePrimitive<CheckpointParams>({
  name: "checkpoint",
  abstractEval: (_avals, p) => p.jaxpr.outAvals,
  impl: (args, p) => runClosed(p.jaxpr, args),
  jvp: (primals, tangents, p) => {
    const n = primals.length;
    const { call: jvpJaxpr, hoisted } = stage(
      (...xs) => {
        const [outs, touts] = jvpFlat((...ys) => runClosed(p.jaxpr, ys), xs.slice(0, n), xs.slice(n));
        return [...outs, ...touts.map(instantiate)];
      },
      [...primals, ...primals].map((a) => a.aval),
    );
    if (hoisted.length)
      throw new TraceError("differentiating a checkpoint captured a tracer (internal error)", "checkpoint");
    const all = bind(checkpoint_p, [...primals, ...tangents.map(instantiate)], {
      jaxpr: jvpJaxpr,
      policy: p.policy,
    });
    const nOut = p.jaxpr.outAvals.length;
    return [all.slice(0, nOut), all.slice(nOut)];
  },
  transpose: (cts, args, p) => {
    const grads = backwardPass(p.jaxpr.jaxpr, p.jaxpr.consts, args, cts);
    let k = 0;
    return args.map((a) => (a instanceof UndefPrimal ? grads[k++]! : null));
  },
  batch: (args, dims, p, axisSize) => {
    const jaxpr = batchClosed(p.jaxpr, args, dims, axisSize);
    const outs = bind(checkpoint_p, args, { jaxpr, policy: p.policy });
    return [outs, outs.map(() => 0)];
  },
  printParams: (p) => ({ jaxpr: p.jaxpr, policy: p.policy, prevent_cse: true }),
  extra: { partialEval: checkpointPartialEval },
});

export interface CheckpointOptions {
  /** Default `"nothing_saveable"`: reverse mode recomputes the body instead of storing its intermediates. */
  policy?: CheckpointPolicy;
}

/**
 * `jax.checkpoint` (remat): same values and gradients as `f`, but reverse mode stores only the
 * inputs of `f` and recomputes its intermediates during the backward pass.
 *
 * @example
 * ```ts
 * const g = grad(checkpoint((x: Tensor) => lax.sin(lax.sin(x))))(x);
 * ```
 */
export function checkpoint<F extends (...args: any[]) => any>(f: F, opts: CheckpointOptions = {}): F {
  const policy = opts.policy ?? "nothing_saveable";
  return ((...args: unknown[]) => {
    const [leaves, inTree] = toTensors(args, "checkpoint");
    let outTree: TreeDef | null = null;
    const { call, hoisted } = stage(
      (...xs) => {
        const [outs, tree] = toTensors(f(...(unflatten(inTree, xs) as unknown[])), "checkpoint");
        outTree = tree;
        return outs;
      },
      leaves.map((l) => l.aval),
    );
    const outs = bind(checkpoint_p, [...hoisted, ...leaves], { jaxpr: call, policy });
    return unflatten(outTree!, outs);
  }) as F;
}
