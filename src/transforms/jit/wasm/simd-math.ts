/**
 * Vectorised f32x4 transcendentals emitted inline into a kernel: exp, expm1, log, log1p, tanh,
 * logistic. Each is
 * range reduction + a short polynomial + exact scaling by powers of two, so no lane ever calls back
 * into JavaScript. Accuracy (measured by test/transforms/jit/wasm/elementwise.test.ts against
 * float64 `Math.*`): a few ulp over the whole f32 range, IEEE specials (±0, ±inf, NaN, subnormals)
 * handled.
 *
 * - exp(y) = 2^n · (1 + q(r)), n = round(y / ln 2), r = y − n·ln 2 (Cody–Waite: ln 2 split in a
 *   9-bit head, so n·head is exact), q(r) = e^r − 1 by its degree-7 Taylor polynomial on
 *   |r| ≤ ln2/2 (truncation < 5e-9), 2^n applied as two exact factors so subnormal results round once.
 * - log(x) = e·ln 2 + log1p(f), x = 2^e·(1 + f), 1 + f ∈ [√½, √2); log1p(f) = f − s·(f − R(s²)),
 *   s = f / (2 + f), the atanh series (fdlibm's arrangement) with truncation < 2e-9.
 * - tanh(x) = −E / (2 + E) with E = expm1(−2|x|) from the same reduction (no cancellation near 0),
 *   sign restored by bit select.
 * - logistic(x) = 1/(1 + e) or e/(1 + e) with e = exp(−|x|), so neither tail cancels.
 */
import { type FuncBuilder, Simd, V128 } from "./assembler.js";

const LOG2E = Math.LOG2E;
/** ln 2 = LN2_HI + LN2_LO; LN2_HI = 355/512 has 9 significant bits so n·LN2_HI is exact for |n| < 2^15. */
const LN2_HI = 0.693359375;
const LN2_LO = Math.LN2 - LN2_HI;

/** Emits into fresh v128 locals; each helper returns the local holding its result. */
export class VecEmitter {
  constructor(readonly f: FuncBuilder) {}

  /** Runs `emit` (which leaves one v128 on the stack) and stores it in a new local. */
  let(emit: () => void): number {
    emit();
    const l = this.f.local(V128);
    this.f.localSet(l);
    return l;
  }
  get(l: number): FuncBuilder {
    return this.f.localGet(l);
  }
  /** a ∘ b for a SIMD binary opcode, operands given as locals. */
  bin(op: number, a: number, b: number): number {
    return this.let(() => this.f.localGet(a).localGet(b).simd(op));
  }
  /** a ∘ c for a constant c splatted to four f32 lanes. */
  binC(op: number, a: number, c: number): number {
    return this.let(() => this.f.localGet(a).f32x4Const(c).simd(op));
  }
  un(op: number, a: number): number {
    return this.let(() => this.f.localGet(a).simd(op));
  }
  constF(c: number): number {
    return this.let(() => this.f.f32x4Const(c));
  }
  constI(c: number): number {
    return this.let(() => this.f.i32x4Const(c));
  }
  /** bitselect(a, b, mask): lanes of a where mask bits are set, else b. */
  select(a: number, b: number, mask: number): number {
    return this.let(() => this.f.localGet(a).localGet(b).localGet(mask).simd(Simd.v128_bitselect));
  }
  /** Horner: c[0] + r·(c[1] + r·(c[2] + …)). */
  horner(r: number, coeffs: readonly number[]): number {
    let acc = this.constF(coeffs[coeffs.length - 1]!);
    for (let i = coeffs.length - 2; i >= 0; i--) {
      acc = this.binC(Simd.f32x4_add, this.bin(Simd.f32x4_mul, acc, r), coeffs[i]!);
    }
    return acc;
  }
}

/** 1/k! for k = 2…7: the tail of e^r − 1 = r + r²·(1/2 + r/6 + …). */
const EXPM1_TAIL = [1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040];

/** y = n·ln2 + r; returns n (i32x4 lanes) and q = e^r − 1. y must be finite or NaN, |y| ≤ 150. */
function expReduce(v: VecEmitter, y: number): { n: number; q: number } {
  const nf = v.un(Simd.f32x4_nearest, v.binC(Simd.f32x4_mul, y, LOG2E));
  const hi = v.bin(Simd.f32x4_sub, y, v.binC(Simd.f32x4_mul, nf, LN2_HI));
  const r = v.bin(Simd.f32x4_sub, hi, v.binC(Simd.f32x4_mul, nf, LN2_LO));
  const tail = v.horner(r, EXPM1_TAIL);
  const q = v.bin(Simd.f32x4_add, r, v.bin(Simd.f32x4_mul, v.bin(Simd.f32x4_mul, r, r), tail));
  const n = v.un(Simd.i32x4_trunc_sat_f32x4_s, nf);
  return { n, q };
}

/** 2^n as f32 lanes for n ∈ [−126, 127] (i32x4 lanes). */
function pow2(v: VecEmitter, n: number): number {
  return v.let(() => v.f.localGet(n).i32x4Const(127).simd(Simd.i32x4_add).i32Const(23).simd(Simd.i32x4_shl));
}

/** e^x for every lane. */
export function emitExp(v: VecEmitter, x: number): number {
  // Below −104 the result is 0 even as a subnormal; above 88.8 it overflows to inf. NaN passes
  // through min/max (wasm's f32x4.min/max propagate NaN).
  const y = v.binC(Simd.f32x4_max, v.binC(Simd.f32x4_min, x, 88.8), -104);
  const { n, q } = expReduce(v, y);
  const p = v.binC(Simd.f32x4_add, q, 1);
  // n ∈ [−150, 128]: split into two factors that are both normal, so only the last multiply rounds.
  const n1 = v.let(() => v.f.localGet(n).i32Const(1).simd(Simd.i32x4_shr_s));
  const n2 = v.bin(Simd.i32x4_sub, n, n1);
  return v.bin(Simd.f32x4_mul, v.bin(Simd.f32x4_mul, p, pow2(v, n1)), pow2(v, n2));
}

/** Natural log for every lane (−inf at ±0, NaN below 0, inf at inf). */
export function emitLog(v: VecEmitter, x: number): number {
  // Subnormals: scale by 2^23 first and take 23 off the exponent.
  const sub = v.binC(Simd.f32x4_lt, x, 1.1754943508222875e-38);
  const xs = v.select(v.binC(Simd.f32x4_mul, x, 8388608), x, sub);
  const eAdj = v.let(() => v.f.localGet(sub).i32x4Const(-23).simd(Simd.v128_and));
  const e0 = v.let(() =>
    v.f.localGet(xs).i32Const(23).simd(Simd.i32x4_shr_u).i32x4Const(127).simd(Simd.i32x4_sub),
  );
  const m0 = v.let(() =>
    v.f.localGet(xs).i32x4Const(0x007fffff).simd(Simd.v128_and).i32x4Const(0x3f800000).simd(Simd.v128_or),
  );
  const big = v.binC(Simd.f32x4_gt, m0, Math.SQRT2);
  const m = v.select(v.binC(Simd.f32x4_mul, m0, 0.5), m0, big);
  // big lanes are −1 as integers: e − big = e + 1.
  const e = v.bin(Simd.i32x4_add, v.bin(Simd.i32x4_sub, e0, big), eAdj);
  const f = v.binC(Simd.f32x4_sub, m, 1);
  const s = v.bin(Simd.f32x4_div, f, v.binC(Simd.f32x4_add, f, 2));
  const w = v.bin(Simd.f32x4_mul, s, s);
  const R = v.bin(Simd.f32x4_mul, w, v.horner(w, [2 / 3, 2 / 5, 2 / 7, 2 / 9]));
  const log1p = v.bin(Simd.f32x4_sub, f, v.bin(Simd.f32x4_mul, s, v.bin(Simd.f32x4_sub, f, R)));
  const ef = v.un(Simd.f32x4_convert_i32x4_s, e);
  const lo = v.bin(Simd.f32x4_add, log1p, v.binC(Simd.f32x4_mul, ef, LN2_LO));
  let r = v.bin(Simd.f32x4_add, v.binC(Simd.f32x4_mul, ef, LN2_HI), lo);
  r = v.select(v.constF(-Infinity), r, v.binC(Simd.f32x4_eq, x, 0));
  r = v.select(v.constF(Number.NaN), r, v.binC(Simd.f32x4_lt, x, 0));
  r = v.select(x, r, v.binC(Simd.f32x4_eq, x, Infinity));
  return v.select(x, r, v.bin(Simd.f32x4_ne, x, x));
}

/** tanh for every lane. */
export function emitTanh(v: VecEmitter, x: number): number {
  const a = v.un(Simd.f32x4_abs, x);
  // tanh(10) rounds to 1 in f32, so clamping −2|x| at −20 loses nothing and keeps 2^n normal.
  const y = v.binC(Simd.f32x4_max, v.binC(Simd.f32x4_mul, a, -2), -20);
  const { n, q } = expReduce(v, y);
  const s = pow2(v, n);
  // E = expm1(y) = 2^n·q + (2^n − 1), both terms exact-ish, no cancellation when n = 0.
  const E = v.bin(Simd.f32x4_add, v.bin(Simd.f32x4_mul, s, q), v.binC(Simd.f32x4_sub, s, 1));
  const t = v.bin(Simd.f32x4_div, v.un(Simd.f32x4_neg, E), v.binC(Simd.f32x4_add, E, 2));
  return v.select(x, t, v.constI(0x80000000 | 0));
}

/** logistic(x) = 1 / (1 + e^−x) for every lane. */
export function emitLogistic(v: VecEmitter, x: number): number {
  const e = emitExp(v, v.un(Simd.f32x4_neg, v.un(Simd.f32x4_abs, x)));
  const d = v.binC(Simd.f32x4_add, e, 1);
  const pos = v.let(() => v.f.f32x4Const(1).localGet(d).simd(Simd.f32x4_div));
  const neg = v.bin(Simd.f32x4_div, e, d);
  return v.select(neg, pos, v.binC(Simd.f32x4_lt, x, 0));
}

/** e^x − 1 for every lane, accurate near 0 (no cancellation). */
export function emitExpm1(v: VecEmitter, x: number): number {
  // Below −20, e^x < ulp(1)/2: the answer is −1. The reduced form 2^n·q + (2^n − 1) needs 2^n
  // normal and is only worth it while n is small; above that e^x − 1 has nothing to cancel.
  const y = v.binC(Simd.f32x4_max, v.binC(Simd.f32x4_min, x, 30), -20);
  const { n, q } = expReduce(v, y);
  const s = pow2(v, n);
  const small = v.bin(Simd.f32x4_add, v.bin(Simd.f32x4_mul, s, q), v.binC(Simd.f32x4_sub, s, 1));
  const large = v.binC(Simd.f32x4_sub, emitExp(v, x), 1);
  return v.select(large, small, v.binC(Simd.f32x4_gt, x, 20));
}

/** log(1 + x) for every lane, accurate near 0. */
export function emitLog1p(v: VecEmitter, x: number): number {
  // u = fl(1 + x); log1p(x) = log(u)·x/(u − 1) corrects u's rounding (Goldberg's trick); u = 1
  // means x is below half an ulp of 1, where log1p(x) = x.
  const u = v.binC(Simd.f32x4_add, x, 1);
  const corr = v.bin(Simd.f32x4_div, x, v.binC(Simd.f32x4_sub, u, 1));
  let r = v.bin(Simd.f32x4_mul, emitLog(v, u), corr);
  r = v.select(x, r, v.binC(Simd.f32x4_eq, u, 1));
  // x = inf: inf·(inf/inf) would be NaN; x = −1: −inf·1 is right already.
  return v.select(x, r, v.binC(Simd.f32x4_eq, x, Infinity));
}
