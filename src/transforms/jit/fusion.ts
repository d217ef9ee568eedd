/**
 * Kernel grouping: turns an optimised jaxpr into a plan of kernel steps and escape steps.
 *
 * A value is *materialised* (gets a buffer) when it is an input, a constant or an output, when an
 * escape reads or writes it, or when several equations read it. Every other lowered value is
 * inlined into the kernel of its consumer, so elementwise and broadcast chains become one
 * expression; views (broadcasts, transposes, slices, reshapes) only change load indices; a reduction
 * or a contraction absorbs its elementwise producers into its loop body and its elementwise
 * consumer into an epilogue when that consumer reads it elementwise. When building a kernel finds a
 * value it cannot inline (a second reduction, a reshape that merges computed axes), it asks for that
 * value to be materialised and grouping starts over; the set only grows, so this ends.
 */
import { type Atom, type Jaxpr, type JaxprEqn, Lit, Var } from "../../core/jaxpr.js";
import {
  type Affine,
  type KExpr,
  type Kernel,
  type KernelDType,
  type Reduction,
  affineCombine,
  affineConst,
  affineVar,
  mapLoads,
  rowMajorStrides,
  sizeOfShape,
} from "./kernel-ir.js";
import { type EqnClass, REDUCE_OPS, classify, lowerElementwise } from "./lowering.js";
import { splitLargeReduction } from "./split-reduction.js";

export interface KernelStep {
  readonly kind: "kernel";
  readonly kernel: Kernel;
  /** Buffers read, in argument order. */
  readonly inputs: readonly Var[];
  readonly output: Var;
  /** Names of the primitives fused into this kernel (for the report). */
  readonly fused: readonly string[];
}

export interface EscapeStep {
  readonly kind: "escape";
  readonly eqn: JaxprEqn;
}

export type PlanStep = KernelStep | EscapeStep;

/** Elementwise primitives of about one instruction: recomputed by each reader rather than stored. */
const CHEAP_ELEMENTWISE = new Set([
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
  "neg",
  "abs",
  "not",
  "and",
  "or",
  "add",
  "sub",
  "mul",
  "div",
  "max",
  "min",
  "select",
  "convert_element_type",
  "stop_gradient",
]);

/** The most ops a recomputed (not materialised) shared value may inline into each reader. */
const MAX_RECOMPUTE = 8;

class NeedMaterialize {
  constructor(readonly v: Var) {}
}

interface Ctx {
  readonly root: Var;
  readonly nOut: number;
  readonly args: Var[];
  readonly argOf: Map<Var, number>;
  reduction: { op: Reduction["op"]; shape: number[]; body: KExpr } | null;
  readonly fused: string[];
}

/** Groups the equations of `jaxpr` into kernels and escapes, in a valid execution order. */
export function groupKernels(jaxpr: Jaxpr): PlanStep[] {
  const defs = new Map<Var, JaxprEqn>();
  const classes = new Map<JaxprEqn, EqnClass>();
  const uses = new Map<Var, number>();
  const use = (a: Atom) => {
    if (a instanceof Var) uses.set(a, (uses.get(a) ?? 0) + 1);
  };
  for (const eqn of jaxpr.eqns) {
    classes.set(eqn, classify(eqn));
    for (const v of eqn.outBinders) defs.set(v, eqn);
    eqn.inputs.forEach(use);
  }
  jaxpr.outs.forEach(use);

  const materialized = new Set<Var>([...jaxpr.constBinders, ...jaxpr.inBinders]);
  for (const a of jaxpr.outs) if (a instanceof Var) materialized.add(a);
  // Decide upfront what building would discover anyway (each discovery restarts grouping):
  // reductions feed an epilogue only through one elementwise consumer of the same shape, and a
  // contraction's operands must be buffers or views of buffers.
  const consumers = new Map<Var, JaxprEqn[]>();
  for (const eqn of jaxpr.eqns)
    for (const a of eqn.inputs) if (a instanceof Var) consumers.set(a, [...(consumers.get(a) ?? []), eqn]);
  const sameShape = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((d, i) => d === b[i]);
  for (const eqn of jaxpr.eqns) {
    const cls = classes.get(eqn)!;
    if (cls === "reduce" || cls === "dot") {
      const v = eqn.outBinders[0]!;
      const cs = consumers.get(v) ?? [];
      const c = cs[0];
      if (
        cs.length !== 1 ||
        classes.get(c!) !== "elementwise" ||
        !sameShape(c!.outBinders[0]!.aval.shape, v.aval.shape)
      )
        materialized.add(v);
    }
    if (cls === "dot") {
      for (let a of eqn.inputs) {
        // Views fold into the contraction's indices: materialise the first computed value below them.
        while (
          a instanceof Var &&
          !materialized.has(a) &&
          defs.has(a) &&
          classes.get(defs.get(a)!) === "view"
        )
          a = defs.get(a)!.inputs[0]!;
        if (a instanceof Var) materialized.add(a);
      }
    }
  }

  // Views of buffers (or of literals) are free to recompute, so they stay inlined even when shared;
  // so is a small expression of cheap elementwise ops that reads at most one buffer of its own size,
  // its other operands literals or small broadcast values (ReLU's mask `x > 0`, read by the forward
  // select and again by the backward one; SAM's `g / max|g|`, read by the norm and by the
  // direction): recomputing it in each reader costs less than a kernel that writes it out plus a
  // read back. `cost` (the ops it inlines) is capped, so shared recomputed values cannot make an
  // inlined expression grow beyond MAX_RECOMPUTE ops per use.
  const recompute = new Map<Var, { cost: number; reads: Set<Var> }>();
  const recomputable = (a: Atom): { cost: number; reads: Set<Var> } | null => {
    if (a instanceof Lit) return { cost: 0, reads: new Set() };
    if (materialized.has(a)) return { cost: 0, reads: new Set([a]) };
    return recompute.get(a) ?? null;
  };
  const size = (a: Atom) => a.aval.shape.reduce((p, d) => p * d, 1);
  for (const eqn of jaxpr.eqns) {
    const cls = classes.get(eqn)!;
    if (cls === "escape") {
      for (const a of eqn.inputs) if (a instanceof Var) materialized.add(a);
      for (const v of eqn.outBinders) materialized.add(v);
      continue;
    }
    const v = eqn.outBinders[0]!;
    const src = eqn.inputs[0]!;
    const srcR = recomputable(src);
    if (cls === "view" && srcR !== null) {
      recompute.set(v, srcR);
      continue;
    }
    if (cls === "elementwise" && CHEAP_ELEMENTWISE.has(eqn.prim.name) && !materialized.has(v)) {
      const ins = eqn.inputs.map(recomputable);
      if (ins.every((r) => r !== null)) {
        const cost = 1 + ins.reduce((c, r) => c + r!.cost, 0);
        const reads = new Set(ins.flatMap((r) => [...r!.reads]));
        if (cost <= MAX_RECOMPUTE && [...reads].filter((b) => size(b) >= size(v)).length <= 1) {
          recompute.set(v, { cost, reads });
          continue;
        }
      }
    }
    if ((uses.get(v) ?? 0) > 1) materialized.add(v);
  }
  for (;;) {
    try {
      return buildSteps(jaxpr, defs, classes, materialized);
    } catch (e) {
      if (!(e instanceof NeedMaterialize)) throw e;
      materialized.add(e.v);
    }
  }
}

function buildSteps(
  jaxpr: Jaxpr,
  defs: Map<Var, JaxprEqn>,
  classes: Map<JaxprEqn, EqnClass>,
  materialized: Set<Var>,
): PlanStep[] {
  const steps: PlanStep[] = [];
  for (const eqn of jaxpr.eqns) {
    if (classes.get(eqn) === "escape") {
      steps.push({ kind: "escape", eqn });
      continue;
    }
    const v = eqn.outBinders[0]!;
    if (materialized.has(v)) steps.push(...splitLargeReduction(buildKernel(v, defs, classes, materialized)));
  }
  return steps;
}

function buildKernel(
  root: Var,
  defs: Map<Var, JaxprEqn>,
  classes: Map<JaxprEqn, EqnClass>,
  materialized: Set<Var>,
): KernelStep {
  const shape = root.aval.shape;
  const nOut = shape.length;
  const ctx: Ctx = { root, nOut, args: [], argOf: new Map(), reduction: null, fused: [] };
  const identity = shape.map((_, d) => affineVar(d, nOut, 0));
  let expr = build(root, identity, "epilogue");
  const nRed = ctx.reduction?.shape.length ?? 0;
  // Loads built before the reduction was absorbed have no reduction coefficients yet: pad them.
  const pad = (a: Affine): Affine =>
    a.red.length === nRed
      ? a
      : { offset: a.offset, out: a.out, red: [...a.red, ...new Array<number>(nRed - a.red.length).fill(0)] };
  expr = mapLoads(expr, pad);
  const reduction = ctx.reduction
    ? { op: ctx.reduction.op, shape: ctx.reduction.shape, body: mapLoads(ctx.reduction.body, pad) }
    : null;
  const kernel: Kernel = {
    argSizes: ctx.args.map((v) => sizeOfShape(v.aval.shape)),
    outShape: shape,
    outDType: root.aval.dtype as KernelDType,
    reduction,
    expr,
  };
  return { kind: "kernel", kernel, inputs: ctx.args, output: root, fused: ctx.fused };

  /**
   * The expression of `v` at index `idx` (one affine per axis of `v`). `mode` says where it lands:
   * the epilogue may absorb one reduction; a reduction body may inline elementwise work; a
   * contraction's operands may only be views of buffers (recomputing them per output is too dear).
   */
  function build(v: Atom, idx: readonly Affine[], mode: "epilogue" | "body" | "operand"): KExpr {
    if (v instanceof Lit) return { op: "const", value: v.value.item() };
    if (v !== root && materialized.has(v)) return load(v, idx);
    const eqn = defs.get(v)!;
    const cls = classes.get(eqn)!;
    const nRed = ctx.reduction?.shape.length ?? 0;
    switch (cls) {
      case "elementwise": {
        if (mode === "operand") throw new NeedMaterialize(v);
        ctx.fused.push(eqn.prim.name);
        return lowerElementwise(
          eqn,
          eqn.inputs.map((a) => build(a, idx, mode)),
        );
      }
      case "view":
        return buildView(eqn, idx, mode, nRed);
      case "reduce":
      case "dot": {
        if (mode !== "epilogue" || ctx.reduction !== null || !isIdentity(v, idx))
          throw new NeedMaterialize(v);
        ctx.fused.push(eqn.prim.name);
        absorbReduction(eqn, cls, idx);
        return { op: "acc" };
      }
      default:
        throw new NeedMaterialize(v);
    }
  }

  function isIdentity(v: Var, idx: readonly Affine[]): boolean {
    if (v.aval.shape.length !== nOut || v.aval.shape.some((d, i) => d !== shape[i])) return false;
    return idx.every(
      (a, d) =>
        a.offset === 0 && a.out.every((c, e) => c === (e === d ? 1 : 0)) && a.red.every((c) => c === 0),
    );
  }

  function absorbReduction(eqn: JaxprEqn, cls: "reduce" | "dot", idx: readonly Affine[]): void {
    if (cls === "reduce") {
      const x = eqn.inputs[0]!;
      const axes = eqn.params.axes as readonly number[];
      const redShape = axes.map((a) => x.aval.shape[a]!);
      const nRed = axes.length;
      ctx.reduction = { op: REDUCE_OPS[eqn.prim.name]!, shape: redShape, body: { op: "const", value: 0 } };
      const widen = (a: Affine) => ({ offset: a.offset, out: a.out, red: new Array<number>(nRed).fill(0) });
      let k = 0;
      const xIdx = x.aval.shape.map((_, d) => {
        const j = axes.indexOf(d);
        return j >= 0 ? affineVar(j, nOut, nRed, true) : widen(idx[k++]!);
      });
      ctx.reduction.body = build(x, xIdx, "body");
      return;
    }
    const [lhs, rhs] = eqn.inputs as [Atom, Atom];
    const dn = eqn.params.dimensionNumbers as {
      contracting: readonly [readonly number[], readonly number[]];
      batch: readonly [readonly number[], readonly number[]];
    };
    const [lc, rc] = dn.contracting;
    const [lb, rb] = dn.batch;
    const nRed = lc.length;
    const redShape = lc.map((a) => lhs.aval.shape[a]!);
    ctx.reduction = { op: "sum", shape: redShape, body: { op: "const", value: 0 } };
    const widen = (a: Affine) => ({ offset: a.offset, out: a.out, red: new Array<number>(nRed).fill(0) });
    const lFree = lhs.aval.shape.map((_, d) => d).filter((d) => !lc.includes(d) && !lb.includes(d));
    const rFree = rhs.aval.shape.map((_, d) => d).filter((d) => !rc.includes(d) && !rb.includes(d));
    const side = (x: Atom, c: readonly number[], b: readonly number[], free: number[], freeStart: number) =>
      x.aval.shape.map((_, d) => {
        const ci = c.indexOf(d);
        if (ci >= 0) return affineVar(ci, nOut, nRed, true);
        const bi = b.indexOf(d);
        if (bi >= 0) return widen(idx[bi]!);
        return widen(idx[freeStart + free.indexOf(d)]!);
      });
    const lIdx = side(lhs, lc, lb, lFree, lb.length);
    const rIdx = side(rhs, rc, rb, rFree, lb.length + lFree.length);
    ctx.reduction.body = {
      op: "binary",
      fn: "mul",
      a: build(lhs, lIdx, "operand"),
      b: build(rhs, rIdx, "operand"),
    };
  }

  function buildView(
    eqn: JaxprEqn,
    idx: readonly Affine[],
    mode: "epilogue" | "body" | "operand",
    nRed: number,
  ): KExpr {
    const x = eqn.inputs[0]!;
    const xShape = x.aval.shape;
    const p = eqn.params;
    const zero = () => affineConst(0, nOut, idx[0]?.red.length ?? nRed);
    switch (eqn.prim.name) {
      case "broadcast_in_dim": {
        const bd = p.broadcastDimensions as readonly number[];
        return build(
          x,
          xShape.map((s, i) => (s === 1 ? zero() : idx[bd[i]!]!)),
          mode,
        );
      }
      case "transpose": {
        const perm = p.permutation as readonly number[];
        const xIdx = new Array<Affine>(xShape.length);
        perm.forEach((src, i) => {
          xIdx[src] = idx[i]!;
        });
        return build(x, xIdx, mode);
      }
      case "squeeze": {
        const dims = p.dimensions as readonly number[];
        let k = 0;
        return build(
          x,
          xShape.map((_, d) => (dims.includes(d) ? zero() : idx[k++]!)),
          mode,
        );
      }
      case "slice": {
        const start = p.startIndices as readonly number[];
        const strides = (p.strides as readonly number[] | null) ?? xShape.map(() => 1);
        return build(
          x,
          xShape.map((_, d) => affineCombine([[idx[d]!, strides[d]!]], start[d]!, nOut, idx[d]!.red.length)),
          mode,
        );
      }
      case "reshape": {
        const outShape = eqn.outBinders[0]!.aval.shape;
        if (x instanceof Var && materialized.has(x)) {
          // A buffer is contiguous: read it at the row-major flat index of the output position.
          const strides = rowMajorStrides(outShape);
          return loadFlat(
            x,
            affineCombine(
              idx.map((a, d) => [a, strides[d]!] as const),
              0,
              nOut,
              idx[0]?.red.length ?? nRed,
            ),
          );
        }
        const xIdx = reshapeIndex(xShape, outShape, idx, nOut, idx[0]?.red.length ?? nRed);
        if (xIdx === null) throw new NeedMaterialize(x as Var);
        return build(x, xIdx, mode);
      }
      default:
        throw new Error(`jit: no view lowering for ${eqn.prim.name}`);
    }
  }

  function argIndex(v: Var): number {
    let i = ctx.argOf.get(v);
    if (i === undefined) {
      i = ctx.args.length;
      ctx.args.push(v);
      ctx.argOf.set(v, i);
    }
    return i;
  }

  function load(v: Var, idx: readonly Affine[]): KExpr {
    const strides = rowMajorStrides(v.aval.shape);
    const nr = idx[0]?.red.length ?? ctx.reduction?.shape.length ?? 0;
    return loadFlat(
      v,
      affineCombine(
        idx.map((a, d) => [a, strides[d]!] as const),
        0,
        nOut,
        nr,
      ),
    );
  }

  function loadFlat(v: Var, index: Affine): KExpr {
    return { op: "load", arg: argIndex(v), index };
  }
}

/**
 * The input index of a reshape as affines of the output index, when one exists: each group of axes
 * with equal products must have a single non-trivial input axis (a split). Merging computed axes
 * needs a division, so it returns null and the input is materialised instead.
 */
function reshapeIndex(
  inShape: readonly number[],
  outShape: readonly number[],
  idx: readonly Affine[],
  nOut: number,
  nRed: number,
): Affine[] | null {
  const res: Affine[] = inShape.map(() => affineConst(0, nOut, nRed));
  if (inShape.includes(0) || outShape.includes(0)) return res;
  const ins = inShape.map((s, d) => [s, d] as const).filter(([s]) => s !== 1);
  const outs = outShape.map((s, d) => [s, d] as const).filter(([s]) => s !== 1);
  let i = 0;
  let j = 0;
  while (i < ins.length) {
    const gi = [ins[i++]!];
    const gj = [outs[j++]!];
    let pi = gi[0]![0];
    let pj = gj[0]![0];
    while (pi !== pj) {
      if (pi < pj) {
        const next = ins[i++]!;
        gi.push(next);
        pi *= next[0];
      } else {
        const next = outs[j++]!;
        gj.push(next);
        pj *= next[0];
      }
    }
    if (gi.length !== 1) return null;
    const strides = rowMajorStrides(gj.map(([s]) => s));
    res[gi[0]![1]] = affineCombine(
      gj.map(([, d], k) => [idx[d]!, strides[k]!] as const),
      0,
      nOut,
      nRed,
    );
  }
  return res;
}
