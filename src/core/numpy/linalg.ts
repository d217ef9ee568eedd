/** Products and contractions (`matmul`, `dot`, `tensordot`, `einsum`) and `linalg.norm`. */
import { ConfigError, fmtShape, ShapeError } from "../errors.js";
import { dotGeneral } from "../primitives/contract.js";
import * as lax from "../primitives/elementwise.js";
import { reduceSum } from "../primitives/reduce.js";
import * as structural from "../primitives/structural.js";
import { broadcastShapes, normalizeAxis } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { type ArrayLike, eye } from "./creation.js";
import { abs, broadcastToShape, promoteOnly, toFloat } from "./elementwise.js";
import { max, min, sum } from "./reductions.js";

/**
 * Matrix product with NumPy's rules: leading (batch) axes broadcast; a 1-D first operand gets a
 * leading 1 and a 1-D second operand a trailing 1, removed again from the result.
 *
 * @example
 * ```ts
 * np.matmul(np.ones([5, 2, 3]), np.ones([3, 4])).shape; // [5, 2, 4]
 * ```
 */
export function matmul(x: ArrayLike, y: ArrayLike): Tensor {
  let [a, b] = promoteOnly("matmul", [x, y]);
  if (a!.ndim === 0 || b!.ndim === 0)
    throw new ShapeError(
      `operands must be at least 1-D, got ${fmtShape(a!.shape)} and ${fmtShape(b!.shape)}`,
      "matmul",
    );
  const aVec = a!.ndim === 1;
  const bVec = b!.ndim === 1;
  if (aVec) a = structural.reshape(a!, [1, a!.shape[0]!]);
  if (bVec) b = structural.reshape(b!, [b!.shape[0]!, 1]);
  const k = a!.shape[a!.ndim - 1]!;
  if (k !== b!.shape[b!.ndim - 2]) {
    throw new ShapeError(
      `contracted dimensions differ: ${fmtShape(a!.shape)} @ ${fmtShape(b!.shape)} (argument 1)`,
      "matmul",
    );
  }
  let out: Tensor;
  if (b!.ndim === 2) {
    // A matrix on the right needs no broadcasting: contract it against a's last axis directly.
    out = dotGeneral(a!, b!, { contracting: [[a!.ndim - 1], [0]], batch: [[], []] });
  } else {
    const batch = broadcastShapes("matmul", a!.shape.slice(0, -2), b!.shape.slice(0, -2));
    const nb = batch.length;
    const aa = broadcastToShape(a!, [...batch, ...a!.shape.slice(-2)]);
    const bb = broadcastToShape(b!, [...batch, ...b!.shape.slice(-2)]);
    const bd = batch.map((_, i) => i);
    out = dotGeneral(aa, bb, { contracting: [[nb + 1], [nb]], batch: [bd, bd] });
  }
  const n = out.ndim;
  if (aVec && bVec) return structural.reshape(out, out.shape.slice(0, n - 2));
  if (aVec) return structural.squeeze(out, [n - 2]);
  if (bVec) return structural.squeeze(out, [n - 1]);
  return out;
}

/**
 * NumPy's `dot`: scalars multiply, vectors give an inner product, otherwise contracts the last axis
 * of `x` with the second-to-last of `y` (the last when `y` is 1-D).
 *
 * @example
 * ```ts
 * np.dot([1, 2, 3], [4, 5, 6]).item(); // 32
 * ```
 */
export function dot(x: ArrayLike, y: ArrayLike): Tensor {
  const [a, b] = promoteOnly("dot", [x, y]);
  if (a!.ndim === 0 || b!.ndim === 0) {
    const shape = a!.ndim === 0 ? b!.shape : a!.shape;
    return lax.mul(broadcastToShape(a!, shape), broadcastToShape(b!, shape));
  }
  const bAxis = b!.ndim === 1 ? 0 : b!.ndim - 2;
  if (a!.shape[a!.ndim - 1] !== b!.shape[bAxis]) {
    throw new ShapeError(
      `shapes ${fmtShape(a!.shape)} and ${fmtShape(b!.shape)} not aligned (argument 1)`,
      "dot",
    );
  }
  return dotGeneral(a!, b!, { contracting: [[a!.ndim - 1], [bAxis]], batch: [[], []] });
}

/** Inner product of the flattened operands. @example `np.vdot(a, b)` */
export function vdot(x: ArrayLike, y: ArrayLike): Tensor {
  const [a, b] = promoteOnly("vdot", [x, y]);
  if (a!.size !== b!.size)
    throw new ShapeError(
      `operands have different sizes ${fmtShape(a!.shape)} and ${fmtShape(b!.shape)}`,
      "vdot",
    );
  return dotGeneral(structural.reshape(a!, [a!.size]), structural.reshape(b!, [b!.size]), {
    contracting: [[0], [0]],
    batch: [[], []],
  });
}

/** Outer product of the flattened operands. @example `np.outer([1, 2], [3, 4]).shape; // [2, 2]` */
export function outer(x: ArrayLike, y: ArrayLike): Tensor {
  const [a, b] = promoteOnly("outer", [x, y]);
  const m = a!.size;
  const n = b!.size;
  const aa = structural.broadcastInDim(structural.reshape(a!, [m]), [m, n], [0]);
  const bb = structural.broadcastInDim(structural.reshape(b!, [n]), [m, n], [1]);
  return lax.mul(aa, bb);
}

/**
 * Contracts the last `axes` axes of `x` with the first `axes` of `y`, or the listed axis pairs.
 *
 * @example
 * ```ts
 * np.tensordot(np.ones([2, 3, 4]), np.ones([3, 4, 5]), 2).shape; // [2, 5]
 * ```
 */
export function tensordot(
  x: ArrayLike,
  y: ArrayLike,
  axes: number | readonly [number | readonly number[], number | readonly number[]] = 2,
): Tensor {
  const [a, b] = promoteOnly("tensordot", [x, y]);
  let ax: number[];
  let bx: number[];
  if (typeof axes === "number") {
    if (!Number.isInteger(axes) || axes < 0 || axes > a!.ndim || axes > b!.ndim)
      throw new ShapeError(
        `axes=${axes} does not fit ${fmtShape(a!.shape)} and ${fmtShape(b!.shape)}`,
        "tensordot",
      );
    ax = Array.from({ length: axes }, (_, i) => a!.ndim - axes + i);
    bx = Array.from({ length: axes }, (_, i) => i);
  } else {
    const list = (v: number | readonly number[]) => (typeof v === "number" ? [v] : [...v]);
    ax = list(axes[0]).map((i) => normalizeAxis(i, a!.ndim, "tensordot"));
    bx = list(axes[1]).map((i) => normalizeAxis(i, b!.ndim, "tensordot"));
    if (ax.length !== bx.length)
      throw new ShapeError(`axes lists ${JSON.stringify(axes)} differ in length`, "tensordot");
  }
  ax.forEach((i, k) => {
    if (a!.shape[i] !== b!.shape[bx[k]!]) {
      throw new ShapeError(
        `shape mismatch for sum: ${fmtShape(a!.shape)} axis ${i} and ${fmtShape(b!.shape)} axis ${bx[k]}`,
        "tensordot",
      );
    }
  });
  return dotGeneral(a!, b!, { contracting: [ax, bx], batch: [[], []] });
}

// ---------------------------------------------------------------------------------------------
// einsum

interface Term {
  t: Tensor;
  labels: string[];
}

/** Takes the diagonal over repeated labels of one operand, so each label appears once. */
function dedupeLabels(term: Term): Term {
  let { t, labels } = term;
  for (;;) {
    const dup = labels.findIndex((l, i) => labels.indexOf(l) !== i);
    if (dup < 0) return { t, labels };
    const first = labels.indexOf(labels[dup]!);
    const n = t.shape[first]!;
    if (t.shape[dup] !== n)
      throw new ShapeError(`label ${labels[dup]} has sizes ${n} and ${t.shape[dup]}`, "einsum");
    // Mask by the identity over the two axes, then sum out the second one.
    const mask = structural.broadcastInDim(eye(n, n, 0, "bool"), t.shape, [first, dup]);
    t = reduceSum(lax.select(mask, t, lax.scalarLike(0, t)), [dup]);
    labels = labels.filter((_, i) => i !== dup);
  }
}

/** Sums out labels of `term` that are not in `keep`. */
function sumOut(term: Term, keep: Set<string>): Term {
  const axes = term.labels.flatMap((l, i) => (keep.has(l) ? [] : [i]));
  return { t: reduceSum(term.t, axes), labels: term.labels.filter((l) => keep.has(l)) };
}

function contractPair(a: Term, b: Term, keep: Set<string>): Term {
  const batch = a.labels.filter((l) => b.labels.includes(l) && keep.has(l));
  const contracting = a.labels.filter((l) => b.labels.includes(l) && !keep.has(l));
  for (const l of [...batch, ...contracting]) {
    if (a.t.shape[a.labels.indexOf(l)] !== b.t.shape[b.labels.indexOf(l)]) {
      throw new ShapeError(
        `label ${l} has size ${a.t.shape[a.labels.indexOf(l)]} in ${fmtShape(a.t.shape)} and ${b.t.shape[b.labels.indexOf(l)]} in ${fmtShape(b.t.shape)}`,
        "einsum",
      );
    }
  }
  const idx = (term: Term, ls: string[]) => ls.map((l) => term.labels.indexOf(l));
  const t = dotGeneral(a.t, b.t, {
    contracting: [idx(a, contracting), idx(b, contracting)],
    batch: [idx(a, batch), idx(b, batch)],
  });
  const used = new Set([...batch, ...contracting]);
  return {
    t,
    labels: [...batch, ...a.labels.filter((l) => !used.has(l)), ...b.labels.filter((l) => !used.has(l))],
  };
}

/**
 * Einstein summation over explicit subscripts (`"ij,jk->ik"`, `"bij,bjk->bik"`, `"i,i->"`,
 * `"ii->i"`, or implicit output `"ij,jk"`). Operands are contracted left to right with
 * `dotGeneral`; labels used by no later operand and absent from the output are summed out first.
 *
 * @example
 * ```ts
 * np.einsum("ij,jk->ik", a, b); // np.matmul(a, b)
 * ```
 */
export function einsum(subscripts: string, ...operands: ArrayLike[]): Tensor {
  const spec = subscripts.replace(/\s+/g, "");
  const [lhs, rhs] = spec.includes("->") ? spec.split("->") : [spec, undefined];
  const inputs = lhs!.split(",");
  if (inputs.length !== operands.length)
    throw new ConfigError(
      `${inputs.length} operand subscripts for ${operands.length} operands in "${subscripts}"`,
      "einsum",
    );
  if (!/^[a-zA-Z,]*$/.test(lhs!) || (rhs !== undefined && !/^[a-zA-Z]*$/.test(rhs))) {
    throw new ConfigError(`subscripts "${subscripts}" must be letters (no ellipsis)`, "einsum");
  }
  const counts = new Map<string, number>();
  for (const s of inputs) for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  const outLabels =
    rhs !== undefined ? [...rhs] : [...counts.keys()].filter((c) => counts.get(c) === 1).sort();
  for (const l of outLabels)
    if (!counts.has(l))
      throw new ConfigError(`output label ${l} is not in the inputs of "${subscripts}"`, "einsum");
  const ts = promoteOnly("einsum", operands);
  const terms: Term[] = ts.map((t, i) => {
    if (inputs[i]!.length !== t.ndim)
      throw new ShapeError(
        `subscripts "${inputs[i]}" do not fit operand ${i} of shape ${fmtShape(t.shape)}`,
        "einsum",
      );
    return dedupeLabels({ t, labels: [...inputs[i]!] });
  });
  const outSet = new Set(outLabels);
  const needed = (from: number) => new Set([...outSet, ...terms.slice(from).flatMap((t) => t.labels)]);
  let acc = sumOut(terms[0]!, needed(1));
  for (let i = 1; i < terms.length; i++) {
    const later = needed(i + 1);
    const b = sumOut(terms[i]!, new Set([...later, ...acc.labels]));
    acc = contractPair(acc, b, later);
  }
  acc = sumOut(acc, outSet);
  return structural.transpose(
    acc.t,
    outLabels.map((l) => acc.labels.indexOf(l)),
  );
}

// ---------------------------------------------------------------------------------------------

/** The `ord` of `linalg.norm`. */
export type NormOrd = number | "fro" | null | undefined;

/**
 * Vector and matrix norms. Vectors: any `p` (default 2), `Infinity`, `-Infinity`, 0. Matrices
 * (a 2-D input or two axes): `"fro"` (default), 1, -1, `Infinity`, `-Infinity`. With no `axis`
 * and `ord` unset, an input of any rank gives the 2-norm of the flattened array.
 *
 * @example
 * ```ts
 * np.linalg.norm([3, 4]).item(); // 5
 * ```
 */
function norm(
  x: ArrayLike,
  ord?: NormOrd,
  axis?: number | readonly number[] | null,
  keepdims = false,
): Tensor {
  const t = toFloat(x, "norm");
  const opts = { keepdims };
  let axes: number[];
  if (axis == null) {
    if (ord == null) return lax.sqrt(sum(lax.mul(t, t), null, opts));
    if (t.ndim === 1) axes = [0];
    else if (t.ndim === 2) axes = [0, 1];
    else
      throw new ConfigError(
        `ord=${String(ord)} needs a 1-D or 2-D input or an axis, got ${fmtShape(t.shape)}`,
        "norm",
      );
  } else axes = (typeof axis === "number" ? [axis] : [...axis]).map((a) => normalizeAxis(a, t.ndim, "norm"));
  if (axes.length === 1) {
    const a = abs(t);
    if (ord == null || ord === 2) return lax.sqrt(sum(lax.mul(t, t), axes, opts));
    if (ord === Number.POSITIVE_INFINITY) return max(a, axes, opts);
    if (ord === Number.NEGATIVE_INFINITY) return min(a, axes, opts);
    if (ord === 0) return sum(lax.convertElementType(lax.ne(t, lax.scalarLike(0, t)), t.dtype), axes, opts);
    if (ord === 1) return sum(a, axes, opts);
    if (typeof ord !== "number")
      throw new ConfigError(`invalid ord ${String(ord)} for a vector norm`, "norm");
    const s = sum(lax.pow(a, lax.scalarLike(ord, a)), axes, opts);
    return lax.pow(s, lax.scalarLike(1 / ord, s));
  }
  if (axes.length !== 2 || axes[0] === axes[1])
    throw new ConfigError(`axis must name one or two distinct axes, got ${JSON.stringify(axis)}`, "norm");
  const [r, c] = axes as [number, number];
  if (ord == null || ord === "fro") return lax.sqrt(sum(lax.mul(t, t), axes, opts));
  const a = abs(t);
  // Induced norms: the extreme column (ord ±1) or row (ord ±inf) absolute sum.
  const pick = (sumAxis: number, otherAxis: number, f: typeof max) => {
    const s = sum(a, sumAxis, { keepdims: true });
    const m = f(s, otherAxis, { keepdims: true });
    return keepdims ? m : structural.squeeze(m, [r, c]);
  };
  if (ord === 1) return pick(r, c, max);
  if (ord === -1) return pick(r, c, min);
  if (ord === Number.POSITIVE_INFINITY) return pick(c, r, max);
  if (ord === Number.NEGATIVE_INFINITY) return pick(c, r, min);
  throw new ConfigError(
    `ord=${String(ord)} is not supported for matrix norms (2 and "nuc" need an SVD)`,
    "norm",
  );
}

/** `np.linalg`: norms. */
export const linalg = { norm };
