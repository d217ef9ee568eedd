/** `cumsum`: the running sum along one axis (`lax.cumsum`). */
import { allocate } from "../dtype.js";
import { DTypeError, ShapeError, fmtShape } from "../errors.js";
import { type Primitive, Zero, definePrimitive } from "../primitive.js";
import { sizeOf } from "../shape.js";
import { type ShapedArray, Tensor, avalToString } from "../tensor.js";
import { bind1 } from "../trace.js";
import { isZero } from "./util.js";

export interface CumsumParams {
  axis: number;
  reverse: boolean;
}

export const cumsum_p: Primitive<CumsumParams> = definePrimitive<CumsumParams>({
  name: "cumsum",
  abstractEval([x], { axis }) {
    if (!Number.isInteger(axis) || axis < 0 || axis >= x!.shape.length) {
      throw new ShapeError(`axis ${axis} is out of bounds for operand ${fmtShape(x!.shape)}`, "cumsum");
    }
    if (x!.dtype === "bool") throw new DTypeError(`does not accept ${avalToString(x!)}`, "cumsum");
    return [x!];
  },
  impl([x], { axis, reverse }, [out]) {
    const shape = x!.shape;
    const n = shape[axis]!;
    const inner = sizeOf(shape.slice(axis + 1));
    const outer = sizeOf(shape.slice(0, axis));
    const src = x!._buf!;
    const buf = allocate(out!.dtype, src.length);
    const wrap =
      out!.dtype === "int32"
        ? (v: number) => v | 0
        : out!.dtype === "uint32"
          ? (v: number) => v >>> 0
          : (v: number) => v;
    // The running sums of one row of `inner` lanes are kept side by side, so the inner loop is contiguous.
    // They are kept in float64, so float32 outputs are each rounded once rather than at every step.
    const acc = new Float64Array(inner);
    for (let o = 0; o < outer; o++) {
      acc.fill(0);
      for (let s = 0; s < n; s++) {
        const k = reverse ? n - 1 - s : s;
        const base = (o * n + k) * inner;
        for (let i = 0; i < inner; i++) {
          acc[i] = wrap(acc[i]! + src[base + i]!);
          buf[base + i] = acc[i]!;
        }
      }
    }
    return [Tensor._fromBuffer(out!.shape, out!.dtype, buf, out!.weakType)];
  },
  jvp([x], [t], params) {
    const y = bind1(cumsum_p, [x!], params);
    return [[y], [isZero(t!) ? new Zero(y.aval) : bind1(cumsum_p, [t!], params)]];
  },
  transpose([ct], [x], { axis, reverse }) {
    const aval = (x as { aval: ShapedArray }).aval;
    if (isZero(ct!)) return [new Zero(aval)];
    // The transpose of a lower-triangular ones matrix is upper-triangular: the sum runs the other way.
    return [cumsum(ct!, axis, !reverse)];
  },
  batch([x], [b], { axis, reverse }) {
    const bd = b!;
    return [[cumsum(x!, axis >= bd ? axis + 1 : axis, reverse)], [bd]];
  },
  printParams: ({ axis, reverse }) => ({ axis, reverse }),
});

/**
 * Cumulative sum along `axis` (negative axes count from the end); `reverse` sums from the end.
 *
 * @example cumsum(x, 0); // x = [1, 2, 3] gives [1, 3, 6]
 */
export function cumsum(x: Tensor, axis: number, reverse = false): Tensor {
  const a = Number.isInteger(axis) && axis < 0 ? axis + x.ndim : axis;
  return bind1(cumsum_p, [x], { axis: a, reverse });
}
