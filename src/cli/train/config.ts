/**
 * `tsjax train`'s flags and the validated configuration they resolve to. Defaults live here only;
 * a run's resolved configuration is stored with its checkpoint so `--resume` continues the same run.
 */
import { ConfigError } from "../../core/errors.js";
import { choiceFlag, type FlagSpecs, type Flags, numberFlag } from "../args.js";
import { DATASETS, type DatasetName } from "../data/datasets.js";

export const MODELS = ["mlp", "cnn", "wrn"] as const;
export const OPTIMIZERS = ["sgd", "momentum", "adam", "sam", "asam", "gsam", "usam", "looksam"] as const;
export const BASES = ["sgd", "momentum", "adam"] as const;
export const SCHEDULES = ["constant", "cosine"] as const;

/** Everything a training run depends on; two runs with equal configs compute identical bits. */
export interface TrainConfig {
  dataset: DatasetName;
  dataDir: string | null;
  model: (typeof MODELS)[number];
  /** MLP hidden widths. */
  hidden: number[];
  /** WideResNet depth (6n + 4) and widening factor. */
  depth: number;
  width: number;
  /** Side of the (average-pooled) input images: 28, 14, 7, 4 or 2. */
  imageSize: number;
  optimizer: (typeof OPTIMIZERS)[number];
  /** Base optimizer under the SAM family. */
  base: (typeof BASES)[number];
  rho: number;
  /** m-sharpness sub-batch size (0: the whole batch is one lane). */
  m: number;
  /** GSAM's / LookSAM's α and LookSAM's k. */
  alpha: number;
  k: number;
  epochs: number;
  batchSize: number;
  lr: number;
  schedule: (typeof SCHEDULES)[number];
  momentum: number;
  weightDecay: number;
  labelNoise: number;
  seed: number;
  trainSize: number;
  testSize: number;
  evalBatchSize: number;
  /** Run steps op by op on the reference implementations instead of compiling them with jit. */
  eager: boolean;
}

/** The flags of `tsjax train` (values arrive as text and are checked by {@link resolveTrainConfig}). */
export const TRAIN_FLAGS: FlagSpecs = {
  dataset: { type: "string", help: `dataset: ${DATASETS.join("|")}`, default: "mnist" },
  "data-dir": { type: "string", help: "folder with the four IDX files (default: the installed package's)" },
  model: { type: "string", help: `model: ${MODELS.join("|")}`, default: "mlp" },
  hidden: { type: "string", help: "MLP hidden widths, comma-separated", default: "128" },
  depth: { type: "string", help: "WideResNet depth (6n+4)", default: "10" },
  width: { type: "string", help: "WideResNet widening factor", default: "1" },
  "image-size": {
    type: "string",
    help: "average-pool the 28×28 images to this side (28|14|7|4|2)",
    default: "28",
  },
  optimizer: { type: "string", help: `optimizer: ${OPTIMIZERS.join("|")}`, default: "sgd" },
  base: { type: "string", help: `base optimizer of the SAM family: ${BASES.join("|")}`, default: "momentum" },
  rho: { type: "string", help: "SAM radius (asam default 0.5)", default: "0.05" },
  m: {
    type: "string",
    help: "m-sharpness: examples per perturbation lane (0 = the whole batch)",
    default: "0",
  },
  alpha: { type: "string", help: "GSAM / LookSAM alpha", default: "0.4 (gsam), 0.7 (looksam)" },
  k: { type: "string", help: "LookSAM: recompute the SAM gradient every k steps", default: "5" },
  epochs: { type: "string", help: "epochs to train (with --resume: the new total)", default: "5" },
  "batch-size": { type: "string", help: "examples per step", default: "128" },
  lr: { type: "string", help: "learning rate (adam default 0.001)", default: "0.1" },
  schedule: { type: "string", help: `learning-rate schedule: ${SCHEDULES.join("|")}`, default: "constant" },
  momentum: { type: "string", help: "momentum of the momentum optimizer", default: "0.9" },
  "weight-decay": { type: "string", help: "L2 coefficient added to the gradient", default: "0" },
  "label-noise": {
    type: "string",
    help: "fraction of training labels replaced by another class",
    default: "0",
  },
  seed: { type: "string", help: "seed of the subset, the noise, the init and the data order", default: "0" },
  "train-size": { type: "string", help: "training examples (a seeded subset)", default: "60000" },
  "test-size": { type: "string", help: "test examples (a seeded subset)", default: "10000" },
  "eval-batch-size": { type: "string", help: "examples per evaluation batch", default: "1000" },
  out: {
    type: "string",
    help: "output folder (metrics.jsonl, checkpoint, plots)",
    default: "runs/<dataset>-<model>-<optimizer>-s<seed>",
  },
  resume: { type: "boolean", help: "continue the run in --out from its last checkpoint" },
  eager: {
    type: "boolean",
    help: "run each step op by op on the reference implementations (default: compiled with jit)",
  },
  quiet: { type: "boolean", help: "no progress output (the summary is still printed)" },
  png: { type: "boolean", help: "also write PNG copies of the plots (needs chromium installed)" },
  help: { type: "boolean", help: "show this help" },
};

/** Flags that do not change what is computed, so a resumed run may pass different ones. */
const RUNTIME_ONLY = new Set([
  "out",
  "resume",
  "quiet",
  "png",
  "help",
  "epochs",
  "data-dir",
  "eval-batch-size",
]);

const CMD = "tsjax train";

function intFlag(
  flags: Flags,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  return numberFlag(CMD, name, flags[name], fallback, { integer: true, min, max });
}

/**
 * Turns parsed flags into a checked {@link TrainConfig}; every impossible value raises a
 * ConfigError naming the flag. Sizes are checked against the dataset later, once it is loaded.
 *
 * @example
 * ```ts
 * resolveTrainConfig({ optimizer: "sam", rho: "0.1" }).rho; // 0.1
 * ```
 */
export function resolveTrainConfig(flags: Flags): TrainConfig {
  const optimizer = choiceFlag(CMD, "optimizer", flags.optimizer, OPTIMIZERS, "sgd");
  const base = choiceFlag(CMD, "base", flags.base, BASES, "momentum");
  const usesAdam = optimizer === "adam" || (isSamFamily(optimizer) && base === "adam");
  const hiddenText = flags.hidden === undefined ? "128" : String(flags.hidden);
  const hidden =
    hiddenText.trim() === ""
      ? []
      : hiddenText
          .split(",")
          .map((w) => numberFlag(CMD, "hidden", w.trim(), 0, { integer: true, min: 1, max: 65536 }));
  const cfg: TrainConfig = {
    dataset: choiceFlag(CMD, "dataset", flags.dataset, DATASETS, "mnist"),
    dataDir: typeof flags["data-dir"] === "string" ? flags["data-dir"] : null,
    model: choiceFlag(CMD, "model", flags.model, MODELS, "mlp"),
    hidden,
    depth: intFlag(flags, "depth", 10, 10, 100),
    width: intFlag(flags, "width", 1, 1, 16),
    imageSize: intFlag(flags, "image-size", 28, 1, 28),
    optimizer,
    base,
    rho: numberFlag(CMD, "rho", flags.rho, optimizer === "asam" ? 0.5 : 0.05, { min: 0 }),
    m: intFlag(flags, "m", 0, 0),
    alpha: numberFlag(CMD, "alpha", flags.alpha, optimizer === "looksam" ? 0.7 : 0.4),
    k: intFlag(flags, "k", 5, 1),
    epochs: intFlag(flags, "epochs", 5, 1, 100000),
    batchSize: intFlag(flags, "batch-size", 128, 1),
    lr: numberFlag(CMD, "lr", flags.lr, usesAdam ? 1e-3 : 0.1, { min: 0, minExclusive: true }),
    schedule: choiceFlag(CMD, "schedule", flags.schedule, SCHEDULES, "constant"),
    momentum: numberFlag(CMD, "momentum", flags.momentum, 0.9, { min: 0, max: 1, maxExclusive: true }),
    weightDecay: numberFlag(CMD, "weight-decay", flags["weight-decay"], 0, { min: 0 }),
    labelNoise: numberFlag(CMD, "label-noise", flags["label-noise"], 0, {
      min: 0,
      max: 1,
      maxExclusive: true,
    }),
    seed: intFlag(flags, "seed", 0, 0, 2 ** 31 - 1),
    trainSize: intFlag(flags, "train-size", 60000, 1),
    testSize: intFlag(flags, "test-size", 10000, 1),
    evalBatchSize: intFlag(flags, "eval-batch-size", 1000, 1),
    eager: flags.eager === true,
  };
  if (28 % cfg.imageSize !== 0)
    throw new ConfigError(`--image-size must divide 28 (28|14|7|4|2|1), got ${cfg.imageSize}`, CMD);
  if (
    cfg.model === "mlp" &&
    cfg.hidden.length === 0 &&
    flags.hidden !== undefined &&
    hiddenText.trim() !== ""
  )
    throw new ConfigError("--hidden must list widths like 256,128", CMD);
  if (cfg.batchSize > cfg.trainSize)
    throw new ConfigError(`--batch-size ${cfg.batchSize} is larger than --train-size ${cfg.trainSize}`, CMD);
  if (cfg.m > 0) {
    if (!(optimizer === "sam" || optimizer === "asam"))
      throw new ConfigError("--m (m-sharpness) needs --optimizer sam or asam", CMD);
    if (cfg.batchSize % cfg.m !== 0)
      throw new ConfigError(`--batch-size ${cfg.batchSize} is not divisible by --m ${cfg.m}`, CMD);
  }
  if (cfg.model !== "mlp" && cfg.imageSize < 7)
    throw new ConfigError(`--model ${cfg.model} needs --image-size >= 7`, CMD);
  if ((cfg.depth - 4) % 6 !== 0)
    throw new ConfigError(`--depth must be 6n+4 (10, 16, 22, 28, ...), got ${cfg.depth}`, CMD);
  return cfg;
}

/**
 * Whether an optimizer takes a second (perturbed) gradient.
 *
 * @example
 * ```ts
 * isSamFamily("gsam"); // true
 * ```
 */
export function isSamFamily(o: TrainConfig["optimizer"]): boolean {
  return o === "sam" || o === "asam" || o === "gsam" || o === "usam" || o === "looksam";
}

/**
 * Checks the sizes against the loaded dataset.
 *
 * @example
 * ```ts
 * checkSizes(cfg, 60000, 10000); // throws if --train-size > 60000
 * ```
 */
export function checkSizes(cfg: TrainConfig, trainN: number, testN: number): void {
  if (cfg.trainSize > trainN)
    throw new ConfigError(
      `--train-size ${cfg.trainSize} is larger than the ${trainN} training examples of ${cfg.dataset}`,
      CMD,
    );
  if (cfg.testSize > testN)
    throw new ConfigError(
      `--test-size ${cfg.testSize} is larger than the ${testN} test examples of ${cfg.dataset}`,
      CMD,
    );
}

/**
 * On `--resume`: flags given now must agree with the stored run (except runtime-only ones and
 * `--epochs`, the new total), so a resumed run cannot silently change what it computes.
 *
 * @example
 * ```ts
 * mergeResumed(stored, { epochs: "8", resume: true }).epochs; // 8
 * ```
 */
export function mergeResumed(stored: TrainConfig, flags: Flags): TrainConfig {
  const given = resolveTrainConfig({ ...configToFlags(stored), ...flags });
  for (const name of Object.keys(flags)) {
    if (RUNTIME_ONLY.has(name)) continue;
    const key = flagToKey(name);
    if (JSON.stringify(given[key]) !== JSON.stringify(stored[key]))
      throw new ConfigError(
        `--resume: --${name} ${JSON.stringify(given[key])} differs from the stored run's ${JSON.stringify(stored[key])}`,
        CMD,
      );
  }
  return { ...stored, epochs: given.epochs, dataDir: given.dataDir, evalBatchSize: given.evalBatchSize };
}

function flagToKey(flag: string): keyof TrainConfig {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof TrainConfig;
}

/**
 * The flags that reproduce a config (used to re-validate a stored one).
 *
 * @example
 * ```ts
 * resolveTrainConfig(configToFlags(cfg)); // equals cfg
 * ```
 */
export function configToFlags(cfg: TrainConfig): Flags {
  const out: Flags = {};
  for (const [name, spec] of Object.entries(TRAIN_FLAGS)) {
    if (spec.type !== "string") continue;
    const v = cfg[flagToKey(name)];
    if (v === undefined || v === null) continue;
    out[name] = Array.isArray(v) ? v.join(",") : String(v);
  }
  return out;
}

/**
 * The default output folder of a run.
 *
 * @example
 * ```ts
 * defaultOut(resolveTrainConfig({})); // "runs/mnist-mlp-sgd-s0"
 * ```
 */
export function defaultOut(cfg: TrainConfig): string {
  return `runs/${cfg.dataset}-${cfg.model}-${cfg.optimizer}-s${cfg.seed}`;
}
