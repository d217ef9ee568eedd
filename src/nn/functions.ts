/**
 * `jax.nn` activation and normalisation functions, written with `np` and `lax` so that every
 * transform sees through them.
 */
import { checkDType, type DType } from "../core/dtype.js";
import { ConfigError } from "../core/errors.js";
import { toFloat } from "../core/numpy/elementwise.js";
import type { ArrayLike } from "../core/numpy/index.js";
import * as np from "../core/numpy/index.js";
import { logistic, stopGradient } from "../core/primitives/elementwise.js";
import { normalizeAxes } from "../core/shape.js";
import type { Tensor } from "../core/tensor.js";

type Axis = number | readonly number[];

const asFloat = (x: ArrayLike): Tensor => toFloat(x, "nn");

/**
 * `max(x, 0)`, with derivative 0 at 0 (as jax.nn.relu).
 *
 * @example
 * ```ts
 * relu(np.array([-1, 2])).toArray(); // [0, 2]
 * ```
 */
export function relu(x: ArrayLike): Tensor {
  const t = asFloat(x);
  return np.where(np.greater(t, 0), t, 0);
}

/** `min(max(x, 0), 6)`. @example `relu6(np.array([-1, 3, 8])) // [0, 3, 6]` */
export function relu6(x: ArrayLike): Tensor {
  const t = asFloat(x);
  return np.where(np.lessEqual(t, 0), 0, np.where(np.greaterEqual(t, 6), 6, t));
}

/**
 * Gaussian error linear unit: the tanh approximation by default (as jax.nn.gelu), or the exact
 * `x·Φ(x)` via erf.
 *
 * @example
 * ```ts
 * gelu(np.array([1]), false).item(); // 0.8413...
 * ```
 */
export function gelu(x: ArrayLike, approximate = true): Tensor {
  const t = asFloat(x);
  if (approximate) {
    const inner = np.multiply(Math.sqrt(2 / Math.PI), np.add(t, np.multiply(0.044715, np.power(t, 3))));
    return np.multiply(np.multiply(0.5, t), np.add(1, np.tanh(inner)));
  }
  return np.multiply(np.multiply(0.5, t), np.add(1, np.erf(np.multiply(t, Math.SQRT1_2))));
}

/** `1 / (1 + e^{-x})` (lax.logistic). @example `sigmoid(np.array([0])).item(); // 0.5` */
export function sigmoid(x: ArrayLike): Tensor {
  return logistic(asFloat(x));
}

/** `log(1 + e^x)`, stable for large |x|. @example `softplus(np.array([0])).item(); // 0.693...` */
export function softplus(x: ArrayLike): Tensor {
  return np.logaddexp(asFloat(x), 0);
}

/** `x · sigmoid(x)`. @example `silu(x)` */
export function silu(x: ArrayLike): Tensor {
  const t = asFloat(x);
  return np.multiply(t, sigmoid(t));
}
/** Alias of `silu`. @example `swish(x)` */
export const swish = silu;

/** `x` for x > 0, `alpha·(e^x - 1)` otherwise. @example `elu(x, 1)` */
export function elu(x: ArrayLike, alpha = 1): Tensor {
  const t = asFloat(x);
  const pos = np.greater(t, 0);
  // The negative branch sees only non-positive inputs, so expm1 cannot overflow (nor its gradient).
  return np.where(pos, t, np.multiply(alpha, np.expm1(np.where(pos, 0, t))));
}

/** `x` for x ≥ 0, `negativeSlope·x` otherwise. @example `leakyRelu(x, 0.2)` */
export function leakyRelu(x: ArrayLike, negativeSlope = 0.01): Tensor {
  const t = asFloat(x);
  return np.where(np.greaterEqual(t, 0), t, np.multiply(negativeSlope, t));
}

/** Hyperbolic tangent. @example `tanh(x)` */
export function tanh(x: ArrayLike): Tensor {
  return np.tanh(x);
}

/** `log(sigmoid(x)) = -softplus(-x)`, stable. @example `logSigmoid(x)` */
export function logSigmoid(x: ArrayLike): Tensor {
  return np.negative(softplus(np.negative(asFloat(x))));
}

/** The maximum over `axis`, kept, as a constant for differentiation (as JAX's softmax does). */
function shiftFor(t: Tensor, axis: Axis): Tensor {
  const m = np.max(t, axis as number[], { keepdims: true });
  // Infinite maxima would turn x - max into NaN; shifting by 0 there is exact anyway.
  return stopGradient(np.where(np.isfinite(m), m, 0));
}

/**
 * `exp(x) / sum(exp(x))` along `axis`, computed after subtracting the maximum (no overflow).
 *
 * @example
 * ```ts
 * softmax(np.array([1000, 1000])).toArray(); // [0.5, 0.5]
 * ```
 */
export function softmax(x: ArrayLike, axis: Axis = -1): Tensor {
  const t = asFloat(x);
  const unnormalized = np.exp(np.subtract(t, shiftFor(t, axis)));
  return np.divide(unnormalized, np.sum(unnormalized, axis as number[], { keepdims: true }));
}

/**
 * `x - logsumexp(x)` along `axis`, stable.
 *
 * @example
 * ```ts
 * logSoftmax(np.array([0, 0])).toArray(); // [-0.693..., -0.693...]
 * ```
 */
export function logSoftmax(x: ArrayLike, axis: Axis = -1): Tensor {
  const t = asFloat(x);
  const shifted = np.subtract(t, shiftFor(t, axis));
  return np.subtract(shifted, np.log(np.sum(np.exp(shifted), axis as number[], { keepdims: true })));
}

/**
 * `log(sum(exp(x)))` over `axis` (all axes by default), stable for large inputs.
 *
 * @example
 * ```ts
 * logsumexp(np.array([1000, 1000])).item(); // 1000.693...
 * ```
 */
export function logsumexp(x: ArrayLike, axis?: Axis | null, keepdims = false): Tensor {
  const t = asFloat(x);
  const axes = normalizeAxes(axis, t.ndim, "logsumexp");
  const m = shiftFor(t, axes);
  const out = np.add(np.log(np.sum(np.exp(np.subtract(t, m)), axes, { keepdims: true })), m);
  return keepdims ? out : np.squeeze(out, axes);
}

/**
 * One-hot encoding: `labels[..., None] == arange(numClasses)`; out-of-range labels give zeros.
 *
 * @example
 * ```ts
 * oneHot(np.array([0, 2], "int32"), 3).toArray(); // [[1, 0, 0], [0, 0, 1]]
 * ```
 */
export function oneHot(labels: ArrayLike, numClasses: number, dtype: DType = "float32"): Tensor {
  if (!Number.isInteger(numClasses) || numClasses < 0)
    throw new ConfigError(`numClasses must be a non-negative integer, got ${numClasses}`, "oneHot");
  checkDType(dtype, "oneHot");
  const l = np.asarray(labels);
  const eq = np.equal(np.expandDims(l, -1), np.arange(0, numClasses, 1, "int32"));
  return np.astype(eq, dtype);
}

/** Options of `standardize`. */
export interface StandardizeOptions {
  mean?: ArrayLike;
  variance?: ArrayLike;
  epsilon?: number;
}

/**
 * `(x - mean) / sqrt(variance + epsilon)` over `axis` (mean and variance computed when not given).
 *
 * @example
 * ```ts
 * standardize(np.array([1, 2, 3])); // mean 0, variance ≈ 1
 * ```
 */
export function standardize(x: ArrayLike, axis: Axis = -1, opts: StandardizeOptions = {}): Tensor {
  const t = asFloat(x);
  const ax = axis as number[];
  const mean = opts.mean ?? np.mean(t, ax, { keepdims: true });
  // E[x²] - E[x]², as jax.nn.standardize computes it.
  const variance =
    opts.variance ?? np.subtract(np.mean(np.square(t), ax, { keepdims: true }), np.square(mean));
  return np.multiply(np.subtract(t, mean), np.rsqrt(np.add(variance, opts.epsilon ?? 1e-5)));
}
