/**
 * Elementwise primitives: lax's arithmetic, math, comparisons, `select`, `convertElementType` and
 * `stopGradient`. Operands have equal shapes and dtypes (numpy-level functions broadcast and promote
 * before binding). Each record carries its shape rule, CPU implementation, JVP, transpose (for the
 * linear ones) and batching rule.
 */
import { type DType, allocate, isFloat } from "../dtype.js";
import { DTypeError } from "../errors.js";
import { type BDim, type Primitive, type Tangent, Zero, definePrimitive } from "../primitive.js";
import { type ShapedArray, Tensor, avalToString } from "../tensor.js";
import { bind, bind1 } from "../trace.js";
import { broadcastInDim, moveaxis } from "./structural.js";
import { allWeak, checkFloat, checkSameDTypes, checkSameShapes, instantiate, isZero, scalar, zerosOf } from "./util.js";

// ---------------------------------------------------------------------------------------------
// Batching: elementwise primitives map over any axis once every operand has it in the same place.

function elementwiseBatch(prim: Primitive): Primitive["batch"] {
  return (args, dims, params, axisSize) => {
    let target: number | null = null;
    let uniform = true;
    for (const d of dims) {
      if (d === null) uniform = false;
      else if (target === null) target = d;
      else if (d !== target) uniform = false;
    }
    if (uniform) {
      const outs = bind(prim, args, params);
      return [outs, outs.map((): BDim => target)];
    }
    const moved = args.map((a, i) => batchTo0(a, dims[i]!, axisSize));
    const outs = bind(prim, moved, params);
    return [outs, outs.map(() => 0)];
  };
}

/** Puts the batch axis of `x` first, broadcasting an unmapped `x` along a new leading axis. */
export function batchTo0(x: Tensor, dim: BDim, axisSize: number): Tensor {
  if (dim === null) {
    return broadcastInDim(x, [axisSize, ...x.shape], x.shape.map((_, i) => i + 1));
  }
  return dim === 0 ? x : moveaxis(x, dim, 0);
}

// ---------------------------------------------------------------------------------------------
// Unary primitives.

type UnaryKind = "float" | "numeric" | "int-or-bool" | "any";

function checkKind(op: string, aval: ShapedArray, kind: UnaryKind): void {
  if (kind === "float") checkFloat(op, aval);
  else if (kind === "numeric" && aval.dtype === "bool") throw new DTypeError(`does not accept ${avalToString(aval)}`, op);
  else if (kind === "int-or-bool" && isFloat(aval.dtype)) throw new DTypeError(`needs an integer or bool operand, got ${avalToString(aval)}`, op);
}

function mapUnary(x: Tensor, out: ShapedArray, f: (v: number) => number): Tensor {
  const a = x._buf!;
  const buf = allocate(out.dtype, a.length);
  for (let i = 0; i < a.length; i++) buf[i] = f(a[i]!);
  return Tensor._fromBuffer(out.shape, out.dtype, buf, out.weakType);
}

interface UnarySpec<P> {
  name: string;
  kind: UnaryKind;
  /** Scalar function; `dtype` lets integer ops wrap. */
  fn: (v: number, params: P, dtype: DType) => number;
  /** The output tangent from the input tangent (never a Zero), the input and the output. */
  jvp: ((t: Tensor, x: Tensor, y: Tensor, params: P) => Tensor) | "zero";
  transpose?: (ct: Tensor, params: P) => Tensor;
  outDType?: (dtype: DType) => DType;
}

function defineUnary<P = Record<string, never>>(spec: UnarySpec<P>): Primitive<P> {
  const prim: Primitive<P> = definePrimitive<P>({
    name: spec.name,
    abstractEval([x], _params) {
      checkKind(spec.name, x!, spec.kind);
      return [{ shape: x!.shape, dtype: spec.outDType ? spec.outDType(x!.dtype) : x!.dtype, weakType: x!.weakType }];
    },
    impl([x], params, [out]) {
      const dtype = x!.dtype;
      return [mapUnary(x!, out!, (v) => spec.fn(v, params, dtype))];
    },
    jvp([x], [t], params) {
      const y = bind1(prim, [x!], params);
      if (spec.jvp === "zero" || isZero(t!)) return [[y], [new Zero(y.aval)]];
      return [[y], [spec.jvp(t!, x!, y, params)]];
    },
    batch: (args, dims, params) => [[bind1(prim, args, params)], [dims[0]!]],
    ...(spec.transpose
      ? {
          transpose: ([ct], _args, params) => [isZero(ct!) ? ct! : spec.transpose!(ct!, params)],
        }
      : {}),
  });
  return prim;
}

const wrapInt = (v: number, dtype: DType) => (dtype === "int32" ? v | 0 : dtype === "uint32" ? v >>> 0 : v);

export const neg_p = defineUnary({
  name: "neg",
  kind: "numeric",
  fn: (v, _p, d) => wrapInt(-v, d),
  jvp: (t) => neg(t),
  transpose: (ct) => neg(ct),
});
export const exp_p = defineUnary({ name: "exp", kind: "float", fn: Math.exp, jvp: (t, _x, y) => mul(t, y) });
export const log_p = defineUnary({ name: "log", kind: "float", fn: Math.log, jvp: (t, x) => div(t, x) });
export const log1p_p = defineUnary({
  name: "log1p",
  kind: "float",
  fn: Math.log1p,
  jvp: (t, x) => div(t, add(x, scalarLike(1, x))),
});
export const expm1_p = defineUnary({
  name: "expm1",
  kind: "float",
  fn: Math.expm1,
  jvp: (t, _x, y) => mul(t, add(y, scalarLike(1, y))),
});
export const sqrt_p = defineUnary({
  name: "sqrt",
  kind: "float",
  fn: Math.sqrt,
  jvp: (t, _x, y) => div(t, mul(y, scalarLike(2, y))),
});
export const rsqrt_p = defineUnary({
  name: "rsqrt",
  kind: "float",
  fn: (v) => 1 / Math.sqrt(v),
  jvp: (t, x, y) => mul(t, mul(div(y, x), scalarLike(-0.5, y))),
});
export const tanh_p = defineUnary({
  name: "tanh",
  kind: "float",
  fn: Math.tanh,
  jvp: (t, _x, y) => mul(t, sub(scalarLike(1, y), mul(y, y))),
});
export const logistic_p = defineUnary({
  name: "logistic",
  kind: "float",
  fn: (v) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v))),
  jvp: (t, _x, y) => mul(t, mul(y, sub(scalarLike(1, y), y))),
});
export const sin_p = defineUnary({ name: "sin", kind: "float", fn: Math.sin, jvp: (t, x) => mul(t, cos(x)) });
export const cos_p = defineUnary({ name: "cos", kind: "float", fn: Math.cos, jvp: (t, x) => neg(mul(t, sin(x))) });
export const abs_p = defineUnary({
  name: "abs",
  kind: "numeric",
  fn: (v, _p, d) => wrapInt(Math.abs(v), d),
  jvp: (t, x) => mul(t, sign(x)),
});
export const sign_p = defineUnary({ name: "sign", kind: "numeric", fn: (v) => (v > 0 ? 1 : v < 0 ? -1 : v), jvp: "zero" });
export const floor_p = defineUnary({ name: "floor", kind: "float", fn: Math.floor, jvp: "zero" });
export const ceil_p = defineUnary({ name: "ceil", kind: "float", fn: Math.ceil, jvp: "zero" });
/** Rounds half to even, as `jnp.round` does. */
export const round_p = defineUnary({ name: "round", kind: "float", fn: roundHalfEven, jvp: "zero" });
export const erf_p = defineUnary({
  name: "erf",
  kind: "float",
  fn: erfScalar,
  jvp: (t, x) => mul(t, mul(exp(neg(mul(x, x))), scalarLike(2 / Math.sqrt(Math.PI), x))),
});
export const not_p = defineUnary({
  name: "not",
  kind: "int-or-bool",
  fn: (v, _p, d) => (d === "bool" ? (v ? 0 : 1) : wrapInt(~v, d)),
  jvp: "zero",
});
export const isFinite_p = defineUnary({
  name: "is_finite",
  kind: "float",
  fn: (v) => (Number.isFinite(v) ? 1 : 0),
  jvp: "zero",
  outDType: () => "bool",
});
export const integerPow_p = defineUnary<{ y: number }>({
  name: "integer_pow",
  kind: "numeric",
  fn: (v, { y }, d) => wrapInt(v ** y, d),
  jvp: (t, x, _y, { y }) => (y === 0 ? mul(t, scalarLike(0, x)) : mul(t, mul(integerPow(x, y - 1), scalarLike(y, x)))),
});

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** erf in float64: erf(x) = 2/√π · e^{-x²} · Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1)), a series of positive terms. */
function erfScalar(x: number): number {
  if (Number.isNaN(x)) return x;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax;
  let sum = ax;
  const x2 = ax * ax;
  for (let n = 1; n < 300; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum);
}

// ---------------------------------------------------------------------------------------------
// Binary primitives.

type BinaryKind = "numeric" | "float" | "int-or-bool" | "any";

interface BinarySpec {
  name: string;
  kind: BinaryKind;
  fn: (a: number, b: number, dtype: DType) => number;
  /** Output tangent from the input tangents (symbolic zeros allowed), the inputs and the output. */
  jvp: ((tx: Tangent, ty: Tangent, x: Tensor, y: Tensor, out: Tensor) => Tangent) | "zero";
  transpose?: TransposeBinary;
  compare?: boolean;
}
type TransposeBinary = (ct: Tensor, x: Tensor | UndefLike, y: Tensor | UndefLike) => (Tensor | null)[];
type UndefLike = { aval: ShapedArray } & { readonly __undef?: true };

function defineBinary(spec: BinarySpec): Primitive<Record<string, never>> {
  const prim: Primitive<Record<string, never>> = definePrimitive({
    name: spec.name,
    abstractEval(avals) {
      checkSameShapes(spec.name, avals);
      checkSameDTypes(spec.name, avals);
      const x = avals[0]!;
      if (spec.kind === "float") checkFloat(spec.name, x);
      else if (spec.kind === "numeric" && x.dtype === "bool") throw new DTypeError(`does not accept ${avalToString(x)}`, spec.name);
      else if (spec.kind === "int-or-bool" && isFloat(x.dtype))
        throw new DTypeError(`needs integer or bool operands, got ${avalToString(x)}`, spec.name);
      return [{ shape: x.shape, dtype: spec.compare ? "bool" : x.dtype, weakType: allWeak(avals) }];
    },
    impl([x, y], _params, [out]) {
      const a = x!._buf!;
      const b = y!._buf!;
      const dtype = x!.dtype;
      const buf = allocate(out!.dtype, a.length);
      const f = spec.fn;
      for (let i = 0; i < a.length; i++) buf[i] = f(a[i]!, b[i]!, dtype);
      return [Tensor._fromBuffer(out!.shape, out!.dtype, buf, out!.weakType)];
    },
    jvp([x, y], [tx, ty], params) {
      const out = bind1(prim, [x!, y!], params);
      if (spec.jvp === "zero" || (isZero(tx!) && isZero(ty!))) return [[out], [new Zero(out.aval)]];
      return [[out], [spec.jvp(tx!, ty!, x!, y!, out)]];
    },
    batch: (args, dims, params, n) => elementwiseBatch(prim)(args, dims, params, n),
    ...(spec.transpose
      ? {
          transpose: ([ct], [x, y]) => {
            if (isZero(ct!)) return [x instanceof Tensor ? null : ct!, y instanceof Tensor ? null : ct!];
            return spec.transpose!(ct!, x as Tensor, y as Tensor);
          },
        }
      : {}),
  });
  return prim;
}

const isUndef = (v: unknown): boolean => !(v instanceof Tensor);

function addTangents(a: Tangent, b: Tangent): Tangent {
  if (isZero(a)) return b;
  if (isZero(b)) return a;
  return add(a, b);
}

export const add_p = defineBinary({
  name: "add",
  kind: "any",
  fn: (a, b, d) => (d === "bool" ? a | b : wrapInt(a + b, d)),
  jvp: (tx, ty) => addTangents(tx, ty),
  transpose: (ct, x, y) => [isUndef(x) ? ct : null, isUndef(y) ? ct : null],
});
export const sub_p = defineBinary({
  name: "sub",
  kind: "numeric",
  fn: (a, b, d) => wrapInt(a - b, d),
  jvp: (tx, ty) => (isZero(ty) ? tx : isZero(tx) ? neg(ty) : sub(tx, ty)),
  transpose: (ct, x, y) => [isUndef(x) ? ct : null, isUndef(y) ? neg(ct) : null],
});
export const mul_p = defineBinary({
  name: "mul",
  kind: "any",
  fn: (a, b, d) => (d === "int32" ? Math.imul(a, b) : d === "uint32" ? Math.imul(a, b) >>> 0 : d === "bool" ? a & b : a * b),
  jvp: (tx, ty, x, y) => addTangents(isZero(tx) ? tx : mul(tx, y), isZero(ty) ? ty : mul(x, ty)),
  transpose: (ct, x, y) => {
    if (isUndef(x) && isUndef(y)) throw new Error("mul transpose: both operands are linear");
    return isUndef(x) ? [mul(ct, y as Tensor), null] : [null, mul(x as Tensor, ct)];
  },
});
export const div_p = defineBinary({
  name: "div",
  kind: "numeric",
  fn: (a, b, d) => (d === "int32" ? (b === 0 ? 0 : Math.trunc(a / b) | 0) : d === "uint32" ? (b === 0 ? 0 : Math.trunc(a / b) >>> 0) : a / b),
  jvp: (tx, ty, _x, y, out) => {
    const num = isZero(ty) ? (tx as Tensor) : isZero(tx) ? neg(mul(out, ty)) : sub(tx, mul(out, ty));
    return div(num, y);
  },
  transpose: (ct, x, y) => {
    if (isUndef(y)) throw new Error("div transpose: the divisor cannot be linear");
    return [isUndef(x) ? div(ct, y as Tensor) : null, null];
  },
});
export const rem_p = defineBinary({
  name: "rem",
  kind: "numeric",
  fn: (a, b, d) => (isFloat(d) ? a % b : b === 0 ? 0 : wrapInt(a % b, d)),
  jvp: (tx, ty, x, y) => {
    // rem(x, y) = x - y * trunc(x / y): d/dx = 1, d/dy = -trunc(x / y).
    const q = truncDiv(x, y);
    return addTangents(tx, isZero(ty) ? ty : neg(mul(ty, q)));
  },
});
export const max_p = defineBinary({
  name: "max",
  kind: "numeric",
  fn: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : Math.max(a, b)),
  jvp: (tx, ty, x, y) => minMaxJvp(tx, ty, gt(x, y), eq(x, y)),
});
export const min_p = defineBinary({
  name: "min",
  kind: "numeric",
  fn: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : Math.min(a, b)),
  jvp: (tx, ty, x, y) => minMaxJvp(tx, ty, lt(x, y), eq(x, y)),
});
export const pow_p = defineBinary({
  name: "pow",
  kind: "float",
  fn: (a, b) => a ** b,
  jvp: (tx, ty, x, y, out) => {
    let t: Tangent = new Zero(out.aval);
    if (!isZero(tx)) {
      // y * x^(y-1), written so that x = 0, y = 0 gives 0 rather than NaN.
      const one = scalarLike(1, y);
      const dx = select(eq(y, scalarLike(0, y)), zerosOf(out.aval), mul(y, pow(x, sub(y, one))));
      t = mul(tx, dx);
    }
    if (!isZero(ty)) {
      const zero = scalarLike(0, x);
      const logx = select(eq(x, zero), zerosOf(out.aval), log(x));
      t = addTangents(t, mul(ty, mul(out, logx)));
    }
    return t;
  },
});
export const atan2_p = defineBinary({
  name: "atan2",
  kind: "float",
  fn: Math.atan2,
  jvp: (tx, ty, x, y) => {
    // atan2(x, y): d/dx = y / (x² + y²), d/dy = -x / (x² + y²).
    const den = add(mul(x, x), mul(y, y));
    return addTangents(isZero(tx) ? tx : mul(tx, div(y, den)), isZero(ty) ? ty : neg(mul(ty, div(x, den))));
  },
});
export const and_p = defineBinary({ name: "and", kind: "int-or-bool", fn: (a, b, d) => wrapInt(a & b, d), jvp: "zero" });
export const or_p = defineBinary({ name: "or", kind: "int-or-bool", fn: (a, b, d) => wrapInt(a | b, d), jvp: "zero" });
export const xor_p = defineBinary({ name: "xor", kind: "int-or-bool", fn: (a, b, d) => wrapInt(a ^ b, d), jvp: "zero" });
export const shiftLeft_p = defineBinary({
  name: "shift_left",
  kind: "int-or-bool",
  fn: (a, b, d) => (b >= 32 ? 0 : wrapInt(a << b, d)),
  jvp: "zero",
});
export const shiftRightLogical_p = defineBinary({
  name: "shift_right_logical",
  kind: "int-or-bool",
  fn: (a, b, d) => (b >= 32 ? 0 : wrapInt(a >>> b, d)),
  jvp: "zero",
});

function compare(name: string, f: (a: number, b: number) => boolean): Primitive<Record<string, never>> {
  return defineBinary({ name, kind: "any", fn: (a, b) => (f(a, b) ? 1 : 0), jvp: "zero", compare: true });
}
export const eq_p = compare("eq", (a, b) => a === b);
export const ne_p = compare("ne", (a, b) => a !== b);
export const lt_p = compare("lt", (a, b) => a < b);
export const le_p = compare("le", (a, b) => a <= b);
export const gt_p = compare("gt", (a, b) => a > b);
export const ge_p = compare("ge", (a, b) => a >= b);

function minMaxJvp(tx: Tangent, ty: Tangent, pick: Tensor, tie: Tensor): Tangent {
  // Ties split the tangent evenly between both operands, as JAX does.
  const a = instantiate(tx);
  const b = instantiate(ty);
  const half = mul(add(a, b), scalarLike(0.5, a));
  return select(pick, a, select(tie, half, b));
}

// ---------------------------------------------------------------------------------------------
// select, convertElementType, stopGradient.

/** `select(pred, onTrue, onFalse)`: elementwise choice, as `lax.select`. */
export const select_p: Primitive<Record<string, never>> = definePrimitive({
  name: "select",
  abstractEval([p, t, f]) {
    checkSameShapes("select", [p!, t!, f!]);
    if (p!.dtype !== "bool") throw new DTypeError(`predicate must be bool, got ${avalToString(p!)}`, "select");
    checkSameDTypes("select", [t!, f!]);
    return [{ shape: t!.shape, dtype: t!.dtype, weakType: t!.weakType && f!.weakType }];
  },
  impl([p, t, f], _params, [out]) {
    const pb = p!._buf!;
    const tb = t!._buf!;
    const fb = f!._buf!;
    const buf = allocate(out!.dtype, pb.length);
    for (let i = 0; i < pb.length; i++) buf[i] = pb[i] ? tb[i]! : fb[i]!;
    return [Tensor._fromBuffer(out!.shape, out!.dtype, buf, out!.weakType)];
  },
  jvp([p, t, f], [, tt, tf]) {
    const out = select(p!, t!, f!);
    if (isZero(tt!) && isZero(tf!)) return [[out], [new Zero(out.aval)]];
    return [[out], [select(p!, instantiate(tt!), instantiate(tf!))]];
  },
  transpose([ct], [p, t, f]) {
    if (!(p instanceof Tensor)) throw new Error("select transpose: the predicate cannot be linear");
    if (isZero(ct!)) return [null, isUndef(t) ? ct! : null, isUndef(f) ? ct! : null];
    const z = zerosOf(ct!.aval);
    return [null, isUndef(t) ? select(p, ct!, z) : null, isUndef(f) ? select(p, z, ct!) : null];
  },
  batch: (args, dims, params, n) => elementwiseBatch(select_p)(args, dims, params, n),
});

export interface ConvertParams {
  newDtype: DType;
  weakType: boolean;
}

export const convertElementType_p: Primitive<ConvertParams> = definePrimitive<ConvertParams>({
  name: "convert_element_type",
  abstractEval([x], { newDtype, weakType }) {
    return [{ shape: x!.shape, dtype: newDtype, weakType }];
  },
  impl([x], { newDtype }, [out]) {
    const a = x!._buf!;
    const buf = allocate(newDtype, a.length);
    if (newDtype === "bool") for (let i = 0; i < a.length; i++) buf[i] = a[i] ? 1 : 0;
    else if (newDtype === "int32" || newDtype === "uint32") {
      // Float to integer truncates toward zero and saturates at the range, as XLA does; NaN gives 0.
      const [lo, hi] = newDtype === "int32" ? [-2147483648, 2147483647] : [0, 4294967295];
      for (let i = 0; i < a.length; i++) {
        const v = a[i]!;
        buf[i] = Number.isNaN(v) ? 0 : Math.min(hi, Math.max(lo, Math.trunc(v)));
      }
    } else buf.set(a);
    return [Tensor._fromBuffer(out!.shape, out!.dtype, buf, out!.weakType)];
  },
  jvp([x], [t], params) {
    const y = bind1(convertElementType_p, [x!], params);
    if (isZero(t!) || !isFloat(params.newDtype) || !isFloat(x!.dtype)) return [[y], [new Zero(y.aval)]];
    return [[y], [bind1(convertElementType_p, [t!], params)]];
  },
  transpose([ct], [x]) {
    const aval = (x as { aval: ShapedArray }).aval;
    if (isZero(ct!)) return [new Zero(aval)];
    return [bind1(convertElementType_p, [ct!], { newDtype: aval.dtype, weakType: aval.weakType })];
  },
  batch: (args, dims, params) => [[bind1(convertElementType_p, args, params)], [dims[0]!]],
  printParams: ({ newDtype, weakType }) => ({ new_dtype: newDtype, weak_type: weakType }),
});

/** Identity whose derivative is zero (`lax.stop_gradient`). */
export const stopGradient_p: Primitive<Record<string, never>> = definePrimitive({
  name: "stop_gradient",
  abstractEval: ([x]) => [x!],
  impl: ([x]) => [x!],
  jvp([x], _t) {
    const y = stopGradient(x!);
    return [[y], [new Zero(y.aval)]];
  },
  batch: (args, dims) => [[stopGradient(args[0]!)], [dims[0]!]],
});

// ---------------------------------------------------------------------------------------------
// lax-level functions: no promotion, no broadcasting.

/** A rank-0 constant of `like`'s dtype (weakly typed, so it never widens `like`). */
export function scalarLike(value: number, like: { dtype: DType; shape: readonly number[] }): Tensor {
  const s = scalar(value, like.dtype, true);
  return like.shape.length === 0 ? s : broadcastInDim(s, like.shape, []);
}

const un = (p: Primitive) => (x: Tensor) => bind1(p, [x], {});
const bin = (p: Primitive) => (x: Tensor, y: Tensor) => bind1(p, [x, y], {});
export const neg = un(neg_p);
export const exp = un(exp_p);
export const log = un(log_p);
export const log1p = un(log1p_p);
export const expm1 = un(expm1_p);
export const sqrt = un(sqrt_p);
export const rsqrt = un(rsqrt_p);
export const tanh = un(tanh_p);
export const logistic = un(logistic_p);
export const sin = un(sin_p);
export const cos = un(cos_p);
export const abs = un(abs_p);
export const sign = un(sign_p);
export const floor = un(floor_p);
export const ceil = un(ceil_p);
export const round = un(round_p);
export const erf = un(erf_p);
export const not = un(not_p);
export const isFiniteLax = un(isFinite_p);
export const add = bin(add_p);
export const sub = bin(sub_p);
export const mul = bin(mul_p);
export const div = bin(div_p);
export const rem = bin(rem_p);
export const max = bin(max_p);
export const min = bin(min_p);
export const pow = bin(pow_p);
export const atan2 = bin(atan2_p);
export const and = bin(and_p);
export const or = bin(or_p);
export const xor = bin(xor_p);
export const shiftLeft = bin(shiftLeft_p);
export const shiftRightLogical = bin(shiftRightLogical_p);
export const eq = bin(eq_p);
export const ne = bin(ne_p);
export const lt = bin(lt_p);
export const le = bin(le_p);
export const gt = bin(gt_p);
export const ge = bin(ge_p);
export const integerPow = (x: Tensor, y: number): Tensor => bind1(integerPow_p, [x], { y });
export const select = (pred: Tensor, onTrue: Tensor, onFalse: Tensor): Tensor => bind1(select_p, [pred, onTrue, onFalse], {});
export const stopGradient = (x: Tensor): Tensor => bind1(stopGradient_p, [x], {});
export function convertElementType(x: Tensor, newDtype: DType, weakType = false): Tensor {
  if (x.dtype === newDtype && x.weakType === weakType) return x;
  return bind1(convertElementType_p, [x], { newDtype, weakType });
}

function truncDiv(x: Tensor, y: Tensor): Tensor {
  const q = div(x, y);
  return select(lt(q, scalarLike(0, q)), ceil(q), floor(q));
}
