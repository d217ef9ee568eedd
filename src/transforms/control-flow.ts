/**
 * Control flow as primitives with sub-jaxprs, as in JAX: `cond` (and `switch`), `scan`, `while`.
 * Each body is staged once into a jaxpr at the operands' avals; the rules (jvp, batch, partial
 * evaluation, transpose) build new bodies by staging the transformed old ones. Constants that a
 * body closes over are hoisted to explicit operands at the entry points, so tracers of outer
 * transforms never hide inside a parameter.
 */
import { DTypeError, fmtShape, ShapeError, TraceError } from "../core/errors.js";
import { ClosedJaxpr, evalJaxpr, Jaxpr, type JaxprEqn, Var } from "../core/jaxpr.js";
import type { BDim } from "../core/primitive.js";
import { definePrimitive, type Primitive, type Tangent, UndefPrimal } from "../core/primitive.js";
import { add, convertElementType, eq, lt, max, min, ne, select } from "../core/primitives/elementwise.js";
import { concatenate, slice } from "../core/primitives/indexing.js";
import { reduceMax } from "../core/primitives/reduce.js";
import { broadcastInDim, moveBatchAxis, reshape } from "../core/primitives/structural.js";
import { instantiate, scalar, zerosOf } from "../core/primitives/util.js";
import { avalToString, type ShapedArray, Tensor } from "../core/tensor.js";
import { bind } from "../core/trace.js";
import { flatten, type TreeDef, unflatten } from "../core/tree.js";
import { jvpFlat } from "./jvp.js";
import { type PartialEvalRule, partialEvalJaxpr } from "./partial-eval.js";
import { makeJaxprFlat } from "./staging.js";
import { backwardPass } from "./transpose.js";
import { asTensor } from "./util.js";
import { vmapFlat } from "./vmap.js";

// ---------------------------------------------------------------------------------------------
// Helpers.

const run =
  (c: ClosedJaxpr) =>
  (...args: Tensor[]): Tensor[] =>
    evalJaxpr(c.jaxpr, c.consts, args);

/** Stages `f` and hoists its constants to leading inputs: returns the const-free jaxpr and the consts. */
function stageHoisted(
  f: (...xs: Tensor[]) => Tensor[],
  avals: readonly ShapedArray[],
): [ClosedJaxpr, Tensor[]] {
  const closed = makeJaxprFlat(f, avals);
  const j = closed.jaxpr;
  return [
    new ClosedJaxpr(new Jaxpr([], [...j.constBinders, ...j.inBinders], j.eqns, j.outs), []),
    [...closed.consts],
  ];
}

function sameAval(a: ShapedArray, b: ShapedArray): boolean {
  return (
    a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i])
  );
}

function leavesOf(tree: unknown, op: string): [Tensor[], TreeDef] {
  const [ls, def] = flatten(tree);
  return [ls.map((l) => asTensor(l, op)), def];
}

const zeroCt = (t: Tangent): Tensor => instantiate(t);

// ---------------------------------------------------------------------------------------------
// cond / switch.

export interface CondParams {
  branches: ClosedJaxpr[];
}

function clampIndex(i: number, n: number): number {
  return Math.min(Math.max(Math.trunc(i), 0), n - 1);
}

export const cond_p: Primitive<CondParams> = definePrimitive<CondParams>({
  name: "cond",
  abstractEval(avals, { branches }) {
    const idx = avals[0]!;
    if (
      idx.shape.length !== 0 ||
      !(idx.dtype === "int32" || idx.dtype === "uint32" || idx.dtype === "bool")
    ) {
      throw new DTypeError(`the index must be an integer or bool scalar, got ${avalToString(idx)}`, "cond");
    }
    return branches[0]!.outAvals;
  },
  impl(args, { branches }) {
    const i = clampIndex(args[0]!.item(), branches.length);
    return run(branches[i]!)(...args.slice(1));
  },
  jvp(primals, tangents, { branches }) {
    const [index, ...ops] = primals;
    const tans = tangents.slice(1).map(zeroCt);
    const n = ops.length;
    const avals = ops.map((o) => o.aval);
    let numOuts = 0;
    const newBranches = branches.map((b) =>
      makeJaxprFlat(
        (...xs) => {
          const [outs, touts] = jvpFlat(run(b), xs.slice(0, n), xs.slice(n));
          numOuts = outs.length;
          return [...outs, ...touts.map(instantiate)];
        },
        [...avals, ...avals],
      ),
    );
    const outs = bind(cond_p, [index!, ...ops, ...tans], { branches: newBranches });
    return [outs.slice(0, numOuts), outs.slice(numOuts)];
  },
  batch(args, dims, { branches }, axisSize) {
    const [index, ...ops] = args;
    const opDims = dims.slice(1);
    if (dims[0] !== null) {
      // A batched predicate: every branch runs on the whole batch and `select` picks per example.
      const idx = moveBatchAxis(index!, dims[0]!, 0, axisSize);
      const i32 = convertElementType(idx, "int32");
      const full = (v: number) => broadcastInDim(scalar(v, "int32"), [axisSize], []);
      const clamped = min(max(i32, full(0)), full(branches.length - 1));
      const results = branches.map((b) =>
        vmapFlat(run(b), ops, opDims, () => b.outAvals.map(() => 0), axisSize),
      );
      const outs = results[0]!.map((_, k) => {
        let acc = results[0]![k]!;
        for (let i = 1; i < branches.length; i++) {
          const pick = broadcastInDim(eq(clamped, full(i)), acc.shape, [0]);
          acc = select(pick, results[i]![k]!, acc);
        }
        return acc;
      });
      return [outs, outs.map(() => 0)];
    }
    const avals = ops.map((o) => o.aval);
    const newBranches = branches.map((b) =>
      makeJaxprFlat((...xs) => vmapFlat(run(b), xs, opDims, () => b.outAvals.map(() => 0), axisSize), avals),
    );
    const outs = bind(cond_p, [index!, ...ops], { branches: newBranches });
    return [outs, outs.map(() => 0)];
  },
  transpose(cts, args, { branches }) {
    const [index, ...ops] = args;
    if (!(index instanceof Tensor)) throw new TraceError("the index of cond cannot be linear", "cond");
    const linear = ops.map((o) => !(o instanceof Tensor));
    const res = ops.filter((o): o is Tensor => o instanceof Tensor);
    const ctVals = cts.map(zeroCt);
    const nRes = res.length;
    const newBranches = branches.map((b) =>
      makeJaxprFlat(
        (...xs) => {
          const resIn = xs.slice(0, nRes);
          let r = 0;
          const full = ops.map((o) => (o instanceof Tensor ? resIn[r++]! : new UndefPrimal(o!.aval)));
          return backwardPass(b.jaxpr, b.consts, full, xs.slice(nRes)).map(instantiate);
        },
        [...res.map((x) => x.aval), ...ctVals.map((c) => c.aval)],
      ),
    );
    const outs = bind(cond_p, [index, ...res, ...ctVals], { branches: newBranches });
    let k = 0;
    return [null, ...linear.map((l) => (l ? outs[k++]! : null))];
  },
});

const condPartialEval: PartialEvalRule = (eqn, unknownIns) => {
  const branches = (eqn.params as CondParams).branches;
  if (unknownIns[0])
    return { knownEqns: [], unknownEqns: [eqn], outUnknowns: eqn.outBinders.map(() => true) };
  const opsUnknown = unknownIns.slice(1);
  const first = branches.map((b) => partialEvalJaxpr(b.jaxpr, opsUnknown, []));
  const outUnk = eqn.outBinders.map((_, k) => first.some((p) => p.outUnknowns[k]));
  const pes = branches.map((b) => partialEvalJaxpr(b.jaxpr, opsUnknown, outUnk));
  const resAvals = pes.map((p) =>
    p.known.outs.slice(p.known.outs.length - p.numResiduals).map((a) => a.aval),
  );
  const allRes = resAvals.flat();
  const offsets = resAvals.map((_, i) => resAvals.slice(0, i).reduce((s, r) => s + r.length, 0));
  const numKnownOuts = outUnk.filter((u) => !u).length;
  const ops = eqn.inputs.slice(1);
  const knownInAvals = ops.filter((_, i) => !opsUnknown[i]).map((a) => a.aval);
  const unknownInAvals = ops.filter((_, i) => opsUnknown[i]).map((a) => a.aval);
  // Every known branch outputs the union of residuals, zeros in the other branches' slots.
  const knownBranches = pes.map((p, i) =>
    makeJaxprFlat((...xs) => {
      const outs = evalJaxpr(p.known, branches[i]!.consts, xs);
      const slots = allRes.map((a) => zerosOf(a));
      outs.slice(numKnownOuts).forEach((r, k) => (slots[offsets[i]! + k] = r));
      return [...outs.slice(0, numKnownOuts), ...slots];
    }, knownInAvals),
  );
  const unknownBranches = pes.map((p, i) =>
    makeJaxprFlat(
      (...xs) =>
        evalJaxpr(
          p.unknown,
          [],
          [...xs.slice(offsets[i]!, offsets[i]! + p.numResiduals), ...xs.slice(allRes.length)],
        ),
      [...allRes, ...unknownInAvals],
    ),
  );
  const resVars = allRes.map((a) => new Var(a));
  const knownEqn: JaxprEqn = {
    prim: cond_p,
    inputs: [eqn.inputs[0]!, ...ops.filter((_, i) => !opsUnknown[i])],
    params: { branches: knownBranches },
    outBinders: [...eqn.outBinders.filter((_, k) => !outUnk[k]), ...resVars],
  };
  const unknownEqn: JaxprEqn = {
    prim: cond_p,
    inputs: [eqn.inputs[0]!, ...resVars, ...ops.filter((_, i) => opsUnknown[i])],
    params: { branches: unknownBranches },
    outBinders: eqn.outBinders.filter((_, k) => outUnk[k]),
  };
  return { knownEqns: [knownEqn], unknownEqns: [unknownEqn], outUnknowns: outUnk };
};
(cond_p.extra as Record<string, unknown>).partialEval = condPartialEval;

/**
 * `lax.switch`: applies `branches[clamp(index, 0, n-1)]` to the operands (pytrees). All branches
 * must return the same structure, shapes and dtypes.
 *
 * @example
 * ```ts
 * switchCase(np.array(1, "int32"), [(x) => x, (x) => np.sin(x)], np.array(0.5)); // sin(0.5)
 * ```
 */
export function switchCase(
  index: unknown,
  branches: readonly ((...ops: any[]) => unknown)[],
  ...operands: unknown[]
): any {
  if (branches.length === 0) throw new TraceError("needs at least one branch", "switch");
  let idx = asTensor(index, "switch");
  if (idx.ndim !== 0)
    throw new ShapeError(`the index must be a scalar, got shape ${fmtShape(idx.shape)}`, "switch");
  if (idx.dtype === "bool" || idx.dtype.startsWith("float")) idx = convertElementType(idx, "int32");
  const [ops, inTree] = leavesOf(operands, "switch");
  const avals = ops.map((o) => o.aval);
  const staged = branches.map((br) => {
    let tree: TreeDef | null = null;
    const [closed, consts] = stageHoisted((...xs) => {
      const [outs, t] = leavesOf(br(...(unflatten(inTree, xs) as unknown[])), "switch");
      tree = t;
      return outs;
    }, avals);
    return { closed, consts, tree: tree! };
  });
  const ref = staged[0]!;
  staged.forEach((s, i) => {
    const a = ref.closed.outAvals;
    const b = s.closed.outAvals;
    if (
      s.tree.toString() !== ref.tree.toString() ||
      a.length !== b.length ||
      a.some((x, k) => !sameAval(x, b[k]!))
    ) {
      throw new TraceError(
        `branch ${i} returns ${s.tree} with avals (${b.map(avalToString).join(", ")}) but branch 0 returns ${ref.tree} with avals (${a.map(avalToString).join(", ")})`,
        "cond",
      );
    }
  });
  // All branches take every branch's hoisted constants, then the operands.
  const allConsts = staged.flatMap((s) => s.consts);
  const offsets = staged.map((_, i) => staged.slice(0, i).reduce((s, r) => s + r.consts.length, 0));
  const joined = staged.map((s, i) => {
    const j = s.closed.jaxpr;
    const nc = s.consts.length;
    const pad = (from: number, to: number) => allConsts.slice(from, to).map((c) => new Var(c.aval));
    const ins = [
      ...pad(0, offsets[i]!),
      ...j.inBinders.slice(0, nc),
      ...pad(offsets[i]! + nc, allConsts.length),
      ...j.inBinders.slice(nc),
    ];
    return new ClosedJaxpr(new Jaxpr([], ins, j.eqns, j.outs), []);
  });
  const outs = bind(cond_p, [idx, ...allConsts, ...ops], { branches: joined });
  return unflatten(ref.tree, outs);
}

/**
 * `lax.cond`: `pred ? trueFun(...operands) : falseFun(...operands)`, staged as one primitive so it
 * can be differentiated, batched and printed.
 *
 * @example
 * ```ts
 * cond(np.array(true), (x) => np.sin(x), (x) => np.cos(x), np.array(0)); // 0
 * ```
 */
export function cond(
  pred: unknown,
  trueFun: (...ops: any[]) => unknown,
  falseFun: (...ops: any[]) => unknown,
  ...operands: unknown[]
): any {
  const p = asTensor(pred, "cond");
  if (p.ndim !== 0)
    throw new ShapeError(`the predicate must be a scalar, got shape ${fmtShape(p.shape)}`, "cond");
  // Any nonzero predicate selects the true branch, as in JAX.
  const asBool = p.dtype === "bool" ? p : ne(p, scalar(0, p.dtype));
  return switchCase(convertElementType(asBool, "int32"), [falseFun, trueFun], ...operands);
}

// ---------------------------------------------------------------------------------------------
// scan.

export interface ScanParams {
  /** Inputs: consts, carry, xs slices. Outputs: carry, ys slices. */
  jaxpr: ClosedJaxpr;
  numConsts: number;
  numCarry: number;
  length: number;
  reverse: boolean;
}

function sliceAt(x: Tensor, t: number): Tensor {
  const start = x.shape.map((_, i) => (i === 0 ? t : 0));
  const limit = x.shape.map((d, i) => (i === 0 ? t + 1 : d));
  return reshape(slice(x, start, limit), x.shape.slice(1));
}

function stack(xs: Tensor[], aval: ShapedArray, length: number): Tensor {
  if (length === 0) return zerosOf({ shape: [0, ...aval.shape], dtype: aval.dtype, weakType: aval.weakType });
  return concatenate(
    xs.map((x) => reshape(x, [1, ...x.shape])),
    0,
  );
}

function bindScan(args: Tensor[], params: ScanParams): Tensor[] {
  return bind(scan_p, args, params);
}

export const scan_p: Primitive<ScanParams> = definePrimitive<ScanParams>({
  name: "scan",
  abstractEval(avals, { jaxpr, numConsts, numCarry, length }) {
    const outs = jaxpr.outAvals;
    avals.slice(numConsts + numCarry).forEach((a, i) => {
      if (a.shape[0] !== length)
        throw new ShapeError(
          `xs leaf ${i} has leading axis ${fmtShape(a.shape)}, expected length ${length}`,
          "scan",
        );
    });
    return [
      ...outs.slice(0, numCarry),
      ...outs.slice(numCarry).map((a) => ({ ...a, shape: [length, ...a.shape] })),
    ];
  },
  impl(args, { jaxpr, numConsts, numCarry, length, reverse }) {
    const consts = args.slice(0, numConsts);
    let carry = args.slice(numConsts, numConsts + numCarry);
    const xs = args.slice(numConsts + numCarry);
    const yAvals = jaxpr.outAvals.slice(numCarry);
    const ys: Tensor[][] = yAvals.map(() => new Array<Tensor>(length));
    for (let i = 0; i < length; i++) {
      const t = reverse ? length - 1 - i : i;
      const outs = run(jaxpr)(...consts, ...carry, ...xs.map((x) => sliceAt(x, t)));
      carry = outs.slice(0, numCarry);
      outs.slice(numCarry).forEach((y, k) => (ys[k]![t] = y));
    }
    return [...carry, ...ys.map((y, k) => stack(y, yAvals[k]!, length))];
  },
  jvp(primals, tangents, params) {
    const { jaxpr, numConsts: nc, numCarry: nh } = params;
    const tans = tangents.map(zeroCt);
    const split = <T>(a: T[]) => [a.slice(0, nc), a.slice(nc, nc + nh), a.slice(nc + nh)] as const;
    const [c, h, x] = split(primals);
    const [ct, ht, xt] = split(tans);
    const inAvals = jaxpr.inAvals;
    const [ca, ha, xa] = split(inAvals);
    const nx = xa.length;
    const body = makeJaxprFlat(
      (...args) => {
        let o = 0;
        const take = (n: number) => args.slice(o, (o += n));
        const [cc, cct, hh, hht, xx, xxt] = [take(nc), take(nc), take(nh), take(nh), take(nx), take(nx)];
        const [outs, touts] = jvpFlat(run(jaxpr), [...cc, ...hh, ...xx], [...cct, ...hht, ...xxt]);
        const ti = touts.map(instantiate);
        return [...outs.slice(0, nh), ...ti.slice(0, nh), ...outs.slice(nh), ...ti.slice(nh)];
      },
      [...ca, ...ca, ...ha, ...ha, ...xa, ...xa],
    );
    const outs = bindScan([...c, ...ct, ...h, ...ht, ...x, ...xt], {
      ...params,
      jaxpr: body,
      numConsts: 2 * nc,
      numCarry: 2 * nh,
    });
    const ny = outs.length / 2 - nh;
    return [
      [...outs.slice(0, nh), ...outs.slice(2 * nh, 2 * nh + ny)],
      [...outs.slice(nh, 2 * nh), ...outs.slice(2 * nh + ny)],
    ];
  },
  batch(args, dims, params, axisSize) {
    const { jaxpr, numConsts: nc, numCarry: nh } = params;
    // Every carry is batched from the start: simpler than JAX's fixpoint, and equally correct.
    const newArgs = args.map((a, i) => {
      const d = dims[i]!;
      if (i < nc) return d === null ? a : moveBatchAxis(a, d, 0, axisSize);
      if (i < nc + nh) return moveBatchAxis(a, d, 0, axisSize);
      return d === null ? a : moveBatchAxis(a, d, 1, axisSize);
    });
    const bodyDims: BDim[] = args.map((_, i) =>
      i < nc ? (dims[i] === null ? null : 0) : i < nc + nh ? 0 : dims[i] === null ? null : 0,
    );
    const bodyAvals = newArgs.map((a, i) => {
      const av = a.aval;
      return i < nc + nh ? av : { ...av, shape: av.shape.slice(1) };
    });
    const body = makeJaxprFlat(
      (...xs) => vmapFlat(run(jaxpr), xs, bodyDims, () => jaxpr.outAvals.map(() => 0), axisSize),
      bodyAvals,
    );
    const outs = bindScan(newArgs, { ...params, jaxpr: body });
    return [outs, outs.map((_, k) => (k < nh ? 0 : 1))];
  },
  transpose(cts, args, params) {
    const { jaxpr, numConsts: nc, numCarry: nh, length, reverse } = params;
    const consts = args.slice(0, nc);
    const carry = args.slice(nc, nc + nh);
    const xs = args.slice(nc + nh);
    const resC = consts.filter((a): a is Tensor => a instanceof Tensor);
    const linC = consts.filter((a) => !(a instanceof Tensor)).map((a) => a.aval);
    const resX = xs.filter((a): a is Tensor => a instanceof Tensor);

    const carryAvals = jaxpr.inAvals.slice(nc, nc + nh);
    const yAvals = jaxpr.outAvals.slice(nh);
    const resXAvals = resX.map((x) => ({ ...x.aval, shape: x.shape.slice(1) }));
    const body = makeJaxprFlat(
      (...a) => {
        let o = 0;
        const take = (n: number) => a.slice(o, (o += n));
        const [rc, acc, cth, rx, cty] = [
          take(resC.length),
          take(linC.length),
          take(nh),
          take(resX.length),
          take(yAvals.length),
        ];
        let i = 0;
        let j = 0;
        const full = [
          ...consts.map((c) => (c instanceof Tensor ? rc[i++]! : new UndefPrimal(c.aval))),
          ...carryAvals.map((av) => new UndefPrimal(av)),
          ...xs.map((x) =>
            x instanceof Tensor ? rx[j++]! : new UndefPrimal({ ...x.aval, shape: x.aval.shape.slice(1) }),
          ),
        ];
        const got = backwardPass(jaxpr.jaxpr, jaxpr.consts, full, [...cth, ...cty]).map(instantiate);
        const ctC = got.slice(0, linC.length);
        return [
          ...acc.map((x, k) => add(x, ctC[k]!)),
          ...got.slice(linC.length, linC.length + nh),
          ...got.slice(linC.length + nh),
        ];
      },
      [...resC.map((c) => c.aval), ...linC, ...carryAvals, ...resXAvals, ...yAvals],
    );
    const ctCarry = cts.slice(0, nh).map(zeroCt);
    const ctYs = cts.slice(nh).map(zeroCt);
    const outs = bindScan([...resC, ...linC.map((a) => zerosOf(a)), ...ctCarry, ...resX, ...ctYs], {
      jaxpr: body,
      numConsts: resC.length,
      numCarry: linC.length + nh,
      length,
      reverse: !reverse,
    });
    const ctLinC = outs.slice(0, linC.length);
    const ctInit = outs.slice(linC.length, linC.length + nh);
    const ctLinX = outs.slice(linC.length + nh);
    let a = 0;
    let b = 0;
    return [
      ...consts.map((c) => (c instanceof Tensor ? null : ctLinC[a++]!)),
      ...carry.map((c, k) => (c instanceof Tensor ? null : ctInit[k]!)),
      ...xs.map((x) => (x instanceof Tensor ? null : ctLinX[b++]!)),
    ];
  },
});

const scanPartialEval: PartialEvalRule = (eqn, unknownIns) => {
  const params = eqn.params as ScanParams;
  const { jaxpr, numConsts: nc, numCarry: nh, length } = params;
  const constUnk = unknownIns.slice(0, nc);
  const carryUnk = unknownIns.slice(nc, nc + nh);
  const xsUnk = unknownIns.slice(nc + nh);
  const ny = jaxpr.outAvals.length - nh;
  // Fixpoint: a carry is unknown if its init is, or if the body makes it so.
  let pe = partialEvalJaxpr(
    jaxpr.jaxpr,
    [...constUnk, ...carryUnk, ...xsUnk],
    [...carryUnk, ...Array(ny).fill(false)],
  );
  for (;;) {
    const next = carryUnk.map((u, k) => u || pe.outUnknowns[k]!);
    if (next.every((u, k) => u === carryUnk[k])) break;
    next.forEach((u, k) => (carryUnk[k] = u));
    pe = partialEvalJaxpr(
      jaxpr.jaxpr,
      [...constUnk, ...carryUnk, ...xsUnk],
      [...carryUnk, ...Array(ny).fill(false)],
    );
  }
  const outUnk = pe.outUnknowns;
  const nRes = pe.numResiduals;
  const resAvals = pe.known.outs.slice(pe.known.outs.length - nRes).map((a) => a.aval);
  const resVars = resAvals.map((a) => new Var({ ...a, shape: [length, ...a.shape] }));
  const ins = eqn.inputs;
  const knownConsts = ins.slice(0, nc).filter((_, i) => !constUnk[i]);
  const knownCarry = ins.slice(nc, nc + nh).filter((_, i) => !carryUnk[i]);
  const knownXs = ins.slice(nc + nh).filter((_, i) => !xsUnk[i]);
  const knownEqn: JaxprEqn = {
    prim: scan_p,
    inputs: [...knownConsts, ...knownCarry, ...knownXs],
    params: {
      ...params,
      jaxpr: new ClosedJaxpr(pe.known, jaxpr.consts),
      numConsts: knownConsts.length,
      numCarry: knownCarry.length,
    },
    outBinders: [...eqn.outBinders.filter((_, k) => !outUnk[k]), ...resVars],
  };
  // The unknown body reads residuals as per-iteration xs: reorder its binders to consts, carry, xs.
  const u = pe.unknown;
  const uRes = u.inBinders.slice(0, nRes);
  const uRest = u.inBinders.slice(nRes);
  const nuc = constUnk.filter((x) => x).length;
  const nuh = carryUnk.filter((x) => x).length;
  const unknownBody = new Jaxpr(
    [],
    [...uRest.slice(0, nuc), ...uRest.slice(nuc, nuc + nuh), ...uRes, ...uRest.slice(nuc + nuh)],
    u.eqns,
    u.outs,
  );
  const unknownEqn: JaxprEqn = {
    prim: scan_p,
    inputs: [
      ...ins.slice(0, nc).filter((_, i) => constUnk[i]),
      ...ins.slice(nc, nc + nh).filter((_, i) => carryUnk[i]),
      ...resVars,
      ...ins.slice(nc + nh).filter((_, i) => xsUnk[i]),
    ],
    params: { ...params, jaxpr: new ClosedJaxpr(unknownBody, []), numConsts: nuc, numCarry: nuh },
    outBinders: eqn.outBinders.filter((_, k) => outUnk[k]),
  };
  return { knownEqns: [knownEqn], unknownEqns: [unknownEqn], outUnknowns: outUnk };
};
(scan_p.extra as Record<string, unknown>).partialEval = scanPartialEval;

export interface ScanOptions {
  /** The number of iterations; required when `xs` has no leaves. */
  length?: number;
  /** Iterate from the last slice to the first (ys are still stored at their own index). */
  reverse?: boolean;
}

/**
 * `lax.scan`: `f(carry, x) -> [carry, y]` over the leading axis of `xs` (pytrees); returns
 * `[finalCarry, stackedYs]`.
 *
 * @example
 * ```ts
 * scan((c, x) => [c.add(x), c.add(x)], np.array(0), np.arange(4)); // [6, [0, 1, 3, 6]]
 * ```
 */
export function scan(
  f: (carry: any, x: any) => [unknown, unknown],
  init: unknown,
  xs?: unknown,
  opts: ScanOptions = {},
): [any, any] {
  const [carry, carryTree] = leavesOf(init, "scan");
  const [xsLeaves, xsTree] = leavesOf(xs ?? null, "scan");
  const lengths = new Set(
    xsLeaves.map((x) => {
      if (x.ndim === 0)
        throw new ShapeError("xs leaves need a leading axis to scan over, got a scalar", "scan");
      return x.shape[0]!;
    }),
  );
  if (opts.length !== undefined) lengths.add(opts.length);
  if (lengths.size === 0) throw new TraceError("length is required when xs has no leaves", "scan");
  if (lengths.size > 1)
    throw new ShapeError(
      `inconsistent lengths: leading axes ${[...lengths].join(", ")} (xs and length)`,
      "scan",
    );
  const length = [...lengths][0]!;
  const carryAvals = carry.map((c) => c.aval);
  const xAvals = xsLeaves.map((x) => ({ ...x.aval, shape: x.shape.slice(1) }));
  let yTree: TreeDef | null = null;
  let outCarryTree: TreeDef | null = null;
  const [closed, consts] = stageHoisted(
    (...a) => {
      const c = unflatten(carryTree, a.slice(0, carry.length));
      const x = unflatten(xsTree, a.slice(carry.length));
      const out = f(c, x);
      if (!Array.isArray(out) || out.length !== 2)
        throw new TraceError("the body must return [carry, y]", "scan");
      const [newCarry, ct] = leavesOf(out[0], "scan");
      const [ys, yt] = leavesOf(out[1], "scan");
      outCarryTree = ct;
      yTree = yt;
      return [...newCarry, ...ys];
    },
    [...carryAvals, ...xAvals],
  );
  const outAvals = closed.outAvals.slice(0, carry.length);
  if (
    outCarryTree!.toString() !== carryTree.toString() ||
    outAvals.some((a, i) => !sameAval(a, carryAvals[i]!))
  ) {
    throw new TraceError(
      `the body's carry output ${outCarryTree} (${closed.outAvals.slice(0, carry.length).map(avalToString).join(", ")}) must match the carry input ${carryTree} (${carryAvals.map(avalToString).join(", ")})`,
      "scan",
    );
  }
  const outs = bindScan([...consts, ...carry, ...xsLeaves], {
    jaxpr: closed,
    numConsts: consts.length,
    numCarry: carry.length,
    length,
    reverse: !!opts.reverse,
  });
  return [unflatten(carryTree, outs.slice(0, carry.length)), unflatten(yTree!, outs.slice(carry.length))];
}

// ---------------------------------------------------------------------------------------------
// while.

export interface WhileParams {
  /** Inputs: its consts, then the carry; output: a bool scalar. */
  cond: ClosedJaxpr;
  /** Inputs: its consts, then the carry; outputs: the new carry. */
  body: ClosedJaxpr;
  condNConsts: number;
  bodyNConsts: number;
}

const forwardOnly = () =>
  new TraceError(
    "whileLoop is forward-differentiable only (jvp); for reverse mode use foriLoop or scan with a static trip count",
    "while",
  );

export const while_p: Primitive<WhileParams> = definePrimitive<WhileParams>({
  name: "while",
  abstractEval(avals, { body, condNConsts, bodyNConsts }) {
    return avals
      .slice(condNConsts + bodyNConsts)
      .map((a, i) => ({ ...a, weakType: body.outAvals[i]!.weakType && a.weakType }));
  },
  impl(args, { cond: c, body, condNConsts: cn, bodyNConsts: bn }) {
    const cc = args.slice(0, cn);
    const bc = args.slice(cn, cn + bn);
    let carry = args.slice(cn + bn);
    while (run(c)(...cc, ...carry)[0]!.item()) carry = run(body)(...bc, ...carry);
    return carry;
  },
  jvp(primals, tangents, params) {
    const { cond: c, body, condNConsts: cn, bodyNConsts: bn } = params;
    const tans = tangents.map(zeroCt);
    const nh = primals.length - cn - bn;
    const cc = primals.slice(0, cn);
    const bc = primals.slice(cn, cn + bn);
    const bct = tans.slice(cn, cn + bn);
    const h = primals.slice(cn + bn);
    const ht = tans.slice(cn + bn);
    const hAvals = h.map((x) => x.aval);
    const newCond = makeJaxprFlat(
      (...a) => run(c)(...a.slice(0, cn), ...a.slice(cn, cn + nh)),
      [...cc.map((x) => x.aval), ...hAvals, ...hAvals],
    );
    const newBody = makeJaxprFlat(
      (...a) => {
        const [outs, touts] = jvpFlat(
          run(body),
          [...a.slice(0, bn), ...a.slice(2 * bn, 2 * bn + nh)],
          [...a.slice(bn, 2 * bn), ...a.slice(2 * bn + nh)],
        );
        return [...outs, ...touts.map(instantiate)];
      },
      [...bc.map((x) => x.aval), ...bc.map((x) => x.aval), ...hAvals, ...hAvals],
    );
    const outs = bind(while_p, [...cc, ...bc, ...bct, ...h, ...ht], {
      cond: newCond,
      body: newBody,
      condNConsts: cn,
      bodyNConsts: 2 * bn,
    });
    return [outs.slice(0, nh), outs.slice(nh)];
  },
  batch(args, dims, { cond: c, body, condNConsts: cn, bodyNConsts: bn }, axisSize) {
    // Every carry is batched; the loop runs while any example's predicate holds, and examples
    // whose predicate is false keep their carry (a select), as JAX does for a batched predicate.
    const newArgs = args.map((a, i) => (i < cn + bn ? a : moveBatchAxis(a, dims[i]!, 0, axisSize)));
    const newDims: BDim[] = args.map((_, i) => (i < cn + bn ? dims[i]! : 0));
    const cc = newArgs.slice(0, cn);
    const bc = newArgs.slice(cn, cn + bn);
    const h = newArgs.slice(cn + bn);
    const ccD = newDims.slice(0, cn);
    const bcD = newDims.slice(cn, cn + bn);
    const hD = newDims.slice(cn + bn);
    const predB = (ccv: Tensor[], hv: Tensor[]) =>
      vmapFlat(run(c), [...ccv, ...hv], [...ccD, ...hD], [0], axisSize)[0]!;
    const allAvals = (xs: Tensor[]) => xs.map((x) => x.aval);
    const newCond = makeJaxprFlat(
      (...a) => [
        convertElementType(
          reduceMax(convertElementType(predB(a.slice(0, cn), a.slice(cn)), "int32"), [0]),
          "bool",
        ),
      ],
      [...allAvals(cc), ...allAvals(h)],
    );
    const newBody = makeJaxprFlat(
      (...a) => {
        const ccv = a.slice(0, cn);
        const bcv = a.slice(cn, cn + bn);
        const hv = a.slice(cn + bn);
        const p = predB(ccv, hv);
        const next = vmapFlat(run(body), [...bcv, ...hv], [...bcD, ...hD], () => hv.map(() => 0), axisSize);
        return next.map((n, k) => select(broadcastInDim(p, n.shape, [0]), n, hv[k]!));
      },
      [...allAvals(cc), ...allAvals(bc), ...allAvals(h)],
    );
    const outs = bind(while_p, [...cc, ...cc, ...bc, ...h], {
      cond: newCond,
      body: newBody,
      condNConsts: cn,
      bodyNConsts: cn + bn,
    });
    return [outs, outs.map(() => 0)];
  },
  transpose() {
    throw forwardOnly();
  },
});

(while_p.extra as Record<string, unknown>).partialEval = (() => {
  throw forwardOnly();
}) as PartialEvalRule;

/**
 * `lax.while_loop`: `while (condFun(carry)) carry = bodyFun(carry)`; forward-differentiable only.
 *
 * @example
 * ```ts
 * whileLoop((x) => np.less(x, 10), (x) => x.mul(2), np.array(1)); // 16
 * ```
 */
export function whileLoop(
  condFun: (carry: any) => unknown,
  bodyFun: (carry: any) => unknown,
  init: unknown,
): any {
  const [carry, tree] = leavesOf(init, "whileLoop");
  const avals = carry.map((c) => c.aval);
  const [condJ, condConsts] = stageHoisted((...xs) => {
    const [p] = leavesOf(condFun(unflatten(tree, xs)), "whileLoop");
    if (p.length !== 1 || p[0]!.ndim !== 0 || p[0]!.dtype !== "bool") {
      throw new TraceError(
        `condFun must return a bool scalar, got ${p.map((x) => avalToString(x.aval)).join(", ")}`,
        "whileLoop",
      );
    }
    return p;
  }, avals);
  let outTree: TreeDef | null = null;
  const [bodyJ, bodyConsts] = stageHoisted((...xs) => {
    const [outs, t] = leavesOf(bodyFun(unflatten(tree, xs)), "whileLoop");
    outTree = t;
    return outs;
  }, avals);
  const outAvals = bodyJ.outAvals;
  if (outTree!.toString() !== tree.toString() || outAvals.some((a, i) => !sameAval(a, avals[i]!))) {
    throw new TraceError(
      `bodyFun returns ${outTree} (${outAvals.map(avalToString).join(", ")}) but the carry is ${tree} (${avals.map(avalToString).join(", ")})`,
      "whileLoop",
    );
  }
  const outs = bind(while_p, [...condConsts, ...bodyConsts, ...carry], {
    cond: condJ,
    body: bodyJ,
    condNConsts: condConsts.length,
    bodyNConsts: bodyConsts.length,
  });
  return unflatten(tree, outs);
}

/**
 * `lax.fori_loop`: `for (i = lower; i < upper; i++) carry = body(i, carry)`. With JS-number bounds
 * it is a `scan` (reverse-differentiable); with traced bounds a `whileLoop`.
 *
 * @example
 * ```ts
 * foriLoop(0, 5, (i, acc) => acc.add(i), np.array(0, "int32")); // 10
 * ```
 */
export function foriLoop(
  lower: number | Tensor,
  upper: number | Tensor,
  body: (i: Tensor, carry: any) => unknown,
  init: unknown,
): any {
  if (typeof lower === "number" && typeof upper === "number") {
    const n = Math.max(0, upper - lower);
    const idx = Tensor._fromBuffer(
      [n],
      "int32",
      Int32Array.from({ length: n }, (_, k) => lower + k),
    );
    return scan((c, i) => [body(i as Tensor, c), null], init, idx)[0];
  }
  const lo = convertElementType(asTensor(lower, "foriLoop"), "int32");
  const hi = convertElementType(asTensor(upper, "foriLoop"), "int32");
  const [, out] = whileLoop(
    ([i]: [Tensor, unknown]) => lt(i, hi),
    ([i, c]: [Tensor, unknown]) => [add(i, scalar(1, "int32")), body(i, c)],
    [lo, init],
  );
  return out;
}
