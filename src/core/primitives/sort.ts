/**
 * `sort`: JAX's `lax.sort(operands, dimension, num_keys)`. Sorts every operand along `dimension` by
 * the lexicographic order of the first `numKeys` operands; the sort is stable, NaNs go last and
 * -0 equals 0 (JAX's total order with standardised zeros and NaNs).
 */
import { allocate } from "../dtype.js";
import { ConfigError, fmtShape, ShapeError } from "../errors.js";
import { definePrimitive, type Primitive, type Tangent, Zero } from "../primitive.js";
import { normalizeAxis, sizeOf } from "../shape.js";
import { type ShapedArray, Tensor } from "../tensor.js";
import { bind } from "../trace.js";
import { batchTo0 } from "./elementwise.js";
import { broadcastInDim } from "./structural.js";
import { isZero } from "./util.js";

export interface SortParams {
  dimension: number;
  numKeys: number;
}

/** Three-way comparison with NaN after every number and -0 equal to 0. */
function compareValues(a: number, b: number): number {
  const an = Number.isNaN(a);
  const bn = Number.isNaN(b);
  if (an || bn) return an === bn ? 0 : an ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export const sort_p: Primitive<SortParams> = definePrimitive<SortParams>({
  name: "sort",
  abstractEval(avals, { dimension, numKeys }) {
    if (avals.length === 0) throw new ShapeError("needs at least one operand", "sort");
    const s0 = avals[0]!.shape;
    avals.forEach((a, i) => {
      if (a.shape.length !== s0.length || a.shape.some((d, k) => d !== s0[k])) {
        throw new ShapeError(
          `operands must have equal shapes, got ${fmtShape(s0)} and ${fmtShape(a.shape)} (argument ${i})`,
          "sort",
        );
      }
    });
    if (!Number.isInteger(numKeys) || numKeys < 1 || numKeys > avals.length) {
      throw new ConfigError(`numKeys must be an integer in [1, ${avals.length}], got ${numKeys}`, "sort");
    }
    if (
      !Number.isInteger(dimension) ||
      dimension < 0 ||
      dimension >= Math.max(s0.length, 1) ||
      s0.length === 0
    ) {
      throw new ShapeError(
        `dimension ${dimension} is out of bounds for operands of shape ${fmtShape(s0)}`,
        "sort",
      );
    }
    return avals.map((a): ShapedArray => ({ shape: a.shape, dtype: a.dtype, weakType: a.weakType }));
  },
  impl(args, { dimension, numKeys }, outAvals) {
    const shape = args[0]!.shape;
    const n = shape[dimension]!;
    const outer = sizeOf(shape.slice(0, dimension));
    const inner = sizeOf(shape.slice(dimension + 1));
    const srcs = args.map((a) => a._buf!);
    const outs = outAvals.map((o) => allocate(o.dtype, sizeOf(o.shape)));
    const keys = srcs.slice(0, numKeys);
    const perm = new Array<number>(n);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * n * inner + i;
        for (let j = 0; j < n; j++) perm[j] = j;
        // Array.prototype.sort is stable (ES2019), which gives lax.sort's is_stable=True.
        perm.sort((p, q) => {
          for (const k of keys) {
            const c = compareValues(k[base + p * inner]!, k[base + q * inner]!);
            if (c !== 0) return c;
          }
          return 0;
        });
        for (let s = 0; s < srcs.length; s++) {
          const src = srcs[s]!;
          const dst = outs[s]!;
          for (let j = 0; j < n; j++) dst[base + j * inner] = src[base + perm[j]! * inner]!;
        }
      }
    }
    return outs.map((buf, s) =>
      Tensor._fromBuffer(outAvals[s]!.shape, outAvals[s]!.dtype, buf, outAvals[s]!.weakType),
    );
  },
  jvp(primals, tangents, params) {
    const outs = bind(sort_p, primals, params);
    // A stable sort by the same keys applies the same permutation to any extra operand (JAX's trick):
    // sort the non-zero tangents alongside the primal keys.
    const keys = primals.slice(0, params.numKeys);
    const live = tangents.map((t, i) => (isZero(t) ? -1 : i)).filter((i) => i >= 0);
    const tangentOuts: Tangent[] = outs.map((o) => new Zero(o.aval));
    if (live.length > 0) {
      const sorted = bind(sort_p, [...keys, ...live.map((i) => tangents[i] as Tensor)], params);
      live.forEach((i, k) => {
        tangentOuts[i] = sorted[params.numKeys + k]!;
      });
    }
    return [outs, tangentOuts];
  },
  transpose(cts, args, { dimension, numKeys }) {
    // Only operands after the keys can be linear: sorting permutes them. The transpose applies the
    // inverse permutation, got by sorting an iota with the keys and then sorting the cotangent by it.
    for (let i = 0; i < numKeys; i++) {
      if (!(args[i] instanceof Tensor)) throw new Error("sort transpose: key operands cannot be linear");
    }
    const keys = args.slice(0, numKeys) as Tensor[];
    const shape = keys[0]!.shape;
    const perm = bind(sort_p, [...keys, iotaAlong(shape, dimension)], { dimension, numKeys })[numKeys]!;
    return args.map((a, i) => {
      if (a instanceof Tensor) return null;
      const ct = cts[i]!;
      if (isZero(ct)) return new Zero(a.aval);
      return bind(sort_p, [perm, ct], { dimension, numKeys: 1 })[1]!;
    });
  },
  batch(args, dims, { dimension, numKeys }, axisSize) {
    const moved = args.map((a, i) => batchTo0(a, dims[i]!, axisSize));
    const outs = bind(sort_p, moved, { dimension: dimension + 1, numKeys });
    return [outs, outs.map(() => 0)];
  },
  printParams: ({ dimension, numKeys }) => ({ dimension, is_stable: true, num_keys: numKeys }),
});

/** A concrete int32 array of `shape` holding each element's index along `dimension`. */
function iotaAlong(shape: readonly number[], dimension: number): Tensor {
  const n = shape[dimension]!;
  const line = new Int32Array(n);
  for (let j = 0; j < n; j++) line[j] = j;
  return broadcastInDim(Tensor._fromBuffer([n], "int32", line), shape, [dimension]);
}

/**
 * Sorts `operands` along `dimension` by the lexicographic order of the first `numKeys` of them
 * (`lax.sort`): stable, NaNs last. Returns every operand permuted the same way.
 *
 * @example
 * ```ts
 * const [k, v] = sort([np.array([3, 1, 2]), np.array([30, 10, 20])], 0); // k = [1,2,3], v = [10,20,30]
 * ```
 */
export function sort(operands: Tensor[], dimension = -1, numKeys = 1): Tensor[] {
  if (operands.length === 0) throw new ShapeError("needs at least one operand", "sort");
  const ndim = operands[0]!.ndim;
  if (ndim === 0) throw new ShapeError("cannot sort a rank-0 array", "sort");
  const dim = normalizeAxis(dimension, ndim, "sort");
  return bind(sort_p, operands, { dimension: dim, numKeys });
}

/** `lax.sort_key_val`: sorts `values` by `keys` along `dimension`; returns `[sortedKeys, sortedValues]`. */
export function sortKeyVal(keys: Tensor, values: Tensor, dimension = -1): [Tensor, Tensor] {
  const [k, v] = sort([keys, values], dimension, 1);
  return [k!, v!];
}
