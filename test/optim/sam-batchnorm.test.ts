/**
 * T20 with real nn layers: a BatchNorm + Dropout MLP through samTrainStep. The new BN state is the
 * clean pass's (bitwise, whatever rho), and with m lanes it is the mean of the lanes' clean-pass
 * states, each lane normalising with its own batch statistics (the official per-device BN).
 * This test imports nn and optim together; the library itself never does.
 */
import { describe, expect, it } from "vitest";
import * as np from "../../src/core/numpy/index.js";
import * as random from "../../src/core/random.js";
import type { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import * as nn from "../../src/nn/index.js";
import { sgd } from "../../src/optim/alias.js";
import { samTrainStep } from "../../src/optim/sam/train-step.js";

const bits = (t: unknown) => tree.leaves<Tensor>(t).flatMap((x) => Array.from(x.data() as Float32Array));
const model = nn.Sequential([
  nn.Dense(8),
  nn.BatchNorm({ momentum: 0.9 }),
  nn.relu,
  nn.Dropout(0.3),
  nn.Dense(3),
]);
const { params, state } = model.init(random.key(0), [16, 4]);
const x = random.normal(random.key(1), [16, 4]);
const y = random.randint(random.key(2), [16], 0, 3);
const loss = (
  p: unknown,
  s: unknown,
  b: { x: Tensor; y: Tensor },
  rng: Tensor,
): [Tensor, { modelState: unknown }] => {
  const [logits, ns] = model.apply(p, s, b.x, { train: true, rng });
  return [nn.losses.softmaxCrossEntropyWithIntegerLabels(logits, b.y).mean(), { modelState: ns }];
};

describe("samTrainStep with BatchNorm and Dropout", () => {
  it("the new BN state is the clean pass's, bitwise, for rho = 0.05 and rho = 0", () => {
    const o = sgd(0.1, { momentum: 0.9, flaxNesterov: true });
    const key = random.key(3);
    const a = samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: 5e-4 })(
      params,
      o.init(params),
      state,
      { x, y },
      key,
    );
    const b = samTrainStep({ loss, optimizer: o, rho: 0, weightDecay: 5e-4 })(
      params,
      o.init(params),
      state,
      { x, y },
      key,
    );
    const [, clean] = loss(params, state, { x, y }, key);
    expect(bits(a.modelState)).toEqual(bits(clean.modelState));
    expect(bits(b.modelState)).toEqual(bits(clean.modelState));
    // The state moved: the test would notice a pass that skipped the update.
    expect(bits(a.modelState)).not.toEqual(bits(state));
    // And the step did use the perturbed pass: the parameters differ from rho = 0.
    expect(bits(a.params)).not.toEqual(bits(b.params));
  });

  it("with m = 4, the state is the mean of the four lanes' clean-pass states (ghost BN), not the full batch's", () => {
    const o = sgd(0.1);
    const key = random.key(4);
    const out = samTrainStep({ loss, optimizer: o, rho: 0.05, weightDecay: 0, m: 4 })(
      params,
      o.init(params),
      state,
      { x, y },
      key,
    );
    const lanes = [0, 1, 2, 3].map((j) => {
      const idx = np.arange(4 * j, 4 * j + 4);
      return loss(params, state, { x: np.take(x, idx, 0), y: np.take(y, idx, 0) }, key)[1].modelState;
    });
    const mean = tree.map((...ls: Tensor[]) => np.mean(np.stack(ls, 0), 0), lanes[0], ...lanes.slice(1));
    const got = bits(out.modelState);
    const want = bits(mean);
    got.forEach((v, i) =>
      expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(want[i]!))),
    );
    // Per-lane variances differ from the full batch's, so the running variance does too.
    const full = loss(params, state, { x, y }, key)[1].modelState;
    expect(bits(full).some((v, i) => Math.abs(v - got[i]!) > 1e-4)).toBe(true);
  });
});
