/**
 * Parameter initializers with Flax's (`jax.nn.initializers`) names and defaults. Each is a function
 * `(key, shape, dtype = "float32") → Tensor`; the factories (`normal(0.02)`, `heNormal()`, …) return
 * one.
 */
import { type DType } from "../core/dtype.js";
import { ConfigError, ShapeError, fmtShape } from "../core/errors.js";
import * as np from "../core/numpy/index.js";
import * as random from "../core/random.js";
import { normalizeAxis } from "../core/shape.js";
import type { Tensor } from "../core/tensor.js";

/** An initializer: a pure function of a PRNG key, a shape and a dtype. */
export type Initializer = (key: Tensor, shape: number[], dtype?: DType) => Tensor;

/**
 * All zeros (the key is ignored).
 *
 * @example
 * ```ts
 * zeros(random.key(0), [3]); // [0, 0, 0]
 * ```
 */
export const zeros: Initializer = (_key, shape, dtype = "float32") => np.zeros(shape, dtype);

/**
 * All ones (the key is ignored).
 *
 * @example
 * ```ts
 * ones(random.key(0), [3]); // [1, 1, 1]
 * ```
 */
export const ones: Initializer = (_key, shape, dtype = "float32") => np.ones(shape, dtype);

/**
 * An initializer that fills with `value`.
 *
 * @example
 * ```ts
 * constant(0.5)(random.key(0), [2]); // [0.5, 0.5]
 * ```
 */
export function constant(value: number): Initializer {
  return (_key, shape, dtype = "float32") => np.full(shape, value, dtype);
}

/**
 * Normal samples with mean 0 and standard deviation `stddev`.
 *
 * @example
 * ```ts
 * normal(0.02)(random.key(0), [4, 4]);
 * ```
 */
export function normal(stddev = 1e-2): Initializer {
  return (key, shape, dtype = "float32") => np.multiply(random.normal(key, shape, dtype), stddev);
}

/**
 * Uniform samples in `[0, scale)` (as Flax's `uniform`, which is not centred).
 *
 * @example
 * ```ts
 * uniform(0.1)(random.key(0), [4]);
 * ```
 */
export function uniform(scale = 1e-2): Initializer {
  return (key, shape, dtype = "float32") => np.multiply(random.uniform(key, shape, dtype), scale);
}

/**
 * Normal samples truncated to `[lower, upper]` standard deviations, scaled by `stddev`.
 *
 * @example
 * ```ts
 * truncatedNormal(0.02)(random.key(0), [4]);
 * ```
 */
export function truncatedNormal(stddev = 1e-2, lower = -2, upper = 2): Initializer {
  return (key, shape, dtype = "float32") =>
    np.multiply(random.truncatedNormal(key, lower, upper, shape, dtype), stddev);
}

export type FanMode = "fan_in" | "fan_out" | "fan_avg";
export type FanDistribution = "truncated_normal" | "normal" | "uniform";

/**
 * `[fanIn, fanOut]` as JAX computes them: the in and out axes' sizes, each times the receptive field
 * (the product of the other axes, e.g. a conv kernel's spatial size).
 *
 * @example
 * ```ts
 * computeFans([3, 3, 16, 32]); // [144, 288]
 * ```
 */
export function computeFans(shape: readonly number[], inAxis = -2, outAxis = -1): [number, number] {
  if (shape.length < 2)
    throw new ShapeError(
      `cannot compute input and output sizes of a ${shape.length}-dimensional weights tensor ${fmtShape(shape)}; it must be at least 2-D`,
      "varianceScaling",
    );
  const i = normalizeAxis(inAxis, shape.length, "varianceScaling");
  const o = normalizeAxis(outAxis, shape.length, "varianceScaling");
  const inSize = shape[i]!;
  const outSize = shape[o]!;
  // JAX divides the total size by both axes' sizes, so an embedding's `outAxis: 0` (equal to the
  // in axis) gives fanIn = features.
  const total = shape.reduce((a, b) => a * b, 1);
  const receptive = inSize * outSize === 0 ? 0 : total / inSize / outSize;
  return [inSize * receptive, outSize * receptive];
}

/** Options of `varianceScaling` beyond scale, mode and distribution. */
export interface VarianceScalingOptions {
  inAxis?: number;
  outAxis?: number;
}

// The standard deviation of a unit normal truncated to [-2, 2]: dividing by it makes the truncated
// samples' variance the requested one.
const TRUNCATED_STDDEV = 0.87962566103423978;

/**
 * `jax.nn.initializers.variance_scaling`: samples with variance `scale / n`, `n` the fan given by
 * `mode`, from a truncated normal (corrected to that variance), a normal, or a centred uniform.
 *
 * @example
 * ```ts
 * varianceScaling(2, "fan_in", "normal")(random.key(0), [784, 512]); // variance ≈ 2/784
 * ```
 */
export function varianceScaling(
  scale: number,
  mode: FanMode,
  distribution: FanDistribution,
  opts: VarianceScalingOptions = {},
): Initializer {
  if (!(scale > 0)) throw new ConfigError(`scale must be positive, got ${scale}`, "varianceScaling");
  if (mode !== "fan_in" && mode !== "fan_out" && mode !== "fan_avg")
    throw new ConfigError(`unknown mode ${JSON.stringify(mode)}; expected fan_in, fan_out or fan_avg`, "varianceScaling");
  if (distribution !== "truncated_normal" && distribution !== "normal" && distribution !== "uniform")
    throw new ConfigError(
      `unknown distribution ${JSON.stringify(distribution)}; expected truncated_normal, normal or uniform`,
      "varianceScaling",
    );
  return (key, shape, dtype = "float32") => {
    const [fanIn, fanOut] = computeFans(shape, opts.inAxis ?? -2, opts.outAxis ?? -1);
    const denominator = mode === "fan_in" ? fanIn : mode === "fan_out" ? fanOut : (fanIn + fanOut) / 2;
    const variance = scale / denominator;
    if (distribution === "truncated_normal") {
      const stddev = Math.sqrt(variance) / TRUNCATED_STDDEV;
      return np.multiply(random.truncatedNormal(key, -2, 2, shape, dtype), stddev);
    }
    if (distribution === "normal") return np.multiply(random.normal(key, shape, dtype), Math.sqrt(variance));
    return np.multiply(random.uniform(key, shape, dtype, -1, 1), Math.sqrt(3 * variance));
  };
}

/**
 * He (Kaiming) normal: truncated normal with variance `2 / fanIn`.
 *
 * @example
 * ```ts
 * heNormal()(random.key(0), [3, 3, 16, 32]);
 * ```
 */
export function heNormal(opts: VarianceScalingOptions = {}): Initializer {
  return varianceScaling(2, "fan_in", "truncated_normal", opts);
}

/**
 * He uniform: uniform with variance `2 / fanIn`.
 *
 * @example
 * ```ts
 * heUniform()(random.key(0), [64, 32]);
 * ```
 */
export function heUniform(opts: VarianceScalingOptions = {}): Initializer {
  return varianceScaling(2, "fan_in", "uniform", opts);
}

/**
 * Glorot (Xavier) normal: truncated normal with variance `2 / (fanIn + fanOut)`.
 *
 * @example
 * ```ts
 * glorotNormal()(random.key(0), [64, 32]);
 * ```
 */
export function glorotNormal(opts: VarianceScalingOptions = {}): Initializer {
  return varianceScaling(1, "fan_avg", "truncated_normal", opts);
}

/**
 * Glorot (Xavier) uniform: uniform with variance `2 / (fanIn + fanOut)`.
 *
 * @example
 * ```ts
 * glorotUniform()(random.key(0), [64, 32]);
 * ```
 */
export function glorotUniform(opts: VarianceScalingOptions = {}): Initializer {
  return varianceScaling(1, "fan_avg", "uniform", opts);
}

/**
 * LeCun normal (Flax's default kernel init): truncated normal with variance `1 / fanIn`.
 *
 * @example
 * ```ts
 * lecunNormal()(random.key(0), [64, 32]);
 * ```
 */
export function lecunNormal(opts: VarianceScalingOptions = {}): Initializer {
  return varianceScaling(1, "fan_in", "truncated_normal", opts);
}

/**
 * LeCun uniform: uniform with variance `1 / fanIn`.
 *
 * @example
 * ```ts
 * lecunUniform()(random.key(0), [64, 32]);
 * ```
 */
export function lecunUniform(opts: VarianceScalingOptions = {}): Initializer {
  return varianceScaling(1, "fan_in", "uniform", opts);
}
