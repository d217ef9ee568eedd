/**
 * The BENCH.md CNN in tsjax, shared by bench/peers.ts and bench/cnn-profile.ts: B = 64, 28×28×1
 * NHWC, conv3×3 1→32 VALID, ReLU, conv3×3 32→64, ReLU, 2×2 max-pool, dense 9216→10, softmax
 * cross-entropy; `step` is its SGD step (lr 0.01), to be jitted by the caller.
 */
import { Tensor, grad, lax, nn, numpy as np } from "../src/index.js";
import { convDimensionNumbers } from "../src/core/primitives/conv.js";
import { CNN_B, data, labels, scaled } from "./data.js";

type T = Tensor;
export type CnnParams = Record<"k1" | "c1" | "k2" | "c2" | "w" | "b", T>;

const t = (shape: number[], d: Float32Array) => Tensor._fromBuffer(shape, "float32", d);

/** Parameters, inputs and labels (the same numbers bench/peers.ts gives jax-js, in NHWC × HWIO). */
export function cnnProblem(): { params: CnnParams; x: T; y: T } {
  return {
    params: {
      k1: t([3, 3, 1, 32], scaled(288, 7, 0.3)),
      c1: t([32], new Float32Array(32)),
      k2: t([3, 3, 32, 64], scaled(9 * 32 * 64, 8, 0.06)),
      c2: t([64], new Float32Array(64)),
      w: t([12 * 12 * 64, 10], scaled(9216 * 10, 9, 0.01)),
      b: t([10], new Float32Array(10)),
    },
    x: t([CNN_B, 28, 28, 1], data(CNN_B * 784, 10)),
    y: Tensor._fromBuffer([CNN_B], "int32", labels(CNN_B)),
  };
}

const conv = (v: T, k: T) =>
  lax.convGeneralDilated(v, k, {
    padding: "VALID",
    dimensionNumbers: convDimensionNumbers(v.shape, k.shape, ["NHWC", "HWIO", "NHWC"]),
  });

export function cnnLoss(p: CnnParams, x: T, y: T): T {
  const h1 = nn.relu(conv(x, p.k1).add(p.c1));
  const h2 = nn.relu(conv(h1, p.k2).add(p.c2));
  const pooled = lax.reduceWindow(
    h2,
    "max",
    [1, 2, 2, 1],
    [1, 2, 2, 1],
    [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ],
  );
  const logits = np.matmul(pooled.reshape([CNN_B, -1]), p.w).add(p.b);
  return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
}

/** One SGD step on the CNN. */
export function cnnStep(p: CnnParams, x: T, y: T): CnnParams {
  const g = grad(cnnLoss)(p, x, y) as CnnParams;
  return Object.fromEntries(
    Object.entries(p).map(([k, v]) => [k, v.sub(g[k as keyof CnnParams].mul(0.01))]),
  ) as CnnParams;
}
