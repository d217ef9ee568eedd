/**
 * The example's training loop, free of the DOM so Node can run it too: an MLP on the MNIST slice,
 * trained with SAM (`optim.sam`) feeding plain SGD with momentum (`optim.sgd`).
 */
import {
  ConfigError,
  type JitOptions,
  type Tensor,
  jit,
  nn,
  numpy as np,
  optim,
  random,
  tree,
} from "../../src/index.js";
import type { MnistSlice } from "./mnist-slice.js";

/** Hyper-parameters of the example (the page reads them from its URL). */
export interface TrainConfig {
  /** Hidden widths of the MLP (default [64]). */
  hidden: number[];
  batchSize: number;
  learningRate: number;
  momentum: number;
  /** SAM's radius. */
  rho: number;
  seed: number;
  /**
   * Where the step runs: `"eager"` (default: op by op on the reference CPU implementations) or a
   * `jit` backend (`"gpu.js"`, `{ name: "gpu.js", mode }`, `"ts"`, ...): the whole SAM + SGD step
   * (both gradient passes and the update) is then one jitted program.
   */
  backend?: "eager" | NonNullable<JitOptions["backend"]>;
}

/** The defaults the page uses. */
export const defaultConfig: TrainConfig = {
  hidden: [64],
  batchSize: 64,
  learningRate: 0.05,
  momentum: 0.9,
  rho: 0.05,
  seed: 0,
};

/** A trainer: each `step()` takes one SAM step on the next batch and returns that batch's loss. */
export interface Trainer {
  readonly config: TrainConfig;
  /** Steps taken so far. */
  readonly steps: number;
  /** Trainable values in the model. */
  readonly parameterCount: number;
  /**
   * What ran the step: `"eager"`, or the jit's own report (`lower(...).backend`, e.g.
   * `"gpu.js:webgl2+reference escapes"`), known after the first step.
   */
  readonly backend: string;
  /** One SAM + SGD step; the loss is the clean-pass loss on the batch, before the update. */
  step(): number;
  /** Accuracy of the current parameters on the slice's test split. */
  testAccuracy(): number;
  /** Predicted digits for the first `n` test images. */
  predict(n: number): number[];
}

/** Pixels as float32 in [0, 1], `[n, rows·cols]`, and labels as int32. */
function toTensors(images: Uint8Array, labels: Uint8Array, pixels: number): { x: Tensor; y: Tensor } {
  const n = labels.length;
  const x = np
    .array(
      Float32Array.from(images, (v) => v / 255),
      "float32",
    )
    .reshape([n, pixels]);
  return { x, y: np.array(Int32Array.from(labels), "int32") };
}

function checkConfig(c: TrainConfig, nTrain: number): void {
  const op = "createTrainer";
  const positiveInt = (name: string, v: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isInteger(v) || v < 1 || v > max)
      throw new ConfigError(`${name} must be an integer in [1, ${max}], got ${v}`, op);
  };
  positiveInt("batchSize", c.batchSize, nTrain);
  c.hidden.forEach((h, i) => positiveInt(`hidden[${i}]`, h));
  for (const [name, v] of [
    ["learningRate", c.learningRate],
    ["rho", c.rho],
  ] as const) {
    if (!Number.isFinite(v) || v < 0)
      throw new ConfigError(`${name} must be a finite number >= 0, got ${v}`, op);
  }
  if (!(c.momentum >= 0 && c.momentum < 1))
    throw new ConfigError(`momentum must be in [0, 1), got ${c.momentum}`, op);
  if (!Number.isInteger(c.seed)) throw new ConfigError(`seed must be an integer, got ${c.seed}`, op);
}

/**
 * Sets up the model, the SAM gradient and the optimizer over a decoded slice.
 *
 * @example
 * ```ts
 * const trainer = createTrainer(decodeSlice(bytes), { ...defaultConfig, rho: 0.1 });
 * const loss = trainer.step();
 * ```
 */
export function createTrainer(slice: MnistSlice, config: TrainConfig = defaultConfig): Trainer {
  const pixels = slice.rows * slice.cols;
  const train = toTensors(slice.train.images, slice.train.labels, pixels);
  const test = toTensors(slice.test.images, slice.test.labels, pixels);
  const n = slice.train.labels.length;
  checkConfig(config, n);
  const { batchSize } = config;

  const key = random.key(config.seed);
  const model = nn.models.MLP([...config.hidden, 10]);
  const { params: params0, state } = model.init(random.foldIn(key, 0), [batchSize, pixels]);
  const logits = (p: unknown, x: Tensor) => model.apply(p, state, x)[0];
  // The loss's aux is its own value: optim.sam hands back the clean pass's aux, so the loss that the
  // page plots costs no extra forward pass.
  const loss = (p: unknown, x: Tensor, y: Tensor): [Tensor, Tensor] => {
    const l = np.mean(nn.losses.softmaxCrossEntropyWithIntegerLabels(logits(p, x), y));
    return [l, l];
  };
  const samGrad = optim.sam(loss, { rho: config.rho, hasAux: true });
  const opt = optim.sgd(config.learningRate, { momentum: config.momentum });

  let params: unknown = params0;
  let optState: unknown = opt.init(params0);
  let steps = 0;
  let order: Tensor = np.arange(0, 0, 1, "int32");
  let cursor = n;

  /** The next batch's indices: a fresh permutation per pass over the slice, dropping the remainder. */
  const nextIndices = (): Tensor => {
    if (cursor + batchSize > n) {
      order = random.permutation(random.foldIn(key, 1 + steps), n);
      cursor = 0;
    }
    const idx = np.take(order, np.arange(cursor, cursor + batchSize, 1, "int32"), 0);
    cursor += batchSize;
    return idx;
  };

  /** One SAM + SGD step as a pure function, so that it can run eagerly or as one jitted program. */
  const pureStep = (p: unknown, s: unknown, xb: Tensor, yb: Tensor): [unknown, unknown, Tensor] => {
    const [grads, lossValue] = samGrad(p, xb, yb) as [unknown, Tensor];
    const [updates, next] = opt.update(grads, s as never, p);
    return [optim.applyUpdates(p, updates), next, lossValue];
  };
  const requested = config.backend ?? "eager";
  const jitted = requested === "eager" ? null : jit(pureStep, { backend: requested });
  let backend = requested === "eager" ? "eager" : "jit (not run yet)";

  return {
    config,
    get steps() {
      return steps;
    },
    get backend() {
      return backend;
    },
    parameterCount: parameterCount(params0),
    step() {
      const idx = nextIndices();
      const xb = np.take(train.x, idx, 0);
      const yb = np.take(train.y, idx, 0);
      // The first jitted step asks the compiled program where its kernels ran (lower compiles and
      // runs it once; the program is cached, so the step below reuses it).
      if (jitted && steps === 0) backend = jitted.lower(params, optState, xb, yb).backend;
      const [nextParams, next, lossValue] = (jitted ?? pureStep)(params, optState, xb, yb);
      params = nextParams;
      optState = next;
      steps += 1;
      const l = lossValue.item();
      if (!Number.isFinite(l))
        throw new ConfigError(`loss is ${l} at step ${steps}; lower the learning rate`, "train");
      return l;
    },
    testAccuracy() {
      return nn.metrics.accuracy(logits(params, test.x), test.y).item();
    },
    predict(count) {
      const m = Math.min(count, test.y.shape[0]!);
      const x = np.take(test.x, np.arange(0, m, 1, "int32"), 0);
      return Array.from(np.argmax(logits(params, x), -1).data(), Number);
    },
  };
}

/** Number of trainable values in a parameter tree (shown on the page). */
export function parameterCount(params: unknown): number {
  return tree.leaves<Tensor>(params).reduce((s, l) => s + l.size, 0);
}
