/**
 * Routes `conv_general_dilated` equations (which the fusion leaves as escapes) to the own wasm
 * convolution when they are float32, 2-D and ungrouped. The wasm conv has three entry points, and
 * a convolution can be computed by each of them that applies, its operands read the right way:
 *
 * - forward: im2col(lhs) · rhs, with lhs as NHWC and rhs as HWIO;
 * - kernel gradient: im2col(x)ᵀ · dy, reading the equation's lhs feature axis as the batch it sums
 *   over (JAX's rhs transpose rule produces exactly this: a convolution contracting over batch and
 *   space, window strides and kernel dilation swapped);
 * - input gradient: col2im(dy · Wᵀ), reading the equation's rhs flipped back (JAX's lhs transpose
 *   rule convolves dy, dilated by the forward strides, with the flipped kernel under full padding);
 *   equations with unit window strides only, and the only reading for an input-dilated lhs.
 *
 * Each reading wants the operands in its own axis order; an order that already holds needs no copy,
 * others are copied (tiled) into the heap. The escape picks the reading with the least copying
 * (weighted above) plus patch-matrix size, so the gradient convolutions of an NHWC × HWIO training
 * step run without layout copies of their large operands.
 */
import type { ConvParams } from "../../core/primitives/conv.js";
import type { JaxprEqn } from "../../core/jaxpr.js";
import { Tensor } from "../../core/tensor.js";
import type { CompiledEscape } from "./backend.js";
import type { WasmBackend } from "./wasm/backend.js";
import { type ConvGeometry, WasmConv } from "./wasm/conv.js";

/**
 * Writes `src[sOff …]` (rank 4, row-major `shape`) into `dst[dOff …]` in axis order `perm` (result
 * axis i = source axis perm[i]), reversing the source axes listed in `flip` on the way.
 *
 * @example
 * ```ts
 * permuteInto(x, 0, [2, 3, 4, 5], [0, 2, 3, 1], [], out, 0); // NCHW → NHWC
 * ```
 */
export function permuteInto(
  src: Float32Array,
  sOff: number,
  shape: readonly number[],
  perm: readonly number[],
  flip: readonly number[],
  dst: Float32Array,
  dOff: number,
): void {
  const outShape = perm.map((p) => shape[p]!);
  const srcStrides = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
  let base = sOff;
  const st = perm.map((p) => {
    if (!flip.includes(p)) return srcStrides[p]!;
    base += (shape[p]! - 1) * srcStrides[p]!;
    return -srcStrides[p]!;
  });
  const ost = [outShape[1]! * outShape[2]! * outShape[3]!, outShape[2]! * outShape[3]!, outShape[3]!, 1];
  // The output axis that reads the source's contiguous axis: when it is not the output's last
  // axis, copy in 32×32 tiles over it and the last axis, so reads and writes both stay in cache.
  const q = perm.indexOf(3);
  if (q === 3) {
    const [n0, n1, n2, n3] = outShape as [number, number, number, number];
    const [s0, s1, s2, s3] = st as [number, number, number, number];
    let k = dOff;
    for (let a = 0; a < n0; a++)
      for (let b = 0; b < n1; b++)
        for (let c = 0; c < n2; c++) {
          const i = base + a * s0 + b * s1 + c * s2;
          if (s3 === 1) {
            dst.set(src.subarray(i, i + n3), k);
            k += n3;
          } else for (let d = 0; d < n3; d++) dst[k++] = src[i + d * s3]!;
        }
    return;
  }
  const others = [0, 1, 2].filter((d) => d !== q) as [number, number];
  const [u, v] = others;
  const T = 32;
  const nq = outShape[q]!;
  const sq = st[q]!;
  const oq = ost[q]!;
  const n3 = outShape[3]!;
  const s3 = st[3]!;
  for (let a = 0; a < outShape[u]!; a++)
    for (let b = 0; b < outShape[v]!; b++) {
      const si = base + a * st[u]! + b * st[v]!;
      const oi = dOff + a * ost[u]! + b * ost[v]!;
      for (let q0 = 0; q0 < nq; q0 += T)
        for (let d0 = 0; d0 < n3; d0 += T) {
          const q1 = Math.min(q0 + T, nq);
          const d1 = Math.min(d0 + T, n3);
          for (let d = d0; d < d1; d++) {
            const sd = si + d * s3;
            const od = oi + d;
            for (let j = q0; j < q1; j++) dst[od + j * oq] = src[sd + j * sq]!;
          }
        }
    }
}

/**
 * Whether reading `shape` in axis order `perm` with `flip`ped axes is the same flat array: every
 * flipped axis has size 1 and the axes of size > 1 keep their order.
 *
 * @example
 * ```ts
 * isLayoutNoop([64, 28, 28, 1], [0, 3, 1, 2], []); // true: only a size-1 axis moves
 * isLayoutNoop([64, 28, 28, 1], [3, 1, 2, 0], []); // false: the batch axis moves last
 * isLayoutNoop([1, 3, 3, 8], [0, 1, 2, 3], [0]);   // true: flipping a size-1 axis
 * ```
 */
export function isLayoutNoop(
  shape: readonly number[],
  perm: readonly number[],
  flip: readonly number[],
): boolean {
  if (flip.some((d) => shape[d]! > 1)) return false;
  const big = perm.filter((d) => shape[d]! > 1);
  return big.every((d, i) => i === 0 || big[i - 1]! < d);
}

/** Which wasm conv entry point computes an equation. */
export type ConvReading = "forward" | "kernelGrad" | "inputGrad";

/** How one equation runs on the wasm conv: the entry point, its geometry and the axis orders. */
export interface ConvPlan {
  reading: ConvReading;
  g: ConvGeometry;
  /** The entry point's first operand is the equation's lhs read in this axis order. */
  lhsPerm: number[];
  /** Its second operand is the rhs read in this axis order, these rhs axes reversed. */
  rhsPerm: number[];
  rhsFlip: number[];
  /** Its output's axis t is the equation's output axis outAxes[t]. */
  outAxes: number[];
  /** Elements copied for layouts, and the patch matrix's elements (the plan's cost). */
  copied: number;
  scratch: number;
}

const inverse = (p: readonly number[]): number[] => {
  const inv = new Array<number>(p.length);
  p.forEach((d, i) => {
    inv[d] = i;
  });
  return inv;
};

/**
 * The cheapest way to run a (fitting) convolution on the wasm conv: the candidate readings that
 * apply, ordered by elements copied for layouts (weighted: a JS copy costs more than writing a
 * patch-matrix element) plus patch-matrix size. With `reading`, that reading (null where it does
 * not apply: the input-gradient reading needs unit window strides, the others no input dilation).
 *
 * @example
 * ```ts
 * planConv(eqn.params, [64, 26, 26, 32], [64, 24, 24, 64], [3, 3, 32, 64]).reading; // "kernelGrad"
 * ```
 */
export function planConv(
  p: ConvParams,
  lShape: readonly number[],
  rShape: readonly number[],
  oShape: readonly number[],
  reading?: ConvReading,
): ConvPlan | null {
  const { lhsSpec: ls, rhsSpec: rs, outSpec: os } = p.dimensionNumbers;
  const [lb, lc, l0, l1] = ls as [number, number, number, number];
  const [rf, rc, r0, r1] = rs as [number, number, number, number];
  const [ob, of, o0, o1] = os as [number, number, number, number];
  const [s0, s1] = p.windowStrides as [number, number];
  const [d0, d1] = p.rhsDilation as [number, number];
  const [pt, pl] = [p.padding[0]![0], p.padding[1]![0]];
  const L = (a: number) => lShape[a]!;
  const R = (a: number) => rShape[a]!;
  const O = (a: number) => oShape[a]!;
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  const make = (
    reading: ConvReading,
    sizes: Omit<ConvGeometry, "dh" | "dw" | "pt" | "pl" | "oh" | "ow">,
    rest: Pick<ConvGeometry, "dh" | "dw" | "pt" | "pl" | "oh" | "ow">,
    lhsPerm: number[],
    rhsPerm: number[],
    rhsFlip: number[],
    outAxes: number[],
  ): ConvPlan => {
    const g: ConvGeometry = { ...sizes, ...rest };
    const outPerm = inverse(outAxes);
    const viewOut = outAxes.map((a) => oShape[a]!);
    let copied = 0;
    if (!isLayoutNoop(lShape, lhsPerm, [])) copied += size(lShape);
    if (!isLayoutNoop(rShape, rhsPerm, rhsFlip)) copied += size(rShape);
    if (!isLayoutNoop(viewOut, outPerm, [])) copied += size(oShape);
    return { reading, g, lhsPerm, rhsPerm, rhsFlip, outAxes, copied, scratch: WasmConv.scratchBytes(g) / 4 };
  };
  const [e0, e1] = p.lhsDilation as [number, number];
  const plans: ConvPlan[] = [];
  // An input-dilated lhs (the input gradient of a strided convolution) only has the col2im reading.
  if (e0 === 1 && e1 === 1) {
    plans.push(
      make(
        "forward",
        { n: L(lb), h: L(l0), w: L(l1), c: L(lc), kh: R(r0), kw: R(r1), o: R(rf), sh: s0, sw: s1 },
        { dh: d0, dw: d1, pt, pl, oh: O(o0), ow: O(o1) },
        [lb, l0, l1, lc],
        [r0, r1, rc, rf],
        [],
        [ob, o0, o1, of],
      ),
      // The lhs feature axis is the summed "batch", the rhs spatial axes the "output" positions,
      // window strides and kernel dilation trade places.
      make(
        "kernelGrad",
        { n: L(lc), h: L(l0), w: L(l1), c: L(lb), kh: O(o0), kw: O(o1), o: R(rf), sh: d0, sw: d1 },
        { dh: s0, dw: s1, pt, pl, oh: R(r0), ow: R(r1) },
        [lc, l0, l1, lb],
        [rc, r0, r1, rf],
        [],
        [o0, o1, ob, of],
      ),
    );
  }
  if (s0 === 1 && s1 === 1) {
    // The lhs is dy, the rhs the flipped kernel, the output dx of a forward conv with stride = the
    // lhs dilation, padded by (k − 1)·d − pad.
    plans.push(
      make(
        "inputGrad",
        { n: L(lb), h: O(o0), w: O(o1), c: O(of), kh: R(r0), kw: R(r1), o: L(lc), sh: e0, sw: e1 },
        { dh: d0, dw: d1, pt: (R(r0) - 1) * d0 - pt, pl: (R(r1) - 1) * d1 - pl, oh: L(l0), ow: L(l1) },
        [lb, l0, l1, lc],
        [r0, r1, rf, rc],
        [r0, r1],
        [ob, o0, o1, of],
      ),
    );
  }
  if (plans.length === 0) return null;
  if (reading) return plans.find((c) => c.reading === reading) ?? null;
  const cost = (c: ConvPlan) => 4 * c.copied + c.scratch;
  return plans.reduce((best, c) => (cost(c) < cost(best) ? c : best));
}

const asF32 = (t: Tensor): Float32Array => {
  const b = t._buf!;
  return b instanceof Float32Array ? b : Float32Array.from(b as ArrayLike<number>);
};

/**
 * The wasm implementation of a convolution equation, or null when it does not fit (not float32,
 * not 2-D, feature or batch groups, input dilation with window strides, empty operands).
 * `options.reading` forces an
 * entry point (tests run every reading on every equation).
 *
 * @example
 * ```ts
 * const impl = wasmConvEscape(() => backend, eqn); // eqn: a conv_general_dilated JaxprEqn
 * impl?.run([x, w]); // [y], computed by im2col + GEMM
 * ```
 */
export function wasmConvEscape(
  backend: () => WasmBackend,
  eqn: JaxprEqn,
  options: { reading?: ConvReading } = {},
): CompiledEscape | null {
  if (eqn.prim.name !== "conv_general_dilated" || eqn.inputs.length !== 2 || eqn.outBinders.length !== 1)
    return null;
  const p = eqn.params as ConvParams;
  const [l, r] = eqn.inputs.map((a) => a.aval) as [Tensor["aval"], Tensor["aval"]];
  const out = eqn.outBinders[0]!.aval;
  if (l.dtype !== "float32" || r.dtype !== "float32" || out.dtype !== "float32") return null;
  if (l.shape.length !== 4 || r.shape.length !== 4) return null;
  if (p.featureGroupCount !== 1 || p.batchGroupCount !== 1) return null;
  if ([...l.shape, ...r.shape, ...out.shape].some((d) => d === 0)) return null;
  const plan = planConv(p, l.shape, r.shape, out.shape, options.reading);
  if (!plan) return null;
  const { g, lhsPerm, rhsPerm, rhsFlip, outAxes } = plan;
  const outPerm = inverse(outAxes);
  const viewOut = outAxes.map((a) => out.shape[a]!);
  const sizeL = l.shape.reduce((a, b) => a * b, 1);
  const sizeR = r.shape.reduce((a, b) => a * b, 1);
  const sizeO = out.shape.reduce((a, b) => a * b, 1);
  const lNoop = isLayoutNoop(l.shape, lhsPerm, []);
  const rNoop = isLayoutNoop(r.shape, rhsPerm, rhsFlip);
  const oNoop = isLayoutNoop(viewOut, outPerm, []);
  const scratchBytes = WasmConv.scratchBytes(g);

  /** Runs the entry point on heap offsets `a`, `b` (its operand layouts) into `o` (its layout). */
  const compute = (be: WasmBackend, a: number, b: number, o: number): void => {
    const scratch = be.heap.alloc(scratchBytes);
    try {
      if (plan.reading === "forward") be.conv.conv2dPtr(g, a, b, o, scratch, be.threads);
      else if (plan.reading === "kernelGrad") be.conv.conv2dGradKernelPtr(g, a, b, o, scratch, be.threads);
      else be.conv.conv2dGradInputPtr(g, a, b, o, scratch, be.threads);
    } finally {
      be.heap.free(scratch);
    }
  };

  return {
    ranOn: "wasm:conv",
    run([lhs, rhs]) {
      const be = backend();
      const heap = be.heap;
      const pa = heap.alloc(4 * sizeL);
      const pb = heap.alloc(4 * sizeR);
      const po = heap.alloc(4 * sizeO);
      try {
        let mem = heap.f32();
        if (lNoop) mem.set(asF32(lhs!), pa / 4);
        else permuteInto(asF32(lhs!), 0, l.shape, lhsPerm, [], mem, pa / 4);
        if (rNoop) mem.set(asF32(rhs!), pb / 4);
        else permuteInto(asF32(rhs!), 0, r.shape, rhsPerm, rhsFlip, mem, pb / 4);
        compute(be, pa, pb, po);
        mem = heap.f32();
        const res = oNoop ? mem.slice(po / 4, po / 4 + sizeO) : new Float32Array(sizeO);
        if (!oNoop) permuteInto(mem, po / 4, viewOut, outPerm, [], res, 0);
        return [Tensor._fromBuffer(out.shape, "float32", res, out.weakType)];
      } finally {
        heap.free(po);
        heap.free(pb);
        heap.free(pa);
      }
    },
    runPtr([lp, rp], [op]) {
      const be = backend();
      const heap = be.heap;
      const owned: number[] = [];
      const take = (bytes: number) => {
        const ptr = heap.alloc(bytes);
        owned.push(ptr);
        return ptr;
      };
      try {
        const pa = lNoop ? lp! : take(4 * sizeL);
        const pb = rNoop ? rp! : take(4 * sizeR);
        const po = oNoop ? op! : take(4 * sizeO);
        let mem = heap.f32();
        if (!lNoop) permuteInto(mem, lp! / 4, l.shape, lhsPerm, [], mem, pa / 4);
        if (!rNoop) permuteInto(mem, rp! / 4, r.shape, rhsPerm, rhsFlip, mem, pb / 4);
        compute(be, pa, pb, po);
        mem = heap.f32();
        if (!oNoop) permuteInto(mem, po / 4, viewOut, outPerm, [], mem, op! / 4);
      } finally {
        for (const ptr of owned.reverse()) heap.free(ptr);
      }
    },
  };
}
