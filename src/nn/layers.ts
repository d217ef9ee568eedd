/**
 * Layers with Flax's names, as pure `(init, apply)` pairs (see `layer.ts`).
 *
 * Parameter naming: a leaf layer's params are a flat object named as Flax names them (`Dense`:
 * `{ kernel, bias }`; `BatchNorm`: params `{ scale, bias }`, state `{ mean, var }`). Containers
 * (`Sequential`, `Parallel`) name their children `layers_0`, `layers_1`, … so a Sequential's first
 * kernel is `params.layers_0.kernel`; parameter-free children get `{}`. `Residual` is transparent:
 * its params are its inner layer's.
 */
import { type DType } from "../core/dtype.js";
import { ConfigError, fmtShape } from "../core/errors.js";
import * as np from "../core/numpy/index.js";
import { padtypeToPads, convDimensionNumbers, convGeneralDilated } from "../core/primitives/conv.js";
import { slice } from "../core/primitives/indexing.js";
import { reshape } from "../core/primitives/structural.js";
import { reduceWindow } from "../core/primitives/window.js";
import * as random from "../core/random.js";
import { normalizeAxis } from "../core/shape.js";
import type { Tensor } from "../core/tensor.js";
import {
  type Initializer,
  lecunNormal,
  varianceScaling,
  zeros as zerosInit,
} from "./initializers.js";
import {
  type ApplyContext,
  asLayer,
  type InitResult,
  type Layer,
  type LayerLike,
  LayerShapeError,
  type Params,
  rethrowWithPath,
} from "./layer.js";

type Padding = "SAME" | "VALID" | readonly (readonly [number, number])[];

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

function castTo(x: Tensor, dtype: DType): Tensor {
  return x.dtype === dtype ? x : np.astype(x, dtype);
}

/** The i-th of `n` keys split from `key` (one split, so debug key-reuse checks stay happy). */
function splitKeys(key: Tensor, n: number): Tensor[] {
  if (n === 0) return [];
  const keys = random.split(key, n);
  return Array.from({ length: n }, (_, i) => reshape(slice(keys, [i, 0], [i + 1, 2]), [2]));
}

function toList(v: number | readonly number[], n: number, what: string, op: string): number[] {
  const list = typeof v === "number" ? new Array<number>(n).fill(v) : [...v];
  if (list.length !== n || list.some((d) => !Number.isInteger(d) || d < 1))
    throw new ConfigError(`${what} must be ${n} positive integer(s), got ${JSON.stringify(v)}`, op);
  return list;
}

function windowOut(size: number, window: number, stride: number, lo: number, hi: number): number {
  const padded = size + lo + hi;
  return padded < window ? 0 : Math.floor((padded - window) / stride) + 1;
}

function resolvePads(
  pad: Padding,
  sizes: readonly number[],
  windows: readonly number[],
  strides: readonly number[],
  op: string,
): [number, number][] {
  if (typeof pad === "string") return padtypeToPads(sizes, windows, strides, pad);
  if (pad.length !== sizes.length)
    throw new ConfigError(`padding needs ${sizes.length} [lo, hi] pairs, got ${pad.length}`, op);
  return pad.map(([lo, hi]) => [lo, hi]);
}

// ---------------------------------------------------------------------------------------------
// Dense

/** Options of `Dense`. */
export interface DenseOptions {
  useBias?: boolean;
  kernelInit?: Initializer;
  biasInit?: Initializer;
  paramDtype?: DType;
}

/**
 * A fully connected layer on the last axis: `y = x @ kernel + bias`, kernel `[in, features]`.
 *
 * @example
 * ```ts
 * const { params } = Dense(10).init(random.key(0), [32, 784]); // params.kernel: [784, 10]
 * ```
 */
export function Dense(features: number, opts: DenseOptions = {}): Layer {
  const name = "Dense";
  if (!Number.isInteger(features) || features < 0)
    throw new ConfigError(`features must be a non-negative integer, got ${features}`, name);
  const useBias = opts.useBias ?? true;
  const kernelInit = opts.kernelInit ?? lecunNormal();
  const biasInit = opts.biasInit ?? zerosInit;
  const dtype = opts.paramDtype ?? "float32";
  return {
    name,
    init(key, inputShape) {
      if (inputShape.length < 1)
        throw new LayerShapeError(`expected an input of rank >= 1, got ${fmtShape(inputShape)}`, name);
      const inF = inputShape[inputShape.length - 1]!;
      const [kk, kb] = splitKeys(key, 2);
      const params: Params = { kernel: kernelInit(kk!, [inF, features], dtype) };
      if (useBias) params.bias = biasInit(kb!, [features], dtype);
      return { params, state: {}, outputShape: [...inputShape.slice(0, -1), features] };
    },
    apply(params, state, x) {
      const kernel = params.kernel as Tensor;
      const inF = kernel.shape[0]!;
      if (x.ndim < 1 || x.shape[x.ndim - 1] !== inF)
        throw new LayerShapeError(`expected last dimension ${inF}, got ${x.ndim < 1 ? "a scalar" : x.shape[x.ndim - 1]}`, name);
      let y = np.matmul(castTo(x, kernel.dtype), kernel);
      if (useBias) y = np.add(y, params.bias as Tensor);
      return [y, state];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Conv

/** Options of `Conv`. */
export interface ConvOptions {
  strides?: number | readonly number[];
  padding?: Padding;
  kernelDilation?: number | readonly number[];
  featureGroupCount?: number;
  useBias?: boolean;
  kernelInit?: Initializer;
  biasInit?: Initializer;
  paramDtype?: DType;
}

const CONV_SPECS: Record<number, [string, string, string]> = {
  1: ["NWC", "WIO", "NWC"],
  2: ["NHWC", "HWIO", "NHWC"],
  3: ["NDHWC", "DHWIO", "NDHWC"],
};

/**
 * A convolution over channels-last input (`NWC`, `NHWC` or `NDHWC`) with an `HWIO` kernel
 * `[...kernelSize, in / featureGroupCount, features]`. Padding defaults to `"SAME"` as in Flax.
 *
 * @example
 * ```ts
 * Conv(16, [3, 3]).init(random.key(0), [8, 28, 28, 1]).outputShape; // [8, 28, 28, 16]
 * ```
 */
export function Conv(features: number, kernelSize: readonly number[], opts: ConvOptions = {}): Layer {
  const name = "Conv";
  if (!Array.isArray(kernelSize) || !(kernelSize.length in CONV_SPECS))
    throw new ConfigError(`kernelSize must be an array of 1 to 3 sizes, got ${JSON.stringify(kernelSize)}`, name);
  const n = kernelSize.length;
  const ks = toList(kernelSize, n, "kernelSize", name);
  const strides = toList(opts.strides ?? 1, n, "strides", name);
  const dil = toList(opts.kernelDilation ?? 1, n, "kernelDilation", name);
  const padding = opts.padding ?? "SAME";
  const groups = opts.featureGroupCount ?? 1;
  const useBias = opts.useBias ?? true;
  const kernelInit = opts.kernelInit ?? lecunNormal();
  const biasInit = opts.biasInit ?? zerosInit;
  const dtype = opts.paramDtype ?? "float32";
  if (!Number.isInteger(groups) || groups < 1 || features % groups !== 0)
    throw new ConfigError(`featureGroupCount ${groups} must be a positive divisor of features ${features}`, name);
  const checkInput = (shape: readonly number[], inF?: number) => {
    if (shape.length !== n + 2)
      throw new LayerShapeError(
        `expected a rank-${n + 2} input (${CONV_SPECS[n]![0]}) for a ${n}-D kernel, got ${fmtShape(shape)}`,
        name,
      );
    const c = shape[n + 1]!;
    if (inF !== undefined && c !== inF) throw new LayerShapeError(`expected last dimension ${inF}, got ${c}`, name);
    if (c % groups !== 0)
      throw new LayerShapeError(`input channels ${c} are not divisible by featureGroupCount ${groups}`, name);
  };
  return {
    name,
    init(key, inputShape) {
      checkInput(inputShape);
      const c = inputShape[n + 1]!;
      const spatial = inputShape.slice(1, n + 1);
      const dilated = ks.map((k, i) => (k - 1) * dil[i]! + 1);
      const pads = resolvePads(padding, spatial, dilated, strides, name);
      const outSpatial = spatial.map((s, i) => windowOut(s, dilated[i]!, strides[i]!, pads[i]![0], pads[i]![1]));
      const [kk, kb] = splitKeys(key, 2);
      const params: Params = { kernel: kernelInit(kk!, [...ks, c / groups, features], dtype) };
      if (useBias) params.bias = biasInit(kb!, [features], dtype);
      return { params, state: {}, outputShape: [inputShape[0]!, ...outSpatial, features] };
    },
    apply(params, state, x) {
      const kernel = params.kernel as Tensor;
      checkInput(x.shape, kernel.shape[n]! * groups);
      const xc = castTo(x, kernel.dtype);
      let y = convGeneralDilated(xc, kernel, {
        windowStrides: strides,
        padding: typeof padding === "string" ? padding : padding.map(([lo, hi]) => [lo, hi] as [number, number]),
        rhsDilation: dil,
        dimensionNumbers: convDimensionNumbers(xc.shape, kernel.shape, CONV_SPECS[n]!),
        featureGroupCount: groups,
      });
      if (useBias) y = np.add(y, params.bias as Tensor);
      return [y, state];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Normalisation

/** Options of `BatchNorm`. */
export interface BatchNormOptions {
  momentum?: number;
  epsilon?: number;
  axis?: number;
  useBias?: boolean;
  useScale?: boolean;
}

/** Mean and biased variance over `axes` (keepdims), as Flax: `E[x²] - E[x]²`, clipped at 0. */
function moments(x: Tensor, axes: number[]): [Tensor, Tensor] {
  const mean = np.mean(x, axes, { keepdims: true });
  const mean2 = np.mean(np.square(x), axes, { keepdims: true });
  return [mean, np.maximum(np.subtract(mean2, np.square(mean)), 0)];
}

function featureShape(ndim: number, axis: number, size: number): number[] {
  return Array.from({ length: ndim }, (_, i) => (i === axis ? size : 1));
}

/**
 * Batch normalisation over every axis but `axis`. With `ctx.train`, normalises by the batch's
 * statistics and returns the updated running averages
 * (`ra = momentum * ra + (1 - momentum) * batch`, variance biased, as Flax); otherwise it uses the
 * running averages and returns the state unchanged. Params `{ scale, bias }`, state `{ mean, var }`.
 *
 * @example
 * ```ts
 * const [y, newState] = BatchNorm().apply(params, state, x, { train: true });
 * ```
 */
export function BatchNorm(opts: BatchNormOptions = {}): Layer {
  const name = "BatchNorm";
  const momentum = opts.momentum ?? 0.99;
  const epsilon = opts.epsilon ?? 1e-5;
  const axisOpt = opts.axis ?? -1;
  const useBias = opts.useBias ?? true;
  const useScale = opts.useScale ?? true;
  if (!(momentum >= 0 && momentum <= 1)) throw new ConfigError(`momentum must be in [0, 1], got ${momentum}`, name);
  const featAxis = (shape: readonly number[]) => {
    if (shape.length < 1) throw new LayerShapeError(`expected an input of rank >= 1, got ${fmtShape(shape)}`, name);
    if (axisOpt < -shape.length || axisOpt >= shape.length)
      throw new LayerShapeError(`axis ${axisOpt} is out of range for input ${fmtShape(shape)}`, name);
    return normalizeAxis(axisOpt, shape.length, name);
  };
  return {
    name,
    init(_key, inputShape) {
      const c = inputShape[featAxis(inputShape)]!;
      const params: Params = {};
      if (useScale) params.scale = np.ones([c]);
      if (useBias) params.bias = np.zeros([c]);
      return { params, state: { mean: np.zeros([c]), var: np.ones([c]) }, outputShape: [...inputShape] };
    },
    apply(params, state, x, ctx: ApplyContext = {}) {
      const ax = featAxis(x.shape);
      const c = (state.mean as Tensor).shape[0]!;
      if (x.shape[ax] !== c) throw new LayerShapeError(`expected dimension ${c} on axis ${ax}, got ${x.shape[ax]}`, name);
      const bshape = featureShape(x.ndim, ax, c);
      const axes = Array.from({ length: x.ndim }, (_, i) => i).filter((i) => i !== ax);
      let mean: Tensor;
      let variance: Tensor;
      let newState = state;
      if (ctx.train) {
        [mean, variance] = moments(x, axes);
        const upd = (ra: Tensor, b: Tensor) =>
          np.add(np.multiply(ra, momentum), np.multiply(np.reshape(b, [c]), 1 - momentum));
        newState = { mean: upd(state.mean as Tensor, mean), var: upd(state.var as Tensor, variance) };
      } else {
        mean = np.reshape(state.mean as Tensor, bshape);
        variance = np.reshape(state.var as Tensor, bshape);
      }
      let y = np.multiply(np.subtract(x, mean), np.rsqrt(np.add(variance, epsilon)));
      if (useScale) y = np.multiply(y, np.reshape(params.scale as Tensor, bshape));
      if (useBias) y = np.add(y, np.reshape(params.bias as Tensor, bshape));
      return [y, newState];
    },
  };
}

/** Options of `LayerNorm`. */
export interface LayerNormOptions {
  epsilon?: number;
  useBias?: boolean;
  useScale?: boolean;
}

/**
 * Layer normalisation over the last axis, with learned `scale` and `bias` of that size.
 *
 * @example
 * ```ts
 * LayerNorm().init(random.key(0), [4, 16]).params.scale.shape; // [16]
 * ```
 */
export function LayerNorm(opts: LayerNormOptions = {}): Layer {
  const name = "LayerNorm";
  const epsilon = opts.epsilon ?? 1e-6;
  const useBias = opts.useBias ?? true;
  const useScale = opts.useScale ?? true;
  return {
    name,
    init(_key, inputShape) {
      if (inputShape.length < 1)
        throw new LayerShapeError(`expected an input of rank >= 1, got ${fmtShape(inputShape)}`, name);
      const c = inputShape[inputShape.length - 1]!;
      const params: Params = {};
      if (useScale) params.scale = np.ones([c]);
      if (useBias) params.bias = np.zeros([c]);
      return { params, state: {}, outputShape: [...inputShape] };
    },
    apply(params, state, x) {
      if (x.ndim < 1) throw new LayerShapeError(`expected an input of rank >= 1, got ${fmtShape(x.shape)}`, name);
      const [mean, variance] = moments(x, [x.ndim - 1]);
      let y = np.multiply(np.subtract(x, mean), np.rsqrt(np.add(variance, epsilon)));
      if (useScale) y = np.multiply(y, params.scale as Tensor);
      if (useBias) y = np.add(y, params.bias as Tensor);
      return [y, state];
    },
  };
}

/** Options of `GroupNorm`. */
export interface GroupNormOptions {
  numGroups?: number;
  epsilon?: number;
}

/**
 * Group normalisation: channels (last axis) split into `numGroups` groups, each normalised over
 * the group's channels and all non-batch axes (axis 0 is the batch).
 *
 * @example
 * ```ts
 * GroupNorm({ numGroups: 4 }).init(random.key(0), [2, 8, 8, 16]);
 * ```
 */
export function GroupNorm(opts: GroupNormOptions = {}): Layer {
  const name = "GroupNorm";
  const g = opts.numGroups ?? 32;
  const epsilon = opts.epsilon ?? 1e-6;
  if (!Number.isInteger(g) || g < 1) throw new ConfigError(`numGroups must be a positive integer, got ${g}`, name);
  const check = (shape: readonly number[]) => {
    if (shape.length < 2) throw new LayerShapeError(`expected an input of rank >= 2, got ${fmtShape(shape)}`, name);
    const c = shape[shape.length - 1]!;
    if (c % g !== 0) throw new LayerShapeError(`channels ${c} are not divisible by numGroups ${g}`, name);
    return c;
  };
  return {
    name,
    init(_key, inputShape) {
      const c = check(inputShape);
      return { params: { scale: np.ones([c]), bias: np.zeros([c]) }, state: {}, outputShape: [...inputShape] };
    },
    apply(params, state, x) {
      const c = check(x.shape);
      const xr = np.reshape(x, [...x.shape.slice(0, -1), g, c / g]);
      const axes = Array.from({ length: xr.ndim }, (_, i) => i).filter((i) => i !== 0 && i !== xr.ndim - 2);
      const [mean, variance] = moments(xr, axes);
      const yr = np.multiply(np.subtract(xr, mean), np.rsqrt(np.add(variance, epsilon)));
      const y = np.reshape(yr, x.shape);
      return [np.add(np.multiply(y, params.scale as Tensor), params.bias as Tensor), state];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Dropout

/**
 * Inverted dropout: in training (`ctx.train`) zeroes each element with probability `rate` and
 * scales the rest by `1 / (1 - rate)`, drawing from `ctx.rng` (required); identity otherwise.
 *
 * @example
 * ```ts
 * Dropout(0.5).apply({}, {}, x, { train: true, rng: random.key(1) });
 * ```
 */
export function Dropout(rate: number): Layer {
  const name = "Dropout";
  if (!(rate >= 0 && rate <= 1)) throw new ConfigError(`rate must be in [0, 1], got ${rate}`, name);
  return {
    name,
    init(_key, inputShape) {
      return { params: {}, state: {}, outputShape: [...inputShape] };
    },
    apply(_params, state, x, ctx: ApplyContext = {}) {
      if (!ctx.train || rate === 0) return [x, state];
      if (ctx.rng === undefined)
        throw new ConfigError("training mode needs a PRNG key: pass { train: true, rng } to apply", name);
      if (rate === 1) return [np.zerosLike(x), state];
      const keep = random.bernoulli(ctx.rng, 1 - rate, [...x.shape]);
      return [np.where(keep, np.divide(x, 1 - rate), 0), state];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Pooling, Flatten, Embed

function pool(
  name: string,
  op: "max" | "sum",
  window: readonly number[],
  strides: readonly number[] | undefined,
  padding: Padding,
): Layer {
  const n = window.length;
  const w = toList(window, n, "window", name);
  const s = toList(strides ?? 1, n, "strides", name);
  const geometry = (shape: readonly number[]) => {
    if (shape.length !== n + 2)
      throw new LayerShapeError(
        `expected a rank-${n + 2} input (batch, ${n} spatial, channels) for a ${n}-D window, got ${fmtShape(shape)}`,
        name,
      );
    const pads = resolvePads(padding, shape.slice(1, n + 1), w, s, name);
    return {
      windowDims: [1, ...w, 1],
      strides: [1, ...s, 1],
      pads: [[0, 0], ...pads, [0, 0]] as [number, number][],
    };
  };
  return {
    name,
    init(_key, inputShape) {
      const g = geometry(inputShape);
      const out = inputShape.map((d, i) => windowOut(d, g.windowDims[i]!, g.strides[i]!, g.pads[i]![0], g.pads[i]![1]));
      return { params: {}, state: {}, outputShape: out };
    },
    apply(_params, state, x) {
      const g = geometry(x.shape);
      const y = reduceWindow(x, op, g.windowDims, g.strides, g.pads);
      return [op === "max" ? y : np.divide(y, prod(w)), state];
    },
  };
}

/**
 * Max pooling over the spatial axes of channels-last input (`window` per spatial axis; strides
 * default to 1 and padding to `"VALID"`, as Flax's `max_pool`).
 *
 * @example
 * ```ts
 * maxPool([2, 2], [2, 2]).init(random.key(0), [1, 4, 4, 3]).outputShape; // [1, 2, 2, 3]
 * ```
 */
export function maxPool(window: readonly number[], strides?: readonly number[], padding: Padding = "VALID"): Layer {
  return pool("maxPool", "max", window, strides, padding);
}

/**
 * Average pooling (padding counted in the divisor, as Flax's `avg_pool` default).
 *
 * @example
 * ```ts
 * avgPool([2, 2], [2, 2]).init(random.key(0), [1, 4, 4, 3]).outputShape; // [1, 2, 2, 3]
 * ```
 */
export function avgPool(window: readonly number[], strides?: readonly number[], padding: Padding = "VALID"): Layer {
  return pool("avgPool", "sum", window, strides, padding);
}

/**
 * Flattens every axis but the first (the batch).
 *
 * @example
 * ```ts
 * Flatten().init(random.key(0), [8, 4, 4, 3]).outputShape; // [8, 48]
 * ```
 */
export function Flatten(): Layer {
  const name = "Flatten";
  const out = (shape: readonly number[]) => {
    if (shape.length < 1) throw new LayerShapeError(`expected an input of rank >= 1, got a scalar`, name);
    return [shape[0]!, prod(shape.slice(1))];
  };
  return {
    name,
    init(_key, inputShape) {
      return { params: {}, state: {}, outputShape: out(inputShape) };
    },
    apply(_params, state, x) {
      return [np.reshape(x, out(x.shape)), state];
    },
  };
}

/** Options of `Embed`. */
export interface EmbedOptions {
  embeddingInit?: Initializer;
  paramDtype?: DType;
}

/**
 * A lookup table `embedding: [numEmbeddings, features]` indexed by integer input; the output has
 * shape `[...input, features]`. Default init as Flax: normal with variance `1 / features`.
 *
 * @example
 * ```ts
 * Embed(1000, 64).init(random.key(0), [8, 16]).outputShape; // [8, 16, 64]
 * ```
 */
export function Embed(numEmbeddings: number, features: number, opts: EmbedOptions = {}): Layer {
  const name = "Embed";
  const init = opts.embeddingInit ?? varianceScaling(1, "fan_in", "normal", { outAxis: 0 });
  const dtype = opts.paramDtype ?? "float32";
  return {
    name,
    init(key, inputShape) {
      return {
        params: { embedding: init(key, [numEmbeddings, features], dtype) },
        state: {},
        outputShape: [...inputShape, features],
      };
    },
    apply(params, state, x) {
      if (x.dtype !== "int32" && x.dtype !== "uint32")
        throw new LayerShapeError(`expected integer indices, got dtype ${x.dtype}`, name);
      return [np.take(params.embedding as Tensor, x, 0), state];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Containers

/**
 * Layers applied in order. Params and state are `{ layers_0, layers_1, … }`; the init key and
 * `ctx.rng` are split once into one key per layer. A shape error names the path, e.g.
 * `Sequential[2].Dense: expected last dimension 512, got 256`.
 *
 * @example
 * ```ts
 * const model = Sequential([Dense(512), nn.relu, Dense(10)]);
 * const { params, state } = model.init(random.key(0), [128, 784]);
 * const [logits] = model.apply(params, state, x);
 * ```
 */
export function Sequential(layers: readonly LayerLike[]): Layer {
  const name = "Sequential";
  const ls = layers.map(asLayer);
  return {
    name,
    init(key, inputShape) {
      const keys = splitKeys(key, ls.length);
      const params: Params = {};
      const state: Params = {};
      let shape = [...inputShape];
      ls.forEach((l, i) => {
        let r: InitResult;
        try {
          r = l.init(keys[i]!, shape);
        } catch (e) {
          rethrowWithPath(e, `${name}[${i}]`, l.name);
        }
        params[`layers_${i}`] = r.params;
        state[`layers_${i}`] = r.state;
        shape = r.outputShape;
      });
      return { params, state, outputShape: shape };
    },
    apply(params, state, x, ctx: ApplyContext = {}) {
      const rngs = ctx.rng !== undefined ? splitKeys(ctx.rng, ls.length) : [];
      const newState: Params = {};
      let y = x;
      ls.forEach((l, i) => {
        const k = `layers_${i}`;
        try {
          [y, newState[k]] = l.apply(params[k], state[k], y, { ...ctx, rng: rngs[i] });
        } catch (e) {
          rethrowWithPath(e, `${name}[${i}]`, l.name);
        }
      });
      return [y, newState];
    },
  };
}

/**
 * `x + layer(x)`; the layer must keep the shape. Params and state are the inner layer's.
 *
 * @example
 * ```ts
 * Residual(Sequential([Dense(64), nn.relu, Dense(64)]));
 * ```
 */
export function Residual(inner: LayerLike): Layer {
  const name = "Residual";
  const l = asLayer(inner);
  return {
    name,
    init(key, inputShape) {
      let r: InitResult;
      try {
        r = l.init(key, inputShape);
      } catch (e) {
        rethrowWithPath(e, name, l.name);
      }
      if (r.outputShape.length !== inputShape.length || r.outputShape.some((d, i) => d !== inputShape[i]))
        throw new LayerShapeError(
          `the inner layer maps ${fmtShape(inputShape)} to ${fmtShape(r.outputShape)}; a residual needs the same shape`,
          name,
        );
      return r;
    },
    apply(params, state, x, ctx) {
      let y: Tensor;
      let s: Params;
      try {
        [y, s] = l.apply(params, state, x, ctx);
      } catch (e) {
        rethrowWithPath(e, name, l.name);
      }
      return [np.add(x, y), s];
    },
  };
}

/** Options of `Parallel`. */
export interface ParallelOptions {
  /** How the branches' outputs combine: concatenated on the last axis (default) or summed. */
  combine?: "concat" | "sum";
}

/**
 * Fan-out: every layer sees the same input; outputs are concatenated on the last axis or summed.
 * Params and state are `{ layers_0, layers_1, … }`.
 *
 * @example
 * ```ts
 * Parallel([Dense(8), Dense(4)]).init(random.key(0), [2, 3]).outputShape; // [2, 12]
 * ```
 */
export function Parallel(layers: readonly LayerLike[], opts: ParallelOptions = {}): Layer {
  const name = "Parallel";
  const ls = layers.map(asLayer);
  const combine = opts.combine ?? "concat";
  if (ls.length === 0) throw new ConfigError("needs at least one layer", name);
  return {
    name,
    init(key, inputShape) {
      const keys = splitKeys(key, ls.length);
      const params: Params = {};
      const state: Params = {};
      const shapes = ls.map((l, i) => {
        let r: InitResult;
        try {
          r = l.init(keys[i]!, inputShape);
        } catch (e) {
          rethrowWithPath(e, `${name}[${i}]`, l.name);
        }
        params[`layers_${i}`] = r.params;
        state[`layers_${i}`] = r.state;
        return r.outputShape;
      });
      const first = shapes[0]!;
      const lead = (s: number[]) => (combine === "concat" ? s.slice(0, -1) : s);
      shapes.forEach((s, i) => {
        const a = lead(s);
        const b = lead(first);
        if (s.length !== first.length || a.some((d, j) => d !== b[j]))
          throw new LayerShapeError(
            `branch outputs ${fmtShape(first)} and ${fmtShape(s)} (branch ${i}) cannot be ${combine === "concat" ? "concatenated" : "summed"}`,
            name,
          );
      });
      const outputShape =
        combine === "concat"
          ? [...first.slice(0, -1), shapes.reduce((a, s) => a + s[s.length - 1]!, 0)]
          : [...first];
      return { params, state, outputShape };
    },
    apply(params, state, x, ctx: ApplyContext = {}) {
      const rngs = ctx.rng !== undefined ? splitKeys(ctx.rng, ls.length) : [];
      const newState: Params = {};
      const ys = ls.map((l, i) => {
        const k = `layers_${i}`;
        try {
          const [y, s] = l.apply(params[k], state[k], x, { ...ctx, rng: rngs[i] });
          newState[k] = s;
          return y;
        } catch (e) {
          rethrowWithPath(e, `${name}[${i}]`, l.name);
        }
      });
      const y = combine === "concat" ? np.concatenate(ys, -1) : ys.reduce((a, b) => np.add(a, b));
      return [y, newState];
    },
  };
}
