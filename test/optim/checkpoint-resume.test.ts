/**
 * Resume from a checkpoint is bit-identical: every optimizer's state (step counts included) is a
 * tree of tensors, so saving it with nn.save / nn.serialize mid-run and continuing from the loaded
 * copy gives the same parameters and state, bit for bit, as never stopping. This test imports both
 * nn and optim (the library itself never does).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as np from "../../src/core/numpy/index.js";
import type { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import { deserialize, load, save, serialize } from "../../src/nn/checkpoint.js";
import * as optim from "../../src/optim/index.js";
import { grad } from "../../src/transforms/index.js";

const bitsOf = (t: unknown) =>
  tree
    .leaves<Tensor>(t)
    .map((x) =>
      [
        x.dtype,
        x.shape.join(","),
        Array.from(new Uint8Array((x.data() as Float32Array).slice().buffer)),
      ].join("|"),
    );
const expectSameBits = (a: unknown, b: unknown) => {
  expect(tree.structure(a).toString()).toBe(tree.structure(b).toString());
  expect(bitsOf(a)).toEqual(bitsOf(b));
};

type P = { dense: { kernel: Tensor; bias: Tensor } };
const X = np.array(
  [
    [0.5, -1, 2],
    [1.5, 0.25, -0.5],
    [-0.75, 1, 0.5],
    [2, -0.5, 1],
  ],
  "float32",
);
const Y = np.array([[1], [-0.5], [0.25], [0.75]], "float32");
const loss = (p: P) =>
  np.mean(np.square(np.subtract(np.tanh(np.add(np.matmul(X, p.dense.kernel), p.dense.bias)), Y)));
const p0: P = {
  dense: { kernel: np.array([[0.3], [-0.2], [0.5]], "float32"), bias: np.array([0.1], "float32") },
};

/** A stateful training loop over (params, state). */
interface Loop<S> {
  init(p: P): S;
  step(p: P, s: S): [P, S];
}
const fromOptimizer = (
  opt: optim.GradientTransformation<any>,
  g: (p: P) => unknown = grad(loss) as (p: P) => unknown,
): Loop<unknown> => ({
  init: (p) => opt.init(p),
  step: (p, s) => {
    const [u, ns] = opt.update(g(p), s, p);
    return [optim.applyUpdates(p, u), ns];
  },
});

const schedule = optim.warmupCosineDecaySchedule({
  initValue: 0,
  peakValue: 0.1,
  warmupSteps: 2,
  decaySteps: 8,
});
const loops: Record<string, () => Loop<any>> = {
  "sgd nesterov + schedule": () => fromOptimizer(optim.sgd(schedule, { momentum: 0.9, nesterov: true })),
  adam: () => fromOptimizer(optim.adam(0.01)),
  adamw: () => fromOptimizer(optim.adamw(0.01, { weightDecay: 1e-2 })),
  rmsprop: () => fromOptimizer(optim.rmsprop(0.01, { momentum: 0.5 })),
  lamb: () => fromOptimizer(optim.lamb(0.01)),
  lion: () => fromOptimizer(optim.lion(1e-3)),
  "applyIfFinite(clip → adam)": () =>
    fromOptimizer(optim.applyIfFinite(optim.chain(optim.clipByGlobalNorm(1), optim.adam(0.01)), 3)),
  "sam + sgd": () =>
    fromOptimizer(optim.sgd(0.1, { momentum: 0.9 }), optim.sam(loss, { rho: 0.05 }) as (p: P) => unknown),
  "contrib.sam(adam, normalize → sgd)": () =>
    fromOptimizer(
      optim.contrib.sam(optim.adam(0.01), optim.chain(optim.contrib.normalize(), optim.sgd(0.05))),
    ),
  "lookSam (k = 3) + sgd": () => {
    const ls = optim.lookSam(loss, { rho: 0.05, k: 3, alpha: 0.7 });
    const opt = optim.sgd(0.1, { momentum: 0.9 });
    return {
      init: (p: P) => ({ ls: ls.init(p), opt: opt.init(p) }),
      step: (p: P, s: { ls: optim.LookSamState; opt: unknown }) => {
        const [g, nls] = ls.step(s.ls, p);
        const [u, no] = opt.update(g, s.opt as unknown[], p);
        return [optim.applyUpdates(p, u), { ls: nls, opt: no }] as [P, unknown];
      },
    };
  },
  "samWeightDecayStep (decoupled, scheduled)": () => {
    const s = optim.samWeightDecayStep(
      loss,
      { rho: 0.05 },
      { rate: 1e-2, convention: "decoupled", learningRate: schedule },
      optim.sgd(0.1),
    );
    return {
      init: (p: P) => s.init(p),
      step: (p: P, st: optim.SamWeightDecayState) => s.step(st, p) as [P, optim.SamWeightDecayState],
    };
  },
};

describe("checkpoint resume is bit-identical", () => {
  const N = 6;
  const K = 3;
  for (const [name, make] of Object.entries(loops)) {
    it(name, () => {
      const loop = make();
      let p = p0;
      let s = loop.init(p);
      const snapshots: [P, unknown][] = [];
      for (let t = 0; t < N; t++) {
        [p, s] = loop.step(p, s);
        snapshots.push([p, s]);
      }
      // Through bytes in memory, checked against the freshly initialised structure.
      const [pk, sk] = snapshots[K - 1]!;
      const like = { params: p0, state: loop.init(p0) };
      const restored = deserialize(serialize({ params: pk, state: sk }, { step: String(K) }), like);
      expect(restored.metadata.step).toBe(String(K));
      let [q, r] = [restored.tree.params as P, restored.tree.state];
      for (let t = K; t < N; t++) [q, r] = loop.step(q, r);
      expectSameBits(q, p);
      expectSameBits(r, s);
    });
  }

  it("through nn.save / nn.load on disk (contrib.sam state with its cache and int32 counters)", () => {
    const dir = mkdtempSync(join(tmpdir(), "tsjax-resume-"));
    try {
      const loop = loops["contrib.sam(adam, normalize → sgd)"]!();
      let p = p0;
      let s = loop.init(p);
      for (let t = 0; t < 3; t++) [p, s] = loop.step(p, s);
      const file = join(dir, "ckpt.safetensors");
      save(file, { params: p, state: s });
      let [a, sa] = [p, s];
      const back = load(file, { params: p0, state: loop.init(p0) }).tree;
      let [b, sb] = [back.params as P, back.state];
      expect((sb as optim.contrib.SamState).stepsSinceSync.dtype).toBe("int32");
      for (let t = 0; t < 3; t++) {
        [a, sa] = loop.step(a, sa);
        [b, sb] = loop.step(b, sb);
      }
      expectSameBits(b, a);
      expectSameBits(sb, sa);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
