/**
 * Worker threads for the GEMM: each worker instantiates the same module on the same shared
 * `WebAssembly.Memory` and waits on a futex in a per-worker control block; the calling thread
 * writes a column range's arguments, wakes the worker, computes its own range, and blocks in
 * `Atomics.wait` until the workers are done. The API stays synchronous (Node allows
 * `Atomics.wait` on the main thread; browsers do not, so this pool is Node-only). `worker_threads`
 * is looked up at run time, so importing the backend elsewhere still works, without threads.
 */
import type { Worker } from "node:worker_threads";
import { ConfigError } from "../../../core/errors.js";
import type { GemmThreadPool } from "./gemm.js";
import type { WasmHeap } from "./heap.js";

/** Int32 slots of a worker's control block. */
const SEQ = 0;
const DONE = 1;
const ARGS = 2;
const NARGS = 19;
const READY = 24;
const FAILED = 25;
const BLOCK_BYTES = 128;

// Plain CommonJS so it runs as an `eval` worker under any loader (tsx, vitest, built dist).
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { bytes, memory, ctrl } = workerData;
const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
const gemm = inst.exports.gemm;
// The control block sits at a low offset that growth never moves, so this view stays valid.
const i32 = new Int32Array(memory.buffer);
const base = ctrl >> 2;
Atomics.store(i32, base + ${READY}, 1);
Atomics.notify(i32, base + ${READY});
let seen = 0;
for (;;) {
  Atomics.wait(i32, base + ${SEQ}, seen);
  seen = Atomics.load(i32, base + ${SEQ});
  if (seen < 0) break;
  const a = [];
  for (let k = 0; k < ${NARGS}; k++) a.push(i32[base + ${ARGS} + k]);
  try { gemm(...a); } catch (e) { Atomics.store(i32, base + ${FAILED}, 1); }
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

/**
 * A synchronous pool of GEMM workers over a shared heap.
 *
 * @example
 * ```ts
 * const gemm = new WasmGemm(new WasmHeap({ shared: true }));
 * gemm.pool = GemmWorkerPool.start(gemm.heap, gemm.bytes, 1); // two threads in all
 * gemm.matmul(a, b, m, k, n, { threads: 2 });
 * gemm.pool.terminate();
 * ```
 */
export class GemmWorkerPool implements GemmThreadPool {
  private readonly workers: Worker[] = [];
  private readonly blocks: number[] = [];
  private seq = 0;
  private closed = false;

  private constructor(private readonly heap: WasmHeap) {}

  get threads(): number {
    return this.workers.length;
  }

  /** Starts `workers` threads running `moduleBytes` and waits (blocking) until they are ready. */
  static start(heap: WasmHeap, moduleBytes: Uint8Array, workers: number, timeoutMs = 20_000): GemmWorkerPool {
    if (!heap.shared)
      throw new ConfigError("worker threads need a shared heap (shared: true)", "GemmWorkerPool");
    if (!Number.isInteger(workers) || workers < 1) {
      throw new ConfigError(`workers must be a positive integer, got ${workers}`, "GemmWorkerPool");
    }
    const WorkerClass = workerClass();
    const pool = new GemmWorkerPool(heap);
    for (let w = 0; w < workers; w++) {
      const ctrl = heap.alloc(BLOCK_BYTES);
      heap.i32().fill(0, ctrl >> 2, (ctrl + BLOCK_BYTES) >> 2);
      const worker = new WorkerClass(WORKER_SOURCE, {
        eval: true,
        workerData: { bytes: moduleBytes, memory: heap.memory, ctrl },
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

  run(
    splits: [number, number][],
    args: (n0: number, n1: number, worker: number) => number[],
    main: () => void,
  ): void {
    if (this.closed) throw new ConfigError("the pool was terminated", "GemmWorkerPool");
    if (splits.length > this.workers.length) {
      throw new ConfigError(`${splits.length} splits for ${this.workers.length} workers`, "GemmWorkerPool");
    }
    const i32 = this.heap.i32();
    const seq = ++this.seq;
    splits.forEach(([n0, n1], w) => {
      const base = this.blocks[w]! >> 2;
      const a = args(n0, n1, w);
      for (let k = 0; k < NARGS; k++) i32[base + ARGS + k] = a[k]!;
      Atomics.store(i32, base + SEQ, seq);
      Atomics.notify(i32, base + SEQ);
    });
    main();
    let failed = false;
    splits.forEach((_, w) => {
      const base = this.blocks[w]! >> 2;
      for (let d = Atomics.load(i32, base + DONE); d !== seq; d = Atomics.load(i32, base + DONE)) {
        Atomics.wait(i32, base + DONE, d);
      }
      if (Atomics.exchange(i32, base + FAILED, 0) !== 0) failed = true;
    });
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
  }
}
