import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, ShapeError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import * as random from "../../src/core/random.js";
import { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import { relu } from "../../src/nn/functions.js";
import type { Layer, Params } from "../../src/nn/layer.js";
import {
  avgPool,
  BatchNorm,
  Conv,
  Dense,
  Dropout,
  Embed,
  Flatten,
  GroupNorm,
  LayerNorm,
  maxPool,
  Parallel,
  Residual,
  Sequential,
} from "../../src/nn/layers.js";
import { grad, vmap } from "../../src/transforms/index.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
function rand(shape: readonly number[], seed: number, dtype: "float32" | "float64" = "float64"): Tensor {
  const r = rng(seed);
  const buf = Float64Array.from({ length: size(shape) }, () => 2 * r() - 1);
  return Tensor._fromBuffer([...shape], dtype, dtype === "float64" ? buf : Float32Array.from(buf));
}
const vals = (t: Tensor) => (t.ndim === 0 ? [t.toArray() as number] : (np.ravel(t).toArray() as number[]));
function expectClose(actual: readonly number[], expected: readonly number[], tol: number) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++)
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!))))
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]}`);
}
const to64 = (p: Params): Params => tree.map((t: Tensor) => np.astype(t, "float64"), p);

describe("Sequential and Dense", () => {
  it("builds the documented param tree and runs", () => {
    const model = Sequential([Dense(16), relu, Dense(3)]);
    const { params, state, outputShape } = model.init(random.key(0), [5, 8]);
    expect(outputShape).toEqual([5, 3]);
    expect(params.layers_0.kernel.shape).toEqual([8, 16]);
    expect(params.layers_0.bias.shape).toEqual([16]);
    expect(params.layers_1).toEqual({});
    expect(params.layers_2.kernel.shape).toEqual([16, 3]);
    const [y, s] = model.apply(params, state, rand([5, 8], 1, "float32"));
    expect(y.shape).toEqual([5, 3]);
    expect(s).toEqual({ layers_0: {}, layers_1: {}, layers_2: {} });
  });
  it("Dense computes x @ kernel + bias", () => {
    const d = Dense(2);
    const params = { kernel: np.array([[1, 2], [3, 4], [5, 6]], "float64"), bias: np.array([0.5, -1], "float64") };
    const [y] = d.apply(params, {}, np.array([[1, 0, -1]], "float64"));
    expect(y.toArray()).toEqual([[-3.5, -5]]);
    expect(Dense(3, { useBias: false }).init(random.key(0), [2]).params.bias).toBeUndefined();
  });
  it("init output shapes match apply over random input shapes", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 0, maxLength: 2 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 4 }),
        (lead, inF, outF) => {
          const model = Sequential([Dense(outF), relu, LayerNorm(), Dense(2)]);
          const shape = [...lead, inF];
          const { params, state, outputShape } = model.init(random.key(1), shape);
          const [y] = model.apply(params, state, rand(shape, 2, "float32"));
          expect(y.shape).toEqual(outputShape);
          expect(outputShape).toEqual([...lead, 2]);
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe("shape errors name the layer path", () => {
  it("at apply: Sequential[2].Dense", () => {
    const a = Sequential([Dense(256), relu, Dense(10)]).init(random.key(0), [2, 4]).params;
    const b = Sequential([Dense(512), relu, Dense(10)]).init(random.key(0), [2, 4]).params;
    const model = Sequential([Dense(256), relu, Dense(10)]);
    const mixed = { layers_0: a.layers_0, layers_1: {}, layers_2: b.layers_2 };
    expect(() => model.apply(mixed, { layers_0: {}, layers_1: {}, layers_2: {} }, rand([2, 4], 0, "float32"))).toThrow(
      "Sequential[2].Dense: expected last dimension 512, got 256",
    );
  });
  it("at init: nested containers and rank mismatches", () => {
    const model = Sequential([Dense(4), Sequential([relu, Conv(8, [3, 3])])]);
    let err: unknown;
    try {
      model.init(random.key(0), [2, 5]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as Error).message).toMatch(/^Sequential\[1\]\.Sequential\[1\]\.Conv: expected a rank-4 input/);
    expect(() => Sequential([GroupNorm({ numGroups: 3 })]).init(random.key(0), [2, 4])).toThrow(
      "Sequential[0].GroupNorm: channels 4 are not divisible by numGroups 3",
    );
    expect(() => Residual(Dense(3)).init(random.key(0), [2, 4])).toThrow(ShapeError);
  });
});

describe("Conv, pooling, Flatten, Embed shapes", () => {
  it("Conv / pools: init shape equals apply shape (fast-check over geometry)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 2 }),
        fc.constantFrom("SAME" as const, "VALID" as const),
        fc.integer({ min: 1, max: 2 }),
        (nsp, sp, k, s, d, pad, groups) => {
          const shape = [2, ...new Array(nsp).fill(sp), 2 * groups];
          const layers: Layer[] = [
            Conv(2 * groups, new Array(nsp).fill(k), { strides: s, kernelDilation: d, padding: pad, featureGroupCount: groups }),
            maxPool(new Array(nsp).fill(k), new Array(nsp).fill(s), pad),
            avgPool(new Array(nsp).fill(k), new Array(nsp).fill(s), pad),
            Flatten(),
          ];
          for (const l of layers) {
            const { params, state, outputShape } = l.init(random.key(0), shape);
            const [y] = l.apply(params, state, rand(shape, 3, "float32"));
            expect(y.shape).toEqual(outputShape);
          }
        },
      ),
      { numRuns: 25 },
    );
  });
  it("Conv matches a direct 1-D correlation", () => {
    const conv = Conv(1, [2], { padding: "VALID" });
    const params = { kernel: np.array([[[1]], [[2]]], "float64"), bias: np.array([0.5], "float64") };
    const [y] = conv.apply(params, {}, np.array([[[1], [2], [3]]], "float64"));
    expect(y.toArray()).toEqual([[[5.5], [8.5]]]);
  });
  it("maxPool and avgPool values", () => {
    const x = np.reshape(np.arange(0, 16, 1, "float64"), [1, 4, 4, 1]);
    expect(vals(maxPool([2, 2], [2, 2]).apply({}, {}, x)[0])).toEqual([5, 7, 13, 15]);
    expect(vals(avgPool([2, 2], [2, 2]).apply({}, {}, x)[0])).toEqual([2.5, 4.5, 10.5, 12.5]);
  });
  it("Embed looks rows up", () => {
    const e = Embed(5, 3);
    const { params, outputShape } = e.init(random.key(0), [2, 4]);
    expect(outputShape).toEqual([2, 4, 3]);
    const [y] = e.apply(params, {}, np.array([[0, 4]], "int32"));
    const table = params.embedding.toArray() as number[][];
    expect(y.toArray()).toEqual([[table[0], table[4]]]);
  });
  it("Residual and Parallel", () => {
    const r = Residual(Dense(4));
    const { params } = r.init(random.key(0), [2, 4]);
    const x = rand([2, 4], 5, "float32");
    expectClose(vals(r.apply(params, {}, x)[0]), vals(np.add(x, Dense(4).apply(params, {}, x)[0])), 1e-6);
    const p = Parallel([Dense(3), relu]);
    const ip = p.init(random.key(0), [2, 4]);
    expect(ip.outputShape).toEqual([2, 7]);
    expect(p.apply(ip.params, ip.state, x)[0].shape).toEqual([2, 7]);
    expect(Parallel([Dense(4), relu], { combine: "sum" }).init(random.key(0), [2, 4]).outputShape).toEqual([2, 4]);
  });
});

// Central differences in float64: truncation error ~ h² f''' and rounding ~ eps |f| / h, so with
// h = 1e-5 both are far below 1e-6 for these smooth O(1) functions.
function checkGrad(f: (p: Tensor[]) => Tensor, args: Tensor[]) {
  const g = grad((...a: Tensor[]) => f(a), { argnums: args.map((_, i) => i) })(...args) as Tensor[];
  const h = 1e-5;
  args.forEach((a, ai) => {
    const base = Float64Array.from(vals(a));
    const fd = Array.from(base, (_, j) => {
      const at = (delta: number) => {
        const b = Float64Array.from(base);
        b[j]! += delta;
        const next = args.map((t, k) => (k === ai ? Tensor._fromBuffer([...a.shape], "float64", b) : t));
        return vals(f(next))[0]!;
      };
      return (at(h) - at(-h)) / (2 * h);
    });
    expectClose(vals(g[ai]!), fd, 1e-6);
  });
}

describe("gradients vs central differences (float64)", () => {
  const loss = (l: Layer, x: Tensor, p: Params, s: Params, w: Tensor, train = false) =>
    np.sum(np.multiply(l.apply(p, s, x, { train })[0], w));
  it("Dense", () => {
    const l = Dense(3);
    const { params } = l.init(random.key(0), [4, 5]);
    const p = to64(params);
    const w = rand([4, 3], 9);
    checkGrad(([x, k, b]) => loss(l, x!, { kernel: k, bias: b }, {}, w), [rand([4, 5], 1), p.kernel, p.bias]);
  });
  it("Conv (2-D, strided, SAME)", () => {
    const l = Conv(2, [2, 2], { strides: 2 });
    const { params, outputShape } = l.init(random.key(0), [1, 3, 3, 2]);
    const p = to64(params);
    const w = rand(outputShape, 9);
    checkGrad(([x, k, b]) => loss(l, x!, { kernel: k, bias: b }, {}, w), [rand([1, 3, 3, 2], 1), p.kernel, p.bias]);
  });
  it("LayerNorm", () => {
    const l = LayerNorm();
    const w = rand([3, 4], 9);
    checkGrad(([x, sc, b]) => loss(l, x!, { scale: sc, bias: b }, {}, w), [rand([3, 4], 1), rand([4], 2), rand([4], 3)]);
  });
  it("BatchNorm (train)", () => {
    const l = BatchNorm();
    const { state } = l.init(random.key(0), [5, 3]);
    const w = rand([5, 3], 9);
    checkGrad(([x, sc, b]) => loss(l, x!, { scale: sc, bias: b }, to64(state), w, true), [rand([5, 3], 1), rand([3], 2), rand([3], 3)]);
  });
});

describe("BatchNorm semantics", () => {
  it("train normalises by batch statistics and updates running averages as Flax; eval uses them", () => {
    const l = BatchNorm({ momentum: 0.9, epsilon: 1e-5 });
    const { params, state } = l.init(random.key(0), [4, 1, 2]);
    const x = rand([4, 1, 2], 3);
    const xs = vals(x);
    const [y, ns] = l.apply(to64(params), to64(state), x, { train: true });
    const ys = vals(y);
    for (let c = 0; c < 2; c++) {
      const col = [0, 1, 2, 3].map((i) => xs[i * 2 + c]!);
      const m = col.reduce((a, b) => a + b, 0) / 4;
      const v = col.reduce((a, b) => a + (b - m) ** 2, 0) / 4;
      expectClose([0, 1, 2, 3].map((i) => ys[i * 2 + c]!), col.map((t) => (t - m) / Math.sqrt(v + 1e-5)), 1e-12);
      expectClose([vals(ns.mean)[c]!], [0.1 * m], 1e-12);
      expectClose([vals(ns.var)[c]!], [0.9 + 0.1 * v], 1e-12);
    }
    const [ye, se] = l.apply(to64(params), ns, x, { train: false });
    expect(se).toBe(ns);
    const mean = vals(ns.mean);
    const variance = vals(ns.var);
    expectClose(vals(ye), xs.map((t, i) => (t - mean[i % 2]!) / Math.sqrt(variance[i % 2]! + 1e-5)), 1e-12);
  });
});

describe("Dropout", () => {
  const x = np.ones([4000], "float64");
  it("preserves the expectation", () => {
    const rate = 0.3;
    const [y] = Dropout(rate).apply({}, {}, x, { train: true, rng: random.key(4) });
    const ys = vals(y);
    expect(ys.every((v) => v === 0 || Math.abs(v - 1 / 0.7) < 1e-12)).toBe(true);
    // Each output is Bernoulli(1 - rate) / (1 - rate): variance rate / (1 - rate); 5 standard errors.
    const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
    expect(Math.abs(mean - 1)).toBeLessThan(5 * Math.sqrt(rate / (1 - rate) / ys.length));
  });
  it("is deterministic per key, identity in eval, and needs rng in train", () => {
    const d = Dropout(0.5);
    expect(vals(d.apply({}, {}, x, { train: true, rng: random.key(1) })[0])).toEqual(
      vals(d.apply({}, {}, x, { train: true, rng: random.key(1) })[0]),
    );
    expect(vals(d.apply({}, {}, x, { train: true, rng: random.key(2) })[0])).not.toEqual(
      vals(d.apply({}, {}, x, { train: true, rng: random.key(1) })[0]),
    );
    expect(d.apply({}, {}, x)[0]).toBe(x);
    expect(() => d.apply({}, {}, x, { train: true })).toThrow(ConfigError);
    expect(() => Sequential([Dense(2), d]).apply(
      Sequential([Dense(2), d]).init(random.key(0), [1, 3]).params, { layers_0: {}, layers_1: {} }, rand([1, 3], 0, "float32"), { train: true },
    )).toThrow(ConfigError);
    expect(() => Dropout(1.5)).toThrow(ConfigError);
  });
});

describe("vmap over layers", () => {
  it("per-example Dense equals the batch", () => {
    const l = Dense(3);
    const p = to64(l.init(random.key(0), [5, 4]).params);
    const xs = rand([5, 4], 2);
    const per = vmap((xi: Tensor) => l.apply(p, {}, xi)[0])(xs);
    expectClose(vals(per), vals(l.apply(p, {}, xs)[0]), 1e-12);
  });
  it("per-example Conv equals the batch", () => {
    const l = Conv(3, [2, 2], { padding: "SAME" });
    const p = to64(l.init(random.key(0), [3, 4, 4, 2]).params);
    const xs = rand([3, 4, 4, 2], 2);
    const per = vmap((xi: Tensor) => np.squeeze(l.apply(p, {}, np.expandDims(xi, 0))[0], 0))(xs);
    expectClose(vals(per), vals(l.apply(p, {}, xs)[0]), 1e-12);
  });
});
