import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, DTypeError, ShapeError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import { Tensor } from "../../src/core/tensor.js";
import {
  huberLoss,
  l2Loss,
  sigmoidBinaryCrossEntropy,
  smoothLabels,
  softmaxCrossEntropy,
  softmaxCrossEntropyWithIntegerLabels,
  squaredError,
} from "../../src/nn/losses.js";
import { accuracy, confusionMatrix, topKAccuracy } from "../../src/nn/metrics.js";
import { grad } from "../../src/transforms/index.js";

const f64 = (rows: number[][]) =>
  Tensor._fromBuffer([rows.length, rows[0]!.length], "float64", Float64Array.from(rows.flat()));
const vec64 = (xs: number[]) => Tensor._fromBuffer([xs.length], "float64", Float64Array.from(xs));
const vals = (t: Tensor) => (t.ndim === 0 ? [t.toArray() as number] : (np.ravel(t).toArray() as number[]));
function expectClose(actual: readonly number[], expected: readonly number[], tol: number) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++)
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!))))
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]}`);
}

// Float64 oracles, written independently of the library.
function lseOracle(row: number[]): number {
  const m = Math.max(...row);
  return m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
}
function softmaxOracle(row: number[]): number[] {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const z = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / z);
}
const ceOracle = (row: number[], lab: number[]) =>
  -row.reduce((a, v, j) => a + lab[j]! * (v - lseOracle(row)), 0);
// log(1 + e^x) - x z, the softplus split by sign so it never overflows.
const bceOracle = (x: number, z: number) =>
  (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x))) - x * z;
const sigmoidOracle = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

// Logits from small to ±1000, so overflow-prone formulas would show up.
const logit = fc.oneof(
  fc.double({ min: -5, max: 5, noNaN: true }),
  fc.double({ min: -1000, max: 1000, noNaN: true }),
  fc.constantFrom(-1000, 1000, 0),
);
const logitRows = fc
  .tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }))
  .chain(([b, c]) =>
    fc.array(fc.array(logit, { minLength: c, maxLength: c }), { minLength: b, maxLength: b }),
  );

const eps64 = 2 ** -52;

describe("softmax cross entropy", () => {
  it("matches a float64 oracle for random and huge logits, with grad softmax - labels", () => {
    fc.assert(
      fc.property(logitRows, fc.integer({ min: 0, max: 1000 }), (rows, seed) => {
        const c = rows[0]!.length;
        const labs = rows.map((_, i) => (i * 7 + seed) % c);
        const oh = labs.map((l) => Array.from({ length: c }, (_, j) => (j === l ? 1 : 0)));
        const x = f64(rows);
        const loss = softmaxCrossEntropy(x, f64(oh));
        const expected = rows.map((r, i) => ceOracle(r, oh[i]!));
        // Each loss sums c terms whose magnitudes reach max|logit| (~1000).
        const tol = 16 * c * eps64 * 1000;
        expectClose(vals(loss), expected, tol);
        expect(vals(loss).every(Number.isFinite)).toBe(true);
        const li = softmaxCrossEntropyWithIntegerLabels(
          x,
          Tensor._fromBuffer([labs.length], "int32", Int32Array.from(labs)),
        );
        expectClose(vals(li), expected, tol);
        const g = grad((t: Tensor) => np.sum(softmaxCrossEntropy(t, f64(oh))))(x);
        const gExpected = rows.flatMap((r, i) => softmaxOracle(r).map((p, j) => p - oh[i]![j]!));
        expectClose(vals(g), gExpected, 16 * c * eps64);
        const gi = grad((t: Tensor) =>
          np.sum(
            softmaxCrossEntropyWithIntegerLabels(
              t,
              Tensor._fromBuffer([labs.length], "int32", Int32Array.from(labs)),
            ),
          ),
        )(x);
        expectClose(vals(gi), gExpected, 16 * c * eps64);
      }),
      { numRuns: 60 },
    );
  });

  it("is finite in float32 for logits of ±1000", () => {
    const x = np.array(
      [
        [1000, -1000, 0],
        [-1000, -1000, -1000],
      ],
      "float32",
    );
    const l = softmaxCrossEntropyWithIntegerLabels(x, np.array([1, 2], "int32"));
    expect(l.dtype).toBe("float32");
    expectClose(vals(l), [2000, Math.log(3)], 1e-6);
  });

  it("accepts soft labels and smoothing", () => {
    const sm = smoothLabels(np.array([[1, 0, 0, 0]], "float64"), 0.2);
    expectClose(vals(sm), [0.85, 0.05, 0.05, 0.05], 4 * eps64);
    const row = [0.3, -1.2, 2, 0.1];
    expectClose(vals(softmaxCrossEntropy(f64([row]), sm)), [ceOracle(row, vals(sm))], 16 * eps64);
    expect(() => smoothLabels(np.array([[1, 0]]), 1.5)).toThrow(ConfigError);
  });

  it("names the loss and both shapes on a mismatch", () => {
    expect(() => softmaxCrossEntropy(np.zeros([2, 3]), np.zeros([2, 4]))).toThrow(ShapeError);
    expect(() => softmaxCrossEntropy(np.zeros([2, 3]), np.zeros([2, 4]))).toThrow(
      /softmaxCrossEntropy.*\[2,3\].*\[2,4\]/,
    );
    expect(() => softmaxCrossEntropyWithIntegerLabels(np.zeros([2, 3]), np.zeros([3], "int32"))).toThrow(
      /softmaxCrossEntropyWithIntegerLabels.*\[2,3\].*\[3\]/,
    );
    expect(() => softmaxCrossEntropyWithIntegerLabels(np.zeros([2, 3]), np.zeros([2]))).toThrow(DTypeError);
  });

  it("handles size-0 batches", () => {
    expect(softmaxCrossEntropy(np.zeros([0, 3]), np.zeros([0, 3])).shape).toEqual([0]);
    expect(softmaxCrossEntropyWithIntegerLabels(np.zeros([0, 3]), np.zeros([0], "int32")).shape).toEqual([0]);
  });
});

describe("sigmoid binary cross entropy", () => {
  it("matches a float64 oracle, with grad sigmoid(x) - z, for logits up to ±1000", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(logit, fc.double({ min: 0, max: 1, noNaN: true })), { minLength: 0, maxLength: 8 }),
        (pairs) => {
          const x = vec64(pairs.map((p) => p[0]));
          const z = vec64(pairs.map((p) => p[1]));
          const l = sigmoidBinaryCrossEntropy(x, z);
          expectClose(
            vals(l),
            pairs.map(([a, b]) => bceOracle(a, b)),
            8 * eps64 * 1000,
          );
          const g = grad((t: Tensor) => np.sum(sigmoidBinaryCrossEntropy(t, z)))(x);
          expectClose(
            vals(g),
            pairs.map(([a, b]) => sigmoidOracle(a) - b),
            8 * eps64,
          );
        },
      ),
      { numRuns: 80 },
    );
  });

  it("has the exact gradient at 0 and names the shapes on a mismatch", () => {
    const g = grad((t: Tensor) => np.sum(sigmoidBinaryCrossEntropy(t, vec64([1, 0]))))(vec64([0, 0]));
    expectClose(vals(g), [-0.5, 0.5], 4 * eps64);
    expect(() => sigmoidBinaryCrossEntropy(np.zeros([3]), np.zeros([2]))).toThrow(
      /sigmoidBinaryCrossEntropy.*\[3\].*\[2\]/,
    );
  });
});

describe("regression losses", () => {
  const pairs = fc.array(
    fc.tuple(fc.double({ min: -10, max: 10, noNaN: true }), fc.double({ min: -10, max: 10, noNaN: true })),
    { minLength: 0, maxLength: 8 },
  );
  it("l2, squared error and Huber match float64 oracles and their gradients", () => {
    fc.assert(
      fc.property(pairs, fc.double({ min: 0.1, max: 5, noNaN: true }), (ps, delta) => {
        const p = vec64(ps.map((q) => q[0]));
        const t = vec64(ps.map((q) => q[1]));
        const e = ps.map(([a, b]) => a - b);
        const tol = 8 * eps64;
        expectClose(
          vals(squaredError(p, t)),
          e.map((v) => v * v),
          tol,
        );
        expectClose(
          vals(l2Loss(p, t)),
          e.map((v) => 0.5 * v * v),
          tol,
        );
        const hub = (v: number) => (Math.abs(v) <= delta ? 0.5 * v * v : delta * (Math.abs(v) - 0.5 * delta));
        expectClose(vals(huberLoss(p, t, delta)), e.map(hub), tol);
        expectClose(vals(grad((q: Tensor) => np.sum(l2Loss(q, t)))(p)), e, tol);
        const hubGrad = (v: number) => Math.max(-delta, Math.min(delta, v));
        expectClose(vals(grad((q: Tensor) => np.sum(huberLoss(q, t, delta)))(p)), e.map(hubGrad), tol);
      }),
      { numRuns: 60 },
    );
  });
  it("default targets are zero; shapes and delta are checked", () => {
    expectClose(vals(l2Loss(vec64([2, -4]))), [2, 8], 0);
    expectClose(vals(huberLoss(vec64([3]))), [2.5], 0);
    expect(() => l2Loss(np.zeros([2]), np.zeros([3]))).toThrow(/l2Loss.*\[2\].*\[3\]/);
    expect(() => huberLoss(np.zeros([2]), np.zeros([2]), 0)).toThrow(ConfigError);
  });
});

describe("metrics", () => {
  const logits = np.array([
    [0.1, 0.5, 0.4],
    [0.9, 0.05, 0.05],
    [0.2, 0.3, 0.5],
    [0.3, 0.3, 0.4],
  ]);
  const labels = np.array([1, 2, 2, 0], "int32");
  it("accuracy and top-k accuracy", () => {
    expect(accuracy(logits, labels).item()).toBeCloseTo(0.5, 12);
    expect(topKAccuracy(logits, labels, 1).item()).toBeCloseTo(0.5, 12);
    // Row 1: label 2 ties second place; row 3: label 0 ties second place.
    expect(topKAccuracy(logits, labels, 2).item()).toBeCloseTo(1, 12);
    expect(topKAccuracy(logits, labels, 3).item()).toBeCloseTo(1, 12);
    expect(() => topKAccuracy(logits, labels, 0)).toThrow(ConfigError);
    expect(() => accuracy(logits, np.array([1, 2], "int32"))).toThrow(/accuracy.*\[4,3\].*\[2\]/);
  });
  it("confusion matrix: rows are labels, columns predictions", () => {
    const cm = confusionMatrix(np.array([0, 1, 1, 2, 2], "int32"), np.array([0, 1, 2, 2, 0], "int32"), 3);
    expect(cm.dtype).toBe("int32");
    expect(cm.toArray()).toEqual([
      [1, 0, 1],
      [0, 1, 0],
      [0, 1, 1],
    ]);
    expect(confusionMatrix(np.zeros([0], "int32"), np.zeros([0], "int32"), 2).toArray()).toEqual([
      [0, 0],
      [0, 0],
    ]);
  });
});
