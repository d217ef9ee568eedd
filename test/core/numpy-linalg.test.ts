import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, ShapeError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import { Tensor } from "../../src/core/tensor.js";
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
function rand(shape: readonly number[], seed: number): Tensor {
  const r = rng(seed);
  return Tensor._fromBuffer(
    [...shape],
    "float64",
    Float64Array.from({ length: size(shape) }, () => 2 * r() - 1),
  );
}
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!))))
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]}`);
  }
}
function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}
function get(t: Tensor, idx: readonly number[]): number {
  let o = 0;
  t.shape.forEach((d, k) => {
    o = o * d + (d === 1 ? 0 : idx[k]!);
  });
  return t._buf![o]!;
}

/** Matmul oracle for ≥2-D operands: broadcast batch, then triple loop in float64. */
function matmulOracle(a: Tensor, b: Tensor): { shape: number[]; data: Float64Array } {
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const n = Math.max(ba.length, bb.length);
  const batch = Array.from({ length: n }, (_, i) => {
    const x = ba[ba.length - n + i] ?? 1;
    const y = bb[bb.length - n + i] ?? 1;
    return x === 1 ? y : x;
  });
  const [m, k] = a.shape.slice(-2) as [number, number];
  const p = b.shape[b.ndim - 1]!;
  const shape = [...batch, m, p];
  const data = Float64Array.from({ length: size(shape) }, (_, i) => {
    const idx = unravel(i, shape);
    const bi = idx.slice(0, n);
    const [r, c] = idx.slice(n) as [number, number];
    let s = 0;
    for (let j = 0; j < k; j++)
      s += get(a, [...bi.slice(n - ba.length), r, j]) * get(b, [...bi.slice(n - bb.length), j, c]);
    return s;
  });
  return { shape, data };
}

const batchArb = fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 });
/** Two batch shapes that broadcast: drop leading axes and set some to 1. */
const mmArb = fc
  .tuple(
    batchArb,
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 3 }),
    fc.integer(),
    fc.boolean(),
    fc.boolean(),
  )
  .map(([batch, m, k, p, seed, dropA, oneB]) => {
    const sa = [...(dropA ? batch.slice(1) : batch), m, k];
    const sb = [...batch.map((d, i) => (oneB && i === 0 ? 1 : d)), k, p];
    return { sa, sb, seed };
  });

describe("matmul", () => {
  it("batch broadcasting vs a float64 oracle (incl. size-0 axes)", () => {
    fc.assert(
      fc.property(mmArb, ({ sa, sb, seed }) => {
        const a = rand(sa, seed);
        const b = rand(sb, seed + 1);
        const y = np.matmul(a, b);
        const o = matmulOracle(a, b);
        expect(y.shape).toEqual(o.shape);
        expectClose(y.data(), o.data, 1e-14 * (sa[sa.length - 1]! + 1));
        // Swapped roles exercise the ≤2-D right operand path and the broadcast one.
        const y2 = np.matmul(np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2));
        const o2 = matmulOracle(np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2));
        expect(y2.shape).toEqual(o2.shape);
        expectClose(y2.data(), o2.data, 1e-13);
      }),
      { numRuns: 60 },
    );
  });
  it("1-D operands follow NumPy's rules", () => {
    const m = np.array([
      [1, 2],
      [3, 4],
    ]);
    expect(np.matmul([1, 1], m).toArray()).toEqual([4, 6]);
    expect(np.matmul(m, [1, 1]).toArray()).toEqual([3, 7]);
    expect(np.matmul([1, 2], [3, 4]).shape).toEqual([]);
    expect(np.matmul([1, 2], [3, 4]).item()).toBe(11);
    expect(np.matmul(np.ones([5, 2, 3]), np.ones([3])).shape).toEqual([5, 2]);
    expect(np.matmul(np.ones([3]), np.ones([5, 3, 2])).shape).toEqual([5, 2]);
    expect(() => np.matmul(np.ones([2, 3]), np.ones([4, 2]))).toThrow(ShapeError);
    expect(() => np.matmul(np.ones([2, 2, 3]), np.ones([3, 3, 2]))).toThrow(
      /matmul: shapes \[2\] and \[3\] cannot broadcast/,
    );
    expect(() => np.matmul(1, np.ones([2]))).toThrow(ShapeError);
    expect(np.matmul(np.array([[1]], "int32"), np.array([[2.5]])).dtype).toBe("float32");
  });
});

describe("dot, vdot, outer, tensordot", () => {
  it("match the oracle", () => {
    const a = rand([2, 3], 1);
    const b = rand([3, 4], 2);
    expectClose(np.dot(a, b).data(), matmulOracle(a, b).data, 1e-14);
    expect(np.dot([1, 2, 3], [4, 5, 6]).item()).toBe(32);
    expect(np.dot(2, [1, 2]).toArray()).toEqual([2, 4]);
    expect(np.dot(np.ones([2, 3, 4]), np.ones([5, 4, 6])).shape).toEqual([2, 3, 5, 6]);
    expect(np.dot(np.ones([2, 3]), np.ones([3])).toArray()).toEqual([3, 3]);
    expect(np.vdot([[1, 2]], [3, 4]).item()).toBe(11);
    expect(np.outer([1, 2], [3, 4, 5]).toArray()).toEqual([
      [3, 4, 5],
      [6, 8, 10],
    ]);
    const c = rand([2, 3, 4], 3);
    const d = rand([3, 4, 5], 4);
    const t = np.tensordot(c, d, 2);
    expect(t.shape).toEqual([2, 5]);
    const flat = matmulOracle(np.reshape(c, [2, 12]), np.reshape(d, [12, 5]));
    expectClose(t.data(), flat.data, 1e-14);
    expectClose(
      np
        .tensordot(c, d, [
          [1, 2],
          [0, 1],
        ])
        .data(),
      flat.data,
      1e-14,
    );
    expect(() => np.tensordot(c, d, [[0], [0]])).toThrow(ShapeError);
    expect(() => np.dot(np.ones([2, 3]), np.ones([2, 3]))).toThrow(
      /dot: shapes \[2,3\] and \[2,3\] not aligned/,
    );
  });
});

describe("einsum", () => {
  const a = rand([2, 3], 1);
  const b = rand([3, 4], 2);
  const batchA = rand([5, 2, 3], 3);
  const batchB = rand([5, 3, 4], 4);
  const v = rand([3], 5);
  it.each([
    ["ij,jk->ik", () => np.einsum("ij,jk->ik", a, b), () => np.matmul(a, b)],
    ["implicit ij,jk", () => np.einsum("ij,jk", a, b), () => np.matmul(a, b)],
    ["bij,bjk->bik", () => np.einsum("bij,bjk->bik", batchA, batchB), () => np.matmul(batchA, batchB)],
    ["i,i->", () => np.einsum("i,i->", v, v), () => np.dot(v, v)],
    ["ij->ji", () => np.einsum("ij->ji", a), () => np.transpose(a)],
    ["ij->", () => np.einsum("ij->", a), () => np.sum(a)],
    ["ij->j", () => np.einsum("ij->j", a), () => np.sum(a, 0)],
    [
      "ii->i",
      () => np.einsum("ii->i", rand([3, 3], 6)),
      () => np.sum(np.multiply(rand([3, 3], 6), np.eye(3)), 1),
    ],
    ["ii", () => np.einsum("ii", rand([3, 3], 6)), () => np.sum(np.multiply(rand([3, 3], 6), np.eye(3)))],
    ["i,j->ij", () => np.einsum("i,j->ij", v, v), () => np.outer(v, v)],
    [
      "ij,jk,kl->il",
      () => np.einsum("ij,jk,kl->il", a, b, rand([4, 2], 7)),
      () => np.matmul(np.matmul(a, b), rand([4, 2], 7)),
    ],
    ["bij,jk->bki", () => np.einsum("bij,jk->bki", batchA, b), () => np.swapaxes(np.matmul(batchA, b), 1, 2)],
  ])("%s", (_name, f, g) => {
    const y = (f as () => Tensor)();
    const e = (g as () => Tensor)();
    expect(y.shape).toEqual(e.shape);
    expectClose(y.data(), e.data(), 1e-14);
  });
  it("errors", () => {
    expect(() => np.einsum("ij,jk->ik", a)).toThrow(ConfigError);
    expect(() => np.einsum("ij,jk->ik", a, a)).toThrow(ShapeError);
    expect(() => np.einsum("ijk->i", a)).toThrow(ShapeError);
    expect(() => np.einsum("ij->z", a)).toThrow(ConfigError);
  });
});

describe("linalg.norm", () => {
  it("vector and matrix norms", () => {
    expect(np.linalg.norm([3, 4]).item()).toBeCloseTo(5, 6);
    expect(np.linalg.norm([3, -4], 1).item()).toBe(7);
    expect(np.linalg.norm([3, -4], Infinity).item()).toBe(4);
    expect(np.linalg.norm([3, -4], -Infinity).item()).toBe(3);
    expect(np.linalg.norm([3, 0], 0).item()).toBe(1);
    expect(np.linalg.norm([3, 4], 3).item()).toBeCloseTo(Math.cbrt(27 + 64), 5);
    const m = np.array([
      [1, -2],
      [3, 4],
    ]);
    expect(np.linalg.norm(m).item()).toBeCloseTo(Math.sqrt(30), 5);
    expect(np.linalg.norm(m, "fro").item()).toBeCloseTo(Math.sqrt(30), 5);
    expect(np.linalg.norm(m, 1).item()).toBe(6);
    expect(np.linalg.norm(m, -1).item()).toBe(4);
    expect(np.linalg.norm(m, Infinity).item()).toBe(7);
    expect(np.linalg.norm(m, -Infinity).item()).toBe(3);
    expect(np.linalg.norm(m, null, 1).data()).toEqual(Float32Array.from([Math.sqrt(5), 5]));
    expect(np.linalg.norm(m, null, 0, true).shape).toEqual([1, 2]);
    expect(np.linalg.norm(np.ones([2, 2, 2]), 1, [1, 2], true).shape).toEqual([2, 1, 1]);
    expect(() => np.linalg.norm(m, 2)).toThrow(ConfigError);
  });
});

describe("numpy under transforms", () => {
  it("grad of sum(matmul) and vmap of a broadcasting function", () => {
    const a = rand([2, 3], 1);
    const b = rand([3, 4], 2);
    const g = grad((x: Tensor) => np.sum(np.matmul(x, b)))(a) as Tensor;
    // d/dA Σ(AB) = 1 Bᵀ: each row is B's row sums.
    const rowSums = np.sum(b, 1);
    expectClose(g.data(), np.broadcastTo(rowSums, [2, 3]).data(), 1e-14);
    const f = (x: Tensor) => np.sum(np.multiply(np.add(x, 1.5), [1, 2, 3]), -1);
    const ys = vmap(f)(a) as Tensor;
    expectClose(ys.data(), np.stack([f(np.take(a, 0, 0)), f(np.take(a, 1, 0))]).data(), 1e-14);
  });
});

describe("gradients of np functions vs central differences (float64)", () => {
  const fns: [string, (x: Tensor) => Tensor][] = [
    ["logaddexp", (x) => np.logaddexp(x, np.multiply(x, 0.5))],
    ["power", (x) => np.power(np.add(np.abs(x), 0.5), 2.5)],
    ["divide", (x) => np.divide(np.sin(x), np.add(np.square(x), 1))],
    ["mean/var", (x) => np.add(np.var(x, -1, { keepdims: true }), np.mean(x, 0))],
    ["max/min", (x) => np.add(np.max(x, 0), np.min(x, 1, { keepdims: true }))],
    ["prod", (x) => np.prod(x, -1)],
    ["clip/where", (x) => np.where(np.greater(x, 0), np.clip(x, -0.5, 0.5), np.exp(x))],
    ["norm", (x) => np.linalg.norm(x, null, -1)],
    ["einsum", (x) => np.einsum("ij,kj->ik", x, np.tanh(x))],
    ["concatenate/take", (x) => np.take(np.concatenate([x, np.flip(x, 0)], 1), [0, 3, 5], 1)],
    [
      "cumsum/pad",
      (x) =>
        np.pad(np.cumsum(x, 1), [
          [1, 0],
          [0, 2],
        ]),
    ],
  ];
  for (const [name, f] of fns) {
    it(name, () => {
      fc.assert(
        fc.property(fc.integer(), (seed) => {
          const x = rand([2, 3], seed);
          const w = rand(f(x).shape, seed + 1);
          const loss = (v: Tensor) => np.sum(np.multiply(f(v), w));
          const g = grad(loss)(x) as Tensor;
          const h = 1e-6;
          const fd = Array.from({ length: 6 }, (_, i) => {
            const e = new Float64Array(6);
            e[i] = h;
            const d = Tensor._fromBuffer([2, 3], "float64", e);
            return (loss(np.add(x, d)).item() - loss(np.subtract(x, d)).item()) / (2 * h);
          });
          expectClose(g.data(), fd, 1e-6);
        }),
        { numRuns: 20 },
      );
    });
  }
});
