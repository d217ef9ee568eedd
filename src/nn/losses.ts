/**
 * Losses with optax.losses' names and semantics: each returns one value per example (the leading
 * axes of its input) and reduces nothing, so `np.mean(loss)` is the caller's choice.
 */
import { ConfigError, DTypeError, fmtShape, ShapeError } from "../core/errors.js";
import { toFloat } from "../core/numpy/elementwise.js";
import type { ArrayLike } from "../core/numpy/index.js";
import * as np from "../core/numpy/index.js";
import type { Tensor } from "../core/tensor.js";
import { logSoftmax, oneHot } from "./functions.js";

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

function checkSame(op: string, what: [string, string], a: Tensor, b: Tensor): void {
  if (!sameShape(a.shape, b.shape))
    throw new ShapeError(
      `${what[0]} ${fmtShape(a.shape)} and ${what[1]} ${fmtShape(b.shape)} must have the same shape`,
      op,
    );
}

/** Casts `labels` to the dtype of `logits` (which must be floating). */
function pair(op: string, logits: ArrayLike, labels: ArrayLike): [Tensor, Tensor] {
  const x = toFloat(logits, op);
  const y = np.asarray(labels);
  return [x, y.dtype === x.dtype ? y : np.astype(y, x.dtype)];
}

/**
 * Cross entropy between `softmax(logits)` and a label distribution over the last axis:
 * `-sum(labels * logSoftmax(logits), -1)`, one value per example; stable for any finite logits.
 *
 * @example
 * ```ts
 * softmaxCrossEntropy(np.array([[0, 0]]), np.array([[1, 0]])).toArray(); // [0.693...]
 * ```
 */
export function softmaxCrossEntropy(logits: ArrayLike, labels: ArrayLike): Tensor {
  const op = "softmaxCrossEntropy";
  const [x, y] = pair(op, logits, labels);
  checkSame(op, ["logits", "labels"], x, y);
  if (x.ndim < 1) throw new ShapeError(`logits must have a class axis, got shape ${fmtShape(x.shape)}`, op);
  return np.negative(np.sum(np.multiply(y, logSoftmax(x, -1)), -1));
}

/**
 * Softmax cross entropy with integer class labels: `logits [..., C]`, `labels [...]` (int32 or
 * uint32). A label outside `[0, C)` selects no class, so its loss is `logsumexp(logits)`.
 *
 * @example
 * ```ts
 * softmaxCrossEntropyWithIntegerLabels(np.array([[0, 0]]), np.array([1], "int32")).toArray(); // [0.693...]
 * ```
 */
export function softmaxCrossEntropyWithIntegerLabels(logits: ArrayLike, labels: ArrayLike): Tensor {
  const op = "softmaxCrossEntropyWithIntegerLabels";
  const x = toFloat(logits, op);
  const l = np.asarray(labels);
  if (l.dtype !== "int32" && l.dtype !== "uint32")
    throw new DTypeError(`labels must be int32 or uint32, got ${l.dtype}`, op);
  if (x.ndim < 1 || !sameShape(x.shape.slice(0, -1), l.shape))
    throw new ShapeError(
      `logits ${fmtShape(x.shape)} must be labels ${fmtShape(l.shape)} plus a class axis`,
      op,
    );
  // A one-hot mask rather than a gather keeps every transform on well-trodden elementwise rules.
  const mask = oneHot(l, x.shape[x.ndim - 1]!, x.dtype);
  return np.negative(np.sum(np.multiply(mask, logSoftmax(x, -1)), -1));
}

/**
 * Label smoothing: `(1 - alpha) * labels + alpha / numClasses` over the last axis.
 *
 * @example
 * ```ts
 * smoothLabels(np.array([[1, 0]]), 0.1).toArray(); // [[0.95, 0.05]]
 * ```
 */
export function smoothLabels(labels: ArrayLike, alpha: number): Tensor {
  const op = "smoothLabels";
  if (!(alpha >= 0 && alpha <= 1)) throw new ConfigError(`alpha must be in [0, 1], got ${alpha}`, op);
  const y = toFloat(labels, op);
  if (y.ndim < 1) throw new ShapeError(`labels must have a class axis, got shape ${fmtShape(y.shape)}`, op);
  return np.add(np.multiply(1 - alpha, y), alpha / y.shape[y.ndim - 1]!);
}

/**
 * Element-wise binary cross entropy of `sigmoid(logits)` against `labels` in [0, 1]:
 * `max(x, 0) - x·z + log1p(exp(-|x|))`, exact and finite for any finite logits.
 *
 * @example
 * ```ts
 * sigmoidBinaryCrossEntropy(np.array([0]), np.array([1])).toArray(); // [0.693...]
 * ```
 */
export function sigmoidBinaryCrossEntropy(logits: ArrayLike, labels: ArrayLike): Tensor {
  const op = "sigmoidBinaryCrossEntropy";
  const [x, z] = pair(op, logits, labels);
  checkSame(op, ["logits", "labels"], x, z);
  // Both branch selections use the same side at x = 0, so the gradient there is sigmoid(0) - z.
  const pos = np.greaterEqual(x, 0);
  const relu = np.where(pos, x, 0);
  const absX = np.where(pos, x, np.negative(x));
  return np.add(np.subtract(relu, np.multiply(x, z)), np.log1p(np.exp(np.negative(absX))));
}

function errors(op: string, predictions: ArrayLike, targets?: ArrayLike): Tensor {
  const p = toFloat(predictions, op);
  if (targets === undefined) return p;
  const t = np.asarray(targets);
  const tt = t.dtype === p.dtype ? t : np.astype(t, p.dtype);
  checkSame(op, ["predictions", "targets"], p, tt);
  return np.subtract(p, tt);
}

/**
 * `(predictions - targets)²` element-wise (`targets` defaults to 0), as optax.squared_error.
 *
 * @example
 * ```ts
 * squaredError(np.array([3]), np.array([1])).toArray(); // [4]
 * ```
 */
export function squaredError(predictions: ArrayLike, targets?: ArrayLike): Tensor {
  return np.square(errors("squaredError", predictions, targets));
}

/**
 * `½(predictions - targets)²` element-wise, as optax.l2_loss.
 *
 * @example
 * ```ts
 * l2Loss(np.array([3]), np.array([1])).toArray(); // [2]
 * ```
 */
export function l2Loss(predictions: ArrayLike, targets?: ArrayLike): Tensor {
  return np.multiply(0.5, np.square(errors("l2Loss", predictions, targets)));
}

/**
 * Huber loss element-wise: `½e²` for `|e| ≤ delta`, `delta·(|e| - ½delta)` beyond, with
 * `e = predictions - targets` (as optax.huber_loss).
 *
 * @example
 * ```ts
 * huberLoss(np.array([3]), np.array([0]), 1).toArray(); // [2.5]
 * ```
 */
export function huberLoss(predictions: ArrayLike, targets?: ArrayLike, delta = 1): Tensor {
  const op = "huberLoss";
  if (!(delta > 0)) throw new ConfigError(`delta must be positive, got ${delta}`, op);
  const e = errors(op, predictions, targets);
  const absE = np.abs(e);
  const quadratic = np.minimum(absE, delta);
  const linear = np.subtract(absE, quadratic);
  return np.add(np.multiply(0.5, np.square(quadratic)), np.multiply(delta, linear));
}
