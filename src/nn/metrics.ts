/**
 * Classification metrics over a batch. They are not meant to be differentiated; they are written
 * with `np` so they also run under `vmap` and `makeJaxpr`.
 */
import { ConfigError, DTypeError, fmtShape, ShapeError } from "../core/errors.js";
import type { ArrayLike } from "../core/numpy/index.js";
import * as np from "../core/numpy/index.js";
import type { Tensor } from "../core/tensor.js";
import { oneHot } from "./functions.js";

function intLabels(op: string, labels: ArrayLike, what = "labels"): Tensor {
  const l = np.asarray(labels);
  if (l.dtype !== "int32" && l.dtype !== "uint32")
    throw new DTypeError(`${what} must be int32 or uint32, got ${l.dtype}`, op);
  return l;
}

function checkLogits(op: string, logits: Tensor, labels: Tensor): void {
  const lead = logits.shape.slice(0, -1);
  if (logits.ndim < 1 || lead.length !== labels.ndim || lead.some((d, i) => d !== labels.shape[i]))
    throw new ShapeError(
      `logits ${fmtShape(logits.shape)} must be labels ${fmtShape(labels.shape)} plus a class axis`,
      op,
    );
}

/**
 * The fraction of examples whose arg-max logit is the label (ties go to the lowest index, as
 * argmax). Returns a float32 scalar.
 *
 * @example
 * ```ts
 * accuracy(np.array([[0, 1], [1, 0]]), np.array([1, 1], "int32")).item(); // 0.5
 * ```
 */
export function accuracy(logits: ArrayLike, labels: ArrayLike): Tensor {
  const op = "accuracy";
  const x = np.asarray(logits);
  const l = intLabels(op, labels);
  checkLogits(op, x, l);
  const pred = np.argmax(x, -1);
  return np.mean(np.astype(np.equal(pred, np.astype(l, pred.dtype)), "float32"));
}

/**
 * The fraction of examples whose label's logit is among the `k` largest: fewer than `k` logits
 * are strictly greater than it (so a tie at the k-th place counts as a hit).
 *
 * @example
 * ```ts
 * topKAccuracy(np.array([[0.1, 0.5, 0.4]]), np.array([2], "int32"), 2).item(); // 1
 * ```
 */
export function topKAccuracy(logits: ArrayLike, labels: ArrayLike, k: number): Tensor {
  const op = "topKAccuracy";
  if (!Number.isInteger(k) || k < 1) throw new ConfigError(`k must be a positive integer, got ${k}`, op);
  const x = np.asarray(logits);
  const l = intLabels(op, labels);
  checkLogits(op, x, l);
  const c = x.shape[x.ndim - 1]!;
  const mask = oneHot(l, c, x.dtype);
  // The label's logit, via a one-hot sum; -inf for an out-of-range label so it never counts.
  const hasLabel = np.greater(np.sum(mask, -1, { keepdims: true }), 0);
  const own = np.where(
    hasLabel,
    np.sum(np.multiply(mask, x), -1, { keepdims: true }),
    Number.POSITIVE_INFINITY,
  );
  const above = np.sum(np.astype(np.greater(x, own), "int32"), -1);
  const hit = np.logicalAnd(np.less(above, k), np.squeeze(hasLabel, -1));
  return np.mean(np.astype(hit, "float32"));
}

/**
 * `[numClasses, numClasses]` int32 counts: entry `[i, j]` counts examples with label `i`
 * predicted as `j` (rows are labels, as scikit-learn). Out-of-range values are not counted.
 *
 * @example
 * ```ts
 * confusionMatrix(np.array([0, 1], "int32"), np.array([0, 0], "int32"), 2).toArray(); // [[1, 1], [0, 0]]
 * ```
 */
export function confusionMatrix(predictions: ArrayLike, labels: ArrayLike, numClasses: number): Tensor {
  const op = "confusionMatrix";
  if (!Number.isInteger(numClasses) || numClasses < 1)
    throw new ConfigError(`numClasses must be a positive integer, got ${numClasses}`, op);
  const p = intLabels(op, predictions, "predictions");
  const l = intLabels(op, labels);
  if (p.ndim !== l.ndim || p.shape.some((d, i) => d !== l.shape[i]))
    throw new ShapeError(
      `predictions ${fmtShape(p.shape)} and labels ${fmtShape(l.shape)} must have the same shape`,
      op,
    );
  // float64 sums of 0/1 are exact far beyond any batch size.
  const lo = np.reshape(oneHot(l, numClasses, "float64"), [-1, numClasses]);
  const po = np.reshape(oneHot(p, numClasses, "float64"), [-1, numClasses]);
  return np.astype(np.matmul(np.transpose(lo), po), "int32");
}
