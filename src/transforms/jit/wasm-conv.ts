/**
 * Routes `conv_general_dilated` equations (which the fusion leaves as escapes) to the own wasm
 * convolution (im2col + the SIMD GEMM) when they are float32, 2-D, ungrouped and without input
 * dilation: any dimension numbers (the forward conv and both of its transposes in a gradient) are
 * brought to NHWC × HWIO by an axis permutation, and the NHWC result is permuted to the equation's
 * output layout. Anything else is declined and runs on the reference implementation.
 */
import type { ConvParams } from "../../core/primitives/conv.js";
import type { JaxprEqn } from "../../core/jaxpr.js";
import { Tensor } from "../../core/tensor.js";
import type { CompiledEscape } from "./backend.js";
import type { WasmBackend } from "./wasm/backend.js";

/** Copies a rank-4 row-major array into axis order `perm` (result axis i = source axis perm[i]). */
export function permute4(
  data: Float32Array,
  shape: readonly number[],
  perm: readonly number[],
): { data: Float32Array; shape: number[] } {
  const outShape = perm.map((p) => shape[p]!);
  if (perm.every((p, i) => p === i)) return { data, shape: outShape };
  const src = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
  const st = perm.map((p) => src[p]!);
  const out = new Float32Array(data.length);
  const ost = [outShape[1]! * outShape[2]! * outShape[3]!, outShape[2]! * outShape[3]!, outShape[3]!, 1];
  // The output axis that reads the source's contiguous axis: when it is not the output's last
  // axis, copy in 32×32 tiles over it and the last axis, so reads and writes both stay in cache.
  const q = perm.indexOf(3);
  if (q === 3) {
    const [n0, n1, n2, n3] = outShape as [number, number, number, number];
    const [s0, s1, s2] = st as [number, number, number, number];
    let k = 0;
    for (let a = 0; a < n0; a++)
      for (let b = 0; b < n1; b++)
        for (let c = 0; c < n2; c++) {
          const i = a * s0 + b * s1 + c * s2;
          for (let d = 0; d < n3; d++) out[k++] = data[i + d]!;
        }
    return { data: out, shape: outShape };
  }
  const others = [0, 1, 2].filter((d) => d !== q) as [number, number];
  const [u, v] = others;
  const T = 32;
  const nq = outShape[q]!;
  const n3 = outShape[3]!;
  const s3 = st[3]!;
  for (let a = 0; a < outShape[u]!; a++)
    for (let b = 0; b < outShape[v]!; b++) {
      const si = a * st[u]! + b * st[v]!;
      const oi = a * ost[u]! + b * ost[v]!;
      for (let q0 = 0; q0 < nq; q0 += T)
        for (let d0 = 0; d0 < n3; d0 += T) {
          const q1 = Math.min(q0 + T, nq);
          const d1 = Math.min(d0 + T, n3);
          for (let d = d0; d < d1; d++) {
            const sd = si + d * s3;
            const od = oi + d;
            for (let j = q0; j < q1; j++) out[od + j * ost[q]!] = data[sd + j]!;
          }
        }
    }
  return { data: out, shape: outShape };
}

const asF32 = (t: Tensor): Float32Array => {
  const b = t._buf!;
  return b instanceof Float32Array ? b : Float32Array.from(b as ArrayLike<number>);
};

/**
 * The wasm implementation of a convolution equation, or null when it does not fit.
 *
 * @example
 * ```ts
 * const impl = wasmConvEscape(() => backend, eqn); // eqn: a conv_general_dilated JaxprEqn
 * impl?.run([x, w]); // [y], computed by im2col + GEMM
 * ```
 */
export function wasmConvEscape(backend: () => WasmBackend, eqn: JaxprEqn): CompiledEscape | null {
  if (eqn.prim.name !== "conv_general_dilated" || eqn.inputs.length !== 2 || eqn.outBinders.length !== 1)
    return null;
  const p = eqn.params as ConvParams;
  const [l, r] = eqn.inputs.map((a) => a.aval) as [Tensor["aval"], Tensor["aval"]];
  const out = eqn.outBinders[0]!.aval;
  if (l.dtype !== "float32" || r.dtype !== "float32" || out.dtype !== "float32") return null;
  if (l.shape.length !== 4 || r.shape.length !== 4) return null;
  if (p.featureGroupCount !== 1 || p.batchGroupCount !== 1) return null;
  if (p.lhsDilation.some((d) => d !== 1)) return null;
  if (p.padding.some(([lo, hi]) => lo < 0 || hi < 0)) return null;
  if ([...l.shape, ...r.shape, ...out.shape].some((d) => d === 0)) return null;
  const { lhsSpec: ls, rhsSpec: rs, outSpec: os } = p.dimensionNumbers;
  const xPerm = [ls[0]!, ls[2]!, ls[3]!, ls[1]!];
  const wPerm = [rs[2]!, rs[3]!, rs[1]!, rs[0]!];
  // The wasm conv writes NHWC; output axis os[j] holds role j of (batch, feature, spatial 0, 1).
  const roleInNhwc = [0, 3, 1, 2];
  const outPerm = new Array<number>(4);
  os.forEach((axis, role) => {
    outPerm[axis] = roleInNhwc[role]!;
  });
  const strides = [p.windowStrides[0]!, p.windowStrides[1]!] as const;
  const dilation = [p.rhsDilation[0]!, p.rhsDilation[1]!] as const;
  const padding = [
    [p.padding[0]![0], p.padding[0]![1]],
    [p.padding[1]![0], p.padding[1]![1]],
  ] as const;
  return {
    ranOn: "wasm:conv",
    run([lhs, rhs]) {
      const x = permute4(asF32(lhs!), l.shape, xPerm);
      const w = permute4(asF32(rhs!), r.shape, wPerm);
      const y = backend().conv2d(x.data, x.shape, w.data, w.shape, { strides, dilation, padding });
      const res = permute4(y.data, y.shape, outPerm);
      return [Tensor._fromBuffer(out.shape, "float32", res.data, out.weakType)];
    },
  };
}
