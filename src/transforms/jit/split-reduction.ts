/**
 * Two-stage reductions: a long reduction over few outputs becomes P partial reductions and one
 * combine that carries the epilogue (see `splitLargeReduction`).
 */
import { Var } from "../../core/jaxpr.js";
import type { KernelStep, PlanStep } from "./fusion.js";
import { type KExpr, coalesce, forEachLoad, mapLoads, rowMajorStrides, sizeOfShape } from "./kernel-ir.js";

/** Reductions at least this long over at most this many outputs are split in two stages. */
const SPLIT_MIN_LENGTH = 2 ** 14;
const SPLIT_MAX_OUTPUTS = 16;

/**
 * Splits a long reduction over a small output (a full sum, a norm) into P partial reductions of
 * length C = K/P, then a reduction of the P partials carrying the epilogue (shared/GPUJS.md D2,
 * "Reductions"). This gives GPU backends P-fold parallelism and bounds float32 error growth by
 * (C + P)·ε·Σ|x| instead of K·ε·Σ|x|. P is the largest divisor of K up to 1024, and at least 64.
 */
export function splitLargeReduction(step: KernelStep): PlanStep[] {
  const k = coalesce(step.kernel);
  const red = k.reduction;
  if (red === null || red.shape.length !== 1 || sizeOfShape(k.outShape) > SPLIT_MAX_OUTPUTS) return [step];
  const K = red.shape[0]!;
  if (K < SPLIT_MIN_LENGTH) return [step];
  let P = 0;
  for (let d = Math.min(1024, Math.floor(K / 16)); d >= 64; d--) {
    if (K % d === 0) {
      P = d;
      break;
    }
  }
  if (P === 0) return [step];
  const C = K / P;
  const nOut = k.outShape.length;
  // Stage 1: output [...out, P]; r = p·C + j, so a load's r coefficient c becomes c·C on p and c on j.
  const stage1Body = mapLoads(red.body, (a) => ({
    offset: a.offset,
    out: [...a.out, a.red[0]! * C],
    red: [a.red[0]!],
  }));
  const partialShape = [...k.outShape, P];
  const partial = new Var({ shape: partialShape, dtype: "float32", weakType: false });
  const stage1: KernelStep = {
    kind: "kernel",
    kernel: {
      argSizes: k.argSizes,
      outShape: partialShape,
      outDType: "float32",
      reduction: { op: red.op, shape: [C], body: stage1Body },
      expr: { op: "acc" },
    },
    inputs: step.inputs,
    output: partial,
    fused: step.fused,
  };
  // Stage 2 reads the partials (argument 0) and whatever the epilogue reads, renumbered.
  const used: number[] = [];
  forEachLoad(k.expr, (_a, arg) => {
    if (!used.includes(arg)) used.push(arg);
  });
  const epilogue = renumber(k.expr, (arg) => 1 + used.indexOf(arg));
  const strides = rowMajorStrides(partialShape);
  const partialLoad: KExpr = {
    op: "load",
    arg: 0,
    index: { offset: 0, out: strides.slice(0, nOut), red: [1] },
  };
  const stage2: KernelStep = {
    kind: "kernel",
    kernel: {
      argSizes: [sizeOfShape(partialShape), ...used.map((i) => k.argSizes[i]!)],
      outShape: k.outShape,
      outDType: k.outDType,
      // Partial sums and products combine with the same op; so do partial maxima and minima.
      reduction: { op: red.op, shape: [P], body: partialLoad },
      expr: epilogue,
    },
    inputs: [partial, ...used.map((i) => step.inputs[i]!)],
    output: step.output,
    fused: [red.op === "sum" ? "reduce_sum" : `reduce_${red.op}`],
  };
  return [stage1, stage2];
}

function renumber(e: KExpr, f: (arg: number) => number): KExpr {
  switch (e.op) {
    case "load":
      return { op: "load", arg: f(e.arg), index: { offset: e.index.offset, out: e.index.out, red: [0] } };
    case "unary":
      return { op: "unary", fn: e.fn, x: renumber(e.x, f) };
    case "binary":
      return { op: "binary", fn: e.fn, a: renumber(e.a, f), b: renumber(e.b, f) };
    case "select":
      return { op: "select", c: renumber(e.c, f), t: renumber(e.t, f), f: renumber(e.f, f) };
    default:
      return e;
  }
}
