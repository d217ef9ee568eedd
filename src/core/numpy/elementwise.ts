/**
 * Elementwise `np` functions: each coerces its operands, promotes them with JAX's weak-type rules,
 * broadcasts them NumPy-style, then binds lax primitives.
 */
import { isFloat, numberDType, promoteTypes } from "../dtype.js";
import { DTypeError } from "../errors.js";
import * as lax from "../primitives/elementwise.js";
import { broadcastInDim } from "../primitives/structural.js";
import { scalar } from "../primitives/util.js";
import { broadcastShapes, type Shape, shapesEqual } from "../shape.js";
import { avalToString, type Tensor } from "../tensor.js";
import { type ArrayLike, toTensor } from "./creation.js";

/** @internal Broadcasts `x` to `shape` (trailing alignment), without validation beyond lax's. */
export function broadcastToShape(x: Tensor, shape: Shape): Tensor {
  if (shapesEqual(x.shape, shape)) return x;
  const off = shape.length - x.ndim;
  return broadcastInDim(
    x,
    shape,
    x.shape.map((_, i) => i + off),
  );
}

/** @internal Converts operands to their promoted dtype (JS numbers become constants of that dtype). */
export function promoteOnly(op: string, args: readonly ArrayLike[]): Tensor[] {
  const ts = args.map((a) => (typeof a === "number" ? null : toTensor(a, op)));
  const inputs = args.map((a, i) =>
    ts[i] === null
      ? { dtype: numberDType(a as number), weak: true }
      : { dtype: ts[i]!.dtype, weak: ts[i]!.weakType },
  );
  const { dtype, weak } = promoteTypes(inputs);
  return args.map((a, i) => {
    const t = ts[i];
    if (t === null) return scalar(a as number, dtype, true);
    return t!.dtype === dtype ? t! : lax.convertElementType(t!, dtype, weak);
  });
}

/** @internal Promotes then broadcasts operands to a common shape; errors name `op` and the argument. */
export function promote(op: string, args: readonly ArrayLike[]): Tensor[] {
  const ts = promoteOnly(op, args);
  const shape = broadcastShapes(op, ...ts.map((t) => t.shape));
  return ts.map((t) => broadcastToShape(t, shape));
}

/** @internal Coerces one operand; integer and bool operands become float32 (weakness kept). */
export function toFloat(x: ArrayLike, op: string): Tensor {
  const t = toTensor(x, op);
  return isFloat(t.dtype) ? t : lax.convertElementType(t, "float32", t.weakType);
}

function zerosAs(t: Tensor): Tensor {
  return lax.scalarLike(0, t);
}

const floatUnary =
  (op: string, f: (t: Tensor) => Tensor) =>
  (x: ArrayLike): Tensor =>
    f(toFloat(x, op));

/** `x + y`, broadcasting and promoting. @example `np.add([1, 2], 1)` */
export const add = (x: ArrayLike, y: ArrayLike): Tensor => {
  const [a, b] = promote("add", [x, y]);
  return lax.add(a!, b!);
};
/** `x - y`. @example `np.subtract(x, 1)` */
export const subtract = (x: ArrayLike, y: ArrayLike): Tensor => {
  const [a, b] = promote("subtract", [x, y]);
  return lax.sub(a!, b!);
};
/** `x * y`. @example `np.multiply(x, 2)` */
export const multiply = (x: ArrayLike, y: ArrayLike): Tensor => {
  const [a, b] = promote("multiply", [x, y]);
  return lax.mul(a!, b!);
};
/** True division: integer operands give float32. @example `np.divide(1, 2).item(); // 0.5` */
export const divide = (x: ArrayLike, y: ArrayLike): Tensor => {
  let [a, b] = promote("divide", [x, y]);
  if (!isFloat(a!.dtype)) {
    a = lax.convertElementType(a!, "float32", a!.weakType);
    b = lax.convertElementType(b!, "float32", b!.weakType);
  }
  return lax.div(a!, b!);
};
/** Division rounded toward −∞. @example `np.floorDivide(-7, 2).item(); // -4` */
export const floorDivide = (x: ArrayLike, y: ArrayLike): Tensor => {
  const [a, b] = promote("floorDivide", [x, y]);
  if (isFloat(a!.dtype)) return lax.floor(lax.div(a!, b!));
  if (a!.dtype === "bool") throw new DTypeError(`does not accept ${avalToString(a!.aval)}`, "floorDivide");
  // Truncated quotient, minus one where the remainder is non-zero and its sign differs from b's.
  const q = lax.div(a!, b!);
  const r = lax.rem(a!, b!);
  const z = zerosAs(r);
  const fix = lax.and(lax.ne(r, z), lax.ne(lax.lt(r, z), lax.lt(b!, z)));
  return lax.select(fix, lax.sub(q, lax.scalarLike(1, q)), q);
};
/** Remainder with the sign of the divisor, as NumPy's `mod`. @example `np.mod(-7, 3).item(); // 2` */
export const mod = (x: ArrayLike, y: ArrayLike): Tensor => {
  const [a, b] = promote("mod", [x, y]);
  if (a!.dtype === "bool") throw new DTypeError(`does not accept ${avalToString(a!.aval)}`, "mod");
  const r = lax.rem(a!, b!);
  const z = zerosAs(r);
  const fix = lax.and(lax.ne(r, z), lax.ne(lax.lt(r, z), lax.lt(b!, z)));
  return lax.select(fix, lax.add(r, b!), r);
};
/**
 * `x ** y`. A JS integer exponent uses `integer_pow` (exact, and differentiable at x = 0).
 *
 * @example
 * ```ts
 * np.power(np.array([2, 3]), 2).toArray(); // [4, 9]
 * ```
 */
export const power = (x: ArrayLike, y: ArrayLike): Tensor => {
  if (typeof y === "number" && Number.isInteger(y) && Math.abs(y) <= 64) {
    const t = toTensor(x, "power");
    if (t.dtype === "bool") throw new DTypeError(`does not accept ${avalToString(t.aval)}`, "power");
    if (y >= 0 || isFloat(t.dtype)) return lax.integerPow(t, y);
  }
  const [a, b] = promote("power", [x, y]);
  if (isFloat(a!.dtype)) return lax.pow(a!, b!);
  // Integer powers with tensor exponents are computed in float64, which is exact in int32's range.
  const f = (t: Tensor) => lax.convertElementType(t, "float64", t.weakType);
  return lax.convertElementType(lax.round(lax.pow(f(a!), f(b!))), a!.dtype, a!.weakType);
};
/** `-x`. @example `np.negative([1, -2])` */
export const negative = (x: ArrayLike): Tensor => lax.neg(toTensor(x, "negative"));
/** Elementwise maximum (NaN propagates). @example `np.maximum(x, 0)` */
export const maximum = (x: ArrayLike, y: ArrayLike): Tensor => {
  const [a, b] = promote("maximum", [x, y]);
  return a!.dtype === "bool" ? lax.or(a!, b!) : lax.max(a!, b!);
};
/** Elementwise minimum (NaN propagates). @example `np.minimum(x, 1)` */
export const minimum = (x: ArrayLike, y: ArrayLike): Tensor => {
  const [a, b] = promote("minimum", [x, y]);
  return a!.dtype === "bool" ? lax.and(a!, b!) : lax.min(a!, b!);
};

/** `e^x`. @example `np.exp(0).item(); // 1` */
export const exp = floatUnary("exp", lax.exp);
/** Natural logarithm. @example `np.log(1).item(); // 0` */
export const log = floatUnary("log", lax.log);
/** `log(1 + x)`, accurate for small x. @example `np.log1p(1e-10)` */
export const log1p = floatUnary("log1p", lax.log1p);
/** `e^x - 1`, accurate for small x. @example `np.expm1(1e-10)` */
export const expm1 = floatUnary("expm1", lax.expm1);
/** Square root. @example `np.sqrt(4).item(); // 2` */
export const sqrt = floatUnary("sqrt", lax.sqrt);
/** `1 / sqrt(x)`. @example `np.rsqrt(4).item(); // 0.5` */
export const rsqrt = floatUnary("rsqrt", lax.rsqrt);
/** Hyperbolic tangent. @example `np.tanh(0)` */
export const tanh = floatUnary("tanh", lax.tanh);
/** Sine. @example `np.sin(0)` */
export const sin = floatUnary("sin", lax.sin);
/** Cosine. @example `np.cos(0)` */
export const cos = floatUnary("cos", lax.cos);
/** Error function. @example `np.erf(0)` */
export const erf = floatUnary("erf", lax.erf);

/** Absolute value (bool unchanged). @example `np.abs([-1, 2])` */
export const abs = (x: ArrayLike): Tensor => {
  const t = toTensor(x, "abs");
  return t.dtype === "bool" || t.dtype === "uint32" ? t : lax.abs(t);
};
/** −1, 0 or 1 (NaN stays NaN). @example `np.sign([-3, 0, 2])` */
export const sign = (x: ArrayLike): Tensor => {
  const t = toTensor(x, "sign");
  return t.dtype === "bool" ? t : lax.sign(t);
};
const roundLike =
  (op: string, f: (t: Tensor) => Tensor) =>
  (x: ArrayLike): Tensor => {
    const t = toTensor(x, op);
    return isFloat(t.dtype) ? f(t) : t;
  };
/** Rounds toward −∞ (integers unchanged). @example `np.floor(1.5)` */
export const floor = roundLike("floor", lax.floor);
/** Rounds toward +∞. @example `np.ceil(1.5)` */
export const ceil = roundLike("ceil", lax.ceil);
/** Rounds half to even, as `jnp.round`. @example `np.round(2.5).item(); // 2` */
export const round = roundLike("round", lax.round);
/** `x * x`. @example `np.square(3)` */
export const square = (x: ArrayLike): Tensor => {
  const t = toTensor(x, "square");
  return t.dtype === "bool" ? t : lax.integerPow(t, 2);
};
/** `1 / x` (integers give float32). @example `np.reciprocal(4).item(); // 0.25` */
export const reciprocal = (x: ArrayLike): Tensor => {
  const t = toFloat(x, "reciprocal");
  return lax.div(lax.scalarLike(1, t), t);
};
/**
 * Limits values to `[lo, hi]`; either bound may be null.
 *
 * @example
 * ```ts
 * np.clip([-1, 0.5, 2], 0, 1).toArray(); // [0, 0.5, 1]
 * ```
 */
export function clip(x: ArrayLike, lo: ArrayLike | null = null, hi: ArrayLike | null = null): Tensor {
  let t = toTensor(x, "clip");
  if (lo !== null) t = maximum(t, lo);
  if (hi !== null) t = minimum(t, hi);
  return t;
}

/** @internal Coerces a condition to bool (non-zero is true). */
export function toBool(x: ArrayLike, op: string): Tensor {
  const t = toTensor(x, op);
  return t.dtype === "bool" ? t : lax.ne(t, lax.scalarLike(0, t));
}

/**
 * Picks `x` where `cond` holds and `y` elsewhere, broadcasting all three.
 *
 * @example
 * ```ts
 * np.where(np.greater(x, 0), x, 0);
 * ```
 */
export function where(cond: ArrayLike, x: ArrayLike, y: ArrayLike): Tensor {
  const c = toBool(cond, "where");
  const [a, b] = promoteOnly("where", [x, y]);
  const shape = broadcastShapes("where", c.shape, a!.shape, b!.shape);
  return lax.select(broadcastToShape(c, shape), broadcastToShape(a!, shape), broadcastToShape(b!, shape));
}

/** True where `x` is NaN. @example `np.isnan([NaN, 1])` */
export function isnan(x: ArrayLike): Tensor {
  const t = toTensor(x, "isnan");
  // Only NaN differs from itself; integers never do.
  return lax.ne(t, t);
}
/** True where `x` is neither infinite nor NaN. @example `np.isfinite([Infinity, 1])` */
export function isfinite(x: ArrayLike): Tensor {
  const t = toTensor(x, "isfinite");
  return isFloat(t.dtype) ? lax.isFiniteLax(t) : lax.eq(t, t);
}
/**
 * `log(e^x + e^y)` without overflow: `max + log1p(e^{-|x-y|})`.
 *
 * @example
 * ```ts
 * np.logaddexp(1000, 1000).item(); // 1000.693...
 * ```
 */
export function logaddexp(x: ArrayLike, y: ArrayLike): Tensor {
  let [a, b] = promote("logaddexp", [x, y]);
  if (!isFloat(a!.dtype)) {
    a = lax.convertElementType(a!, "float32", a!.weakType);
    b = lax.convertElementType(b!, "float32", b!.weakType);
  }
  const amax = lax.max(a!, b!);
  const delta = lax.sub(a!, b!);
  // Equal infinities give NaN in delta; their sum is then the right answer (±inf).
  return lax.select(
    lax.ne(delta, delta),
    lax.add(a!, b!),
    lax.add(amax, lax.log1p(lax.exp(lax.neg(lax.abs(delta))))),
  );
}

const comparison =
  (op: string, f: (a: Tensor, b: Tensor) => Tensor) =>
  (x: ArrayLike, y: ArrayLike): Tensor => {
    const [a, b] = promote(op, [x, y]);
    return f(a!, b!);
  };
/** `x > y`. @example `np.greater(x, 0)` */
export const greater = comparison("greater", lax.gt);
/** `x >= y`. @example `np.greaterEqual(x, 0)` */
export const greaterEqual = comparison("greaterEqual", lax.ge);
/** `x < y`. @example `np.less(x, 0)` */
export const less = comparison("less", lax.lt);
/** `x <= y`. @example `np.lessEqual(x, 0)` */
export const lessEqual = comparison("lessEqual", lax.le);
/** `x == y`. @example `np.equal(x, 0)` */
export const equal = comparison("equal", lax.eq);
/** `x != y`. @example `np.notEqual(x, 0)` */
export const notEqual = comparison("notEqual", lax.ne);

/** Logical and (non-zero is true). @example `np.logicalAnd(a, b)` */
export function logicalAnd(x: ArrayLike, y: ArrayLike): Tensor {
  const [a, b] = promote("logicalAnd", [toBool(x, "logicalAnd"), toBool(y, "logicalAnd")]);
  return lax.and(a!, b!);
}
/** Logical or. @example `np.logicalOr(a, b)` */
export function logicalOr(x: ArrayLike, y: ArrayLike): Tensor {
  const [a, b] = promote("logicalOr", [toBool(x, "logicalOr"), toBool(y, "logicalOr")]);
  return lax.or(a!, b!);
}
/** Logical not. @example `np.logicalNot(a)` */
export function logicalNot(x: ArrayLike): Tensor {
  return lax.not(toBool(x, "logicalNot"));
}
