/**
 * PRNG primitives: `threefry2x32` (JAX's Threefry-2x32 hash, 20 rounds) and `bitcast_convert_type`
 * (reinterprets the bits of a 32-bit array as another 32-bit dtype, as `lax.bitcast_convert_type`).
 * Neither is differentiable: their tangents are symbolic zeros.
 */
import type { DType } from "../dtype.js";
import { DTypeError } from "../errors.js";
import { type BDim, definePrimitive, type Primitive, Zero } from "../primitive.js";
import { avalToString, type ShapedArray, Tensor } from "../tensor.js";
import { bind, bind1 } from "../trace.js";
import { batchTo0 } from "./elementwise.js";
import { checkSameShapes } from "./util.js";

// ---------------------------------------------------------------------------------------------
// threefry2x32

const ROTATIONS_A = [13, 15, 26, 6] as const;
const ROTATIONS_B = [17, 29, 16, 24] as const;

/**
 * The Threefry-2x32 block function on one pair of words, exactly as JAX's `_threefry2x32_lowering`:
 * five groups of four rounds with key injections in between. `>>> 0` keeps every sum a uint32.
 */
export function threefry2x32Scalar(k1: number, k2: number, c1: number, c2: number): [number, number] {
  const ks0 = k1 >>> 0;
  const ks1 = k2 >>> 0;
  const ks2 = (ks0 ^ ks1 ^ 0x1bd11bda) >>> 0;
  const ks = [ks0, ks1, ks2];
  let x0 = (c1 + ks0) >>> 0;
  let x1 = (c2 + ks1) >>> 0;
  for (let group = 0; group < 5; group++) {
    const rot = group % 2 === 0 ? ROTATIONS_A : ROTATIONS_B;
    for (let r = 0; r < 4; r++) {
      x0 = (x0 + x1) >>> 0;
      const s = rot[r]!;
      x1 = ((x1 << s) | (x1 >>> (32 - s))) >>> 0;
      x1 = (x1 ^ x0) >>> 0;
    }
    // Key injection i (1-based) adds ks[i % 3] and ks[(i + 1) % 3] + i.
    const i = group + 1;
    x0 = (x0 + ks[i % 3]!) >>> 0;
    x1 = (x1 + ks[(i + 1) % 3]! + i) >>> 0;
  }
  return [x0, x1];
}

export const threefry2x32_p: Primitive<Record<string, never>> = definePrimitive({
  name: "threefry2x32",
  abstractEval(avals) {
    if (avals.length !== 4)
      throw new DTypeError(`takes 4 operands (k1, k2, x1, x2), got ${avals.length}`, "threefry2x32");
    avals.forEach((a, i) => {
      if (a.dtype !== "uint32")
        throw new DTypeError(
          `operands must be uint32, got ${avalToString(a)} (argument ${i})`,
          "threefry2x32",
        );
    });
    checkSameShapes("threefry2x32", avals);
    const out: ShapedArray = { shape: avals[0]!.shape, dtype: "uint32", weakType: false };
    return [out, out];
  },
  impl([k1, k2, x1, x2], _params, [out]) {
    const a = k1!._buf!;
    const b = k2!._buf!;
    const c = x1!._buf!;
    const d = x2!._buf!;
    const n = a.length;
    const o1 = new Uint32Array(n);
    const o2 = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const [y1, y2] = threefry2x32Scalar(a[i]!, b[i]!, c[i]!, d[i]!);
      o1[i] = y1;
      o2[i] = y2;
    }
    return [Tensor._fromBuffer(out!.shape, "uint32", o1), Tensor._fromBuffer(out!.shape, "uint32", o2)];
  },
  jvp(primals) {
    const outs = bind(threefry2x32_p, primals, {});
    return [outs, outs.map((o) => new Zero(o.aval))];
  },
  batch(args, dims, params, axisSize) {
    // Elementwise: map over the common batch axis, or move every operand's batch axis to the front.
    const first = dims.find((d) => d !== null) ?? null;
    if (dims.every((d) => d === first)) {
      const outs = bind(threefry2x32_p, args, params);
      return [outs, outs.map((): BDim => first)];
    }
    const moved = args.map((a, i) => batchTo0(a, dims[i]!, axisSize));
    const outs = bind(threefry2x32_p, moved, params);
    return [outs, outs.map(() => 0)];
  },
});

/** Applies the Threefry-2x32 hash elementwise to uint32 arrays of one shape: `(k1, k2, x1, x2) -> (y1, y2)`. */
export function threefry2x32(k1: Tensor, k2: Tensor, x1: Tensor, x2: Tensor): [Tensor, Tensor] {
  const [y1, y2] = bind(threefry2x32_p, [k1, k2, x1, x2], {});
  return [y1!, y2!];
}

// ---------------------------------------------------------------------------------------------
// bitcast_convert_type (32-bit dtypes only: float32, int32, uint32)

export interface BitcastParams {
  newDtype: DType;
}

const BITCASTABLE: readonly DType[] = ["float32", "int32", "uint32"];

export const bitcastConvertType_p: Primitive<BitcastParams> = definePrimitive<BitcastParams>({
  name: "bitcast_convert_type",
  abstractEval([x], { newDtype }) {
    if (!BITCASTABLE.includes(x!.dtype) || !BITCASTABLE.includes(newDtype)) {
      throw new DTypeError(
        `only reinterprets 32-bit dtypes (float32, int32, uint32), got ${avalToString(x!)} to ${newDtype}`,
        "bitcast_convert_type",
      );
    }
    return [{ shape: x!.shape, dtype: newDtype, weakType: false }];
  },
  impl([x], { newDtype }, [out]) {
    const src = x!._buf! as Float32Array | Int32Array | Uint32Array;
    // Copy the bytes, then view them as the new type.
    const bytes = new ArrayBuffer(src.length * 4);
    new (src.constructor as Uint32ArrayConstructor)(bytes).set(src as Uint32Array);
    const buf =
      newDtype === "float32"
        ? new Float32Array(bytes)
        : newDtype === "int32"
          ? new Int32Array(bytes)
          : new Uint32Array(bytes);
    return [Tensor._fromBuffer(out!.shape, newDtype, buf)];
  },
  jvp([x], _t, params) {
    const y = bind1(bitcastConvertType_p, [x!], params);
    return [[y], [new Zero(y.aval)]];
  },
  batch: (args, dims, params) => [[bind1(bitcastConvertType_p, args, params)], [dims[0]!]],
  printParams: ({ newDtype }) => ({ new_dtype: newDtype }),
});

/** Reinterprets the bits of a 32-bit array as `newDtype` (`lax.bitcast_convert_type`). */
export function bitcastConvertType(x: Tensor, newDtype: DType): Tensor {
  if (x.dtype === newDtype) return x;
  return bind1(bitcastConvertType_p, [x], { newDtype });
}
