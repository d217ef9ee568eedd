/**
 * `npx tsx bench/wasm.ts`: the WebAssembly SIMD backend's GEMM (1 and 2 threads) and fused
 * elementwise loops. Medians of at least 5 timed runs after warm-up (which also lets V8 tier the
 * kernels up from Liftoff to TurboFan). Nothing is asserted: timings on shared machines drift, so
 * compare ratios taken in one run. `BENCH_QUICK=1` runs fewer repetitions.
 */
import { ew } from "../src/transforms/jit/wasm/elementwise.js";
import { WasmBackend } from "../src/transforms/jit/wasm/backend.js";

const QUICK = process.env.BENCH_QUICK === "1";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median ms of `fn` over `reps` runs after `warmup` runs. */
function time(fn: () => unknown, reps: number, warmup: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

const rows: [string, string][] = [];
const be = new WasmBackend({ threads: 2 });

// GEMM on resident buffers (the jit's case) and through the Float32Array API (copies in and out).
for (const n of [128, 256, 512, 1024]) {
  const a = random(n * n, 1);
  const b = random(n * n, 2);
  const heap = be.heap;
  const pa = heap.alloc(4 * n * n);
  const pb = heap.alloc(4 * n * n);
  const pc = heap.alloc(4 * n * n);
  heap.f32().set(a, pa / 4);
  heap.f32().set(b, pb / 4);
  const flops = 2 * n ** 3;
  const reps = QUICK ? 5 : n >= 1024 ? 7 : n >= 512 ? 15 : 40;
  const warm = n >= 1024 ? 2 : 5;
  const cells: string[] = [];
  for (const threads of [1, 2]) {
    const ms = time(
      () => be.gemm.gemmPtr(n, n, n, { ptr: pa, rs: n, cs: 1 }, { ptr: pb, rs: n, cs: 1 }, pc, n, threads),
      reps,
      warm,
    );
    const out = new Float32Array(n * n);
    const msCopy = time(() => be.matmul(a, b, n, n, n, { threads, out }), reps, warm);
    cells.push(
      `${threads}T ${(flops / ms / 1e6).toFixed(1)} GFLOP/s (${ms.toFixed(2)} ms; with copies ${(flops / msCopy / 1e6).toFixed(1)})`,
    );
  }
  rows.push([`matmul ${n}²`, cells.join(" | ")]);
  for (const p of [pa, pb, pc]) heap.free(p);
}

// Fused elementwise chains on 2^20 elements.
const N = 1 << 20;
const xs = random(N, 3);
const x = ew.input(0);
const chains: [string, ReturnType<typeof ew.input>][] = [
  ["(x*a+b)*c", ew.mul(ew.add(ew.mul(x, ew.c(1.5)), ew.c(0.25)), ew.c(2))],
  ["tanh(x*a+b)*c", ew.mul(ew.tanh(ew.add(ew.mul(x, ew.c(1.5)), ew.c(0.25))), ew.c(2))],
  ["exp(x)", ew.exp(x)],
  ["log(|x|)", ew.log(ew.abs(x))],
];
const px = be.heap.alloc(4 * N);
const po = be.heap.alloc(4 * N);
be.heap.f32().set(xs, px / 4);
for (const [name, expr] of chains) {
  const k = be.elementwise(expr, 1);
  const reps = QUICK ? 5 : 30;
  const ms = time(() => k.runPtr(po, [N], [{ ptr: px, shape: [N] }]), reps, 10);
  const msCopy = time(() => k.run([{ data: xs, shape: [N] }], [N]), QUICK ? 5 : 15, 3);
  rows.push([
    `${name}, 2^20 elements`,
    `${ms.toFixed(3)} ms resident (${msCopy.toFixed(3)} ms with copies in/out)`,
  ]);
}
be.dispose();

const width = Math.max(...rows.map((r) => r[0].length));
console.log(`tsjax WebAssembly SIMD backend (node ${process.version}, medians)`);
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
