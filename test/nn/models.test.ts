import { describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import * as random from "../../src/core/random.js";
import type { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import { tanh } from "../../src/nn/functions.js";
import type { Layer, Params } from "../../src/nn/layer.js";
import { softmaxCrossEntropyWithIntegerLabels } from "../../src/nn/losses.js";
import { CNN, MLP, ResNet, WideResNet } from "../../src/nn/models.js";
import { grad } from "../../src/transforms/index.js";

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Parameter count of `init`, with every random initializer replaced by zeros: the counts depend only
 * on shapes, and drawing tens of millions of normals would take most of the test's time.
 */
async function countParams(
  make: (m: typeof import("../../src/nn/models.js")) => Layer,
  inputShape: number[],
): Promise<number> {
  vi.resetModules();
  vi.doMock("../../src/nn/initializers.js", async (importOriginal) => {
    const orig = await importOriginal<typeof import("../../src/nn/initializers.js")>();
    const zeros = orig.zeros;
    return { ...orig, lecunNormal: () => zeros, varianceScaling: () => zeros };
  });
  try {
    const models = await import("../../src/nn/models.js");
    const rnd = await import("../../src/core/random.js");
    const tr = await import("../../src/core/tree.js");
    const { params } = make(models).init(rnd.key(0), inputShape);
    return tr.leaves<{ shape: number[] }>(params).reduce((a, t) => a + size(t.shape), 0);
  } finally {
    vi.doUnmock("../../src/nn/initializers.js");
    vi.resetModules();
  }
}

const convP = (k: number, i: number, o: number) => k * k * i * o;
const bnP = (c: number) => 2 * c; // scale + bias; running mean / var are state.

function uniformInput(shape: number[], seed: number): Tensor {
  return random.uniform(random.key(seed), shape, "float32", -1, 1);
}

describe("MLP and CNN", () => {
  it("MLP shapes, activation placement and param tree", () => {
    const m = MLP([16, 8, 3], { activation: tanh });
    const { params, state, outputShape } = m.init(random.key(0), [5, 4]);
    expect(outputShape).toEqual([5, 3]);
    expect(params.layers_0.kernel.shape).toEqual([4, 16]);
    expect(params.layers_1).toEqual({});
    expect(params.layers_4.kernel.shape).toEqual([8, 3]);
    const [y] = m.apply(params, state, uniformInput([5, 4], 1));
    expect(y.shape).toEqual([5, 3]);
    expect(() => MLP([])).toThrow(ConfigError);
  });

  it("CNN (VALID convs) maps 28×28×1 to 10 logits with 9216 dense inputs", () => {
    const m = CNN();
    const { params, state, outputShape } = m.init(random.key(0), [2, 28, 28, 1]);
    expect(outputShape).toEqual([2, 10]);
    expect(params.layers_6.kernel.shape).toEqual([9216, 10]);
    const count = tree.leaves<Tensor>(params).reduce((a, t) => a + t.size, 0);
    expect(count).toBe(convP(3, 1, 32) + 32 + convP(3, 32, 64) + 64 + 9216 * 10 + 10);
    const [y] = m.apply(params, state, uniformInput([2, 28, 28, 1], 1));
    expect(y.shape).toEqual([2, 10]);
    expect(CNN({ numClasses: 3 }).init(random.key(0), [1, 28, 28, 1]).outputShape).toEqual([1, 3]);
  });
});

describe("ResNet", () => {
  it("ResNet-18 with the CIFAR stem has 11,173,962 params", async () => {
    // Stem conv 3→64 + BN; stages of basic blocks (two 3×3 convs + two BNs each), a 1×1 conv + BN
    // projection at each stride-2 stage entry; dense 512→10 with bias.
    let expected = convP(3, 3, 64) + bnP(64);
    let c = 64;
    for (const w of [64, 128, 256, 512]) {
      for (let j = 0; j < 2; j++) {
        expected += convP(3, c, w) + bnP(w) + convP(3, w, w) + bnP(w);
        if (c !== w) expected += convP(1, c, w) + bnP(w);
        c = w;
      }
    }
    expected += 512 * 10 + 10;
    expect(expected).toBe(11_173_962);
    expect(await countParams((m) => m.ResNet({ numClasses: 10, cifarStem: true }), [1, 32, 32, 3])).toBe(
      11_173_962,
    );
  });

  it("ImageNet stem: ResNet-18 with 1000 classes has 11,689,512 params", async () => {
    expect(await countParams((m) => m.ResNet({ numClasses: 1000 }), [1, 224, 224, 3])).toBe(11_689_512);
  });

  it("a small ResNet runs forward in train mode and updates BN state", () => {
    const m = ResNet({ stageSizes: [1, 1], numFilters: 4, numClasses: 3, cifarStem: true });
    const { params, state, outputShape } = m.init(random.key(0), [2, 8, 8, 3]);
    expect(outputShape).toEqual([2, 3]);
    const [y, newState] = m.apply(params, state, uniformInput([2, 8, 8, 3], 2), { train: true });
    expect(y.shape).toEqual([2, 3]);
    expect(tree.structure(newState)).toEqual(tree.structure(state));
  });
});

describe("WideResNet", () => {
  function wrnFormula(depth: number, k: number, classes: number): number {
    const n = (depth - 4) / 6;
    let total = convP(3, 3, 16);
    let c = 16;
    for (const w of [16 * k, 32 * k, 64 * k]) {
      for (let j = 0; j < n; j++) {
        total += bnP(c) + convP(3, c, w) + bnP(w) + convP(3, w, w);
        if (c !== w) total += convP(1, c, w);
        c = w;
      }
    }
    return total + bnP(c) + c * classes + classes;
  }

  it("WRN-28-10 for CIFAR-10 has the published 36,479,194 params (init only, zero initializers)", async () => {
    expect(wrnFormula(28, 10, 10)).toBe(36_479_194);
    expect(
      await countParams((m) => m.WideResNet({ depth: 28, widen: 10, numClasses: 10 }), [1, 32, 32, 3]),
    ).toBe(36_479_194);
  });

  it("WRN-16-4: forward and grad on a 2×32×32×3 float32 batch are finite", () => {
    const m = WideResNet({ depth: 16, widen: 4, dropout: 0.3, numClasses: 10 });
    const { params, state, outputShape } = m.init(random.key(0), [2, 32, 32, 3]);
    expect(outputShape).toEqual([2, 10]);
    expect(tree.leaves<Tensor>(params).reduce((a, t) => a + t.size, 0)).toBe(wrnFormula(16, 4, 10));
    const x = uniformInput([2, 32, 32, 3], 3);
    const labels = np.array([1, 7], "int32");
    const ctx = { train: true, rng: random.key(5) };
    const loss = (p: Params) =>
      np.mean(softmaxCrossEntropyWithIntegerLabels(m.apply(p, state, x, ctx)[0], labels));
    const l = loss(params);
    expect(Number.isFinite(l.item())).toBe(true);
    const g = grad(loss)(params);
    expect(tree.structure(g)).toEqual(tree.structure(params));
    for (const t of tree.leaves<Tensor>(g)) {
      expect(t.dtype).toBe("float32");
      expect((np.ravel(t).toArray() as number[]).every(Number.isFinite)).toBe(true);
    }
    // The gradient reaches the stem through all blocks.
    expect(np.max(np.abs(g.layers_0.kernel as Tensor)).item()).toBeGreaterThan(0);
  }, 60_000);

  it("rejects depths that are not 6n + 4", () => {
    expect(() => WideResNet({ depth: 20 })).toThrow(ConfigError);
  });
});
