/**
 * The kernel IR: what one compiled kernel computes, independent of the target. A kernel has an
 * output shape (its index space, one loop variable per axis), optionally one reduction (an
 * accumulator folded over a reduction index space, with an expression as body) and an epilogue
 * expression that may read the accumulator (`acc`). Inputs are flat row-major buffers read at
 * affine indices (offset + Σ coefficient · loop variable), so broadcasts, transposes, slices and
 * reshapes of inputs never move data: they only change the coefficients.
 *
 * Renderers (the TypeScript evaluator, gpu.js source text, later the own WebAssembly backend) read
 * this IR through small tables, in the manner of tinygrad's `code_for_op`.
 */

export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "log1p"
  | "expm1"
  | "sqrt"
  | "rsqrt"
  | "tanh"
  | "logistic"
  | "sin"
  | "cos"
  | "abs"
  | "sign"
  | "floor"
  | "ceil"
  | "not";

export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "max"
  | "min"
  | "pow"
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge"
  | "and"
  | "or";

export type ReduceOp = "sum" | "max" | "min" | "prod";

/** An index: `offset + Σ out[d]·o_d + Σ red[k]·r_k` over the kernel's loop variables. */
export interface Affine {
  readonly offset: number;
  readonly out: readonly number[];
  readonly red: readonly number[];
}

export type KExpr =
  | { readonly op: "load"; readonly arg: number; readonly index: Affine }
  | { readonly op: "const"; readonly value: number }
  | { readonly op: "unary"; readonly fn: UnaryOp; readonly x: KExpr }
  | { readonly op: "binary"; readonly fn: BinaryOp; readonly a: KExpr; readonly b: KExpr }
  | { readonly op: "select"; readonly c: KExpr; readonly t: KExpr; readonly f: KExpr }
  /** The reduction's accumulated value (epilogue only). */
  | { readonly op: "acc" };

export interface Reduction {
  readonly op: ReduceOp;
  readonly shape: readonly number[];
  readonly body: KExpr;
}

/** Values are float32 lanes; a `bool` output stores 0/1 (comparisons yield 0/1). */
export type KernelDType = "float32" | "bool";

export interface Kernel {
  /** Element counts of the input buffers, in argument order. */
  readonly argSizes: readonly number[];
  readonly outShape: readonly number[];
  readonly outDType: KernelDType;
  readonly reduction: Reduction | null;
  readonly expr: KExpr;
}

/** The identity of each reduction, the accumulator's start value. */
export const REDUCE_INIT: Record<ReduceOp, number> = {
  sum: 0,
  max: Number.NEGATIVE_INFINITY,
  min: Number.POSITIVE_INFINITY,
  prod: 1,
};

// ---------------------------------------------------------------------------------------------
// Affine helpers.

export function affineConst(c: number, nOut: number, nRed: number): Affine {
  return { offset: c, out: new Array<number>(nOut).fill(0), red: new Array<number>(nRed).fill(0) };
}

/** The loop variable of output axis `d` (or reduction axis `d` when `red`). */
export function affineVar(d: number, nOut: number, nRed: number, red = false): Affine {
  const a = affineConst(0, nOut, nRed);
  (red ? (a.red as number[]) : (a.out as number[]))[d] = 1;
  return a;
}

/** `Σ terms[i][0] · terms[i][1] + c`. */
export function affineCombine(
  terms: readonly (readonly [Affine, number])[],
  c: number,
  nOut: number,
  nRed: number,
): Affine {
  const out = new Array<number>(nOut).fill(0);
  const red = new Array<number>(nRed).fill(0);
  let offset = c;
  for (const [a, k] of terms) {
    if (k === 0) continue;
    offset += a.offset * k;
    for (let d = 0; d < nOut; d++) out[d]! += a.out[d]! * k;
    for (let d = 0; d < nRed; d++) red[d]! += a.red[d]! * k;
  }
  return { offset, out, red };
}

/** Row-major strides of a shape. */
export function rowMajorStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

export function sizeOfShape(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Traversal, hashing, coalescing.

/** Rebuilds an expression, replacing every load index by `f(index)`. */
export function mapLoads(e: KExpr, f: (a: Affine) => Affine): KExpr {
  switch (e.op) {
    case "load":
      return { op: "load", arg: e.arg, index: f(e.index) };
    case "unary":
      return { op: "unary", fn: e.fn, x: mapLoads(e.x, f) };
    case "binary":
      return { op: "binary", fn: e.fn, a: mapLoads(e.a, f), b: mapLoads(e.b, f) };
    case "select":
      return { op: "select", c: mapLoads(e.c, f), t: mapLoads(e.t, f), f: mapLoads(e.f, f) };
    default:
      return e;
  }
}

export function forEachLoad(e: KExpr, f: (a: Affine, arg: number) => void): void {
  switch (e.op) {
    case "load":
      f(e.index, e.arg);
      return;
    case "unary":
      forEachLoad(e.x, f);
      return;
    case "binary":
      forEachLoad(e.a, f);
      forEachLoad(e.b, f);
      return;
    case "select":
      forEachLoad(e.c, f);
      forEachLoad(e.t, f);
      forEachLoad(e.f, f);
      return;
    default:
  }
}

function kernelLoads(k: Kernel): Affine[] {
  const all: Affine[] = [];
  forEachLoad(k.expr, (a) => all.push(a));
  if (k.reduction) forEachLoad(k.reduction.body, (a) => all.push(a));
  return all;
}

/**
 * Simplifies a kernel's index spaces, as tinygrad and jax-js simplify shapes: drops size-1 axes and
 * merges adjacent axes whose coefficients agree in every load (`c[d] = c[d+1]·n[d+1]`), so most
 * kernels end with rank ≤ 3 (what gpu.js's thread grid offers). The flat output order is unchanged.
 */
export function coalesce(k: Kernel): Kernel {
  const loads = kernelLoads(k);
  const outGroups = groupAxes(
    k.outShape,
    loads.map((a) => a.out),
  );
  const redShape = k.reduction?.shape ?? [];
  const redGroups = groupAxes(
    redShape,
    loads.map((a) => a.red),
  );
  const remap = (a: Affine): Affine => ({
    offset: a.offset,
    out: outGroups.map((g) => a.out[g[g.length - 1]!]!),
    red: redGroups.map((g) => a.red[g[g.length - 1]!]!),
  });
  const shapeOf = (shape: readonly number[], groups: number[][]) =>
    groups.map((g) => g.reduce((p, d) => p * shape[d]!, 1));
  return {
    argSizes: k.argSizes,
    outShape: shapeOf(k.outShape, outGroups),
    outDType: k.outDType,
    reduction: k.reduction
      ? { op: k.reduction.op, shape: shapeOf(redShape, redGroups), body: mapLoads(k.reduction.body, remap) }
      : null,
    expr: mapLoads(k.expr, remap),
  };
}

/** Groups of adjacent axes that can be merged (size-1 axes are dropped unless every axis is). */
function groupAxes(shape: readonly number[], coeffs: readonly (readonly number[])[]): number[][] {
  const groups: number[][] = [];
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = groups[groups.length - 1];
    if (last !== undefined) {
      const p = last[last.length - 1]!;
      // Axis p (outer) and d (inner) merge when every load steps p as d stepped shape[d] times.
      if (coeffs.every((c) => c[p] === c[d]! * shape[d]!)) {
        last.push(d);
        continue;
      }
    }
    groups.push([d]);
  }
  return groups;
}

/** A stable text key of a kernel (FNV-1a of its JSON), used to name and cache compiled kernels. */
export function kernelHash(k: Kernel): string {
  const text = JSON.stringify(k, (_key, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v));
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
  }
  return h1.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0");
}

/** The largest loop bound of a kernel (gpu.js's `loopMaxIterations` guard). */
export function maxLoopBound(k: Kernel): number {
  return Math.max(1, ...(k.reduction?.shape ?? [1]));
}
