/**
 * Reference models built from `layers.ts`: an MLP, the benchmark CNN, ResNet (v1, basic blocks)
 * and the pre-activation Wide ResNet of the SAM paper. Each is a plain `Layer`, so its params are
 * the nested `layers_i` trees of `Sequential` / `Parallel`.
 *
 * Conventions (they fix the parameter counts): convolutions in ResNet and WideResNet have no bias
 * (a BatchNorm follows or precedes each), BatchNorm has a learned `scale` and `bias` (its running
 * `mean` / `var` are state, not params), the classifier `Dense` has a bias.
 */
import { ConfigError } from "../core/errors.js";
import * as np from "../core/numpy/index.js";
import type { Tensor } from "../core/tensor.js";
import { relu } from "./functions.js";
import { varianceScaling } from "./initializers.js";
import type { Layer, LayerLike } from "./layer.js";
import { BatchNorm, Conv, Dense, Dropout, Flatten, maxPool, Parallel, Sequential } from "./layers.js";

/** Options of `MLP`. */
export interface MLPOptions {
  /** Applied between Dense layers, not after the last (default `relu`). */
  activation?: (x: Tensor) => Tensor;
}

/**
 * Dense layers of the given widths with an activation between them (none after the last).
 *
 * @example
 * ```ts
 * MLP([512, 512, 10]).init(random.key(0), [128, 784]).outputShape; // [128, 10]
 * ```
 */
export function MLP(features: readonly number[], opts: MLPOptions = {}): Layer {
  if (features.length === 0) throw new ConfigError("features must list at least one layer width", "MLP");
  const act = opts.activation ?? relu;
  const layers: LayerLike[] = [];
  features.forEach((f, i) => {
    if (i > 0) layers.push(act);
    layers.push(Dense(f));
  });
  return { ...Sequential(layers), name: "MLP" };
}

/** Options of `CNN`. */
export interface CNNOptions {
  numClasses?: number;
}

/**
 * The benchmark CNN (BENCH.md): conv 3×3 → 32, ReLU, conv 3×3 → 64, ReLU, 2×2 max pool (stride
 * 2), flatten, dense → `numClasses`. Convolutions are VALID (unpadded), as in PyTorch's MNIST
 * example: a 28×28×1 input gives 26, 24, then 12×12×64 = 9216 features into the dense layer.
 *
 * @example
 * ```ts
 * CNN().init(random.key(0), [64, 28, 28, 1]).outputShape; // [64, 10]
 * ```
 */
export function CNN(opts: CNNOptions = {}): Layer {
  const numClasses = opts.numClasses ?? 10;
  return {
    ...Sequential([
      Conv(32, [3, 3], { padding: "VALID" }),
      relu,
      Conv(64, [3, 3], { padding: "VALID" }),
      relu,
      maxPool([2, 2], [2, 2]),
      Flatten(),
      Dense(numClasses),
    ]),
    name: "CNN",
  };
}

// He-normal with fan-out, as torchvision's and the WRN reference code's conv init.
const convInit = varianceScaling(2, "fan_out", "normal");

function conv(features: number, k: number, stride = 1): Layer {
  const pad = Math.floor((k - 1) / 2);
  return Conv(features, [k, k], {
    strides: stride,
    padding: [
      [pad, k - 1 - pad],
      [pad, k - 1 - pad],
    ],
    useBias: false,
    kernelInit: convInit,
  });
}

const bn = () => BatchNorm({ momentum: 0.9, epsilon: 1e-5 });
const identity = (x: Tensor) => x;
/** Global average pooling over the spatial axes of NHWC input. */
const globalAvgPool = function globalAvgPool(x: Tensor): Tensor {
  return np.mean(x, [1, 2]);
};
/** `main(x) + shortcut(x)`. */
const sumOf = (main: LayerLike, shortcut: LayerLike): Layer => Parallel([main, shortcut], { combine: "sum" });

/** A ResNet block: `(inChannels, filters, stride) => Layer`. */
export type BlockFn = (inChannels: number, filters: number, stride: number) => Layer;

/**
 * ResNet v1 basic block: `relu(bn(conv3(relu(bn(conv3(x))))) + shortcut(x))`; the shortcut is a
 * strided 1×1 conv + BN when the shape changes, the identity otherwise.
 *
 * @example
 * ```ts
 * basicBlock(64, 128, 2);
 * ```
 */
export const basicBlock: BlockFn = (inChannels, filters, stride) => {
  const main = Sequential([conv(filters, 3, stride), bn(), relu, conv(filters, 3), bn()]);
  const shortcut =
    stride !== 1 || inChannels !== filters ? Sequential([conv(filters, 1, stride), bn()]) : identity;
  return Sequential([sumOf(main, shortcut), relu]);
};

/** Options of `ResNet`. */
export interface ResNetOptions {
  /** Blocks per stage (default `[2, 2, 2, 2]`, ResNet-18). */
  stageSizes?: readonly number[];
  /** Filters of the first stage, doubled at each later one (default 64). */
  numFilters?: number;
  numClasses?: number;
  blockCls?: BlockFn;
  /**
   * `true`: a 3×3 stride-1 stem with no pooling (CIFAR, 32×32 input); `false` (default): the
   * ImageNet stem, 7×7 stride-2 conv, BN, ReLU, 3×3 stride-2 max pool.
   */
  cifarStem?: boolean;
}

/**
 * ResNet v1 (He et al. 2016) with basic blocks: stem, stages of `stageSizes[i]` blocks with
 * `numFilters · 2^i` filters (the first block of every stage after the first has stride 2), global
 * average pooling, dense. ResNet-18 with the CIFAR stem and 10 classes has 11,173,962 params.
 *
 * @example
 * ```ts
 * ResNet({ numClasses: 10, cifarStem: true }).init(random.key(0), [8, 32, 32, 3]).outputShape; // [8, 10]
 * ```
 */
export function ResNet(opts: ResNetOptions = {}): Layer {
  const stageSizes = opts.stageSizes ?? [2, 2, 2, 2];
  const numFilters = opts.numFilters ?? 64;
  const numClasses = opts.numClasses ?? 1000;
  const block = opts.blockCls ?? basicBlock;
  const layers: LayerLike[] = opts.cifarStem
    ? [conv(numFilters, 3), bn(), relu]
    : [
        conv(numFilters, 7, 2),
        bn(),
        relu,
        maxPool(
          [3, 3],
          [2, 2],
          [
            [1, 1],
            [1, 1],
          ],
        ),
      ];
  let channels = numFilters;
  stageSizes.forEach((n, i) => {
    const filters = numFilters * 2 ** i;
    for (let j = 0; j < n; j++) {
      layers.push(block(channels, filters, i > 0 && j === 0 ? 2 : 1));
      channels = filters;
    }
  });
  layers.push(globalAvgPool, Dense(numClasses));
  return { ...Sequential(layers), name: "ResNet" };
}

/** Options of `WideResNet`. */
export interface WideResNetOptions {
  /** Total depth, `6n + 4` (default 28). */
  depth?: number;
  /** Widening factor k (default 10). */
  widen?: number;
  /** Dropout rate between a block's two convolutions (default 0). */
  dropout?: number;
  numClasses?: number;
}

/**
 * A pre-activation wide block. When the shape is kept: `x + conv(drop(relu(bn(conv(relu(bn(x)))))))`.
 * When it changes, both paths start from `relu(bn(x))` and the shortcut is a strided 1×1 conv, as
 * in the reference WRN code.
 */
function wideBlock(inChannels: number, filters: number, stride: number, dropout: number): Layer {
  const tail: LayerLike[] = [conv(filters, 3, stride), bn(), relu];
  if (dropout > 0) tail.push(Dropout(dropout));
  tail.push(conv(filters, 3));
  if (stride === 1 && inChannels === filters) return sumOf(Sequential([bn(), relu, ...tail]), identity);
  return Sequential([bn(), relu, sumOf(Sequential(tail), conv(filters, 1, stride))]);
}

/**
 * Wide ResNet (Zagoruyko & Komodakis 2016) for 32×32 input, as used by the SAM paper: a 3×3 conv
 * to 16 channels, three stages of `(depth - 4) / 6` pre-activation blocks of widths `16k, 32k, 64k`
 * (strides 1, 2, 2), then BN, ReLU, global average pooling and dense. WRN-28-10 for 10 classes
 * has 36,479,194 params.
 *
 * @example
 * ```ts
 * WideResNet({ depth: 16, widen: 4, numClasses: 10 }).init(random.key(0), [2, 32, 32, 3]);
 * ```
 */
export function WideResNet(opts: WideResNetOptions = {}): Layer {
  const depth = opts.depth ?? 28;
  const widen = opts.widen ?? 10;
  const dropout = opts.dropout ?? 0;
  const numClasses = opts.numClasses ?? 10;
  if (!Number.isInteger(depth) || depth < 10 || (depth - 4) % 6 !== 0)
    throw new ConfigError(`depth must be 6n + 4 with n >= 1, got ${depth}`, "WideResNet");
  if (!Number.isInteger(widen) || widen < 1)
    throw new ConfigError(`widen must be a positive integer, got ${widen}`, "WideResNet");
  const n = (depth - 4) / 6;
  const layers: LayerLike[] = [conv(16, 3)];
  let channels = 16;
  [16 * widen, 32 * widen, 64 * widen].forEach((filters, i) => {
    for (let j = 0; j < n; j++) {
      layers.push(wideBlock(channels, filters, i > 0 && j === 0 ? 2 : 1, dropout));
      channels = filters;
    }
  });
  layers.push(bn(), relu, globalAvgPool, Dense(numClasses));
  return { ...Sequential(layers), name: "WideResNet" };
}
