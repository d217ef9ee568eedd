/**
 * The training loop of `tsjax train`: seeded data, one step per batch, evaluation per epoch,
 * and, when an output folder is given, per-epoch checkpoints (params, optimizer state, model
 * state, PRNG key, the next epoch's data order), `metrics.jsonl` and SVG curves, all written
 * atomically so an interrupt leaves the last complete epoch intact. Resuming reloads all of it,
 * so a resumed run computes the same bits as an uninterrupted one.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CheckpointError, ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import * as random from "../../core/random.js";
import type { Tensor } from "../../core/tensor.js";
import * as nn from "../../nn/index.js";
import {
  batchOf,
  loadDataset,
  type Prepared,
  prepare,
  type RawDataset,
  seededSubset,
  symmetricNoise,
} from "../data/datasets.js";
import { type CliIO, ensureDir, writeFileAtomic } from "../io.js";
import { duration, markdownTable, pct, sig4 } from "../report/format.js";
import { progress as makeProgress } from "../report/progress.js";
import { lineChart } from "../report/svg.js";
import { checkSizes, mergeResumed, type TrainConfig } from "./config.js";
import { buildSetup, type StepState } from "./setup.js";

/** The `metrics.jsonl` schema tag; bump it when a field changes meaning. */
export const METRICS_SCHEMA = "tsjax.metrics/1";

/** One line of `metrics.jsonl`: an epoch's results. */
export interface EpochRecord {
  schema: typeof METRICS_SCHEMA;
  epoch: number;
  /** Optimizer steps taken so far. */
  step: number;
  /** Mean over the epoch's steps, on the training labels (noisy ones where --label-noise > 0). */
  trainLoss: number;
  trainAcc: number;
  /** On the clean test subset, after the epoch (null on epochs skipped by `evalEvery`). */
  testLoss: number | null;
  testAcc: number | null;
  /** Epoch means of SAM's diagnostics (sam and asam), else null. */
  sam: { gradNorm: number; samGradNorm: number; cosine: number; lossIncrease: number } | null;
  epochSeconds: number;
  /** Training wall time since the run started, summed over resumed sessions. */
  wallSeconds: number;
  stepsPerSecond: number;
}

/** What a run returns. */
export interface RunResult {
  config: TrainConfig;
  history: EpochRecord[];
  /** Stopped by the signal before `epochs`. */
  interrupted: boolean;
  state: StepState;
}

/** Options of {@link runTraining}. */
export interface RunOptions {
  io: CliIO;
  /** Output folder; `null` writes nothing (the experiments). */
  out: string | null;
  resume?: boolean;
  /** Raw flags given with --resume (checked against the stored run). */
  resumeFlags?: Record<string, string | boolean | undefined>;
  progress?: "auto" | "none";
  /** A loaded dataset to reuse across runs. */
  dataset?: RawDataset;
  /** Evaluate on the test set every this many epochs, and always after the last (default 1). */
  evalEvery?: number;
}

const CKPT = "checkpoint.safetensors";
const METRICS = "metrics.jsonl";
const CONFIG_KEY = "cli.config";

/** The run's data: seeded subsets of train and test, noisy training labels. */
export interface RunData {
  train: Prepared;
  test: Prepared;
  numClasses: number;
}

const dataCache = new Map<string, RunData>();

/**
 * The data of a run, derived from its seed only: the training subset, its symmetric label noise
 * and the test subset. Memoised, so the experiments' runs on one seed share one copy.
 *
 * @example
 * ```ts
 * const { train, test } = runData(cfg, loadDataset("mnist"));
 * ```
 */
export function runData(cfg: TrainConfig, ds: RawDataset): RunData {
  const id = JSON.stringify([
    ds.name,
    cfg.dataDir,
    cfg.seed,
    cfg.trainSize,
    cfg.testSize,
    cfg.labelNoise,
    cfg.imageSize,
    cfg.model,
  ]);
  const hit = dataCache.get(id);
  if (hit) return hit;
  checkSizes(cfg, ds.train.n, ds.test.n);
  const root = random.key(cfg.seed);
  const image = cfg.model !== "mlp";
  const train = prepare(ds.train, {
    indices: seededSubset(random.foldIn(root, 1), ds.train.n, cfg.trainSize),
    imageSize: cfg.imageSize,
    image,
  });
  const test = prepare(ds.test, {
    indices: seededSubset(random.foldIn(root, 2), ds.test.n, cfg.testSize),
    imageSize: cfg.imageSize,
    image,
  });
  if (cfg.labelNoise > 0)
    train.y = symmetricNoise(random.foldIn(root, 3), train.y, cfg.labelNoise, ds.numClasses);
  const data = { train, test, numClasses: ds.numClasses };
  if (dataCache.size > 16) dataCache.clear();
  dataCache.set(id, data);
  return data;
}

/** The checkpoint's tree: the step state plus the PRNG key and the next epoch's data order. */
interface Saved extends StepState {
  key: Tensor;
  order: Tensor;
}

/** `random.split(key)` as two keys (JAX: `split(key)[i] == foldIn(key, i)`). */
function splitKey(key: Tensor): [Tensor, Tensor] {
  return [random.foldIn(key, 0), random.foldIn(key, 1)];
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function readMetrics(path: string, upToEpoch: number): EpochRecord[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
  const out: EpochRecord[] = [];
  lines.forEach((l, i) => {
    let r: EpochRecord;
    try {
      r = JSON.parse(l);
    } catch {
      throw new CheckpointError(`${path} line ${i + 1} is not JSON`, "--resume");
    }
    if (r.schema !== METRICS_SCHEMA)
      throw new CheckpointError(
        `${path} line ${i + 1} has schema ${String(r.schema)}, expected ${METRICS_SCHEMA}`,
        "--resume",
      );
    if (r.epoch <= upToEpoch) out.push(r);
  });
  return out;
}

function writeOutputs(out: string, history: EpochRecord[], cfg: TrainConfig): void {
  writeFileAtomic(join(out, METRICS), history.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const name = `${cfg.optimizer}${cfg.optimizer.includes("sam") ? ` ρ=${cfg.rho}` : ""}`;
  const ep = (f: (r: EpochRecord) => number | null) =>
    history.filter((r) => f(r) !== null).map((r) => [r.epoch, f(r)!] as [number, number]);
  const title = `${cfg.dataset} ${cfg.model} ${name}, noise ${pct(cfg.labelNoise)}, n=${cfg.trainSize}`;
  const trainName = cfg.labelNoise > 0 ? "train (noisy labels)" : "train";
  writeFileAtomic(
    join(out, "loss.svg"),
    lineChart(
      [
        { name: trainName, points: ep((r) => r.trainLoss) },
        { name: "test", points: ep((r) => r.testLoss), dashed: true },
      ],
      { title: `loss: ${title}`, xLabel: "epoch", yLabel: "cross entropy" },
    ),
  );
  writeFileAtomic(
    join(out, "accuracy.svg"),
    lineChart(
      [
        { name: trainName, points: ep((r) => 100 * r.trainAcc) },
        { name: "test", points: ep((r) => (r.testAcc === null ? null : 100 * r.testAcc)), dashed: true },
      ],
      { title: `accuracy: ${title}`, xLabel: "epoch", yLabel: "accuracy (%)" },
    ),
  );
}

/**
 * The per-epoch summary table printed at the end of a run.
 *
 * @example
 * ```ts
 * process.stdout.write(summaryTable(result.history));
 * ```
 */
export function summaryTable(history: readonly EpochRecord[]): string {
  const sam = history.some((r) => r.sam !== null);
  const header = [
    "epoch",
    "train loss",
    "train acc",
    "test loss",
    "test acc",
    ...(sam ? ["cos(g, g_sam)", "L(w+e)-L(w)"] : []),
    "time",
  ];
  const rows = history.map((r) => [
    String(r.epoch),
    sig4(r.trainLoss),
    pct(r.trainAcc),
    r.testLoss === null ? "" : sig4(r.testLoss),
    r.testAcc === null ? "" : pct(r.testAcc),
    ...(sam ? [r.sam ? sig4(r.sam.cosine) : "", r.sam ? sig4(r.sam.lossIncrease) : ""] : []),
    duration(r.epochSeconds),
  ]);
  return markdownTable(header, rows);
}

/**
 * Evaluates loss and accuracy over `data` in batches of `batchSize`.
 *
 * @example
 * ```ts
 * evaluateAll(setup, state, data.test, 1000); // { loss, acc }
 * ```
 */
export function evaluateAll(
  setup: ReturnType<typeof buildSetup>,
  s: StepState,
  data: Prepared,
  batchSize: number,
): { loss: number; acc: number } {
  const order = Int32Array.from({ length: data.n }, (_, i) => i);
  let lossSum = 0;
  let correct = 0;
  for (let from = 0; from < data.n; from += batchSize) {
    const to = Math.min(data.n, from + batchSize);
    const { x, y } = batchOf(data, order, from, to);
    const r = setup.evaluate(s, x, y);
    lossSum += r.lossSum;
    correct += r.correct;
  }
  return { loss: lossSum / data.n, acc: correct / data.n };
}

/**
 * Trains one configuration. With `out`, writes `config.json`, `metrics.jsonl`, `loss.svg`,
 * `accuracy.svg` and `checkpoint.safetensors` after every epoch; with `resume`, continues the run
 * stored in `out`. Stops after the current step when `io.signal` aborts.
 *
 * @example
 * ```ts
 * const { history } = await runTraining(resolveTrainConfig({ "train-size": "1000" }), { io, out: null });
 * ```
 */
export async function runTraining(config: TrainConfig, opts: RunOptions): Promise<RunResult> {
  const { io, out } = opts;
  let cfg = config;
  const ckptPath = out === null ? null : join(out, CKPT);
  let stored: nn.Checkpoint<Saved> | null = null;
  if (out !== null) {
    if (opts.resume) {
      if (!existsSync(ckptPath!))
        throw new ConfigError(`--resume: no ${CKPT} in ${out} to resume from`, "tsjax train");
      const raw = nn.load(ckptPath!);
      const text = raw.metadata[CONFIG_KEY];
      if (text === undefined)
        throw new CheckpointError(
          `${ckptPath} has no ${CONFIG_KEY} metadata: not a tsjax train checkpoint`,
          "--resume",
        );
      let prev: TrainConfig;
      try {
        prev = JSON.parse(text);
      } catch {
        throw new CheckpointError(`${ckptPath}: its ${CONFIG_KEY} metadata is not JSON`, "--resume");
      }
      cfg = mergeResumed(prev, opts.resumeFlags ?? {});
      if (cfg.schedule === "cosine" && cfg.epochs !== prev.epochs)
        throw new ConfigError(
          `--resume: the cosine schedule spans the stored --epochs ${prev.epochs}; it cannot change to ${cfg.epochs}`,
          "tsjax train",
        );
      stored = raw as nn.Checkpoint<Saved>;
    } else if (existsSync(ckptPath!)) {
      throw new ConfigError(
        `${out} already holds a run; pass --resume to continue it, or choose another --out`,
        "tsjax train",
      );
    }
  }

  // Data problems (missing, corrupt, too small) are reported before anything is written.
  const ds = opts.dataset ?? loadDataset(cfg.dataset, cfg.dataDir ?? undefined);
  const data = runData(cfg, ds);
  if (out !== null) ensureDir(out);
  const stepsPerEpoch = Math.floor(data.train.n / cfg.batchSize);
  const setup = buildSetup(cfg, data.numClasses, stepsPerEpoch);
  const root = random.key(cfg.seed);
  const batchShape = [cfg.batchSize, ...data.train.featureShape];

  let state: StepState;
  let key: Tensor;
  let order: Int32Array;
  let startEpoch = 0;
  let history: EpochRecord[] = [];
  if (stored) {
    // Re-load against a fresh state's structure, so a checkpoint of another model or optimizer is refused.
    const fresh = setup.init(random.foldIn(root, 4), batchShape);
    const like: Saved = { ...fresh, key: root, order: np.zeros([data.train.n], "int32") };
    const back = nn.load<Saved>(ckptPath!, like);
    const epochText = back.metadata.epoch;
    startEpoch = Number(epochText);
    if (!Number.isInteger(startEpoch) || startEpoch < 1)
      throw new CheckpointError(`${ckptPath}: bad epoch metadata '${epochText}'`, "--resume");
    if (back.tree.order.size !== data.train.n)
      throw new CheckpointError(
        `${ckptPath}: its data order has ${back.tree.order.size} entries, the training set ${data.train.n}`,
        "--resume",
      );
    const { key: k, order: o, ...rest } = back.tree;
    state = rest;
    key = k;
    order = o.data() as Int32Array;
    history = readMetrics(join(out!, METRICS), startEpoch);
    if (history.length !== startEpoch)
      throw new CheckpointError(
        `${join(out!, METRICS)} has ${history.length} epochs, the checkpoint ${startEpoch}`,
        "--resume",
      );
  } else {
    state = setup.init(random.foldIn(root, 4), batchShape);
    let k: Tensor;
    [key, k] = splitKey(random.foldIn(root, 5));
    order = random.permutation(k, data.train.n).data() as Int32Array;
  }
  if (out !== null) writeFileAtomic(join(out, "config.json"), `${JSON.stringify(cfg, null, 2)}\n`);

  const prog = makeProgress(io.stdout, opts.progress ?? "auto");
  const totalSteps = (cfg.epochs - startEpoch) * stepsPerEpoch;
  let doneSteps = 0;
  const runStart = performance.now();
  let interrupted = false;
  let wallBefore = history.length > 0 ? history[history.length - 1]!.wallSeconds : 0;

  for (let epoch = startEpoch + 1; epoch <= cfg.epochs && !interrupted; epoch++) {
    const t0 = performance.now();
    let lossSum = 0;
    let correct = 0;
    const samSum = { gradNorm: 0, samGradNorm: 0, cosine: 0, lossIncrease: 0 };
    let samSteps = 0;
    for (let s = 0; s < stepsPerEpoch; s++) {
      if (io.signal?.aborted) {
        interrupted = true;
        break;
      }
      const { x, y } = batchOf(data.train, order, s * cfg.batchSize, (s + 1) * cfg.batchSize);
      const [next, m] = setup.step(state, x, y);
      state = next;
      lossSum += m.loss;
      correct += m.correct;
      if (m.sam) {
        samSteps++;
        for (const k of Object.keys(samSum) as (keyof typeof samSum)[]) samSum[k] += m.sam[k];
      }
      doneSteps++;
      const elapsed = (performance.now() - runStart) / 1000;
      const sps = doneSteps / elapsed;
      prog.step({
        epoch,
        epochs: cfg.epochs,
        step: s + 1,
        stepsPerEpoch,
        loss: lossSum / (s + 1),
        acc: correct / ((s + 1) * cfg.batchSize),
        stepsPerSecond: sps,
        eta: (totalSteps - doneSteps) / sps,
      });
      // Let a SIGINT handler run between steps.
      await yieldToEventLoop();
    }
    if (interrupted) break;
    const trainSeconds = (performance.now() - t0) / 1000;
    const evalNow = epoch === cfg.epochs || epoch % (opts.evalEvery ?? 1) === 0;
    const test = evalNow
      ? evaluateAll(setup, state, data.test, cfg.evalBatchSize)
      : { loss: null, acc: null };
    const epochSeconds = (performance.now() - t0) / 1000;
    wallBefore += epochSeconds;
    const rec: EpochRecord = {
      schema: METRICS_SCHEMA,
      epoch,
      step: epoch * stepsPerEpoch,
      trainLoss: lossSum / stepsPerEpoch,
      trainAcc: correct / (stepsPerEpoch * cfg.batchSize),
      testLoss: test.loss,
      testAcc: test.acc,
      sam:
        samSteps > 0
          ? {
              gradNorm: samSum.gradNorm / samSteps,
              samGradNorm: samSum.samGradNorm / samSteps,
              cosine: samSum.cosine / samSteps,
              lossIncrease: samSum.lossIncrease / samSteps,
            }
          : null,
      epochSeconds,
      wallSeconds: wallBefore,
      stepsPerSecond: stepsPerEpoch / trainSeconds,
    };
    history.push(rec);
    let k: Tensor;
    [key, k] = splitKey(key);
    order = random.permutation(k, data.train.n).data() as Int32Array;
    if (out !== null) {
      const saved: Saved = { ...state, key, order: np.array(order, "int32") };
      nn.save(ckptPath!, saved, { [CONFIG_KEY]: JSON.stringify(cfg), epoch: String(epoch) });
      writeOutputs(out, history, cfg);
    }
    prog.epoch(
      `epoch ${epoch}/${cfg.epochs}  train loss ${sig4(rec.trainLoss)} acc ${pct(rec.trainAcc)}  test loss ${rec.testLoss === null ? "-" : sig4(rec.testLoss)} acc ${rec.testAcc === null ? "-" : pct(rec.testAcc)}  ${rec.stepsPerSecond.toFixed(1)} steps/s  ${duration(epochSeconds)}`,
    );
  }
  return { config: cfg, history, interrupted, state };
}
