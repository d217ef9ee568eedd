/**
 * The jit issue's speed table: tsjax (jit on its default backend here, the own WebAssembly SIMD
 * backend) side by side with `@jax-js/jax` (`init("wasm")`, `jit`) and `@tensorflow/tfjs` with the
 * wasm backend, same data shapes, same run. Each library runs in its own child process (they
 * install global state); each prints one JSON line of timings in ms. Medians of repeated runs
 * after warm-up; nothing is asserted (shared machines drift: read the ratios).
 *
 * Timing points: tsjax until its result Tensor exists (its data are computed synchronously),
 * jax-js until `blockUntilReady()`, tfjs until `dataSync()`. Each library releases its results as
 * it would in a tight loop: jax-js `dispose()`, tfjs `dispose()` (tidy), tsjax `delete()` (JAX's
 * `Array.delete`); for the elementwise chains tsjax is also timed leaving results to the GC.
 *
 * `npx tsx bench/peers.ts` prints the table alone; bench/run.ts prints it after its own rows.
 * `BENCH_QUICK=1` runs fewer repetitions and skips the slow jax-js CNN step.
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { CNN_B, data, labels, scaled } from "./data.js";
import { time, timeAsync } from "./timing.js";

const QUICK = process.env.BENCH_QUICK === "1";
const N_EW = 1 << 20;

type Results = Record<string, number>;

/**
 * Matmul repetitions, and warm-up calls: V8 first runs new WebAssembly code from its baseline
 * compiler and swaps in optimised code compiled in the background, which for a GEMM called a few
 * times takes several calls (every library here runs wasm: they all get the same warm-up).
 */
const MM_REPS = (n: number) => (QUICK ? 3 : n >= 1024 ? 5 : 9);
const MM_WARMUP = QUICK ? 2 : 10;

const B = 128;

async function benchTsjax(): Promise<Results> {
  const { Tensor, grad, jit, nn, numpy: np, optim } = await import("../src/index.js");
  type T = InstanceType<typeof Tensor>;
  const t = (shape: number[], d: Float32Array) => Tensor._fromBuffer(shape, "float32", d);
  const out: Results = {};
  for (const n of [512, 1024]) {
    const a = t([n, n], data(n * n, 1));
    const b = t([n, n], data(n * n, 2));
    for (const threads of [1, 2]) {
      const mm = jit((p: T, q: T) => np.matmul(p, q), { backend: { name: "wasm", threads } });
      out[`matmul ${n} ${threads}T`] = time(() => mm(a, b).delete(), MM_REPS(n), MM_WARMUP);
    }
  }
  const sgdUpdate = <P extends Record<string, T>>(p: P, g: P): P => {
    const o = {} as Record<string, T>;
    for (const k of Object.keys(p)) o[k] = p[k]!.sub(g[k]!.mul(0.01));
    return o as P;
  };
  // MLP 784-512-512-10, ReLU, softmax cross-entropy.
  type M = { w1: T; b1: T; w2: T; b2: T; w3: T; b3: T };
  const mp: M = {
    w1: t([784, 512], scaled(784 * 512, 3, Math.sqrt(6 / 784))),
    b1: t([512], new Float32Array(512)),
    w2: t([512, 512], scaled(512 * 512, 4, Math.sqrt(6 / 512))),
    b2: t([512], new Float32Array(512)),
    w3: t([512, 10], scaled(512 * 10, 5, Math.sqrt(6 / 512))),
    b3: t([10], new Float32Array(10)),
  };
  const x = t([B, 784], data(B * 784, 6));
  const y = Tensor._fromBuffer([B], "int32", labels(B));
  const mlpLoss = (p: M, x: T, y: T) => {
    const h1 = nn.relu(np.matmul(x, p.w1).add(p.b1));
    const h2 = nn.relu(np.matmul(h1, p.w2).add(p.b2));
    const logits = np.matmul(h2, p.w3).add(p.b3);
    return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
  };
  const sgd = jit((p: M, x: T, y: T) => sgdUpdate(p, grad(mlpLoss)(p, x, y) as M));
  // Results are deleted as jax-js's loop disposes them (tsjax's memory would come back at GC).
  const drop = (r: Record<string, T>) => {
    for (const v of Object.values(r)) v.delete();
  };
  out["mlp sgd"] = time(() => drop(sgd(mp, x, y)), QUICK ? 5 : 15, 3);
  const samGrad = optim.sam(mlpLoss, { rho: 0.05 });
  const sam = jit((p: M, x: T, y: T) => sgdUpdate(p, samGrad(p, x, y) as M));
  const t0 = performance.now();
  sam(mp, x, y);
  const firstSam = performance.now() - t0;
  out["mlp sam"] = time(() => drop(sam(mp, x, y)), QUICK ? 5 : 15, 2);
  // Compile time: the first call (trace, passes, fusion, kernel generation, one run) minus a run.
  out["sam compile"] = firstSam - out["mlp sam"];
  // CNN (BENCH.md): B = 64, 28×28×1, conv3×3 1→32, ReLU, conv3×3 32→64, ReLU, maxpool 2, dense → 10.
  const { cnnProblem, cnnStep } = await import("./cnn.js");
  const { params: cp, x: cx, y: cy } = cnnProblem();
  const cnn = jit(cnnStep);
  out["cnn step"] = time(() => drop(cnn(cp, cx, cy)), QUICK ? 1 : 3, 1);
  const v = t([N_EW], data(N_EW, 11));
  const chains: Record<string, (v: T) => T> = {
    "(x*a+b)*c": (v) => v.mul(1.5).add(0.25).mul(2),
    "tanh(x*a+b)*c": (v) => np.tanh(v.mul(1.5).add(0.25)).mul(2),
  };
  for (const [name, f] of Object.entries(chains)) {
    const g = jit(f);
    // As jax-js's loop disposes each result, delete() hands each result's memory back at once.
    out[name] = time(() => g(v).delete(), QUICK ? 5 : 30, 5);
    out[`${name} gc`] = time(() => g(v), QUICK ? 5 : 30, 5);
  }
  const a10 = t([10], data(10, 12));
  const b10 = t([10], data(10, 13));
  const reps = 20000;
  out["eager add"] =
    time(
      () => {
        for (let i = 0; i < reps; i++) np.add(a10, b10);
      },
      5,
      2,
    ) / reps;
  return out;
}

async function benchJax(): Promise<Results> {
  const jax = await import("@jax-js/jax");
  const { numpy: np, nn, lax, jit, grad, tree } = jax;
  await jax.init("wasm");
  jax.defaultDevice("wasm");
  type A = ReturnType<typeof np.array>;
  const out: Results = {};
  const mm = jit((p: A, q: A) => np.matmul(p, q));
  for (const n of [512, 1024]) {
    const a = np.array(data(n * n, 1)).reshape([n, n]);
    const b = np.array(data(n * n, 2)).reshape([n, n]);
    out[`matmul ${n} 1T`] = await timeAsync(
      async () => {
        const c = mm(a.ref, b.ref);
        await c.blockUntilReady();
        c.dispose();
      },
      MM_REPS(n),
      MM_WARMUP,
    );
    a.dispose();
    b.dispose();
  }
  const sgdUpdate = (p: Record<string, A>, g: Record<string, A>) => {
    const o: Record<string, A> = {};
    for (const k of Object.keys(p)) o[k] = p[k]!.sub(g[k]!.mul(0.01));
    return o;
  };
  const mp: Record<string, A> = {
    w1: np.array(scaled(784 * 512, 3, Math.sqrt(6 / 784))).reshape([784, 512]),
    b1: np.zeros([512]),
    w2: np.array(scaled(512 * 512, 4, Math.sqrt(6 / 512))).reshape([512, 512]),
    b2: np.zeros([512]),
    w3: np.array(scaled(512 * 10, 5, Math.sqrt(6 / 512))).reshape([512, 10]),
    b3: np.zeros([10]),
  };
  const x = np.array(data(B * 784, 6)).reshape([B, 784]);
  const y = np.array(labels(B), { dtype: np.int32 });
  // jax-js moves its arguments: each value is used once, or `.ref`'d for each further use.
  const mlpLoss = (p: Record<string, A>, x: A, y: A) => {
    const h1 = nn.relu(np.matmul(x, p.w1!).add(p.b1!));
    const h2 = nn.relu(np.matmul(h1, p.w2!).add(p.b2!));
    const logits = np.matmul(h2, p.w3!).add(p.b3!);
    return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
  };
  const gradFn = grad(mlpLoss);
  const sgd = jit((p: Record<string, A>, x: A, y: A) => sgdUpdate(p, gradFn(tree.ref(p), x, y)));
  // SAM: g = ∇L(w); ε = ρ g/‖g‖; update with ∇L(w + ε).
  const sam = jit((p: Record<string, A>, x: A, y: A) => {
    const g = gradFn(tree.ref(p), x.ref, y.ref);
    const keys = Object.keys(p);
    let sq: A = np.zeros([]);
    for (const k of keys) sq = sq.add(np.sum(g[k]!.ref.mul(g[k]!.ref)));
    const scale = np.sqrt(sq).add(1e-12);
    const inv = np.array(0.05).div(scale);
    const pe: Record<string, A> = {};
    for (const k of keys) pe[k] = p[k]!.ref.add(g[k]!.mul(inv.ref));
    inv.dispose();
    return sgdUpdate(p, gradFn(pe, x, y));
  });
  const runTree = async (f: () => Record<string, A>) => {
    const r = f();
    await jax.blockUntilReady(r);
    tree.dispose(r);
  };
  out["mlp sgd"] = await timeAsync(() => runTree(() => sgd(tree.ref(mp), x.ref, y.ref)), QUICK ? 5 : 15, 3);
  out["mlp sam"] = await timeAsync(() => runTree(() => sam(tree.ref(mp), x.ref, y.ref)), QUICK ? 5 : 15, 2);
  if (!QUICK) {
    // jax-js convolves NCHW × OIHW only: the same network and FLOPs in that layout.
    const cp: Record<string, A> = {
      k1: np.array(scaled(288, 7, 0.3)).reshape([32, 1, 3, 3]),
      c1: np.zeros([32, 1, 1]),
      k2: np.array(scaled(9 * 32 * 64, 8, 0.06)).reshape([64, 32, 3, 3]),
      c2: np.zeros([64, 1, 1]),
      w: np.array(scaled(9216 * 10, 9, 0.01)).reshape([9216, 10]),
      b: np.zeros([10]),
    };
    const cx = np.array(data(CNN_B * 784, 10)).reshape([CNN_B, 1, 28, 28]);
    const cy = np.array(labels(CNN_B), { dtype: np.int32 });
    const conv = (v: A, k: A) => lax.convGeneralDilated(v, k, [1, 1], "VALID");
    const cnnLoss = (p: Record<string, A>, x: A, y: A) => {
      const h1 = nn.relu(conv(x, p.k1!).add(p.c1!));
      const h2 = nn.relu(conv(h1, p.k2!).add(p.c2!));
      const pooled = lax.reduceWindow(h2, (w: A) => np.max(w), [2, 2], [2, 2]);
      const logits = np.matmul(pooled.reshape([CNN_B, -1]), p.w!).add(p.b!);
      return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
    };
    const cg = grad(cnnLoss);
    const cnn = jit((p: Record<string, A>, x: A, y: A) => sgdUpdate(p, cg(tree.ref(p), x, y)));
    try {
      out["cnn step"] = await timeAsync(() => runTree(() => cnn(tree.ref(cp), cx.ref, cy.ref)), 1, 1);
    } catch (e) {
      console.error(`jax-js CNN step failed: ${(e as Error).message}`);
    }
  }
  const xs = np.array(data(N_EW, 11));
  const chains: Record<string, (v: A) => A> = {
    "(x*a+b)*c": jit((v: A) => v.mul(1.5).add(0.25).mul(2)),
    "tanh(x*a+b)*c": jit((v: A) => np.tanh(v.mul(1.5).add(0.25)).mul(2)),
  };
  for (const [name, f] of Object.entries(chains)) {
    out[name] = await timeAsync(
      async () => {
        const r = f(xs.ref);
        await r.blockUntilReady();
        r.dispose();
      },
      QUICK ? 5 : 30,
      5,
    );
  }
  const a10 = np.array(data(10, 12));
  const b10 = np.array(data(10, 13));
  const reps = 2000;
  out["eager add"] =
    (await timeAsync(
      async () => {
        for (let i = 0; i < reps; i++) np.add(a10.ref, b10.ref).dispose();
        await a10.blockUntilReady();
      },
      5,
      1,
    )) / reps;
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
  for (const n of [512, 1024]) {
    const a = tf.tensor2d(data(n * n, 1), [n, n]);
    const b = tf.tensor2d(data(n * n, 2), [n, n]);
    out[`matmul ${n} 1T`] = time(
      () => {
        const c = tf.matMul(a, b);
        c.dataSync();
        c.dispose();
      },
      MM_REPS(n),
      MM_WARMUP,
    );
  }
  const xs = tf.tensor1d(data(N_EW, 11));
  const chains: Record<string, () => InstanceType<typeof tf.Tensor>> = {
    "(x*a+b)*c": () => tf.tidy(() => xs.mul(1.5).add(0.25).mul(2)),
    "tanh(x*a+b)*c": () => tf.tidy(() => tf.tanh(xs.mul(1.5).add(0.25)).mul(2)),
  };
  for (const [name, f] of Object.entries(chains)) {
    out[name] = time(
      () => {
        const r = f();
        r.dataSync();
        r.dispose();
      },
      QUICK ? 5 : 30,
      5,
    );
  }
  const a10 = tf.tensor1d(data(10, 12));
  const b10 = tf.tensor1d(data(10, 13));
  const reps = 20000;
  out["eager add"] =
    time(
      () => {
        for (let i = 0; i < reps; i++) tf.add(a10, b10).dispose();
      },
      5,
      2,
    ) / reps;
  return out;
}

/** Runs this script in a child process for one library; a failure is reported, not fatal. */
function child(name: "tsjax" | "jax" | "tfjs"): Results | string {
  try {
    const stdout = execFileSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), `--part=${name}`],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], env: process.env, maxBuffer: 1 << 24 },
    );
    return JSON.parse(stdout.trim().split("\n").pop()!) as Results;
  } catch (e) {
    return `failed: ${String((e as Error).message).split("\n")[0]}`;
  }
}

/** The table's lines: each workload with tsjax, the peers, and the ratios the targets use. */
export function peerTable(): string[] {
  const ours = child("tsjax");
  const jaxjs = process.env.BENCH_PEERS === "0" ? "skipped" : child("jax");
  const tfjs = process.env.BENCH_PEERS === "0" ? "skipped" : child("tfjs");
  const get = (r: Results | string, k: string) => (typeof r === "string" ? undefined : r[k]);
  const rows: string[][] = [["workload", "tsjax", "jax-js", "tfjs-wasm", "ratio", "target"]];
  const f = (v: number | undefined, unit: (ms: number) => string) => (v === undefined ? "—" : unit(v));
  const ms = (v: number) => (v < 1 ? `${v.toFixed(3)} ms` : `${v.toFixed(1)} ms`);
  const ratio = (a: number | undefined, b: number | undefined, what: string) =>
    a === undefined || b === undefined ? "—" : `${(a / b).toFixed(2)}× ${what}`;
  for (const n of [512, 1024]) {
    const gf = (v: number) => `${((2 * n ** 3) / v / 1e6).toFixed(1)} GFLOP/s`;
    for (const th of [1, 2]) {
      const o = get(ours, `matmul ${n} ${th}T`);
      const j = get(jaxjs, `matmul ${n} 1T`);
      const t = get(tfjs, `matmul ${n} 1T`);
      const best = [j, t].filter((v): v is number => v !== undefined);
      rows.push([
        `matmul ${n}² fp32, jit, ${th} thread${th > 1 ? "s" : ""} (peers: 1)`,
        f(o, gf),
        f(j, gf),
        f(t, gf),
        best.length ? ratio(Math.min(...best), o, "best peer's speed") : "—",
        th === 1 ? "≥ 40 GFLOP/s" : "≥ 70 GFLOP/s",
      ]);
    }
  }
  const vs = (key: string, label: string, target: string) => {
    const o = get(ours, key);
    const j = get(jaxjs, key);
    rows.push([label, f(o, ms), f(j, ms), f(get(tfjs, key), ms), ratio(o, j, "jax-js's time"), target]);
  };
  vs("mlp sgd", "MLP 784-512-512-10, B = 128, jitted SGD step", "≤ 0.6×");
  vs("mlp sam", "the same step with SAM (two gradients)", "≤ 0.6×");
  rows.push([
    "  SAM step / tsjax's own SGD step",
    ratio(get(ours, "mlp sam"), get(ours, "mlp sgd"), ""),
    ratio(get(jaxjs, "mlp sam"), get(jaxjs, "mlp sgd"), ""),
    "",
    "",
    "≤ 2.05×",
  ]);
  vs("cnn step", "CNN step, B = 64 (BENCH.md), jitted", "≤ 250 ms");
  vs("(x*a+b)*c", "(x*a+b)*c on 2^20, jit (results deleted / disposed)", "≤ 1.2×");
  vs("tanh(x*a+b)*c", "tanh(x*a+b)*c on 2^20, jit (deleted / disposed)", "≤ 0.5×");
  const gcRow = (key: string, label: string) =>
    rows.push([
      label,
      f(get(ours, `${key} gc`), ms),
      "",
      "",
      ratio(get(ours, `${key} gc`), get(jaxjs, key), "jax-js's time"),
      "",
    ]);
  gcRow("(x*a+b)*c", "  tsjax leaving each result to the garbage collector");
  gcRow("tanh(x*a+b)*c", "  tsjax leaving each result to the garbage collector");
  const us = (v: number) => `${(v * 1000).toFixed(2)} µs`;
  rows.push([
    "eager add of two 10-element tensors, per op",
    f(get(ours, "eager add"), us),
    f(get(jaxjs, "eager add"), us),
    f(get(tfjs, "eager add"), us),
    ratio(get(ours, "eager add"), get(tfjs, "eager add"), "tfjs-wasm's"),
    "≤ 3 µs",
  ]);
  rows.push([
    "compile the jitted SAM step (first call − a call)",
    f(get(ours, "sam compile"), ms),
    "",
    "",
    "",
    "≤ 150 ms",
  ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  const lines = [
    `tsjax (jit, backend "wasm") vs @jax-js/jax (wasm, jit) vs @tensorflow/tfjs (wasm); node ${process.version}, medians${QUICK ? ", BENCH_QUICK=1" : ""}`,
    ...rows.map((r) =>
      r
        .map((v, c) => v.padEnd(widths[c]!))
        .join("  ")
        .trimEnd(),
    ),
  ];
  for (const [name, r] of [
    ["tsjax", ours],
    ["jax-js", jaxjs],
    ["tfjs-wasm", tfjs],
  ] as const)
    if (typeof r === "string") lines.push(`${name}: ${r}`);
  return lines;
}

const part = process.argv.find((a) => a.startsWith("--part="))?.slice(7);
if (part === "tsjax") {
  console.log(JSON.stringify(await benchTsjax()));
  process.exit(0);
} else if (part === "jax") {
  console.log(JSON.stringify(await benchJax()));
  process.exit(0);
} else if (part === "tfjs") {
  console.log(JSON.stringify(await benchTfjs()));
  process.exit(0);
} else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const line of peerTable()) console.log(line);
}
