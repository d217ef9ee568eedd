/**
 * `dotGeneral`: the general tensor contraction of `lax.dot_general`, with batch and contracting
 * dimension numbers. Its transpose rules are again `dotGeneral`s with permuted dimension numbers.
 */

import { allocate, type DType } from "../dtype.js";
import { DTypeError, fmtShape, ShapeError } from "../errors.js";
import { definePrimitive, type Primitive, Zero } from "../primitive.js";
import { sizeOf, stridesOf } from "../shape.js";
import { avalToString, type ShapedArray, Tensor } from "../tensor.js";
import { bind1 } from "../trace.js";
import { convertElementType } from "./elementwise.js";
import { bilinearJvp } from "./rules.js";
import { moveaxis, stridedCopy, transpose } from "./structural.js";
import { isZero } from "./util.js";

/** `((lhsContracting, rhsContracting), (lhsBatch, rhsBatch))`, as JAX's `DotDimensionNumbers`. */
export interface DotDimensionNumbers {
  contracting: readonly [readonly number[], readonly number[]];
  batch: readonly [readonly number[], readonly number[]];
}

export interface DotGeneralParams {
  dimensionNumbers: DotDimensionNumbers;
  preferredElementType: DType | null;
}

const OP = "dot_general";

/** The axes of a rank-`n` operand that are neither contracted nor batch axes, in order. */
function freeAxes(n: number, contracting: readonly number[], batch: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (!contracting.includes(i) && !batch.includes(i)) out.push(i);
  return out;
}

function checkAxisList(axes: readonly number[], shape: readonly number[], what: string, side: string): void {
  const seen = new Set<number>();
  for (const a of axes) {
    if (!Number.isInteger(a) || a < 0 || a >= shape.length || seen.has(a)) {
      throw new ShapeError(
        `${side} ${what} dimensions ${JSON.stringify(axes)} are invalid for ${side} shape ${fmtShape(shape)}`,
        OP,
      );
    }
    seen.add(a);
  }
}

function dotAbstractEval(
  lhs: ShapedArray,
  rhs: ShapedArray,
  { dimensionNumbers: dn, preferredElementType }: DotGeneralParams,
): ShapedArray {
  const [lc, rc] = dn.contracting;
  const [lb, rb] = dn.batch;
  const shapes = `lhs ${fmtShape(lhs.shape)} and rhs ${fmtShape(rhs.shape)}`;
  if (lhs.dtype !== rhs.dtype)
    throw new DTypeError(
      `operands must have equal dtypes, got ${avalToString(lhs)} and ${avalToString(rhs)}`,
      OP,
    );
  if (lhs.dtype === "bool")
    throw new DTypeError(
      `does not accept bool operands, got ${avalToString(lhs)} and ${avalToString(rhs)}`,
      OP,
    );
  checkAxisList(lc, lhs.shape, "contracting", "lhs");
  checkAxisList(rc, rhs.shape, "contracting", "rhs");
  checkAxisList(lb, lhs.shape, "batch", "lhs");
  checkAxisList(rb, rhs.shape, "batch", "rhs");
  if (lc.length !== rc.length)
    throw new ShapeError(
      `contracting dimensions ${JSON.stringify(lc)} and ${JSON.stringify(rc)} differ in length for ${shapes}`,
      OP,
    );
  if (lb.length !== rb.length)
    throw new ShapeError(
      `batch dimensions ${JSON.stringify(lb)} and ${JSON.stringify(rb)} differ in length for ${shapes}`,
      OP,
    );
  if (lc.some((a) => lb.includes(a)) || rc.some((a) => rb.includes(a))) {
    throw new ShapeError(`a dimension is both batch and contracting for ${shapes}`, OP);
  }
  lc.forEach((a, i) => {
    if (lhs.shape[a] !== rhs.shape[rc[i]!]) {
      throw new ShapeError(
        `contracting dimensions ${JSON.stringify(lc)} and ${JSON.stringify(rc)} have different sizes for ${shapes}`,
        OP,
      );
    }
  });
  lb.forEach((a, i) => {
    if (lhs.shape[a] !== rhs.shape[rb[i]!]) {
      throw new ShapeError(
        `batch dimensions ${JSON.stringify(lb)} and ${JSON.stringify(rb)} have different sizes for ${shapes}`,
        OP,
      );
    }
  });
  const shape = [
    ...lb.map((a) => lhs.shape[a]!),
    ...freeAxes(lhs.shape.length, lc, lb).map((a) => lhs.shape[a]!),
    ...freeAxes(rhs.shape.length, rc, rb).map((a) => rhs.shape[a]!),
  ];
  return { shape, dtype: preferredElementType ?? lhs.dtype, weakType: lhs.weakType && rhs.weakType };
}

/** Copies `x` with its axes in `order` (a permutation), contiguous. */
function permuted(x: Tensor, order: readonly number[]) {
  const strides = stridesOf(x.shape);
  return stridedCopy(
    x._buf!,
    order.map((a) => x.shape[a]!),
    order.map((a) => strides[a]!),
  );
}

function dotImpl(
  lhs: Tensor,
  rhs: Tensor,
  { dimensionNumbers: dn }: DotGeneralParams,
  out: ShapedArray,
): Tensor {
  const [lc, rc] = dn.contracting;
  const [lb, rb] = dn.batch;
  const lf = freeAxes(lhs.ndim, lc, lb);
  const rf = freeAxes(rhs.ndim, rc, rb);
  const B = sizeOf(lb.map((a) => lhs.shape[a]!));
  const M = sizeOf(lf.map((a) => lhs.shape[a]!));
  const K = sizeOf(lc.map((a) => lhs.shape[a]!));
  const N = sizeOf(rf.map((a) => rhs.shape[a]!));
  // [B, M, K] and [B, K, N], contiguous, so the i-k-j loop below walks rows of b and of the output.
  const a = permuted(lhs, [...lb, ...lf, ...lc]);
  const b = permuted(rhs, [...rb, ...rc, ...rf]);
  const res = allocate(out.dtype, B * M * N);
  const row = new Float64Array(N);
  for (let bi = 0; bi < B; bi++) {
    const aBase = bi * M * K;
    const bBase = bi * K * N;
    for (let i = 0; i < M; i++) {
      row.fill(0);
      const aRow = aBase + i * K;
      for (let k = 0; k < K; k++) {
        const av = a[aRow + k]!;
        if (av === 0) continue;
        const bRow = bBase + k * N;
        for (let j = 0; j < N; j++) row[j]! += av * b[bRow + j]!;
      }
      const o = (bi * M + i) * N;
      if (out.dtype === "int32") for (let j = 0; j < N; j++) res[o + j] = row[j]! | 0;
      else if (out.dtype === "uint32") for (let j = 0; j < N; j++) res[o + j] = row[j]! >>> 0;
      else res.set(row, o);
    }
  }
  return Tensor._fromBuffer(out.shape, out.dtype, res, out.weakType);
}

/** An inverse permutation. */
function argsort(xs: readonly number[]): number[] {
  return xs
    .map((v, i) => [v, i] as const)
    .sort((p, q) => p[0] - q[0])
    .map(([, i]) => i);
}

/**
 * The cotangent of the lhs (JAX's `_dot_general_transpose_lhs`): the output cotangent has axes
 * [batch, x-free, y-free]; contracting it with `y` over y's free axes leaves [batch, x-free,
 * x-contracting (in y's contracting order sorted)], which a transpose puts back in x's order.
 */
function transposeLhs(
  ct: Tensor,
  xAval: ShapedArray,
  y: Tensor,
  dn: DotDimensionNumbers,
  swapAns: boolean,
): Tensor {
  const [xc, yc] = dn.contracting;
  const [xb, yb] = dn.batch;
  const xKept = freeAxes(xAval.shape.length, xc, xb);
  const yKept = freeAxes(y.ndim, yc, yb);
  const nb = xb.length;
  const ansBatch = Array.from({ length: nb }, (_, i) => i);
  // With swapAns (the rhs rule), the y-free axes come before the x-free ones in the cotangent.
  const yStart = swapAns ? nb : nb + xKept.length;
  const ansY = yKept.map((_, i) => yStart + i);
  const yTyped = y.dtype === ct.dtype ? y : convertElementType(y, ct.dtype);
  const prod = dotGeneral(
    ct,
    yTyped,
    { contracting: [ansY, yKept], batch: [ansBatch, yb] },
    xAval.dtype === ct.dtype ? null : xAval.dtype,
  );
  const xContractSortedByY = argsort(yc).map((i) => xc[i]!);
  const outAxes = argsort([...xb, ...xKept, ...xContractSortedByY]);
  return transpose(prod, outAxes);
}

export const dotGeneral_p: Primitive<DotGeneralParams> = definePrimitive<DotGeneralParams>({
  name: OP,
  abstractEval: ([l, r], params) => [dotAbstractEval(l!, r!, params)],
  impl: ([l, r], params, [out]) => [dotImpl(l!, r!, params, out!)],
  jvp: bilinearJvp(() => dotGeneral_p),
  transpose([ct], [l, r], { dimensionNumbers: dn }) {
    const lLinear = !(l instanceof Tensor);
    const rLinear = !(r instanceof Tensor);
    if (lLinear && rLinear)
      throw new Error(`${OP} transpose: both operands are linear; dot_general is bilinear, not linear`);
    if (lLinear) {
      const aval = l!.aval;
      return [isZero(ct!) ? new Zero(aval) : transposeLhs(ct!, aval, r as Tensor, dn, false), null];
    }
    const aval = (r as { aval: ShapedArray }).aval;
    const swapped: DotDimensionNumbers = {
      contracting: [dn.contracting[1], dn.contracting[0]],
      batch: [dn.batch[1], dn.batch[0]],
    };
    return [null, isZero(ct!) ? new Zero(aval) : transposeLhs(ct!, aval, l as Tensor, swapped, true)];
  },
  batch([l, r], [bl, br], { dimensionNumbers: dn, preferredElementType }) {
    const [lc, rc] = dn.contracting;
    const [lb, rb] = dn.batch;
    const shift = (axes: readonly number[]) => axes.map((a) => a + 1);
    if (bl !== null && br !== null) {
      // Both mapped: the vmapped axis becomes one more (leading) batch dimension.
      const lm = moveaxis(l!, bl, 0);
      const rm = moveaxis(r!, br, 0);
      const out = dotGeneral(
        lm,
        rm,
        {
          contracting: [shift(lc), shift(rc)],
          batch: [
            [0, ...shift(lb)],
            [0, ...shift(rb)],
          ],
        },
        preferredElementType,
      );
      return [[out], [0]];
    }
    if (bl !== null) {
      // Only lhs mapped: the axis is lhs's first free dimension, right after the batch ones.
      const lm = moveaxis(l!, bl, 0);
      const out = dotGeneral(
        lm,
        r!,
        { contracting: [shift(lc), rc], batch: [shift(lb), rb] },
        preferredElementType,
      );
      return [[out], [lb.length]];
    }
    // Only rhs mapped: the axis is rhs's first free dimension, after the batch and lhs-free ones.
    const rm = moveaxis(r!, br!, 0);
    const out = dotGeneral(
      l!,
      rm,
      { contracting: [lc, shift(rc)], batch: [lb, shift(rb)] },
      preferredElementType,
    );
    const lFree = l!.ndim - lc.length - lb.length;
    return [[out], [lb.length + lFree]];
  },
  printParams: ({ dimensionNumbers: dn, preferredElementType }) => ({
    dimension_numbers: `(([${dn.contracting[0].join(", ")}], [${dn.contracting[1].join(", ")}]), ([${dn.batch[0].join(", ")}], [${dn.batch[1].join(", ")}]))`,
    precision: "None",
    preferred_element_type: preferredElementType ?? "None",
  }),
});

/**
 * `lax.dot_general`: contracts `lhs` and `rhs` over the contracting dimensions, mapping over the
 * batch dimensions. The output axes are the batch axes, then lhs's free axes, then rhs's free axes.
 *
 * @example
 * dotGeneral(a, b, { contracting: [[1], [0]], batch: [[], []] }); // a matrix product
 */
export function dotGeneral(
  lhs: Tensor,
  rhs: Tensor,
  dimensionNumbers: DotDimensionNumbers,
  preferredElementType: DType | null = null,
): Tensor {
  const dn: DotDimensionNumbers = {
    contracting: [[...dimensionNumbers.contracting[0]], [...dimensionNumbers.contracting[1]]],
    batch: [[...dimensionNumbers.batch[0]], [...dimensionNumbers.batch[1]]],
  };
  return bind1(dotGeneral_p, [lhs, rhs], { dimensionNumbers: dn, preferredElementType });
}
