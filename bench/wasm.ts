/**
 * `npx tsx bench/wasm.ts`: the WebAssembly SIMD backend's GEMM (1 and 2 threads), fused
 * elementwise loops and the CNN's two convolutions, side by side with the peers of
 * ../shared/BENCH.md: `@jax-js/jax` (`init("wasm")`, `jit`) and `@tensorflow/tfjs` with
 * `@tensorflow/tfjs-backend-wasm` (XNNPACK). Each library runs in its own process (same data, same
 * run); figures are medians of at least 5 timed runs after warm-up (which also lets V8 tier kernels
 * up from Liftoff to TurboFan). Nothing is asserted: shared machines drift, so read the ratios.
 *
 * Timing points: tsjax on resident heap buffers (the jit's case; "with copies" adds copying the
 * operands in and the result out), jax-js until `blockUntilReady()`, tfjs until `dataSync()` (its
 * only synchronisation point, so it includes reading the result back).
 *
 * `BENCH_QUICK=1` runs fewer repetitions; `BENCH_PEERS=0` skips the peers; `BENCH_STAT=min` reports
 * the fastest run instead of the median; `BENCH_GEMM_ONLY=1` runs only the GEMM rows. Run under
 * `node --experimental-wasm-relaxed-simd --import tsx bench/wasm.ts` on Node 20 to measure the FMA
 * kernel (the header line says which kernel ran; newer Node has relaxed SIMD without the flag).
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { WasmBackend } from "../src/transforms/jit/wasm/backend.js";
import { convGeometry, WasmConv } from "../src/transforms/jit/wasm/conv.js";
import { type Expr, ew } from "../src/transforms/jit/wasm/elementwise.js";
import { relaxedSimdSupported } from "../src/transforms/jit/wasm/gemm-module.js";
import { data } from "./data.js";
import { STAT, time, timeAsync } from "./timing.js";

const QUICK = process.env.BENCH_QUICK === "1";
const SIZES = [128, 256, 512, 1024];
const N_EW = 1 << 20;
/** CNN from BENCH.md, forward convolutions: B = 64, 28×28×1 → 3×3×32 → 3×3×64 (VALID). */
const CONVS: { x: [number, number, number, number]; w: [number, number, number, number] }[] = [
  { x: [64, 28, 28, 1], w: [3, 3, 1, 32] },
  { x: [64, 26, 26, 32], w: [3, 3, 32, 64] },
];

/**
 * The MLP step's GEMMs (784-512-512-10, B = 128): forward layers, weight gradients (A read
 * transposed) and an input gradient (B read transposed), as the jit issues them.
 */
const MLP_GEMMS: [string, number, number, number, boolean, boolean][] = [
  ["MLP fwd 128×784 · 784×512", 128, 784, 512, false, false],
  ["MLP fwd 128×512 · 512×512", 128, 512, 512, false, false],
  ["MLP dW 512×128 · 128×512 (Aᵀ)", 512, 128, 512, true, false],
  ["MLP dW 784×128 · 128×512 (Aᵀ)", 784, 128, 512, true, false],
  ["MLP dx 128×512 · 512×784 (Bᵀ)", 128, 512, 784, false, true],
];
/** `BENCH_GEMM_ONLY=1` runs the GEMM rows alone (and no peers' elementwise or convolutions). */
const GEMM_ONLY = process.env.BENCH_GEMM_ONLY === "1";

/** Timings in ms, keyed by workload name. */
type Results = Record<string, number>;

function reps(n: number): number {
  if (QUICK) return 5;
  return n >= 1024 ? 7 : n >= 512 ? 11 : 25;
}

const x = ew.input(0);
const CHAINS: [string, Expr][] = [
  ["(x*a+b)*c", ew.mul(ew.add(ew.mul(x, ew.c(1.5)), ew.c(0.25)), ew.c(2))],
  ["tanh(x*a+b)*c", ew.mul(ew.tanh(ew.add(ew.mul(x, ew.c(1.5)), ew.c(0.25))), ew.c(2))],
];

function benchTsjax(): Results {
  const out: Results = {};
  const be = new WasmBackend({ threads: 2 });
  const heap = be.heap;
  for (const n of SIZES) {
    const pa = heap.alloc(4 * n * n);
    const pb = heap.alloc(4 * n * n);
    const pc = heap.alloc(4 * n * n);
    heap.f32().set(data(n * n, 1), pa / 4);
    heap.f32().set(data(n * n, 2), pb / 4);
    for (const threads of [1, 2]) {
      out[`matmul ${n} ${threads}T`] = time(
        () => be.gemm.gemmPtr(n, n, n, { ptr: pa, rs: n, cs: 1 }, { ptr: pb, rs: n, cs: 1 }, pc, n, threads),
        reps(n),
        n >= 1024 ? 2 : 5,
      );
    }
    const [a, b, c] = [data(n * n, 1), data(n * n, 2), new Float32Array(n * n)];
    out[`matmul ${n} 1T copies`] = time(() => be.matmul(a, b, n, n, n, { threads: 1, out: c }), reps(n), 2);
    for (const p of [pa, pb, pc]) heap.free(p);
  }
  for (const [label, m, k, n, tA, tB] of MLP_GEMMS) {
    const pa = heap.alloc(4 * m * k);
    const pb = heap.alloc(4 * k * n);
    const pc = heap.alloc(4 * m * n);
    heap.f32().set(data(m * k, 1), pa / 4);
    heap.f32().set(data(k * n, 2), pb / 4);
    const A = tA ? { ptr: pa, rs: 1, cs: m } : { ptr: pa, rs: k, cs: 1 };
    const B = tB ? { ptr: pb, rs: 1, cs: k } : { ptr: pb, rs: n, cs: 1 };
    for (const threads of [1, 2]) {
      out[`${label} ${threads}T`] = time(() => be.gemm.gemmPtr(m, n, k, A, B, pc, n, threads), reps(512), 5);
    }
    for (const p of [pa, pb, pc]) heap.free(p);
  }
  if (GEMM_ONLY) {
    be.dispose();
    return out;
  }
  const px = heap.alloc(4 * N_EW);
  const po = heap.alloc(4 * N_EW);
  const xs = data(N_EW, 3);
  heap.f32().set(xs, px / 4);
  for (const [name, expr] of CHAINS) {
    const k = be.elementwise(expr, 1);
    out[name] = time(() => k.runPtr(po, [N_EW], [{ ptr: px, shape: [N_EW] }]), QUICK ? 5 : 30, 10);
    const y = new Float32Array(N_EW);
    out[`${name} copies`] = time(() => k.run([{ data: xs, shape: [N_EW] }], [N_EW], y), QUICK ? 5 : 15, 3);
  }
  heap.free(px);
  heap.free(po);
  const conv = new WasmConv(be.gemm);
  CONVS.forEach(({ x: xShape, w: wShape }, i) => {
    const g = convGeometry(xShape, wShape);
    const bx = heap.alloc(4 * xShape.reduce((p, q) => p * q));
    const bw = heap.alloc(4 * wShape.reduce((p, q) => p * q));
    const bo = heap.alloc(4 * g.n * g.oh * g.ow * g.o);
    const bs = heap.alloc(WasmConv.scratchBytes(g));
    heap.f32().set(
      data(
        xShape.reduce((p, q) => p * q),
        4 + i,
      ),
      bx / 4,
    );
    heap.f32().set(
      data(
        wShape.reduce((p, q) => p * q),
        5 + i,
      ),
      bw / 4,
    );
    for (const threads of [1, 2]) {
      out[`conv${i + 1} ${threads}T`] = time(
        () => conv.conv2dPtr(g, bx, bw, bo, bs, threads),
        QUICK ? 5 : 9,
        2,
      );
    }
    for (const threads of [1, 2]) {
      // The convolution work of a training step for this layer: forward, kernel gradient and (but
      // for the first layer, whose input needs none) input gradient.
      out[`conv${i + 1} step ${threads}T`] = time(
        () => {
          conv.conv2dPtr(g, bx, bw, bo, bs, threads);
          conv.conv2dGradKernelPtr(g, bx, bo, bw, bs, threads);
          if (i > 0) conv.conv2dGradInputPtr(g, bo, bw, bx, bs, threads);
        },
        QUICK ? 3 : 5,
        1,
      );
    }
    for (const p of [bx, bw, bo, bs]) heap.free(p);
  });
  be.dispose();
  return out;
}

async function benchJax(): Promise<Results> {
  const jax = await import("@jax-js/jax");
  const { numpy: np, jit } = jax;
  await jax.init("wasm");
  jax.defaultDevice("wasm");
  const out: Results = {};
  const mm = jit((p: any, q: any) => np.matmul(p, q));
  for (const n of SIZES) {
    const a = np.array(data(n * n, 1)).reshape([n, n]);
    const b = np.array(data(n * n, 2)).reshape([n, n]);
    out[`matmul ${n} 1T`] = await timeAsync(
      async () => {
        const c = mm(a.ref, b.ref);
        await c.blockUntilReady();
        c.dispose();
      },
      reps(n),
      n >= 1024 ? 2 : 5,
    );
    a.dispose();
    b.dispose();
  }
  const xs = np.array(data(N_EW, 3));
  const fns: Record<string, (v: any) => any> = {
    "(x*a+b)*c": jit((v: any) => v.mul(1.5).add(0.25).mul(2)),
    "tanh(x*a+b)*c": jit((v: any) => np.tanh(v.mul(1.5).add(0.25)).mul(2)),
  };
  for (const [name, f] of Object.entries(fns)) {
    out[name] = await timeAsync(
      async () => {
        const y = f(xs.ref);
        await y.blockUntilReady();
        y.dispose();
      },
      QUICK ? 5 : 30,
      10,
    );
  }
  return out;
}

async function benchTfjs(): Promise<Results> {
  const tf = await import("@tensorflow/tfjs");
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  const require = createRequire(import.meta.url);
  wasm.setWasmPaths(`${dirname(require.resolve("@tensorflow/tfjs-backend-wasm"))}/`);
  await tf.setBackend("wasm");
  await tf.ready();
  const out: Results = {};
  for (const n of SIZES) {
    const a = tf.tensor2d(data(n * n, 1), [n, n]);
    const b = tf.tensor2d(data(n * n, 2), [n, n]);
    out[`matmul ${n} 1T`] = time(
      () => {
        const c = tf.matMul(a, b);
        c.dataSync();
        c.dispose();
      },
      reps(n),
      n >= 1024 ? 2 : 5,
    );
    a.dispose();
    b.dispose();
  }
  const xs = tf.tensor1d(data(N_EW, 3));
  const fns: Record<string, () => any> = {
    "(x*a+b)*c": () => tf.tidy(() => xs.mul(1.5).add(0.25).mul(2)),
    "tanh(x*a+b)*c": () => tf.tidy(() => tf.tanh(xs.mul(1.5).add(0.25)).mul(2)),
  };
  for (const [name, f] of Object.entries(fns)) {
    out[name] = time(
      () => {
        const y = f();
        y.dataSync();
        y.dispose();
      },
      QUICK ? 5 : 30,
      10,
    );
  }
  CONVS.forEach(({ x: xShape, w: wShape }, i) => {
    const tx = tf.tensor4d(
      data(
        xShape.reduce((p, q) => p * q),
        4 + i,
      ),
      xShape,
    );
    const tw = tf.tensor4d(
      data(
        wShape.reduce((p, q) => p * q),
        5 + i,
      ),
      wShape,
    );
    out[`conv${i + 1} 1T`] = time(
      () => {
        const y = tf.conv2d(tx, tw, 1, "valid");
        y.dataSync();
        y.dispose();
      },
      QUICK ? 5 : 9,
      2,
    );
  });
  return out;
}

/** Runs this script in a child process for one peer; a peer that fails to load is reported, not fatal. */
function peer(name: "jax" | "tfjs"): Results | string {
  try {
    const stdout = execFileSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), `--peer=${name}`],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        env: process.env,
        maxBuffer: 1 << 24,
      },
    );
    const line = stdout.trim().split("\n").pop()!;
    return JSON.parse(line) as Results;
  } catch (e) {
    return `failed: ${String((e as Error).message).split("\n")[0]}`;
  }
}

async function main(): Promise<void> {
  const mode = process.argv.find((a) => a.startsWith("--peer="))?.slice(7);
  if (mode === "jax") {
    console.log(JSON.stringify(await benchJax()));
    return;
  }
  if (mode === "tfjs") {
    console.log(JSON.stringify(await benchTfjs()));
    process.exit(0);
  }
  const ours = benchTsjax();
  const peers = process.env.BENCH_PEERS === "0" ? {} : { "jax-js": peer("jax"), "tfjs-wasm": peer("tfjs") };
  const rows: string[][] = [
    ["workload", "tsjax 1T", "tsjax 2T", ...Object.keys(peers), "best peer time / tsjax 1T time"],
  ];
  const fmt = (v: number | undefined, unit: (ms: number) => string) => (v === undefined ? "—" : unit(v));
  const peerValue = (p: Results | string, key: string) => (typeof p === "string" ? undefined : p[key]);
  const row = (label: string, key1: string, key2: string | undefined, unit: (ms: number) => string) => {
    const vals = Object.values(peers).map((p) => peerValue(p, key1));
    const known = vals.filter((v): v is number => v !== undefined);
    const best = known.length ? Math.min(...known) : undefined;
    // > 1: tsjax is faster than the best peer by that factor.
    const ratio = best === undefined || ours[key1] === undefined ? "—" : `${(best / ours[key1]!).toFixed(2)}`;
    rows.push([
      label,
      fmt(ours[key1], unit),
      key2 ? fmt(ours[key2], unit) : "—",
      ...vals.map((v) => fmt(v, unit)),
      ratio,
    ]);
  };
  for (const n of SIZES) {
    const gflops = (ms: number) => `${((2 * n ** 3) / ms / 1e6).toFixed(1)} GFLOP/s`;
    row(`matmul ${n}² fp32`, `matmul ${n} 1T`, `matmul ${n} 2T`, gflops);
    rows.push([
      `  … through Float32Array copies`,
      fmt(ours[`matmul ${n} 1T copies`], gflops),
      "",
      ...Object.keys(peers).map(() => ""),
      "",
    ]);
  }
  for (const [label, m, k, n] of MLP_GEMMS) {
    row(label, `${label} 1T`, `${label} 2T`, (ms) => `${((2 * m * n * k) / ms / 1e6).toFixed(1)} GFLOP/s`);
  }
  for (const [name] of GEMM_ONLY ? [] : CHAINS) {
    const ms = (v: number) => `${v.toFixed(3)} ms`;
    row(`${name}, 2^20`, name, undefined, ms);
    rows.push([
      `  … with copies in/out`,
      fmt(ours[`${name} copies`], ms),
      "",
      ...Object.keys(peers).map(() => ""),
      "",
    ]);
  }
  (GEMM_ONLY ? [] : CONVS).forEach(({ x: xs, w: ws }, i) => {
    row(
      `conv ${xs.join("×")} * ${ws.join("×")} (fwd)`,
      `conv${i + 1} 1T`,
      `conv${i + 1} 2T`,
      (v) => `${v.toFixed(1)} ms`,
    );
    const ms = (v: number) => `${v.toFixed(1)} ms`;
    rows.push([
      `  … fwd + dW${i > 0 ? " + dx" : ""} (its share of a training step)`,
      fmt(ours[`conv${i + 1} step 1T`], ms),
      fmt(ours[`conv${i + 1} step 2T`], ms),
      ...Object.keys(peers).map(() => ""),
      "",
    ]);
  });
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  // Relaxed SIMD changes the GEMM's kernel (FMA): say which one ran.
  const kernel = relaxedSimdSupported() ? "relaxed-SIMD FMA GEMM kernel" : "SIMD128 mul+add GEMM kernel";
  console.log(
    `tsjax WebAssembly SIMD backend vs peers (node ${process.version}, ${kernel}, ${STAT === "min" ? "fastest runs" : "medians"}; BENCH_QUICK=${QUICK ? 1 : 0})`,
  );
  for (const r of rows) console.log(r.map((v, c) => (v ?? "").padEnd(widths[c]!)).join("  "));
  for (const [name, p] of Object.entries(peers)) if (typeof p === "string") console.log(`${name}: ${p}`);
}

await main();
