/**
 * Runs an experiment's training tasks, in this process or spread over `jobs` child processes
 * (each a copy of the `tsjax` executable started with the hidden `__worker` command, fed tasks
 * over IPC), so a grid uses both cores of a two-core machine. Results come back in task order
 * and are identical either way: every task is a pure function of its configuration.
 */
import { fork } from "node:child_process";
import { TsjaxError } from "../../core/errors.js";
import * as random from "../../core/random.js";
import * as optim from "../../optim/index.js";
import { batchOf, loadDataset, type RawDataset } from "../data/datasets.js";
import type { CliIO } from "../io.js";
import type { TrainConfig } from "../train/config.js";
import { type EpochRecord, runData, runTraining } from "../train/run.js";
import { buildSetup } from "../train/setup.js";

/** One training run of an experiment, optionally followed by Hessian diagnostics. */
export interface Task {
  config: TrainConfig;
  /** Top-k Hessian eigenvalues of the training loss on the first `examples` training examples. */
  hessian?: { examples: number; k: number; iterations: number };
}

/** What a task produced. */
export interface TaskResult {
  history: EpochRecord[];
  hessian?: { eigenvalues: number[]; ratio: number; seconds: number };
  /** Wall time of the task, training and diagnostics. */
  seconds: number;
}

const datasets = new Map<string, RawDataset>();

function datasetFor(cfg: TrainConfig): RawDataset {
  const id = `${cfg.dataset}:${cfg.dataDir ?? ""}`;
  let ds = datasets.get(id);
  if (!ds) {
    ds = loadDataset(cfg.dataset, cfg.dataDir ?? undefined);
    datasets.set(id, ds);
  }
  return ds;
}

const silent: CliIO = { stdout: { write: () => true }, stderr: { write: () => true } };

/** Raised when the user interrupts an experiment; no results are written. */
export class Interrupted extends Error {}

/**
 * Runs one task in this process.
 *
 * @example
 * ```ts
 * const { history } = await runTask({ config });
 * ```
 */
export async function runTask(task: Task, signal?: AbortSignal): Promise<TaskResult> {
  const t0 = performance.now();
  const ds = datasetFor(task.config);
  const r = await runTraining(task.config, {
    io: signal ? { ...silent, signal } : silent,
    out: null,
    dataset: ds,
    progress: "none",
    evalEvery: task.config.epochs,
  });
  if (r.interrupted) throw new Interrupted("interrupted");
  const out: TaskResult = { history: r.history, seconds: 0 };
  if (task.hessian) {
    const h0 = performance.now();
    const cfg = task.config;
    const data = runData(cfg, ds);
    const n = Math.min(task.hessian.examples, data.train.n);
    const { x, y } = batchOf(
      data.train,
      Int32Array.from({ length: n }, (_, i) => i),
      0,
      n,
    );
    const setup = buildSetup(cfg, data.numClasses, Math.floor(data.train.n / cfg.batchSize));
    const eig = optim.hessian.topEigenvalues(setup.evalLoss(r.state), r.state.params, task.hessian.k, {
      batch: [x, y],
      iterations: task.hessian.iterations,
      key: random.foldIn(random.key(cfg.seed), 6),
    });
    out.hessian = {
      eigenvalues: eig.eigenvalues,
      ratio: eig.ratio ?? Number.NaN,
      seconds: (performance.now() - h0) / 1000,
    };
  }
  out.seconds = (performance.now() - t0) / 1000;
  return out;
}

/**
 * Runs `tasks` with up to `jobs` child processes (1: in this process; children need `entry`,
 * the path of the `tsjax` executable). `onDone` is called as each task finishes.
 *
 * @example
 * ```ts
 * const results = await runTasks(tasks, 2, "/path/to/tsjax", (i, r) => console.log(i, r.seconds));
 * ```
 */
export async function runTasks(
  tasks: readonly Task[],
  jobs: number,
  entry: string | undefined,
  onDone: (i: number, r: TaskResult) => void,
  signal?: AbortSignal,
): Promise<TaskResult[]> {
  const results: TaskResult[] = new Array(tasks.length);
  if (jobs <= 1 || entry === undefined || tasks.length <= 1) {
    for (let i = 0; i < tasks.length; i++) {
      results[i] = await runTask(tasks[i]!, signal);
      onDone(i, results[i]!);
    }
    return results;
  }
  const children = new Set<ReturnType<typeof fork>>();
  let stopped = false;
  const stopAll = () => {
    stopped = true;
    for (const c of children) c.kill();
  };
  signal?.addEventListener("abort", stopAll, { once: true });
  let next = 0;
  const worker = () =>
    new Promise<void>((resolve, reject) => {
      // A TypeScript entry (run through tsx) needs tsx's loader in the child too.
      const needsTsx = entry.endsWith(".ts") && !process.execArgv.some((a) => a.includes("tsx"));
      const execArgv = needsTsx ? ["--import", "tsx"] : process.execArgv;
      const child = fork(entry, ["__worker"], { stdio: ["ignore", "ignore", "inherit", "ipc"], execArgv });
      children.add(child);
      let current = -1;
      const feed = () => {
        if (next >= tasks.length) {
          child.send({ stop: true });
          return;
        }
        current = next++;
        child.send({ i: current, task: tasks[current] });
      };
      child.on("message", (m: { i: number; result?: TaskResult; error?: string; user?: boolean }) => {
        if (m.error !== undefined) {
          child.kill();
          reject(m.user ? new TsjaxError(m.error) : new Error(m.error));
          return;
        }
        results[m.i] = m.result!;
        onDone(m.i, m.result!);
        feed();
      });
      child.on("exit", (code, sig) => {
        children.delete(child);
        if (stopped) reject(new Interrupted("interrupted"));
        else if (next >= tasks.length && results[current] !== undefined) resolve();
        else reject(new Error(`experiment worker exited (${sig ?? code}) during task ${current}`));
      });
      feed();
    });
  try {
    await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
  } catch (e) {
    stopAll();
    throw e;
  } finally {
    signal?.removeEventListener("abort", stopAll);
  }
  return results;
}

/**
 * The child side of {@link runTasks}: run each task received, reply with its result.
 *
 * @example
 * ```ts
 * if (command === "__worker") process.exitCode = await workerLoop();
 * ```
 */
export function workerLoop(): Promise<number> {
  return new Promise((resolve) => {
    process.on("message", async (m: { i?: number; task?: Task; stop?: boolean }) => {
      if (m.stop) {
        process.disconnect?.();
        resolve(0);
        return;
      }
      try {
        const result = await runTask(m.task!);
        process.send!({ i: m.i, result });
      } catch (e) {
        process.send!({ i: m.i, error: (e as Error).message, user: e instanceof TsjaxError });
      }
    });
  });
}
