/**
 * `convGeneralDilated`: `lax.conv_general_dilated` with any number of spatial dimensions, strides,
 * padding, lhs (input) and rhs (kernel) dilation, feature groups and batch groups. Its transpose
 * rules are again convolutions, with strides and dilations exchanged, as in JAX.
 */

import { allocate, type DType } from "../dtype.js";
import { ConfigError, DTypeError, fmtShape, ShapeError } from "../errors.js";
import { definePrimitive, type Primitive, Zero } from "../primitive.js";
import { sizeOf, stridesOf } from "../shape.js";
import { avalToString, type ShapedArray, Tensor } from "../tensor.js";
import { bind1 } from "../trace.js";
import { convertElementType } from "./elementwise.js";
import { bilinearJvp } from "./rules.js";
import { reshape, stridedCopy, transpose, tuple } from "./structural.js";
import { isZero } from "./util.js";

/**
 * JAX's `ConvDimensionNumbers` as index lists: `lhsSpec = [batch, feature, ...spatial]`,
 * `rhsSpec = [outFeature, inFeature, ...spatial]`, `outSpec = [batch, feature, ...spatial]`.
 */
export interface ConvDimensionNumbers {
  lhsSpec: readonly number[];
  rhsSpec: readonly number[];
  outSpec: readonly number[];
}

export interface ConvParams {
  windowStrides: readonly number[];
  padding: readonly (readonly [number, number])[];
  lhsDilation: readonly number[];
  rhsDilation: readonly number[];
  dimensionNumbers: ConvDimensionNumbers;
  featureGroupCount: number;
  batchGroupCount: number;
  preferredElementType: DType | null;
}

const OP = "conv_general_dilated";

/** The size of a dimension of size `s` after inserting `d - 1` holes between elements. */
export function dilateDim(s: number, d: number): number {
  return s === 0 ? 0 : 1 + d * (s - 1);
}

/**
 * JAX's `conv_dimension_numbers`: turns string specs such as `["NHWC", "HWIO", "NHWC"]` into index
 * lists. `N`/`C` name lhs and output batch/feature, `O`/`I` rhs output/input features; the other
 * letters are spatial, matched between the three specs by their order in the rhs spec.
 *
 * @example
 * convDimensionNumbers([8, 32, 32, 3], [3, 3, 3, 16], ["NHWC", "HWIO", "NHWC"]); // lhsSpec [0,3,1,2]
 */
export function convDimensionNumbers(
  lhsShape: readonly number[],
  rhsShape: readonly number[],
  specs: readonly [string, string, string],
): ConvDimensionNumbers {
  const [l, r, o] = specs;
  const op = "conv_dimension_numbers";
  if (l.length !== lhsShape.length || r.length !== rhsShape.length || o.length !== lhsShape.length) {
    throw new ShapeError(
      `specs ${JSON.stringify(specs)} do not match the ranks of lhs ${fmtShape(lhsShape)} and rhs ${fmtShape(rhsShape)}`,
      op,
    );
  }
  for (const [s, need] of [
    [l, "NC"],
    [r, "OI"],
    [o, "NC"],
  ] as const) {
    if (new Set(s).size !== s.length || !s.includes(need[0]) || !s.includes(need[1])) {
      throw new ConfigError(
        `spec ${JSON.stringify(s)} must hold ${need[0]} and ${need[1]} and no repeated letter`,
        op,
      );
    }
  }
  // Spatial dimensions pair up by letter, in the order the rhs spec lists them (as JAX does).
  const spatial = [...r].filter((c) => c !== "O" && c !== "I");
  for (const c of spatial) {
    if (!l.includes(c) || !o.includes(c))
      throw new ConfigError(`spatial dimension ${c} of rhs spec ${r} is missing from ${l} or ${o}`, op);
  }
  return {
    lhsSpec: [l.indexOf("N"), l.indexOf("C"), ...spatial.map((c) => l.indexOf(c))],
    rhsSpec: [r.indexOf("O"), r.indexOf("I"), ...spatial.map((c) => r.indexOf(c))],
    outSpec: [o.indexOf("N"), o.indexOf("C"), ...spatial.map((c) => o.indexOf(c))],
  };
}

/**
 * JAX's `padtype_to_pads`: the `[lo, hi]` padding per spatial dimension for `"SAME"` (output size
 * `ceil(in / stride)`, extra padding at the end), `"SAME_LOWER"` (extra at the start) or `"VALID"`.
 *
 * @example
 * padtypeToPads([5], [3], [2], "SAME"); // [[1, 1]]
 */
export function padtypeToPads(
  inShape: readonly number[],
  window: readonly number[],
  strides: readonly number[],
  padding: "SAME" | "SAME_LOWER" | "VALID",
): [number, number][] {
  if (padding === "VALID") return inShape.map(() => [0, 0]);
  if (padding !== "SAME" && padding !== "SAME_LOWER")
    throw new ConfigError(
      `unknown padding ${JSON.stringify(padding)}; expected SAME, SAME_LOWER or VALID`,
      "padtype_to_pads",
    );
  return inShape.map((n, i) => {
    const s = strides[i]!;
    const out = Math.ceil(n / s);
    const total = Math.max((out - 1) * s + window[i]! - n, 0);
    const small = Math.floor(total / 2);
    return padding === "SAME" ? [small, total - small] : [total - small, small];
  });
}

function checkSpec(spec: readonly number[], rank: number, name: string, shape: readonly number[]): void {
  const ok =
    spec.length === rank &&
    new Set(spec).size === rank &&
    spec.every((d) => Number.isInteger(d) && d >= 0 && d < rank);
  if (!ok)
    throw new ShapeError(
      `${name} ${JSON.stringify(spec)} is not a permutation of the axes of ${fmtShape(shape)}`,
      OP,
    );
}

function convAbstractEval(lhs: ShapedArray, rhs: ShapedArray, p: ConvParams): ShapedArray {
  const { lhsSpec, rhsSpec, outSpec } = p.dimensionNumbers;
  const shapes = `lhs ${fmtShape(lhs.shape)} and rhs ${fmtShape(rhs.shape)}`;
  if (lhs.dtype !== rhs.dtype)
    throw new DTypeError(
      `operands must have equal dtypes, got ${avalToString(lhs)} and ${avalToString(rhs)}`,
      OP,
    );
  if (lhs.dtype === "bool")
    throw new DTypeError(`does not accept bool operands, got ${avalToString(lhs)}`, OP);
  if (lhs.shape.length !== rhs.shape.length || lhs.shape.length < 2)
    throw new ShapeError(`operands must have equal ranks of at least 2, got ${shapes}`, OP);
  const rank = lhs.shape.length;
  const ns = rank - 2;
  checkSpec(lhsSpec, rank, "lhs spec", lhs.shape);
  checkSpec(rhsSpec, rank, "rhs spec", rhs.shape);
  checkSpec(outSpec, rank, "out spec", lhs.shape);
  for (const [name, v] of [
    ["windowStrides", p.windowStrides],
    ["lhsDilation", p.lhsDilation],
    ["rhsDilation", p.rhsDilation],
  ] as const) {
    if (v.length !== ns || v.some((s) => !Number.isInteger(s) || s < 1)) {
      throw new ShapeError(
        `${name} ${JSON.stringify(v)} must hold ${ns} positive integers for ${shapes}`,
        OP,
      );
    }
  }
  if (
    p.padding.length !== ns ||
    p.padding.some((q) => q.length !== 2 || !Number.isInteger(q[0]) || !Number.isInteger(q[1]))
  ) {
    throw new ShapeError(
      `padding ${JSON.stringify(p.padding)} must hold ${ns} integer pairs for ${shapes}`,
      OP,
    );
  }
  const G = p.featureGroupCount;
  const BG = p.batchGroupCount;
  if (!Number.isInteger(G) || G < 1 || !Number.isInteger(BG) || BG < 1)
    throw new ConfigError(`group counts must be positive integers, got ${G} and ${BG}`, OP);
  if (G > 1 && BG > 1)
    throw new ConfigError(`featureGroupCount ${G} and batchGroupCount ${BG} cannot both exceed 1`, OP);
  const N = lhs.shape[lhsSpec[0]!]!;
  const C = lhs.shape[lhsSpec[1]!]!;
  const O = rhs.shape[rhsSpec[0]!]!;
  const I = rhs.shape[rhsSpec[1]!]!;
  if (C !== I * G)
    throw new ShapeError(
      `lhs feature size ${C} must equal rhs input feature size ${I} times featureGroupCount ${G}, for ${shapes}`,
      OP,
    );
  if (O % G !== 0)
    throw new ShapeError(
      `rhs output feature size ${O} must be a multiple of featureGroupCount ${G}, for ${shapes}`,
      OP,
    );
  if (N % BG !== 0)
    throw new ShapeError(
      `lhs batch size ${N} must be a multiple of batchGroupCount ${BG}, for ${shapes}`,
      OP,
    );
  if (O % BG !== 0)
    throw new ShapeError(
      `rhs output feature size ${O} must be a multiple of batchGroupCount ${BG}, for ${shapes}`,
      OP,
    );
  const spatial: number[] = [];
  for (let i = 0; i < ns; i++) {
    const inD =
      dilateDim(lhs.shape[lhsSpec[i + 2]!]!, p.lhsDilation[i]!) + p.padding[i]![0] + p.padding[i]![1];
    const kD = dilateDim(rhs.shape[rhsSpec[i + 2]!]!, p.rhsDilation[i]!);
    const o = inD >= kD ? Math.floor((inD - kD) / p.windowStrides[i]!) + 1 : 0;
    if (inD < 0)
      throw new ShapeError(
        `padding ${JSON.stringify(p.padding)} makes spatial dimension ${i} negative for ${shapes}`,
        OP,
      );
    spatial.push(Math.max(o, 0));
  }
  const canon = [N / BG, O, ...spatial];
  const shape = new Array<number>(rank);
  outSpec.forEach((d, k) => {
    shape[d] = canon[k]!;
  });
  return { shape, dtype: p.preferredElementType ?? lhs.dtype, weakType: lhs.weakType && rhs.weakType };
}

/** `x`'s buffer with its axes reordered to `spec` (canonical [batch, feature, ...spatial]). */
function canonical(x: Tensor, spec: readonly number[]) {
  const s = stridesOf(x.shape);
  return stridedCopy(
    x._buf!,
    spec.map((d) => x.shape[d]!),
    spec.map((d) => s[d]!),
  );
}

function convImpl(lhs: Tensor, rhs: Tensor, p: ConvParams, out: ShapedArray): Tensor {
  const { lhsSpec, rhsSpec, outSpec } = p.dimensionNumbers;
  const ns = lhs.ndim - 2;
  const x = canonical(lhs, lhsSpec);
  const w = canonical(rhs, rhsSpec);
  const inSp = lhsSpec.slice(2).map((d) => lhs.shape[d]!);
  const kSp = rhsSpec.slice(2).map((d) => rhs.shape[d]!);
  const outSp = outSpec.slice(2).map((d) => out.shape[d]!);
  const N = lhs.shape[lhsSpec[0]!]!;
  const C = lhs.shape[lhsSpec[1]!]!;
  const O = rhs.shape[rhsSpec[0]!]!;
  const I = rhs.shape[rhsSpec[1]!]!;
  const G = p.featureGroupCount;
  const BG = p.batchGroupCount;
  const Nout = N / BG;
  const P = sizeOf(outSp);
  const KW = sizeOf(kSp);
  const X = sizeOf(inSp);
  // For every (output position, kernel position) pair, the flat input position it reads, or -1 where
  // it falls in padding or in a hole of the lhs dilation. Each spatial dimension is independent.
  const perDim: Int32Array[] = [];
  for (let d = 0; d < ns; d++) {
    const t = new Int32Array(outSp[d]! * kSp[d]!);
    const [lo] = p.padding[d]!;
    const ld = p.lhsDilation[d]!;
    const dilatedIn = dilateDim(inSp[d]!, ld);
    for (let o = 0; o < outSp[d]!; o++) {
      for (let k = 0; k < kSp[d]!; k++) {
        const q = o * p.windowStrides[d]! + k * p.rhsDilation[d]! - lo;
        t[o * kSp[d]! + k] = q < 0 || q >= dilatedIn || q % ld !== 0 ? -1 : q / ld;
      }
    }
    perDim.push(t);
  }
  const inStrides = stridesOf(inSp);
  // table[kk * P + po]: kernel-position-major, so the innermost loop below runs over the (long) output
  // positions with one kernel weight held fixed, as the matmul's i-k-j order does.
  const table = new Int32Array(P * KW);
  const oIdx = new Array<number>(ns).fill(0);
  const kIdx = new Array<number>(ns).fill(0);
  for (let po = 0; po < P; po++) {
    let rem = po;
    for (let d = ns - 1; d >= 0; d--) {
      oIdx[d] = rem % outSp[d]!;
      rem = Math.floor(rem / outSp[d]!);
    }
    for (let kk = 0; kk < KW; kk++) {
      let r = kk;
      for (let d = ns - 1; d >= 0; d--) {
        kIdx[d] = r % kSp[d]!;
        r = Math.floor(r / kSp[d]!);
      }
      let off = 0;
      for (let d = 0; d < ns; d++) {
        const v = perDim[d]![oIdx[d]! * kSp[d]! + kIdx[d]!]!;
        if (v < 0) {
          off = -1;
          break;
        }
        off += v * inStrides[d]!;
      }
      table[kk * P + po] = off;
    }
  }
  const res = new Float64Array(Nout * O * P);
  const Og = O / G;
  const Ob = O / BG;
  // im2col: cols[(c * KW + kk) * P + po] holds the input each (channel, kernel position) meets at each
  // output position (0 in padding), rebuilt only when the (input example, group) pair changes; the
  // product then runs over contiguous rows without a branch, in the matmul's i-k-j order.
  const IK = I * KW;
  const cols = new Float64Array(IK * P);
  let colsKey = -1;
  for (let n = 0; n < Nout; n++) {
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      const nIn = BG > 1 ? Math.floor(o / Ob) * Nout + n : n;
      if (nIn * G + g !== colsKey) {
        colsKey = nIn * G + g;
        for (let c = 0; c < I; c++) {
          const xBase = (nIn * C + g * I + c) * X;
          for (let kk = 0; kk < KW; kk++) {
            const cBase = (c * KW + kk) * P;
            const tBase = kk * P;
            for (let po = 0; po < P; po++) {
              const off = table[tBase + po]!;
              cols[cBase + po] = off >= 0 ? x[xBase + off]! : 0;
            }
          }
        }
      }
      const r0 = (n * O + o) * P;
      const w0 = o * IK;
      // Two output channels per pass when they read the same columns: half the loads of cols.
      const pair =
        o + 1 < O &&
        Math.floor((o + 1) / Og) === g &&
        (BG === 1 || Math.floor((o + 1) / Ob) === Math.floor(o / Ob));
      if (pair) {
        const r1 = r0 + P;
        const w1 = w0 + IK;
        for (let ck = 0; ck < IK; ck++) {
          const a0 = w[w0 + ck]!;
          const a1 = w[w1 + ck]!;
          const cBase = ck * P;
          for (let po = 0; po < P; po++) {
            const v = cols[cBase + po]!;
            res[r0 + po]! += a0 * v;
            res[r1 + po]! += a1 * v;
          }
        }
        o++;
        continue;
      }
      for (let ck = 0; ck < IK; ck++) {
        const wv = w[w0 + ck]!;
        const cBase = ck * P;
        for (let po = 0; po < P; po++) res[r0 + po]! += wv * cols[cBase + po]!;
      }
    }
  }
  // Back from canonical [batch, feature, ...spatial] to the requested output layout.
  const canonStrides = stridesOf([Nout, O, ...outSp]);
  const strides = new Array<number>(out.shape.length);
  outSpec.forEach((d, k) => {
    strides[d] = canonStrides[k]!;
  });
  const arranged = stridedCopy(res, out.shape, strides);
  const buf = allocate(out.dtype, arranged.length);
  if (out.dtype === "int32") for (let i = 0; i < buf.length; i++) buf[i] = arranged[i]! | 0;
  else if (out.dtype === "uint32") for (let i = 0; i < buf.length; i++) buf[i] = arranged[i]! >>> 0;
  else buf.set(arranged);
  return Tensor._fromBuffer(out.shape, out.dtype, buf, out.weakType);
}

// ---------------------------------------------------------------------------------------------
// Reshape helpers with JAX's conventions (`_reshape_axis_out_of`, `_reshape_axis_into`).

/** Splits axis `src` of `x` into `[size1, x.shape[src] / size1]`. */
function reshapeAxisOutOf(src: number, size1: number, x: Tensor): Tensor {
  const shape = [...x.shape];
  shape.splice(src, 1, size1, shape[src]! / size1);
  return reshape(x, shape);
}

/**
 * Merges axis `src` into axis `dst` (numbered after `src` is removed), `src` becoming the major
 * part of the merged axis.
 */
function reshapeAxisInto(src: number, dst: number, x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i).filter((i) => i !== src);
  perm.splice(dst, 0, src);
  const moved = transpose(x, perm);
  const shape = x.shape.filter((_, i) => i !== src);
  shape[dst] = shape[dst]! * x.shape[src]!;
  return reshape(moved, shape);
}

/** Reverses `x` along `axes` (JAX's `rev`); the lhs transpose rule flips the kernel with it. */
function rev(x: Tensor, axes: readonly number[]): Tensor {
  if (axes.length === 0 || x.size === 0) return x;
  return bind1(rev_p, [x], { dimensions: [...axes] });
}

interface RevParams {
  dimensions: readonly number[];
}

/** `lax.rev`: reverses the order of elements along `dimensions`. Linear and self-transposing. */
export const rev_p: Primitive<RevParams> = definePrimitive<RevParams>({
  name: "rev",
  abstractEval([x], { dimensions }) {
    for (const d of dimensions) {
      if (!Number.isInteger(d) || d < 0 || d >= x!.shape.length)
        throw new ShapeError(
          `dimensions ${JSON.stringify(dimensions)} are invalid for ${fmtShape(x!.shape)}`,
          "rev",
        );
    }
    return [x!];
  },
  impl([x], { dimensions }, [out]) {
    const s = stridesOf(x!.shape);
    let offset = 0;
    const strides = s.map((st, d) => {
      if (!dimensions.includes(d)) return st;
      offset += (x!.shape[d]! - 1) * st;
      return -st;
    });
    return [
      Tensor._fromBuffer(
        out!.shape,
        out!.dtype,
        stridedCopy(x!._buf!, x!.shape, strides, offset),
        out!.weakType,
      ),
    ];
  },
  jvp([x], [t], params) {
    const y = bind1(rev_p, [x!], params);
    return [[y], [isZero(t!) ? new Zero(y.aval) : bind1(rev_p, [t!], params)]];
  },
  transpose([ct], [x], params) {
    const aval = (x as { aval: ShapedArray }).aval;
    return [isZero(ct!) ? new Zero(aval) : bind1(rev_p, [ct!], params)];
  },
  batch([x], [b], { dimensions }) {
    return [[bind1(rev_p, [x!], { dimensions: dimensions.map((d) => (d >= b! ? d + 1 : d)) })], [b!]];
  },
  printParams: ({ dimensions }) => ({ dimensions: tuple(dimensions) }),
});

// ---------------------------------------------------------------------------------------------
// Transpose rules (JAX's `_conv_general_dilated_transpose_lhs` / `_rhs`).

const specTranspose = (s: readonly number[]) => [s[1]!, s[0]!, ...s.slice(2)];

function vjpLhsPadding(
  inShape: number[],
  window: number[],
  strides: readonly number[],
  outShape: number[],
  padding: ConvParams["padding"],
  lhsDil: readonly number[],
  rhsDil: readonly number[],
): [number, number][] {
  return inShape.map((n, i) => {
    const lhsD = dilateDim(n, lhsDil[i]!);
    const rhsD = dilateDim(window[i]!, rhsDil[i]!);
    const outD = dilateDim(outShape[i]!, strides[i]!);
    const before = rhsD - padding[i]![0] - 1;
    const after = lhsD + rhsD - 1 - outD - before;
    return [before, after];
  });
}

function vjpRhsPadding(
  inShape: number[],
  window: number[],
  strides: readonly number[],
  outShape: number[],
  padding: ConvParams["padding"],
  lhsDil: readonly number[],
  rhsDil: readonly number[],
): [number, number][] {
  return inShape.map((n, i) => {
    const lhsD = dilateDim(n, lhsDil[i]!);
    const rhsD = dilateDim(window[i]!, rhsDil[i]!);
    const outD = dilateDim(outShape[i]!, strides[i]!);
    const lo = padding[i]![0];
    return [lo, outD - lhsD + (rhsD - lo - 1)];
  });
}

function transposeLhs(g: Tensor, lhsAval: ShapedArray, rhs: Tensor, p: ConvParams): Tensor {
  const { lhsSpec, rhsSpec, outSpec } = p.dimensionNumbers;
  let G = p.featureGroupCount;
  const BG = p.batchGroupCount;
  let w = rhs;
  if (G > 1) {
    w = reshapeAxisOutOf(rhsSpec[0]!, G, w);
    w = reshapeAxisInto(rhsSpec[0]!, rhsSpec[1]!, w);
  } else if (BG > 1) {
    w = reshapeAxisOutOf(rhsSpec[0]!, BG, w);
    w = reshapeAxisInto(rhsSpec[0]!, rhsSpec[1]!, w);
    G = BG;
  }
  const sp = (shape: readonly number[], spec: readonly number[]) => spec.slice(2).map((d) => shape[d]!);
  const padding = vjpLhsPadding(
    sp(lhsAval.shape, lhsSpec),
    sp(w.shape, rhsSpec),
    p.windowStrides,
    sp(g.shape, outSpec),
    p.padding,
    p.lhsDilation,
    p.rhsDilation,
  );
  const flipped = rev(w, rhsSpec.slice(2));
  let out = bind1(
    convGeneralDilated_p,
    [g, g.dtype === flipped.dtype ? flipped : convertElementType(flipped, g.dtype)],
    {
      windowStrides: p.lhsDilation,
      padding,
      lhsDilation: p.windowStrides,
      rhsDilation: p.rhsDilation,
      dimensionNumbers: { lhsSpec: outSpec, rhsSpec: specTranspose(rhsSpec), outSpec: lhsSpec },
      featureGroupCount: G,
      batchGroupCount: 1,
      preferredElementType: lhsAval.dtype === g.dtype ? null : lhsAval.dtype,
    } satisfies ConvParams,
  );
  if (BG > 1) {
    out = reshapeAxisOutOf(lhsSpec[1]!, BG, out);
    out = reshapeAxisInto(lhsSpec[1]!, lhsSpec[0]!, out);
  }
  return out;
}

function transposeRhs(g: Tensor, lhs: Tensor, rhsAval: ShapedArray, p: ConvParams): Tensor | Zero {
  if (g.size === 0) return new Zero(rhsAval);
  const { lhsSpec, rhsSpec, outSpec } = p.dimensionNumbers;
  let G = p.featureGroupCount;
  let BG = p.batchGroupCount;
  if (BG > 1) {
    G = BG;
    BG = 1;
  } else if (G > 1) {
    BG = G;
    G = 1;
  }
  const sp = (shape: readonly number[], spec: readonly number[]) => spec.slice(2).map((d) => shape[d]!);
  const padding = vjpRhsPadding(
    sp(lhs.shape, lhsSpec),
    sp(rhsAval.shape, rhsSpec),
    p.windowStrides,
    sp(g.shape, outSpec),
    p.padding,
    p.lhsDilation,
    p.rhsDilation,
  );
  return bind1(convGeneralDilated_p, [lhs.dtype === g.dtype ? lhs : convertElementType(lhs, g.dtype), g], {
    windowStrides: p.rhsDilation,
    padding,
    lhsDilation: p.lhsDilation,
    rhsDilation: p.windowStrides,
    dimensionNumbers: {
      lhsSpec: specTranspose(lhsSpec),
      rhsSpec: specTranspose(outSpec),
      outSpec: specTranspose(rhsSpec),
    },
    featureGroupCount: G,
    batchGroupCount: BG,
    preferredElementType: rhsAval.dtype === g.dtype ? null : rhsAval.dtype,
  } satisfies ConvParams);
}

// ---------------------------------------------------------------------------------------------

export const convGeneralDilated_p: Primitive<ConvParams> = definePrimitive<ConvParams>({
  name: OP,
  abstractEval: ([l, r], params) => [convAbstractEval(l!, r!, params)],
  impl: ([l, r], params, [out]) => [convImpl(l!, r!, params, out!)],
  jvp: bilinearJvp(() => convGeneralDilated_p),
  transpose([ct], [l, r], params) {
    const lLinear = !(l instanceof Tensor);
    const rLinear = !(r instanceof Tensor);
    if (lLinear && rLinear)
      throw new Error(`${OP} transpose: both operands are linear; the convolution is bilinear, not linear`);
    if (lLinear) {
      const aval = l!.aval;
      return [isZero(ct!) ? new Zero(aval) : transposeLhs(ct!, aval, r as Tensor, params), null];
    }
    const aval = (r as { aval: ShapedArray }).aval;
    return [null, isZero(ct!) ? new Zero(aval) : transposeRhs(ct!, l as Tensor, aval, params)];
  },
  batch([lhs, rhs], [lb, rb], params) {
    const { lhsSpec, rhsSpec, outSpec } = params.dimensionNumbers;
    let G = params.featureGroupCount;
    let BG = params.batchGroupCount;
    const conv = (l: Tensor, r: Tensor) =>
      bind1(convGeneralDilated_p, [l, r], {
        ...params,
        featureGroupCount: G,
        batchGroupCount: BG,
      } satisfies ConvParams);
    if (lb !== null && rb !== null) {
      // Both mapped: each example is its own feature group (or batch group).
      const B = lhs!.shape[lb]!;
      let newLhs: Tensor;
      if (BG > 1) {
        newLhs = reshapeAxisInto(lb, lhsSpec[0]!, lhs!);
        BG *= B;
      } else {
        newLhs = reshapeAxisInto(lb, lhsSpec[1]!, lhs!);
        G *= B;
      }
      const newRhs = reshapeAxisInto(rb, rhsSpec[0]!, rhs!);
      return [[reshapeAxisOutOf(outSpec[1]!, B, conv(newLhs, newRhs))], [outSpec[1]!]];
    }
    if (lb !== null) {
      // Only lhs mapped: the examples join the convolution's batch.
      const B = lhs!.shape[lb]!;
      let newLhs: Tensor;
      if (BG === 1) newLhs = reshapeAxisInto(lb, lhsSpec[0]!, lhs!);
      else {
        // Batch groups must stay outermost in the batch dimension: put the examples inside them.
        newLhs = reshapeAxisOutOf(lhsSpec[0]! + (lb <= lhsSpec[0]! ? 1 : 0), BG, lhs!);
        newLhs = reshapeAxisInto(lb + (lhsSpec[0]! < lb ? 1 : 0), lhsSpec[0]! + 1, newLhs);
        newLhs = reshapeAxisInto(lhsSpec[0]!, lhsSpec[0]!, newLhs);
      }
      return [[reshapeAxisOutOf(outSpec[0]!, B, conv(newLhs, rhs!))], [outSpec[0]!]];
    }
    // Only rhs mapped: the examples join the output features.
    const B = rhs!.shape[rb!]!;
    if (G === 1 && BG === 1) {
      const newRhs = reshapeAxisInto(rb!, rhsSpec[0]!, rhs!);
      return [[reshapeAxisOutOf(outSpec[1]!, B, conv(lhs!, newRhs))], [outSpec[1]!]];
    }
    // Groups must stay outermost in the output features: put the examples inside each group.
    const groups = G > 1 ? G : BG;
    let newRhs = reshapeAxisOutOf(rhsSpec[0]! + (rb! <= rhsSpec[0]! ? 1 : 0), groups, rhs!);
    newRhs = reshapeAxisInto(rb! + (rhsSpec[0]! < rb! ? 1 : 0), rhsSpec[0]! + 1, newRhs);
    newRhs = reshapeAxisInto(rhsSpec[0]!, rhsSpec[0]!, newRhs);
    let out = conv(lhs!, newRhs);
    out = reshapeAxisOutOf(outSpec[1]!, groups, out);
    out = reshapeAxisOutOf(outSpec[1]! + 1, B, out);
    out = reshapeAxisInto(outSpec[1]!, outSpec[1]! + 1, out);
    return [[out], [outSpec[1]!]];
  },
  printParams: (p) => ({
    window_strides: tuple(p.windowStrides),
    padding: `(${p.padding.map(([lo, hi]) => `(${lo}, ${hi})`).join(", ")}${p.padding.length === 1 ? "," : ""})`,
    lhs_dilation: tuple(p.lhsDilation),
    rhs_dilation: tuple(p.rhsDilation),
    dimension_numbers: `ConvDimensionNumbers(lhs_spec=${tuple(p.dimensionNumbers.lhsSpec)}, rhs_spec=${tuple(p.dimensionNumbers.rhsSpec)}, out_spec=${tuple(p.dimensionNumbers.outSpec)})`,
    feature_group_count: p.featureGroupCount,
    batch_group_count: p.batchGroupCount,
    precision: "None",
    preferred_element_type: p.preferredElementType ?? "None",
  }),
});

export interface ConvOptions {
  windowStrides?: readonly number[];
  /** `[lo, hi]` per spatial dimension (negative values crop), or `"SAME"`, `"SAME_LOWER"`, `"VALID"`. */
  padding?: readonly (readonly [number, number])[] | "SAME" | "SAME_LOWER" | "VALID";
  lhsDilation?: readonly number[];
  rhsDilation?: readonly number[];
  /** Defaults to `[0, 1, 2, ...]` for all three specs (NCHW / OIHW / NCHW). */
  dimensionNumbers?: ConvDimensionNumbers;
  featureGroupCount?: number;
  batchGroupCount?: number;
  preferredElementType?: DType | null;
}

/**
 * `lax.conv_general_dilated`: an n-dimensional convolution (a cross-correlation, as in JAX).
 *
 * @example
 * convGeneralDilated(x, w, { windowStrides: [1, 1], padding: "SAME", dimensionNumbers: convDimensionNumbers(x.shape, w.shape, ["NHWC", "HWIO", "NHWC"]) });
 */
export function convGeneralDilated(lhs: Tensor, rhs: Tensor, opts: ConvOptions = {}): Tensor {
  const rank = lhs.ndim;
  const ns = Math.max(rank - 2, 0);
  const ident = Array.from({ length: rank }, (_, i) => i);
  const dn = opts.dimensionNumbers ?? { lhsSpec: ident, rhsSpec: ident, outSpec: ident };
  const ones = new Array<number>(ns).fill(1);
  const windowStrides = [...(opts.windowStrides ?? ones)];
  const lhsDilation = [...(opts.lhsDilation ?? ones)];
  const rhsDilation = [...(opts.rhsDilation ?? ones)];
  let padding: [number, number][];
  const pad = opts.padding ?? "VALID";
  if (typeof pad === "string") {
    if (rhs.ndim !== rank)
      throw new ShapeError(
        `operands must have equal ranks, got lhs ${fmtShape(lhs.shape)} and rhs ${fmtShape(rhs.shape)}`,
        OP,
      );
    const inSp = dn.lhsSpec.slice(2).map((d, i) => dilateDim(lhs.shape[d]!, lhsDilation[i] ?? 1));
    const kSp = dn.rhsSpec.slice(2).map((d, i) => dilateDim(rhs.shape[d]!, rhsDilation[i] ?? 1));
    padding = padtypeToPads(inSp, kSp, windowStrides, pad);
  } else padding = pad.map(([lo, hi]) => [lo, hi]);
  return bind1(convGeneralDilated_p, [lhs, rhs], {
    windowStrides,
    padding,
    lhsDilation,
    rhsDilation,
    dimensionNumbers: { lhsSpec: [...dn.lhsSpec], rhsSpec: [...dn.rhsSpec], outSpec: [...dn.outSpec] },
    featureGroupCount: opts.featureGroupCount ?? 1,
    batchGroupCount: opts.batchGroupCount ?? 1,
    preferredElementType: opts.preferredElementType ?? null,
  } satisfies ConvParams);
}
