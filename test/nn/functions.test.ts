import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as np from "../../src/core/numpy/index.js";
import { Tensor } from "../../src/core/tensor.js";
import * as nn from "../../src/nn/functions.js";
import { grad } from "../../src/transforms/index.js";

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
function data(shape: readonly number[], seed: number, scale = 4): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: size(shape) }, () => scale * (2 * r() - 1));
}
const f64 = (shape: readonly number[], buf: Float64Array) => Tensor._fromBuffer([...shape], "float64", buf);
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!))))
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]}`);
  }
}
// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
function erfAS(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  return (
    Math.sign(x) *
    (1 -
      ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
        t *
        Math.exp(-x * x))
  );
}
const sig = (x: number) => 1 / (1 + Math.exp(-x));

const shapeArb = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 });

const elementwise: [string, (x: Tensor) => Tensor, (x: number) => number, number?][] = [
  ["relu", nn.relu, (x) => Math.max(x, 0)],
  ["relu6", nn.relu6, (x) => Math.min(Math.max(x, 0), 6)],
  [
    "gelu (tanh)",
    (x) => nn.gelu(x),
    (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  ],
  ["gelu (exact)", (x) => nn.gelu(x, false), (x) => 0.5 * x * (1 + erfAS(x / Math.SQRT2)), 1e-6],
  ["sigmoid", nn.sigmoid, sig],
  ["softplus", nn.softplus, (x) => Math.log(1 + Math.exp(x))],
  ["silu", nn.silu, (x) => x * sig(x)],
  ["swish", nn.swish, (x) => x * sig(x)],
  ["elu", (x) => nn.elu(x, 0.7), (x) => (x > 0 ? x : 0.7 * (Math.exp(x) - 1))],
  ["leakyRelu", (x) => nn.leakyRelu(x, 0.2), (x) => (x >= 0 ? x : 0.2 * x)],
  ["tanh", nn.tanh, Math.tanh],
  ["logSigmoid", nn.logSigmoid, (x) => Math.log(sig(x))],
];

describe("elementwise activations vs float64 oracle", () => {
  for (const [name, f, oracle, tol] of elementwise) {
    it(name, () => {
      fc.assert(
        fc.property(shapeArb, fc.integer(), (s, seed) => {
          const a = data(s, seed, 8);
          const y = f(f64(s, a));
          expect(y.shape).toEqual(s);
          expect(y.dtype).toBe("float64");
          expectClose(y.data(), a.map(oracle), tol ?? 1e-13);
        }),
        { numRuns: 40 },
      );
    });
  }
  it("keep float32, and are stable at extremes", () => {
    expect(nn.relu(np.array([-1, 2])).dtype).toBe("float32");
    expect(nn.relu(np.array([-1, 2], "int32")).dtype).toBe("float32");
    const big = np.array([-1000, 1000], "float64");
    expectClose(nn.softplus(big).data(), [0, 1000], 1e-15);
    expectClose(nn.logSigmoid(big).data(), [-1000, 0], 1e-15);
    expectClose(nn.sigmoid(big).data(), [0, 1], 1e-15);
    expect(Array.from(nn.elu(big).data())).toEqual([-1, 1000]);
  });
  it("relu has derivative 0 at 0, as JAX's", () => {
    const g = grad((x: Tensor) => np.sum(nn.relu(x)))(np.array([-1, 0, 2], "float64")) as Tensor;
    expect(Array.from(g.data())).toEqual([0, 0, 1]);
  });
});

/** Softmax oracle over `axis` of a float64 array, in float64 with the max subtracted. */
function softmaxOracle(a: Float64Array, s: number[], axis: number, log: boolean): Float64Array {
  const out = new Float64Array(a.length);
  const inner = size(s.slice(axis + 1));
  const n = s[axis]!;
  const outer = size(s.slice(0, axis));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (k: number) => (o * n + k) * inner + i;
      let m = -Infinity;
      for (let k = 0; k < n; k++) m = Math.max(m, a[at(k)]!);
      let z = 0;
      for (let k = 0; k < n; k++) z += Math.exp(a[at(k)]! - m);
      for (let k = 0; k < n; k++)
        out[at(k)] = log ? a[at(k)]! - m - Math.log(z) : Math.exp(a[at(k)]! - m) / z;
    }
  }
  return out;
}

describe("softmax, logSoftmax, logsumexp", () => {
  const caseArb = fc
    .array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 })
    .chain((s) =>
      fc.tuple(
        fc.constant(s),
        fc.integer({ min: -s.length, max: s.length - 1 }),
        fc.integer(),
        fc.constantFrom(1, 1000),
      ),
    );
  it("match the oracle on any axis, for logits near 0 and near 1000", () => {
    fc.assert(
      fc.property(caseArb, ([s, axis, seed, offset]) => {
        const a = data(s, seed).map((v) => v + offset);
        const x = f64(s, a);
        const ax = axis < 0 ? axis + s.length : axis;
        expectClose(nn.softmax(x, axis).data(), softmaxOracle(a, s, ax, false), 1e-13);
        expectClose(nn.logSoftmax(x, axis).data(), softmaxOracle(a, s, ax, true), 1e-12);
        const lse = nn.logsumexp(x, axis, true);
        const ls = softmaxOracle(a, s, ax, true);
        // logsumexp = x - logSoftmax(x), for any element.
        expectClose(lse.data(), np.subtract(np.take(x, [0], ax), np.take(f64(s, ls), [0], ax)).data(), 1e-12);
      }),
      { numRuns: 50 },
    );
  });
  it("are finite for large logits in float32", () => {
    const x = np.array([1000, 1000, 999]);
    const p = nn.softmax(x);
    expect(Array.from(p.data()).every(Number.isFinite)).toBe(true);
    expectClose(p.data(), softmaxOracle(Float64Array.from([1000, 1000, 999]), [3], 0, false), 1e-6);
    expect(nn.logsumexp(x).item()).toBeCloseTo(1000 + Math.log(2 + Math.exp(-1)), 3);
    expect(nn.logsumexp(np.array([-Infinity, -Infinity])).item()).toBe(-Infinity);
    expect(nn.logsumexp(np.array([Infinity, 0])).item()).toBe(Infinity);
    expect(nn.logsumexp(np.zeros([2, 3]), [0, 1]).shape).toEqual([]);
    expect(nn.logsumexp(np.zeros([2, 3]), 1).shape).toEqual([2]);
  });
  it("gradients: d logsumexp = softmax, and softmax rows' gradients sum to zero", () => {
    const x = f64([2, 3], data([2, 3], 7));
    const g = grad((v: Tensor) => np.sum(nn.logsumexp(v, -1)))(x) as Tensor;
    expectClose(g.data(), nn.softmax(x).data(), 1e-14);
    const w = f64([2, 3], data([2, 3], 8));
    const gs = grad((v: Tensor) => np.sum(np.multiply(nn.softmax(v), w)))(x) as Tensor;
    expectClose(np.sum(gs, -1).data(), [0, 0], 1e-14);
    // And vs central differences.
    const h = 1e-6;
    const f = (v: Tensor) => np.sum(np.multiply(nn.softmax(v), w)).item();
    const fd = Array.from({ length: 6 }, (_, i) => {
      const e = new Float64Array(6);
      e[i] = h;
      return (f(np.add(x, f64([2, 3], e))) - f(np.subtract(x, f64([2, 3], e)))) / (2 * h);
    });
    expectClose(gs.data(), fd, 1e-8);
  });
});

describe("oneHot and standardize", () => {
  it("oneHot", () => {
    expect(nn.oneHot(np.array([0, 2, 5, -1], "int32"), 3).toArray()).toEqual([
      [1, 0, 0],
      [0, 0, 1],
      [0, 0, 0],
      [0, 0, 0],
    ]);
    expect(nn.oneHot(np.array([[1]], "int32"), 2, "int32").dtype).toBe("int32");
    expect(nn.oneHot(np.array([[1]], "int32"), 2).shape).toEqual([1, 1, 2]);
  });
  it("standardize", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 2, max: 4 }), { minLength: 1, maxLength: 3 }),
        fc.integer(),
        (s, seed) => {
          const a = data(s, seed);
          const y = nn.standardize(f64(s, a), -1, { epsilon: 0 });
          const m = np.mean(y, -1);
          const v = np.var(y, -1);
          expectClose(m.data(), new Float64Array(m.size), 1e-12);
          expectClose(v.data(), new Float64Array(v.size).fill(1), 1e-10);
        },
      ),
      { numRuns: 40 },
    );
  });
});
