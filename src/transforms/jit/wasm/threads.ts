/**
 * Worker threads for the GEMM: each worker instantiates the same module on the same shared
 * `WebAssembly.Memory` and waits in a per-worker control block. A job is one GEMM cut into
 * chunks (row or column ranges on tile boundaries) that every thread, the caller included, claims
 * from a shared counter until none is left: a thread slowed down by another process on its core
 * then simply takes fewer chunks, instead of holding everyone up at a fixed halfway split.
 *
 * Handshakes spin before they sleep: waking a thread blocked in `Atomics.wait` costs about
 * 100 µs on the project machine (measured: a 32³ GEMM on two threads took 110 µs, 9 µs on one),
 * as much as a tenth of one of the MLP's GEMMs. A worker that finished a job polls for the next
 * one for {@link GemmPoolOptions.spinMicros} before it blocks, and the caller polls for the
 * workers' completion before it blocks. The API stays synchronous (Node allows `Atomics.wait` on
 * the main thread; browsers do not, so this pool is Node-only). `worker_threads` is looked up at
 * run time, so importing the backend elsewhere still works, without threads.
 */
import type { Worker } from "node:worker_threads";
import { ConfigError } from "../../../core/errors.js";
import type { GemmJob, GemmThreadPool } from "./gemm.js";
import type { WasmHeap } from "./heap.js";

/** Int32 slots of a worker's control block. */
const SEQ = 0;
const DONE = 1;
const READY = 2;
const FAILED = 3;
/** The job: the 19 gemm arguments (this worker's scratch), then how to cut it into chunks. */
const ARGS = 4;
const NARGS = 19;
const SPLIT_M = ARGS + NARGS;
const EXTENT = SPLIT_M + 1;
const CHUNK = SPLIT_M + 2;
const CHUNKS = SPLIT_M + 3;
const SPIN_MS = SPLIT_M + 4;
/** Chunk counter of the pool (a slot of its own cache line, shared by all threads). */
const NEXT = 0;
const BLOCK_BYTES = 128;

/**
 * The chunk loop, shared verbatim (through its source text) by the worker and the caller, so both
 * cut a job the same way: claims chunk indices from `i32[next]` and runs `gemm` on each. It is
 * self-contained (the worker has none of this module's bindings): the argument positions are
 * those of gemm-module.ts's `gemm` (0 M, 3 a, 4 rsa, 9 c, 10 ldc, 14 n0, 15 n1).
 */
function runChunks(
  i32: Int32Array,
  next: number,
  base: readonly number[],
  splitM: number,
  extent: number,
  chunk: number,
  chunks: number,
  gemm: (...args: number[]) => void,
): void {
  const a = base.slice();
  for (let c = Atomics.add(i32, next, 1); c < chunks; c = Atomics.add(i32, next, 1)) {
    const s0 = c * chunk;
    const s1 = Math.min(s0 + chunk, extent);
    if (splitM) {
      // Rows [s0, s1): the same GEMM on offset A and C pointers.
      a[0] = s1 - s0;
      a[3] = base[3]! + 4 * s0 * base[4]!;
      a[9] = base[9]! + 4 * s0 * base[10]!;
    } else {
      a[14] = s0;
      a[15] = s1;
    }
    gemm(...a);
  }
}

// Plain CommonJS so it runs as an `eval` worker under any loader (tsx, vitest, built dist).
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { module, memory, ctrl, next } = workerData;
const runChunks = ${runChunks.toString()};
const inst = new WebAssembly.Instance(module, { env: { memory } });
const gemm = inst.exports.gemm;
// The control blocks sit at low offsets that growth never moves, so this view stays valid.
const i32 = new Int32Array(memory.buffer);
const base = ctrl >> 2;
Atomics.store(i32, base + ${READY}, 1);
Atomics.notify(i32, base + ${READY});
let seen = 0;
for (;;) {
  // Poll for the next job for a while (a GEMM often follows another), then sleep.
  const spinMs = i32[base + ${SPIN_MS}] / 1000;
  const until = performance.now() + spinMs;
  for (let i = 0; Atomics.load(i32, base + ${SEQ}) === seen; i++) {
    if ((i & 255) === 0 && performance.now() > until) {
      Atomics.wait(i32, base + ${SEQ}, seen);
    }
  }
  seen = Atomics.load(i32, base + ${SEQ});
  if (seen < 0) break;
  const a = [];
  for (let k = 0; k < ${NARGS}; k++) a.push(i32[base + ${ARGS} + k]);
  try {
    runChunks(i32, next >> 2, a, i32[base + ${SPLIT_M}], i32[base + ${EXTENT}], i32[base + ${CHUNK}],
      i32[base + ${CHUNKS}], gemm);
  } catch (e) { Atomics.store(i32, base + ${FAILED}, 1); }
  Atomics.store(i32, base + ${DONE}, seen);
  Atomics.notify(i32, base + ${DONE});
}
`;

function workerClass(): typeof Worker {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.("node:worker_threads") as { Worker: typeof Worker } | undefined;
  if (!mod)
    throw new ConfigError(
      "worker threads need Node.js >= 20.16 (process.getBuiltinModule)",
      "GemmWorkerPool",
    );
  return mod.Worker;
}

/** Options of {@link GemmWorkerPool.start}. */
export interface GemmPoolOptions {
  /** How long (ms) to wait for the workers to start; default 20 000. */
  timeoutMs?: number;
  /**
   * How long (µs) an idle worker polls for the next job before it blocks; default 200. 0 blocks
   * at once (no busy core between GEMMs, 100 µs more per GEMM).
   */
  spinMicros?: number;
  /** How long (µs) the caller polls for the workers to finish before it blocks; default 500. */
  waitSpinMicros?: number;
}

/**
 * A synchronous pool of GEMM workers over a shared heap.
 *
 * @example
 * ```ts
 * const gemm = new WasmGemm(new WasmHeap({ shared: true }));
 * gemm.pool = GemmWorkerPool.start(gemm.heap, gemm.module, 1); // two threads in all
 * gemm.matmul(a, b, m, k, n, { threads: 2 });
 * gemm.pool.terminate();
 * ```
 */
export class GemmWorkerPool implements GemmThreadPool {
  private readonly workers: Worker[] = [];
  private readonly blocks: number[] = [];
  private seq = 0;
  private closed = false;
  private readonly next: number;
  private readonly waitSpinMs: number;

  private constructor(
    private readonly heap: WasmHeap,
    options: GemmPoolOptions,
  ) {
    this.next = heap.alloc(BLOCK_BYTES);
    this.waitSpinMs = (options.waitSpinMicros ?? 500) / 1000;
  }

  get threads(): number {
    return this.workers.length;
  }

  /**
   * Starts `workers` threads running the GEMM module (its compiled `WebAssembly.Module`, which
   * workers share with the caller, or its bytes) and waits (blocking) until they are ready.
   * A number as the last argument is the start timeout in ms (the former signature).
   */
  static start(
    heap: WasmHeap,
    module: WebAssembly.Module | Uint8Array<ArrayBuffer>,
    workers: number,
    options: GemmPoolOptions | number = {},
  ): GemmWorkerPool {
    const opts = typeof options === "number" ? { timeoutMs: options } : options;
    const timeoutMs = opts.timeoutMs ?? 20_000;
    if (!heap.shared)
      throw new ConfigError("worker threads need a shared heap (shared: true)", "GemmWorkerPool");
    if (!Number.isInteger(workers) || workers < 1) {
      throw new ConfigError(`workers must be a positive integer, got ${workers}`, "GemmWorkerPool");
    }
    const spin = opts.spinMicros ?? 200;
    if (!(spin >= 0 && spin < 2 ** 31) || !((opts.waitSpinMicros ?? 0) >= 0)) {
      throw new ConfigError("spinMicros and waitSpinMicros must be non-negative", "GemmWorkerPool");
    }
    const WorkerClass = workerClass();
    // A compiled module posted to a worker shares its code (and V8's tier-up of it).
    const compiled = module instanceof WebAssembly.Module ? module : new WebAssembly.Module(module);
    const pool = new GemmWorkerPool(heap, opts);
    heap.i32().fill(0, pool.next >> 2, (pool.next + BLOCK_BYTES) >> 2);
    for (let w = 0; w < workers; w++) {
      const ctrl = heap.alloc(BLOCK_BYTES);
      heap.i32().fill(0, ctrl >> 2, (ctrl + BLOCK_BYTES) >> 2);
      heap.i32()[(ctrl >> 2) + SPIN_MS] = Math.round(spin);
      const worker = new WorkerClass(WORKER_SOURCE, {
        eval: true,
        workerData: { module: compiled, memory: heap.memory, ctrl, next: pool.next },
      });
      worker.unref();
      pool.workers.push(worker);
      pool.blocks.push(ctrl);
    }
    for (const ctrl of pool.blocks) {
      const r = Atomics.wait(heap.i32(), (ctrl >> 2) + READY, 0, timeoutMs);
      if (r === "timed-out") {
        pool.terminate();
        throw new ConfigError(`a worker did not start within ${timeoutMs} ms`, "GemmWorkerPool");
      }
    }
    return pool;
  }

  run(job: GemmJob, helpers: number, gemm: (...args: number[]) => void): void {
    if (this.closed) throw new ConfigError("the pool was terminated", "GemmWorkerPool");
    if (!Number.isInteger(helpers) || helpers < 0 || helpers > this.workers.length) {
      throw new ConfigError(`${helpers} helpers for ${this.workers.length} workers`, "GemmWorkerPool");
    }
    const i32 = this.heap.i32();
    const seq = ++this.seq;
    const next = this.next >> 2;
    Atomics.store(i32, next + NEXT, 0);
    for (let w = 0; w < helpers; w++) {
      const base = this.blocks[w]! >> 2;
      const a = job.args(w + 1);
      for (let k = 0; k < NARGS; k++) i32[base + ARGS + k] = a[k]!;
      i32[base + SPLIT_M] = job.splitM ? 1 : 0;
      i32[base + EXTENT] = job.extent;
      i32[base + CHUNK] = job.chunk;
      i32[base + CHUNKS] = job.chunks;
      // The release store publishing the job (the plain writes above happen before it).
      Atomics.store(i32, base + SEQ, seq);
      Atomics.notify(i32, base + SEQ);
    }
    let error: unknown;
    try {
      runChunks(i32, next + NEXT, job.args(0), job.splitM ? 1 : 0, job.extent, job.chunk, job.chunks, gemm);
    } catch (e) {
      // Stop handing out chunks, but let the workers finish theirs before leaving.
      Atomics.store(i32, next + NEXT, job.chunks);
      error = e;
    }
    let failed = false;
    for (let w = 0; w < helpers; w++) {
      const base = this.blocks[w]! >> 2;
      const until = performance.now() + this.waitSpinMs;
      for (
        let i = 0, d = Atomics.load(i32, base + DONE);
        d !== seq;
        d = Atomics.load(i32, base + DONE), i++
      ) {
        if ((i & 255) === 0 && performance.now() > until) Atomics.wait(i32, base + DONE, d);
      }
      if (Atomics.exchange(i32, base + FAILED, 0) !== 0) failed = true;
    }
    if (error !== undefined) throw error;
    if (failed) throw new ConfigError("a worker's gemm trapped (out-of-bounds memory?)", "GemmWorkerPool");
  }

  /** Stops the workers (they are `unref`'d, so an idle pool never keeps the process alive). */
  terminate(): void {
    if (this.closed) return;
    this.closed = true;
    const i32 = this.heap.i32();
    for (const ctrl of this.blocks) {
      Atomics.store(i32, (ctrl >> 2) + SEQ, -1);
      Atomics.notify(i32, (ctrl >> 2) + SEQ);
    }
    for (const w of this.workers) void w.terminate();
    for (const ctrl of this.blocks) this.heap.free(ctrl);
    this.heap.free(this.next);
  }
}
