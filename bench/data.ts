/**
 * Deterministic benchmark inputs shared by every library's runner (no library imports here, so a
 * peer's child process loads nothing of tsjax).
 */

/** Data in [-1, 1) from a small LCG: the same for every library. */
export function data(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** {@link data} times `scale` (initialiser-sized weights). */
export const scaled = (n: number, seed: number, scale: number): Float32Array =>
  data(n, seed).map((v) => v * scale);

/** Labels 0–9 in a fixed pattern. */
export const labels = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => (i * 7) % 10);

/** The CNN step's batch (BENCH.md). */
export const CNN_B = 64;
