/**
 * Checkers for property tests of derivatives and transforms: finite differences in float64, the
 * jvp/vjp dot-product identity, vmap against a loop, and tolerance-aware closeness.
 */
import { type TypedArray, fromValues } from "../core/dtype.js";
import { Tensor } from "../core/tensor.js";

/** Machine epsilon of a dtype's floating-point format. */
export function epsilonOf(dtype: "float32" | "float64"): number {
  return dtype === "float32" ? 2 ** -23 : 2 ** -52;
}

/** Max absolute difference and the first index where |a - b| > atol + rtol·|b|, or null when close. */
export function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number): { index: number; a: number; b: number } | null {
  if (a.length !== b.length) return { index: -1, a: a.length, b: b.length };
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return { index: i, a: x, b: y };
  }
  return null;
}

/** Throws a readable error when two arrays differ beyond `atol + rtol·|expected|`. */
export function expectClose(actual: Tensor | ArrayLike<number>, expected: Tensor | ArrayLike<number>, rtol: number, atol: number, what = "values"): void {
  const a = actual instanceof Tensor ? actual.data() : actual;
  const b = expected instanceof Tensor ? expected.data() : expected;
  if (actual instanceof Tensor && expected instanceof Tensor) {
    const sa = actual.shape.join(",");
    const sb = expected.shape.join(",");
    if (sa !== sb) throw new Error(`${what}: shape [${sa}] != expected [${sb}]`);
  }
  const m = firstMismatch(a, b, rtol, atol);
  if (m) throw new Error(`${what}: element ${m.index}: ${m.a} vs expected ${m.b} (rtol ${rtol}, atol ${atol})`);
}

/** A float64 copy of a tensor. */
export function toFloat64(x: Tensor): Tensor {
  return Tensor._fromBuffer(x.shape, "float64", fromValues("float64", x._concrete("toFloat64")));
}

function axpy(x: Tensor, h: number, u: TypedArray): Tensor {
  const b = x._concrete("axpy");
  const out = new Float64Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b[i]! + h * u[i]!;
  return Tensor._fromBuffer(x.shape, "float64", out);
}

/**
 * Central finite difference of a scalar-or-array function along direction `u`, in float64:
 * `(f(x + h u) − f(x − h u)) / 2h`. With h = ε^(1/3)·scale the truncation error O(h²·f''') and the
 * rounding error O(ε·|f|/h) balance at about ε^(2/3) ≈ 4e-11 times the size of the derivatives.
 */
export function finiteDifference(f: (x: Tensor) => Tensor, x: Tensor, u: Tensor): { value: Float64Array; step: number } {
  const ub = u._concrete("finiteDifference");
  let scale = 1;
  for (const v of x._concrete("finiteDifference")) scale = Math.max(scale, Math.abs(v));
  const h = Math.cbrt(epsilonOf("float64")) * scale;
  const fp = f(axpy(x, h, ub))._concrete("finiteDifference");
  const fm = f(axpy(x, -h, ub))._concrete("finiteDifference");
  const value = new Float64Array(fp.length);
  for (let i = 0; i < fp.length; i++) value[i] = (fp[i]! - fm[i]!) / (2 * h);
  return { value, step: h };
}

/** `<a, b>` of two same-size arrays, in float64. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Σ|a_i·b_i|: the scale of a dot product's rounding error. */
export function absDot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! * b[i]!);
  return s;
}
