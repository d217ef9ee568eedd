/**
 * `random`: JAX's counter-based PRNG on raw uint32 keys of shape [2] (as `jax.random.PRNGKey`).
 *
 * Bit-exact with JAX >= 0.5 under its DEFAULT configuration: `jax_threefry_partitionable=True`
 * (the default since JAX 0.5.0) and `jax_enable_x64=False`. So `split(key, n)[i] == foldIn(key, i)`
 * (both hash the 64-bit counter (0, i)), and `bits(key, shape)` hashes the row-major flat index of
 * each element as the counter pair (hi, lo) and returns `y1 ^ y2`. Floats take the top mantissa bits
 * (`bits >>> 9 | 0x3f800000` viewed as float32, minus 1). float64 draws follow JAX with x64 enabled
 * (64 bits = `y1 << 32 | y2`). `normal` uses XLA's float32 erf_inv polynomial, so it agrees with
 * JAX to an ulp or two (libm `log1p` and fused multiply-adds may round differently).
 *
 * Everything is written with lax-level operations (which bind), so keys may be traced: the
 * functions compose with jvp, vmap and staging; only shapes must be static. (`choice` with `p`
 * and replacement, and `truncatedNormal`'s bounds, need concrete values.)
 */
import { type DType, isFloat, isInteger } from "./dtype.js";
import { DTypeError, fmtShape, ShapeError, TsjaxError } from "./errors.js";
import {
  add,
  convertElementType,
  div,
  eq,
  erf,
  exp,
  gt,
  le,
  log,
  log1p,
  lt,
  max,
  min,
  mul,
  neg,
  or,
  rem,
  select,
  shiftRightLogical,
  sqrt,
  sub,
  xor,
} from "./primitives/elementwise.js";
import { concatenate, slice } from "./primitives/indexing.js";
import { bitcastConvertType, threefry2x32 as hash2x32 } from "./primitives/random.js";
import { argmax, reduceSum } from "./primitives/reduce.js";
import { sort } from "./primitives/sort.js";
import { broadcastInDim, reshape } from "./primitives/structural.js";
import { filled } from "./primitives/util.js";
import { broadcastShapes, checkShape, normalizeAxis, sizeOf } from "./shape.js";
import { avalToString, Tensor } from "./tensor.js";
import { Tracer } from "./trace.js";

/** A PRNG key: a uint32 tensor of shape [2]. */
export type PRNGKeyArray = Tensor;

/** Raised in debug mode (`setDebugKeyReuse(true)`) when a concrete key is consumed twice. */
export class KeyReuseError extends TsjaxError {}

let debugKeyReuse = false;
let consumed = new WeakSet<Tensor>();

/**
 * Turns key-reuse checking on or off (off by default). When on, every random function that consumes
 * a concrete key (`split`, `foldIn`, `bits`, `uniform`, …) marks it, and a second use raises
 * `KeyReuseError`. Traced keys are not checked.
 *
 * @example
 * ```ts
 * random.setDebugKeyReuse(true);
 * ```
 */
export function setDebugKeyReuse(on: boolean): void {
  debugKeyReuse = on;
  consumed = new WeakSet<Tensor>();
}

function checkKey(key: unknown, op: string): Tensor {
  if (!(key instanceof Tensor))
    throw new DTypeError(`expected a PRNG key (uint32 tensor of shape [2]), got ${String(key)}`, op);
  if (key.dtype !== "uint32" || key.ndim !== 1 || key.shape[0] !== 2) {
    throw new DTypeError(
      `expected a PRNG key (uint32 tensor of shape [2]), got ${avalToString(key.aval)}`,
      op,
    );
  }
  return key;
}

/** Validates `key` and, in debug mode, records that it has been used. */
function consume(key: unknown, op: string): Tensor {
  const k = checkKey(key, op);
  if (debugKeyReuse && !(k instanceof Tracer)) {
    if (consumed.has(k)) {
      throw new KeyReuseError("this PRNG key was already consumed; split it and use each subkey once", op);
    }
    consumed.add(k);
  }
  return k;
}

// ---------------------------------------------------------------------------------------------
// Helpers on uint32 words.

function u32(shape: readonly number[], values: ArrayLike<number>): Tensor {
  return Tensor._fromBuffer([...shape], "uint32", Uint32Array.from(values as ArrayLike<number>));
}

/** The two words of a key as rank-0 tensors. */
function keyWords(key: Tensor): [Tensor, Tensor] {
  if (key._buf !== null && !(key instanceof Tracer)) {
    return [u32([], [key._buf[0]!]), u32([], [key._buf[1]!])];
  }
  return [reshape(slice(key, [0], [1]), []), reshape(slice(key, [1], [2]), [])];
}

/** `[...a.shape, 2]` holding `a` and `b` in the last axis (`jnp.stack([a, b], axis=a.ndim)`). */
function stackLast(a: Tensor, b: Tensor): Tensor {
  const s = [...a.shape, 1];
  return concatenate([reshape(a, s), reshape(b, s)], a.ndim);
}

/**
 * Hashes the 64-bit row-major index of every element of `shape` (JAX's `iota_2x32_shape`) with the
 * key: the core of partitionable `split` and `random_bits`.
 */
function hashShape(key: Tensor, shape: readonly number[]): [Tensor, Tensor] {
  const [k1, k2] = keyWords(key);
  const n = sizeOf(shape);
  if (n > 2 ** 32)
    throw new ShapeError(
      `cannot draw more than 2^32 values at once, got shape ${fmtShape(shape)}`,
      "random_bits",
    );
  const lo = new Uint32Array(n);
  for (let i = 0; i < n; i++) lo[i] = i;
  const hi = Tensor._zeros([...shape], "uint32");
  const bk1 = broadcastInDim(k1, shape, []);
  const bk2 = broadcastInDim(k2, shape, []);
  return hash2x32(bk1, bk2, hi, Tensor._fromBuffer([...shape], "uint32", lo));
}

function checkShapeArg(shape: unknown, op: string): number[] {
  return checkShape(shape, op);
}

/** A JS number or tensor as an array of `dtype`, broadcast (NumPy rules) to `shape`. */
function asArray(
  v: number | Tensor,
  dtype: DType,
  shape: readonly number[],
  op: string,
  name: string,
): Tensor {
  if (typeof v === "number") return filled(shape, dtype, v);
  const out = broadcastShapes(`${op} (${name})`, shape, v.shape);
  if (out.length !== shape.length || out.some((d, i) => d !== shape[i])) {
    throw new ShapeError(
      `${name} of shape ${fmtShape(v.shape)} does not broadcast to the requested shape ${fmtShape(shape)}`,
      op,
    );
  }
  const x = v.dtype === dtype ? v : convertElementType(v, dtype);
  return broadcastInDim(
    x,
    shape,
    x.shape.map((_, i) => i + shape.length - x.ndim),
  );
}

function checkFloatDType(dtype: DType, op: string): void {
  if (!isFloat(dtype)) throw new DTypeError(`dtype must be float32 or float64, got ${dtype}`, op);
}

// ---------------------------------------------------------------------------------------------
// Keys.

/**
 * A PRNG key from an integer seed, as `jax.random.PRNGKey(seed)` with x64 disabled (JAX's default):
 * `[0, seed mod 2^32]`, so `key(-1)` is `[0, 4294967295]`.
 *
 * @example
 * ```ts
 * const k = random.key(0); // uint32 [0, 0]
 * ```
 */
export function key(seed: number): PRNGKeyArray {
  if (typeof seed !== "number" || !Number.isInteger(seed))
    throw new DTypeError(`seed must be an integer, got ${String(seed)}`, "key");
  return u32([2], [0, seed >>> 0]);
}

/** Alias of `key` (JAX's legacy name). @example `const k = random.PRNGKey(42);` */
export const PRNGKey = key;

/**
 * JAX's `threefry_2x32(keypair, count)`: hashes the first half of `count` against its second half
 * (an odd count is padded with one zero word, dropped afterwards). Returns a uint32 array shaped
 * like `count`.
 *
 * @example
 * ```ts
 * random.threefry2x32(random.key(0), np.array([0, 0], { dtype: "uint32" }));
 * ```
 */
export function threefry2x32(keypair: Tensor, count: Tensor): Tensor {
  const k = checkKey(keypair, "threefry2x32");
  if (count.dtype !== "uint32")
    throw new DTypeError(`count must be uint32, got ${avalToString(count.aval)}`, "threefry2x32");
  const n = count.size;
  const [k1, k2] = keyWords(k);
  if (count instanceof Tracer || count._buf === null) {
    // An odd count gets one zero word appended, dropped again from the output (as JAX does).
    const odd = n % 2;
    const flat = odd ? concatenate([reshape(count, [n]), u32([1], [0])], 0) : reshape(count, [n]);
    const m = (n + odd) / 2;
    const x1 = slice(flat, [0], [m]);
    const x2 = slice(flat, [m], [2 * m]);
    const [y1, y2] = hash2x32(broadcastInDim(k1, [m], []), broadcastInDim(k2, [m], []), x1, x2);
    const out = concatenate([y1, y2], 0);
    return reshape(odd ? slice(out, [0], [n]) : out, count.shape);
  }
  const flat = Array.from(count._buf);
  if (n % 2 !== 0) flat.push(0);
  const m = flat.length / 2;
  const [y1, y2] = hash2x32(
    broadcastInDim(k1, [m], []),
    broadcastInDim(k2, [m], []),
    u32([m], flat.slice(0, m)),
    u32([m], flat.slice(m)),
  );
  const out = new Uint32Array(2 * m);
  out.set(y1._concrete("threefry2x32"));
  out.set(y2._concrete("threefry2x32"), m);
  return Tensor._fromBuffer(count.shape, "uint32", out.slice(0, n));
}

/**
 * Splits a key into `num` new keys (or a shape of keys), as `jax.random.split`: returns
 * `[...shape, 2]`.
 *
 * @example
 * ```ts
 * const keys = random.split(random.key(0)); // [2, 2]
 * ```
 */
export function split(key: Tensor, num: number | number[] = 2): Tensor {
  const k = consume(key, "split");
  const shape = checkShapeArg(typeof num === "number" ? [num] : num, "split");
  return splitRaw(k, shape);
}

function splitRaw(key: Tensor, shape: readonly number[]): Tensor {
  const [b1, b2] = hashShape(key, shape);
  return stackLast(b1, b2);
}

/** The i-th child of `split(key)`: partitionable Threefry makes it `foldIn(key, i)`. */
function child(key: Tensor, i: number): Tensor {
  const [k1, k2] = keyWords(key);
  const [y1, y2] = hash2x32(k1, k2, u32([], [0]), u32([], [i >>> 0]));
  return stackLast(y1, y2);
}

/**
 * Folds an integer into a key (`jax.random.fold_in`): a new key that depends on both.
 *
 * @example
 * ```ts
 * const k = random.foldIn(random.key(0), 7);
 * ```
 */
export function foldIn(key: Tensor, data: number | Tensor): Tensor {
  const k = consume(key, "foldIn");
  if (typeof data === "number") {
    if (!Number.isInteger(data)) throw new DTypeError(`data must be an integer, got ${data}`, "foldIn");
    return child(k, data);
  }
  if (!isInteger(data.dtype) || data.ndim !== 0)
    throw new DTypeError(`data must be an integer scalar, got ${avalToString(data.aval)}`, "foldIn");
  const d = data.dtype === "uint32" ? data : bitcastConvertType(data, "uint32");
  const [k1, k2] = keyWords(k);
  const [y1, y2] = hash2x32(k1, k2, u32([], [0]), d);
  return stackLast(y1, y2);
}

// ---------------------------------------------------------------------------------------------
// Bits and uniform floats.

/**
 * Random uint32 bits of `shape` (`jax.random.bits`).
 *
 * @example
 * ```ts
 * random.bits(random.key(0), [4]); // uint32 [4]
 * ```
 */
export function bits(key: Tensor, shape: number[] = []): Tensor {
  const k = consume(key, "bits");
  return bitsRaw(k, checkShapeArg(shape, "bits"));
}

function bitsRaw(key: Tensor, shape: readonly number[]): Tensor {
  const [b1, b2] = hashShape(key, shape);
  return xor(b1, b2);
}

/** Floats in [0, 1) from the top mantissa bits. */
function unitFloats(key: Tensor, shape: readonly number[], dtype: DType): Tensor {
  if (dtype === "float32") {
    const b = bitsRaw(key, shape);
    const mant = or(shiftRightLogical(b, filled(shape, "uint32", 9)), filled(shape, "uint32", 0x3f800000));
    return sub(bitcastConvertType(mant, "float32"), filled(shape, "float32", 1));
  }
  // float64: the 64 bits y1:y2, top 52 as mantissa; hi·2^-32 + (lo >>> 12)·2^-52 is that value exactly.
  const [hi, lo] = hashShape(key, shape);
  const fhi = mul(convertElementType(hi, "float64"), filled(shape, "float64", 2 ** -32));
  const flo = mul(
    convertElementType(shiftRightLogical(lo, filled(shape, "uint32", 12)), "float64"),
    filled(shape, "float64", 2 ** -52),
  );
  return add(fhi, flo);
}

function uniformRaw(
  key: Tensor,
  shape: readonly number[],
  dtype: DType,
  minval: number | Tensor,
  maxval: number | Tensor,
  op: string,
): Tensor {
  checkFloatDType(dtype, op);
  const lo = asArray(minval, dtype, shape, op, "minval");
  const hi = asArray(maxval, dtype, shape, op, "maxval");
  const f = unitFloats(key, shape, dtype);
  return max(lo, add(mul(f, sub(hi, lo)), lo));
}

/**
 * Uniform floats in [minval, maxval) (`jax.random.uniform`).
 *
 * @example
 * ```ts
 * random.uniform(random.key(0), [3]); // float32 [3] in [0, 1)
 * ```
 */
export function uniform(
  key: Tensor,
  shape: number[] = [],
  dtype: DType = "float32",
  minval: number | Tensor = 0,
  maxval: number | Tensor = 1,
): Tensor {
  const k = consume(key, "uniform");
  return uniformRaw(k, checkShapeArg(shape, "uniform"), dtype, minval, maxval, "uniform");
}

// ---------------------------------------------------------------------------------------------
// erf_inv, as XLA computes it (float32: M. Giles' single-precision polynomial).

const ERFINV_SMALL = [
  2.81022636e-8, 3.43273939e-7, -3.5233877e-6, -4.39150654e-6, 0.00021858087, -0.00125372503, -0.00417768164,
  0.246640727, 1.50140941,
];
const ERFINV_LARGE = [
  -0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
  1.00167406, 2.83297682,
];

/** The inverse error function on (-1, 1), elementwise; ±1 map to ±infinity. */
export function erfInv(x: Tensor): Tensor {
  const dtype = x.dtype;
  const shape = x.shape;
  const c = (v: number) => filled(shape, dtype, v);
  const w0 = neg(log1p(neg(mul(x, x))));
  const small = lt(w0, c(5));
  const w = select(small, sub(w0, c(2.5)), sub(sqrt(w0), c(3)));
  let p = select(small, c(ERFINV_SMALL[0]!), c(ERFINV_LARGE[0]!));
  for (let i = 1; i < ERFINV_SMALL.length; i++) {
    p = add(select(small, c(ERFINV_SMALL[i]!), c(ERFINV_LARGE[i]!)), mul(p, w));
  }
  let r = mul(p, x);
  if (dtype === "float64") {
    // Two Newton steps on erf(r) = x lift the float32-accurate guess to float64 accuracy.
    const k = c(2 / Math.sqrt(Math.PI));
    for (let i = 0; i < 2; i++) {
      const step = div(sub(erf(r), x), mul(k, exp(neg(mul(r, r)))));
      r = select(lt(abs1(x), c(1)), sub(r, step), r);
    }
  }
  const isOne = eq(abs1(x), c(1));
  return select(isOne, mul(x, c(Infinity)), r);
}

function abs1(x: Tensor): Tensor {
  return max(x, neg(x));
}

// ---------------------------------------------------------------------------------------------
// Distributions.

function nextafterToZeroFromMinus1(dtype: DType): number {
  return dtype === "float32" ? -(1 - 2 ** -24) : -(1 - 2 ** -53);
}

/**
 * Standard normal samples (`jax.random.normal`): `sqrt(2) · erf_inv(u)` with `u` uniform in (-1, 1).
 *
 * @example
 * ```ts
 * random.normal(random.key(0), [2, 3]);
 * ```
 */
export function normal(key: Tensor, shape: number[] = [], dtype: DType = "float32"): Tensor {
  const k = consume(key, "normal");
  const s = checkShapeArg(shape, "normal");
  checkFloatDType(dtype, "normal");
  const u = uniformRaw(k, s, dtype, nextafterToZeroFromMinus1(dtype), 1, "normal");
  return mul(filled(s, dtype, Math.SQRT2), erfInv(u));
}

/**
 * Bernoulli samples with probability `p` (`jax.random.bernoulli`): a bool array.
 *
 * @example
 * ```ts
 * random.bernoulli(random.key(0), 0.3, [10]);
 * ```
 */
export function bernoulli(key: Tensor, p: number | Tensor = 0.5, shape?: number[]): Tensor {
  const k = consume(key, "bernoulli");
  const pShape = typeof p === "number" ? [] : [...p.shape];
  const s = shape === undefined ? pShape : checkShapeArg(shape, "bernoulli");
  const dtype: DType = typeof p !== "number" && isFloat(p.dtype) ? p.dtype : "float32";
  const u = uniformRaw(k, s, dtype, 0, 1, "bernoulli");
  return lt(u, asArray(p, dtype, s, "bernoulli", "p"));
}

function tiny(dtype: DType): number {
  return dtype === "float32" ? 2 ** -126 : 2 ** -1022;
}

function gumbelRaw(key: Tensor, shape: readonly number[], dtype: DType): Tensor {
  const u = uniformRaw(key, shape, dtype, tiny(dtype), 1, "gumbel");
  return neg(log(neg(log(u))));
}

/**
 * Standard Gumbel samples (`jax.random.gumbel`, mode "low"): `-log(-log(u))`.
 *
 * @example
 * ```ts
 * random.gumbel(random.key(0), [5]);
 * ```
 */
export function gumbel(key: Tensor, shape: number[] = [], dtype: DType = "float32"): Tensor {
  const k = consume(key, "gumbel");
  checkFloatDType(dtype, "gumbel");
  return gumbelRaw(k, checkShapeArg(shape, "gumbel"), dtype);
}

/**
 * Samples category indices from unnormalised log-probabilities along `axis` (the Gumbel-max trick,
 * as `jax.random.categorical`). `shape` defaults to the logits' shape without `axis`; a longer
 * shape adds leading sample dimensions.
 *
 * @example
 * ```ts
 * random.categorical(random.key(0), np.array([0, 1, 2]));
 * ```
 */
export function categorical(key: Tensor, logits: Tensor, axis = -1, shape?: number[]): Tensor {
  const k = consume(key, "categorical");
  checkFloatDType(logits.dtype, "categorical");
  const ax = normalizeAxis(axis, logits.ndim, "categorical");
  const batchShape = logits.shape.filter((_, i) => i !== ax);
  const s = shape === undefined ? batchShape : checkShapeArg(shape, "categorical");
  if (s.length < batchShape.length || batchShape.some((d, i) => d !== s[s.length - batchShape.length + i])) {
    throw new ShapeError(
      `shape ${fmtShape(s)} must end with the logits' batch shape ${fmtShape(batchShape)}`,
      "categorical",
    );
  }
  const prefix = s.slice(0, s.length - batchShape.length);
  const logitsShape = [...s.slice(s.length - batchShape.length)];
  logitsShape.splice(ax, 0, logits.shape[ax]!);
  const full = [...prefix, ...logitsShape];
  const g = gumbelRaw(k, full, logits.dtype);
  const l = broadcastInDim(
    logits,
    full,
    logits.shape.map((_, i) => i + prefix.length),
  );
  return argmax(add(g, l), ax + prefix.length);
}

/**
 * Uniform random integers in [minval, maxval) (`jax.random.randint`), with JAX's double-width
 * remainder construction.
 *
 * @example
 * ```ts
 * random.randint(random.key(0), [5], 0, 10); // int32 [5]
 * ```
 */
export function randint(
  key: Tensor,
  shape: number[],
  minval: number | Tensor,
  maxval: number | Tensor,
  dtype: DType = "int32",
): Tensor {
  const k = consume(key, "randint");
  return randintRaw(k, checkShapeArg(shape, "randint"), minval, maxval, dtype);
}

function randintRaw(
  key: Tensor,
  shape: readonly number[],
  minval: number | Tensor,
  maxval: number | Tensor,
  dtype: DType,
): Tensor {
  if (dtype !== "int32" && dtype !== "uint32")
    throw new DTypeError(`dtype must be int32 or uint32, got ${dtype}`, "randint");
  const [lo, hi] = dtype === "int32" ? [-2147483648, 2147483647] : [0, 4294967295];
  const clip = (v: number) => Math.min(hi, Math.max(lo, Math.trunc(v)));
  // maxval beyond the dtype's range: the span must be one larger than representable (JAX's flag).
  const outOfRange = typeof maxval === "number" && maxval > hi;
  const minT =
    typeof minval === "number"
      ? filled(shape, dtype, clip(minval))
      : asArray(toIntDType(minval, dtype), dtype, shape, "randint", "minval");
  const maxT =
    typeof maxval === "number"
      ? filled(shape, dtype, clip(maxval))
      : asArray(toIntDType(maxval, dtype), dtype, shape, "randint", "maxval");
  const higher = bitsRaw(child(key, 0), shape);
  const lower = bitsRaw(child(key, 1), shape);
  const c = (v: number) => filled(shape, "uint32", v);
  let span = bitcastConvertType(sub(maxT, minT), "uint32");
  span = select(le(maxT, minT), c(1), span);
  if (outOfRange) span = select(gt(maxT, minT), add(span, c(1)), span);
  let multiplier = rem(c(2 ** 16), span);
  multiplier = rem(mul(multiplier, multiplier), span);
  let offset = add(mul(rem(higher, span), multiplier), rem(lower, span));
  offset = rem(offset, span);
  return add(minT, bitcastConvertType(offset, dtype));
}

function toIntDType(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  if ((x.dtype === "int32" || x.dtype === "uint32") && (dtype === "int32" || dtype === "uint32"))
    return bitcastConvertType(x, dtype);
  return convertElementType(x, dtype);
}

/** Sort-based shuffle along `axis`, JAX's `_shuffle`: ceil(3·ln(size)/ln(2^32 − 1)) rounds. */
function shuffle(key: Tensor, x: Tensor, axis: number): Tensor {
  const numRounds = Math.ceil((3 * Math.log(Math.max(1, x.size))) / Math.log(4294967295));
  let k = key;
  for (let r = 0; r < numRounds; r++) {
    const sub_ = child(k, 1);
    k = child(k, 0);
    const sortKeys = bitsRaw(sub_, x.shape);
    x = sort([sortKeys, x], axis, 1)[1]!;
  }
  return x;
}

/**
 * A random permutation of `arange(n)`, or of `x` along `axis` (`jax.random.permutation`); with
 * `independent`, each slice along the other axes is shuffled independently.
 *
 * @example
 * ```ts
 * random.permutation(random.key(0), 5); // int32 [5], a permutation of 0..4
 * ```
 */
export function permutation(key: Tensor, x: number | Tensor, axis = 0, independent = false): Tensor {
  const k = consume(key, "permutation");
  if (typeof x === "number") {
    if (!Number.isInteger(x) || x < 0)
      throw new DTypeError(`n must be a non-negative integer, got ${x}`, "permutation");
    return shuffle(k, arange(x), 0);
  }
  if (x.ndim === 0) throw new ShapeError("x must be an array of rank >= 1 or an integer", "permutation");
  const ax = normalizeAxis(axis, x.ndim, "permutation");
  if (independent || x.ndim === 1) return shuffle(k, x, ax);
  // One shared permutation, as JAX: ind = shuffle(arange(n)), then take(x, ind, axis).
  // take(x, ind, axis) = sorting x by the inverse permutation, itself argsort(ind).
  const n = x.shape[ax]!;
  const ind = shuffle(k, arange(n), 0);
  const inverse = sort([ind, arange(n)], 0, 1)[1]!;
  return sort([broadcastInDim(inverse, x.shape, [ax]), x], ax, 1)[1]!;
}

function arange(n: number): Tensor {
  const buf = new Int32Array(n);
  for (let i = 0; i < n; i++) buf[i] = i;
  return Tensor._fromBuffer([n], "int32", buf);
}

/** `take(a, ind)` along a 1-D `a` as a one-hot select and sum, so traced indices need no gather. */
function takeOneHot(a: Tensor, ind: Tensor): Tensor {
  const n = a.shape[0]!;
  const s = ind.shape;
  const full = [...s, n];
  const mask = eq(
    broadcastInDim(
      ind,
      full,
      s.map((_, i) => i),
    ),
    broadcastInDim(arange(n), full, [s.length]),
  );
  const vals = broadcastInDim(a, full, [s.length]);
  return reduceSum(select(mask, vals, Tensor._zeros(full, a.dtype)), [s.length]);
}

/**
 * Samples from `a` (a 1-D array, or `arange(a)` for an integer) with or without replacement,
 * uniformly or with probabilities `p` (`jax.random.choice`).
 *
 * @example
 * ```ts
 * random.choice(random.key(0), 10, [3], false); // 3 distinct ints in [0, 10)
 * ```
 */
export function choice(
  key: Tensor,
  a: number | Tensor,
  shape: number[] = [],
  replace = true,
  p?: Tensor | number[],
): Tensor {
  const k = consume(key, "choice");
  const s = checkShapeArg(shape, "choice");
  if (typeof a !== "number" && a.ndim !== 1)
    throw new ShapeError(`a must be an integer or a 1-D array, got shape ${fmtShape(a.shape)}`, "choice");
  const nInputs = typeof a === "number" ? a : a.shape[0]!;
  const nDraws = sizeOf(s);
  const outDType: DType = typeof a === "number" ? "int32" : a.dtype;
  if (nDraws === 0) return Tensor._zeros(s, outDType);
  if (!Number.isInteger(nInputs) || nInputs <= 0)
    throw new ShapeError(`a must be non-empty, got ${nInputs}`, "choice");
  if (!replace && nDraws > nInputs) {
    throw new ShapeError(
      `cannot take ${nDraws} samples without replacement from ${nInputs} inputs`,
      "choice",
    );
  }
  const pick = (ind: Tensor) => (typeof a === "number" ? ind : takeOneHot(a, ind));
  let ind: Tensor;
  if (p === undefined) {
    if (replace) ind = randintRaw(k, s, 0, nInputs, "int32");
    else {
      const perm = shuffle(k, arange(nInputs), 0);
      ind = reshape(takeOneHot(perm, arange(nDraws)), s);
    }
  } else {
    const pT = Array.isArray(p) ? Tensor._fromBuffer([p.length], "float32", Float32Array.from(p)) : p;
    if (pT.ndim !== 1 || pT.shape[0] !== nInputs)
      throw new ShapeError(`p must have shape [${nInputs}], got ${fmtShape(pT.shape)}`, "choice");
    const pf = isFloat(pT.dtype) ? pT : convertElementType(pT, "float32");
    if (replace) {
      // Sequential cumulative sum (XLA's reduce_window order); p must be concrete here.
      const pv = pf._concrete("choice");
      const cum = pf.dtype === "float32" ? new Float32Array(nInputs) : new Float64Array(nInputs);
      let acc = 0;
      for (let i = 0; i < nInputs; i++) {
        acc = pf.dtype === "float32" ? Math.fround(acc + pv[i]!) : acc + pv[i]!;
        cum[i] = acc;
      }
      const pCuml = Tensor._fromBuffer([nInputs], pf.dtype, cum);
      const u = uniformRaw(k, s, pf.dtype, 0, 1, "choice");
      const r = mul(filled(s, pf.dtype, cum[nInputs - 1]!), sub(filled(s, pf.dtype, 1), u));
      // searchsorted(side="left") on a sorted array: the number of entries below r.
      const full = [...s, nInputs];
      const below = lt(
        broadcastInDim(pCuml, full, [s.length]),
        broadcastInDim(
          r,
          full,
          s.map((_, i) => i),
        ),
      );
      ind = reduceSum(convertElementType(below, "int32"), [s.length]);
    } else {
      // Gumbel top-k: the n_draws largest of g + log(p), ties to the lower index.
      const g = add(gumbelRaw(k, [nInputs], pf.dtype), log(pf));
      const order = sort([neg(g), arange(nInputs)], 0, 1)[1]!;
      ind = reshape(takeOneHot(order, arange(nDraws)), s);
    }
  }
  return pick(ind);
}

/**
 * Normal samples truncated to (lower, upper) (`jax.random.truncated_normal`), by inverting the CDF.
 *
 * @example
 * ```ts
 * random.truncatedNormal(random.key(0), -2, 2, [100]);
 * ```
 */
export function truncatedNormal(
  key: Tensor,
  lower: number | Tensor,
  upper: number | Tensor,
  shape?: number[],
  dtype: DType = "float32",
): Tensor {
  const k = consume(key, "truncatedNormal");
  checkFloatDType(dtype, "truncatedNormal");
  const shapeOf = (v: number | Tensor) => (typeof v === "number" ? [] : [...v.shape]);
  const s =
    shape === undefined
      ? broadcastShapes("truncatedNormal", shapeOf(lower), shapeOf(upper))
      : checkShapeArg(shape, "truncatedNormal");
  const lo = asArray(lower, dtype, s, "truncatedNormal", "lower");
  const hi = asArray(upper, dtype, s, "truncatedNormal", "upper");
  const sqrt2 = filled(s, dtype, Math.SQRT2);
  const a = erf(div(lo, sqrt2));
  const b = erf(div(hi, sqrt2));
  const u = uniformRaw(k, s, dtype, a, b, "truncatedNormal");
  const out = mul(sqrt2, erfInv(u));
  // Clamp to the open interval, as JAX does, against rounding past the bounds.
  return min(max(out, nextafter(lo, +1)), nextafter(hi, -1));
}

/** The next representable float after each element of a concrete `x` toward ±infinity. */
function nextafter(x: Tensor, direction: 1 | -1): Tensor {
  const src = x._concrete("truncatedNormal");
  const out = x.dtype === "float32" ? new Float32Array(src.length) : new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = nextafterScalar(src[i]!, direction, x.dtype);
  return Tensor._fromBuffer(x.shape, x.dtype, out);
}

function nextafterScalar(v: number, dir: 1 | -1, dtype: DType): number {
  if (Number.isNaN(v) || v === dir * Infinity) return v;
  if (dtype === "float32") {
    const f = new Float32Array([v]);
    const i = new Int32Array(f.buffer);
    if (v === 0) i[0] = dir > 0 ? 1 : 0x80000001 | 0;
    else if (v > 0 === dir > 0) i[0] = i[0]! + 1;
    else i[0] = i[0]! - 1;
    return f[0]!;
  }
  const f = new Float64Array([v]);
  const i = new BigInt64Array(f.buffer);
  if (v === 0) i[0] = dir > 0 ? 1n : -0x7fffffffffffffffn;
  else if (v > 0 === dir > 0) i[0] = i[0]! + 1n;
  else i[0] = i[0]! - 1n;
  return f[0]!;
}
