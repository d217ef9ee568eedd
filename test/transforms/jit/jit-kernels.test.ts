/**
 * Kernels on edge shapes, on every kernel backend here (ts, gpu.js cpu, gpu.js webasm, wasm): size-0 and
 * size-1 axes, odd sizes, transposes feeding elementwise and contraction kernels, reshapes that
 * merge computed axes, long reductions that must be exact (gpu.js caps argument-bound loops at
 * 1000 iterations), fused epilogues, bool outputs, and escapes mixed with kernels. Then the webasm
 * polynomial transcendentals against float64 Math with ulp bounds.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as lax from "../../../src/core/lax.js";
import { Tensor } from "../../../src/core/tensor.js";
import { numpy as np } from "../../../src/index.js";
import { arbTensorOfShape } from "../../../src/testing/arbitraries.js";
import { type BackendOption, jit } from "../../../src/transforms/index.js";
import { evaluateKernel } from "../../../src/transforms/jit/kernel-eval.js";
import type { Kernel, UnaryOp } from "../../../src/transforms/jit/kernel-ir.js";
import { gpuJsBackend } from "../../../src/transforms/jit/gpujs-backend.js";

const U = 2 ** -24;

const BACKENDS: [string, BackendOption][] = [
  ["ts", "ts"],
  ["gpu.js cpu", { name: "gpu.js", mode: "cpu" }],
  ["gpu.js webasm", { name: "gpu.js", mode: "webasm" }],
  ["wasm", "wasm"],
  ["wasm 1 thread", { name: "wasm", threads: 1 }],
];

function iota(shape: number[], scale = 0.1): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  return Tensor._fromBuffer(
    shape,
    "float32",
    new Float32Array(n).map((_, i) => Math.sin(i * 1.7) * scale * 10),
  );
}

/** |a − b| ≤ tol·(1 + |b|) elementwise, same shape. */
function expectClose(a: Tensor, b: Tensor, tol: number): void {
  expect(a.shape).toEqual(b.shape);
  expect(a.dtype).toBe(b.dtype);
  const x = a.data();
  const y = b.data();
  for (let i = 0; i < x.length; i++)
    expect(Math.abs(x[i]! - y[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(y[i]!)));
}

describe.each(BACKENDS)("kernels [%s]", (_tag, backend) => {
  const j = <F extends (...a: any[]) => any>(f: F) => jit(f, { backend });

  it("size-0 axes: empty outputs, and sums over an empty axis give 0", () => {
    const x = np.zeros([0, 3]);
    expect(j((v: Tensor) => v.mul(2).add(1))(x).shape).toEqual([0, 3]);
    expect(j((v: Tensor) => v.exp().sum(0))(x).toArray()).toEqual([0, 0, 0]);
    expect(j((v: Tensor) => lax.reduceMax(v, [0]))(x).toArray()).toEqual([
      Number.NEGATIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]);
  });

  it("size-1 axes and odd sizes, with broadcasting", () => {
    const x = iota([1, 7, 1]);
    const y = iota([13, 7, 3], 0.05);
    const f = (a: Tensor, b: Tensor) => np.tanh(a.mul(b).add(0.5)).mul(a);
    // Elementwise only: at most 4 roundings plus the 4-ulp tanh polynomial.
    expectClose(j(f)(x, y), f(x, y), 16 * U);
  });

  it("transposes feed elementwise kernels without copies", () => {
    const a = iota([5, 9]);
    const b = iota([9, 5], 0.3);
    const f = (p: Tensor, q: Tensor) => p.T.mul(q).add(p.T.mul(2));
    // Three roundings per element (gpu.js cpu keeps the products in float64, so not bit-equal).
    expectClose(j(f)(a, b), f(a, b), 4 * U);
  });

  it("dot with transposed operands and a fused bias + relu epilogue", () => {
    const x = iota([7, 11]);
    const w = iota([5, 11], 0.2); // used transposed
    const bias = iota([5], 0.5);
    const f = (p: Tensor, q: Tensor, b: Tensor) => np.maximum(p.matmul(q.T).add(b), 0);
    const got = j(f)(x, w, bias);
    const want = f(x, w, bias);
    // γ_K bound for a K-term dot in float32 (K = 11): |err| ≤ K·ε·Σ|x_ik w_jk| (+ the bias add).
    const absTerms = np.abs(x).matmul(np.abs(w).T).add(np.abs(bias)).data();
    const g = got.data();
    const wv = want.data();
    for (let i = 0; i < g.length; i++)
      expect(Math.abs(g[i]! - wv[i]!)).toBeLessThanOrEqual(2 * 12 * U * absTerms[i]!);
    const low = j(f).lower(x, w, bias);
    expect(low.kernels).toHaveLength(1); // the transpose, dot, bias add and relu are one kernel
  });

  it("matmuls with N a multiple of 4 (micro-tiled on webasm), 2D and batched", () => {
    for (const [m, kk, n, batch] of [
      [7, 13, 8, 0],
      [3, 5, 12, 2],
    ] as const) {
      const a = iota(batch ? [batch, m, kk] : [m, kk]);
      const b = iota(batch ? [batch, kk, n] : [kk, n], 0.3);
      const f = (p: Tensor, q: Tensor) => np.tanh(np.matmul(p, q));
      const abs = np.matmul(np.abs(a), np.abs(b)).data();
      const got = j(f)(a, b).data();
      const want = f(a, b).data();
      // γ_K for the dot, then tanh (Lipschitz 1, ≤ 4 ulp) on top.
      for (let i = 0; i < got.length; i++)
        expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(2 * (kk + 1) * U * abs[i]! + 8 * U);
      if (typeof backend === "object" && "mode" in backend && backend.mode === "webasm") {
        expect(j(f).lower(a, b).kernels[0]!.source).toContain("return [");
      }
    }
  });

  it("batched dot_general over a transposed batch axis", () => {
    const a = iota([3, 4, 6]);
    const b = iota([6, 3, 5], 0.4);
    const f = (p: Tensor, q: Tensor) =>
      lax.dotGeneral(p, lax.transpose(q, [1, 0, 2]), { contracting: [[2], [1]], batch: [[0], [0]] });
    const abs = lax
      .dotGeneral(np.abs(a), lax.transpose(np.abs(b), [1, 0, 2]), {
        contracting: [[2], [1]],
        batch: [[0], [0]],
      })
      .data();
    const got = j(f)(a, b).data();
    const want = f(a, b).data();
    for (let i = 0; i < got.length; i++)
      expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(2 * 6 * U * abs[i]!);
  });

  it("a 5000-long reduction is exact (no loop capped at 1000)", () => {
    const ones = np.ones([5000]);
    expect(j((v: Tensor) => v.sum())(ones).item()).toBe(5000);
    expect(j((v: Tensor) => v.reshape([2, 2500]).sum(1))(ones).toArray()).toEqual([2500, 2500]);
  });

  it("a 2^22-element reduction of small integers is exact", () => {
    const n = 2 ** 22;
    const x = Tensor._fromBuffer(
      [n],
      "float32",
      new Float32Array(n).map((_, i) => i % 4),
    );
    // Every partial sum is an integer below 2^24, so float32 accumulation is exact in any order.
    expect(j((v: Tensor) => v.sum())(x).item()).toBe((n / 4) * 6);
  });

  it("long reductions over few outputs run in two stages, within (C + P)·ε·Σ|x|", () => {
    const n = 2 ** 20;
    const x = Tensor._fromBuffer(
      [n],
      "float32",
      new Float32Array(n).map((_, i) => 1 + Math.sin(i) * 0.5),
    );
    const f = (v: Tensor) => np.sqrt(v.mul(v).sum());
    const low = j(f).lower(x);
    expect(low.kernels.map((k) => k.outShape)).toEqual([[1024], []]);
    let exact = 0;
    let abs = 0;
    for (const v of x.data()) {
      exact += v * v;
      abs += Math.abs(v * v);
    }
    // P = C = 1024 partial sums: (C + P)·ε·Σ|x²| for the sum (plus one rounding per square), then
    // the square root halves the relative error and adds half an ulp.
    const sumErr = (1024 + 1024 + 1) * U * abs;
    const got = j(f)(x).item();
    expect(Math.abs(got - Math.sqrt(exact))).toBeLessThanOrEqual(
      sumErr / (2 * Math.sqrt(exact)) + 2 * U * Math.sqrt(exact),
    );
    const m = (v: Tensor) => v.reshape([4, n / 4]).max(1);
    expect(j(m)(x).data()).toEqual(m(x).data()); // maxima are exact in any order
  });

  it("log-sum-exp: a max kernel, then a sum kernel with a fused log epilogue", () => {
    const x = iota([6, 10], 0.5);
    const f = (v: Tensor) => {
      const m = v.max(1);
      const s = np.exp(v.sub(m.reshape([6, 1]))).sum(1);
      return np.log(s).add(m);
    };
    const low = j(f).lower(x);
    expect(low.kernels).toHaveLength(2);
    // Each term exp(·) ≤ 1 with 4-ulp error, 10 terms, then a log (4 ulp) and an add.
    expectClose(j(f)(x), f(x), 64 * U);
  });

  it("reshapes that merge computed axes materialise first; splits stay fused", () => {
    const x = iota([4, 6]);
    const merge = (v: Tensor) => np.exp(v).reshape([24]).mul(2);
    expectClose(j(merge)(x), merge(x), 8 * U);
    const split = (v: Tensor) => np.sin(v).reshape([2, 2, 3, 2]).sum([1, 3]);
    expectClose(j(split)(x), split(x), 16 * U);
  });

  it("bool outputs, selects and an int32 escape in one program", () => {
    const x = iota([3, 5]);
    const f = (v: Tensor) => {
      const mask = v.greater(0);
      return [mask, np.where(mask, v, v.mul(0.1)), v.argmax(1)];
    };
    const [m1, y1, a1] = j(f)(x) as Tensor[];
    const [m2, y2, a2] = f(x) as Tensor[];
    expect(m1!.dtype).toBe("bool");
    expect(m1!.toArray()).toEqual(m2!.toArray());
    expect(y1!.data()).toEqual(y2!.data());
    expect(a1!.toArray()).toEqual(a2!.toArray());
    expect(j(f).lower(x).escapes).toContain("argmax");
  });

  it("rank-5 outputs split the leading index space exactly", () => {
    const x = iota([2, 3, 2, 3, 4]);
    const y = iota([4], 0.3);
    const f = (v: Tensor, w: Tensor) => v.transpose([4, 3, 2, 1, 0]).mul(w.reshape([4, 1, 1, 1, 1]));
    expect(j(f)(x, y).data()).toEqual(f(x, y).data());
  });

  it("property: fused elementwise chains with broadcasting match eager", () => {
    const arb = fc
      .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }))
      .chain(([r, c]) =>
        fc.tuple(
          arbTensorOfShape([r, c], { bound: 2 }),
          arbTensorOfShape([c], { bound: 2 }),
          fc.double({ min: -2, max: 2, noNaN: true }),
        ),
      );
    fc.assert(
      fc.property(arb, ([a, b, s]) => {
        const f = (p: Tensor, q: Tensor) => np.tanh(p.mul(q).add(s)).mul(q).sub(lax.logistic(p));
        // ≤ 6 roundings, two ≤4-ulp polynomials, values ≤ 2 in size: 32 ε relative to 1 + |y|.
        expectClose(j(f)(a, b), f(a, b), 32 * U);
      }),
      { numRuns: 25 },
    );
  });
});

describe("webasm polynomial transcendentals", () => {
  const backend = gpuJsBackend({ mode: "webasm" });
  const ops: [UnaryOp, number, number, (v: number) => number][] = [
    ["exp", -87, 88, Math.exp],
    ["log", 1e-30, 1e30, Math.log],
    ["tanh", -12, 12, Math.tanh],
    ["logistic", -40, 40, (v) => 1 / (1 + Math.exp(-v))],
    ["log1p", -0.9, 50, Math.log1p],
    ["expm1", -20, 20, Math.expm1],
  ];
  const n = 4096;
  for (const [fn, lo, hi, ref] of ops) {
    it(`${fn} is within a few ulp of float64 Math over [${lo}, ${hi}] and on special values`, () => {
      const geometric = fn === "log";
      const xs = new Float32Array(n + 6).map((_, i) =>
        geometric ? lo * (hi / lo) ** (i / n) : lo + ((hi - lo) * i) / n,
      );
      xs.set([0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 1e-6], n);
      const kernel: Kernel = {
        argSizes: [xs.length],
        outShape: [xs.length],
        outDType: "float32",
        reduction: null,
        expr: { op: "unary", fn, x: { op: "load", arg: 0, index: { offset: 0, out: [1], red: [] } } },
      };
      const compiled = backend.compile(kernel);
      const got = compiled.run([xs]);
      expect(compiled.ranOn).toBe("gpu.js:webasm");
      expect(compiled.source).not.toMatch(/Math\.(exp|log|tanh)\(/);
      const oracle = evaluateKernel(kernel, [xs]);
      for (let i = 0; i < xs.length; i++) {
        const want = ref(xs[i]!);
        if (Number.isNaN(want)) {
          expect(Number.isNaN(got[i]!)).toBe(true);
          continue;
        }
        if (!Number.isFinite(want)) {
          expect(got[i]).toBe(want);
          continue;
        }
        // 4 ulp of the result, or of the smallest normal where the result underflows; expm1 and
        // log1p near their cancellation points get 4 ulp of 1·|x| (their inputs' scale).
        const scale = Math.max(
          Math.abs(want),
          2 ** -126,
          fn === "expm1" || fn === "log1p" ? Math.abs(xs[i]!) * 2 ** -3 : 0,
        );
        expect(Math.abs(got[i]! - want)).toBeLessThanOrEqual(8 * U * scale);
        // The TS evaluator rounds float64 Math once: within half an ulp.
        expect(Math.abs(oracle[i]! - want)).toBeLessThanOrEqual(U * Math.abs(want) + 2 ** -149);
      }
    });
  }
});
