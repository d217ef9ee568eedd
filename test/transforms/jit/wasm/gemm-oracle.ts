/**
 * Test helpers for the wasm GEMM: deterministic data and the float64 oracle with the float32
 * error bound of a dot product, |ĉ − c| ≤ γ_K·Σ|a_ik||b_kj| (any summation order, fused or not).
 */
import { expect } from "vitest";

/** Deterministic uniform(-1, 1) float32 data (mulberry32). */
export function data(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

/**
 * Float64 oracle of op(A)·op(B) and, per element, Σ|a||b| for the float32 error bound
 * |ĉ − c| ≤ γ_K·Σ|a_ik||b_kj|, γ_K = K·u/(1 − K·u), u = 2^-24 (any summation order).
 */
function oracle(a: Float32Array, b: Float32Array, m: number, k: number, n: number, tA: boolean, tB: boolean) {
  const c = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let g = 0;
      for (let p = 0; p < k; p++) {
        const av = tA ? a[p * m + i]! : a[i * k + p]!;
        const bv = tB ? b[j * k + p]! : b[p * n + j]!;
        s += av * bv;
        g += Math.abs(av * bv);
      }
      c[i * n + j] = s;
      mag[i * n + j] = g;
    }
  }
  return { c, mag };
}

export function expectWithinBound(
  got: Float32Array,
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  tA = false,
  tB = false,
) {
  const { c, mag } = oracle(a, b, m, k, n, tA, tB);
  const u = 2 ** -24;
  const gamma = (k * u) / (1 - k * u);
  let worst = 0;
  for (let i = 0; i < m * n; i++) {
    const excess = Math.abs(got[i]! - c[i]!) - gamma * mag[i]!;
    worst = Math.max(worst, excess);
  }
  expect(worst).toBeLessThanOrEqual(0);
}
