/**
 * Timing shared by the benchmarks: the median (or, with `BENCH_STAT=min`, the fastest, which is
 * steadier on a loaded machine) of `reps` warm runs, in milliseconds.
 */
/** `BENCH_STAT=min` reports the fastest run instead of the median. */
export const STAT = process.env.BENCH_STAT === "min" ? "min" : "median";

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return STAT === "min" ? s[0]! : s[Math.floor(s.length / 2)]!;
}

/** Milliseconds of `fn` over `reps` runs after `warmup` runs. */
export function time(fn: () => unknown, reps: number, warmup: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/** {@link time} for an asynchronous `fn`. */
export async function timeAsync(fn: () => Promise<unknown>, reps: number, warmup: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}
