/**
 * The `"wasm"` backend inside jit: it is the default here (no GPU), reports what ran, falls back per
 * kernel (to gpu.js webasm, else the ts evaluator) where the wasm adapter declines, and runs
 * convolutions (forward and both gradient convolutions, any dimension numbers) on the wasm conv.
 * Convolutions are checked against float64 references with the float32 dot-product bound
 * |ŷ − y| ≤ 2(K + 1)·u·Σ|x||w| + (K + 1)·2^-149 (K the length of each output's dot product; the
 * last term covers products that underflow float32).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../src/core/errors.js";
import * as lax from "../../../src/core/lax.js";
import { convDimensionNumbers } from "../../../src/core/primitives/conv.js";
import type { Tensor } from "../../../src/core/tensor.js";
import { numpy as np } from "../../../src/index.js";
import { arbTensorOfShape } from "../../../src/testing/arbitraries.js";
import { grad, jit } from "../../../src/transforms/index.js";
import { getDefaultBackend } from "../../../src/transforms/jit/backend.js";
import { permuteInto } from "../../../src/transforms/jit/wasm-conv.js";
import type { BackendOption } from "../../../src/transforms/jit/index.js";

const U = 2 ** -24;
/** float32's smallest subnormal: products that underflow lose up to half of it each. */
const TINY = 2 ** -149;

describe("wasm backend in jit", () => {
  it("is the default without a GPU and says what ran", () => {
    expect(getDefaultBackend()).toBe("wasm");
    const x = np.array([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const w = np.array([[0.5], [-1], [2]]);
    const low = jit((a: Tensor, b: Tensor) => np.tanh(np.matmul(a, b)).sum()).lower(x, w);
    expect(low.backend).toMatch(/^wasm:/);
    expect(low.kernels.every((k) => k.ranOn.startsWith("wasm:"))).toBe(true);
  });

  it("falls back per kernel where the wasm adapter declines, and reports why", () => {
    const x = np.array([0.1, 0.7, -1.2, 2.5, 3]);
    const f = (v: Tensor) => np.sin(v).mul(2).add(np.exp(v).sum());
    const low = jit(f, { backend: "wasm" }).lower(x);
    const sinKernel = low.kernels.find((k) => k.fused.includes("sin"))!;
    expect(sinKernel.ranOn).not.toMatch(/^wasm:/);
    expect(sinKernel.fallbackReason).toContain("sin");
    expect(low.backend).toContain("wasm:");
    const got = jit(f, { backend: "wasm" })(x).data();
    const want = f(x).data();
    // sin and exp within a few ulp, one sum of 5 terms, one multiply-add: 32 ulp of the largest term.
    for (let i = 0; i < got.length; i++)
      expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(64 * U * 40);
    expect(() => jit(f, { backend: { name: "wasm", fallback: "none" } })(x)).toThrow(ConfigError);
    const ts = jit(f, { backend: { name: "wasm", fallback: "ts" } }).lower(x);
    expect(ts.kernels.find((k) => k.fused.includes("sin"))!.ranOn).toBe("ts");
  });
});

describe("wasm reductions over transposed inputs", () => {
  it("a full reduction of a transposed buffer runs on wasm (axes reordered), max exactly, sum within γ_n", () => {
    fc.assert(
      fc.property(
        fc.tuple(
          fc.integer({ min: 2, max: 9 }),
          fc.integer({ min: 2, max: 9 }),
          fc.integer({ min: 1, max: 5 }),
        ),
        fc.constantFrom([1, 0, 2], [2, 1, 0], [1, 2, 0]),
        ([a, b, c], perm) =>
          fc.assert(
            fc.property(arbTensorOfShape([a, b, c], { bound: 3 }), (x) => {
              const fmax = (v: Tensor) => np.max(np.abs(lax.transpose(v, perm)));
              const fsum = (v: Tensor) => np.sum(lax.transpose(v, perm).mul(2), [0, 1, 2]);
              const lmax = jit(fmax, { backend: "wasm" }).lower(x);
              expect(lmax.kernels.every((k) => k.ranOn.startsWith("wasm:"))).toBe(true);
              expect(jit(fmax, { backend: "wasm" })(x).item()).toBe(fmax(x).item());
              const n = a * b * c;
              const want = fsum(x.astype("float64")).item();
              const bound = 2 * (n + 1) * U * np.sum(np.abs(x).astype("float64")).mul(2).item();
              expect(Math.abs(jit(fsum, { backend: "wasm" })(x).item() - want)).toBeLessThanOrEqual(bound);
            }),
            { numRuns: 3 },
          ),
      ),
      { numRuns: 10 },
    );
  });
});

describe("permuteInto (the conv's layout changes), every permutation across the copy tiles", () => {
  const perms: number[][] = [];
  const build = (a: number[]) => {
    if (a.length === 4) perms.push(a);
    else for (let i = 0; i < 4; i++) if (!a.includes(i)) build([...a, i]);
  };
  build([]);
  it("matches the index definition out[i] = x[Σ i_t·stride(perm[t])] for all 24 permutations", () => {
    // Axes up to 70 cross the 32-element tiles (and leave partial ones); at most 40k elements each.
    const arbShape = fc
      .array(fc.integer({ min: 1, max: 70 }), { minLength: 4, maxLength: 4 })
      .filter((s) => s.reduce((a, b) => a * b, 1) <= 40_000);
    fc.assert(
      fc.property(arbShape, (shape) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = Float32Array.from({ length: n }, (_, i) => i);
        const st = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
        for (const p of perms) {
          const y = { data: new Float32Array(n), shape: p.map((d) => shape[d]!) };
          permuteInto(x, 0, shape, p, [], y.data, 0);
          let k = 0;
          const [n0, n1, n2, n3] = y.shape as [number, number, number, number];
          for (let a = 0; a < n0; a++)
            for (let b = 0; b < n1; b++)
              for (let c = 0; c < n2; c++)
                for (let d = 0; d < n3; d++, k++) {
                  const src = a * st[p[0]!]! + b * st[p[1]!]! + c * st[p[2]!]! + d * st[p[3]!]!;
                  if (y.data[k] !== src) expect(y.data[k]).toBe(src);
                }
        }
      }),
      { numRuns: 20 },
    );
  });
});

interface ConvCase {
  layout: "NHWC" | "NCHW";
  n: number;
  h: number;
  w: number;
  c: number;
  o: number;
  kh: number;
  kw: number;
  strides: [number, number];
  dilation: [number, number];
  padding: "VALID" | "SAME" | [[number, number], [number, number]];
}

const arbCase: fc.Arbitrary<ConvCase> = fc.record({
  layout: fc.constantFrom("NHWC" as const, "NCHW" as const),
  n: fc.integer({ min: 1, max: 2 }),
  h: fc.integer({ min: 3, max: 7 }),
  w: fc.integer({ min: 3, max: 7 }),
  c: fc.integer({ min: 1, max: 3 }),
  o: fc.integer({ min: 1, max: 5 }),
  kh: fc.integer({ min: 1, max: 3 }),
  kw: fc.integer({ min: 1, max: 3 }),
  strides: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
  dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
  padding: fc.oneof(
    fc.constantFrom("VALID" as const, "SAME" as const),
    fc.tuple(
      fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
      fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
    ),
  ),
});

function convOf(k: ConvCase) {
  const specs =
    k.layout === "NHWC" ? (["NHWC", "HWIO", "NHWC"] as const) : (["NCHW", "OIHW", "NCHW"] as const);
  return (x: Tensor, w: Tensor) =>
    lax.convGeneralDilated(x, w, {
      windowStrides: k.strides,
      rhsDilation: k.dilation,
      padding: k.padding,
      dimensionNumbers: convDimensionNumbers(x.shape, w.shape, specs),
    });
}

function shapes(k: ConvCase): { x: number[]; w: number[] } {
  return k.layout === "NHWC"
    ? { x: [k.n, k.h, k.w, k.c], w: [k.kh, k.kw, k.c, k.o] }
    : { x: [k.n, k.c, k.h, k.w], w: [k.o, k.c, k.kh, k.kw] };
}

/** Cases whose dilated kernel fits the padded input (an output of at least one pixel). */
const arbConv = arbCase
  .filter((k) => {
    const pad = k.padding === "VALID" ? [0, 0, 0, 0] : k.padding === "SAME" ? [9, 9, 9, 9] : k.padding.flat();
    return (
      (k.kh - 1) * k.dilation[0] + 1 <= k.h + pad[0]! + pad[1]! &&
      (k.kw - 1) * k.dilation[1] + 1 <= k.w + pad[2]! + pad[3]!
    );
  })
  .chain((k) => {
    const s = shapes(k);
    return fc.tuple(fc.constant(k), arbTensorOfShape(s.x, { bound: 2 }), arbTensorOfShape(s.w, { bound: 2 }));
  });

function expectWithin(got: Tensor, want64: Tensor, abs64: Tensor, k: number): void {
  expect(got.shape).toEqual(want64.shape);
  const g = got.data();
  const y = want64.data();
  const a = abs64.data();
  for (let i = 0; i < g.length; i++)
    expect(Math.abs(g[i]! - y[i]!)).toBeLessThanOrEqual(
      2 * (k + 1) * U * a[i]! + 4 * U * Math.abs(y[i]!) + (k + 1) * TINY,
    );
}

const BACKENDS: [string, BackendOption][] = [
  ["wasm", "wasm"],
  ["wasm 1 thread", { name: "wasm", threads: 1 }],
];

describe.each(BACKENDS)("convolutions on the wasm conv [%s]", (_tag, backend) => {
  it("forward: any layout, strides, dilation, padding, within the float32 dot bound", () => {
    fc.assert(
      fc.property(arbConv, ([k, x, w]) => {
        const conv = convOf(k);
        const jc = jit(conv, { backend });
        const low = jc.lower(x, w);
        expect(low.backend).toBe("wasm:conv");
        const want = conv(x.astype("float64"), w.astype("float64"));
        const abs = conv(np.abs(x).astype("float64"), np.abs(w).astype("float64"));
        expectWithin(jc(x, w), want, abs, k.kh * k.kw * k.c);
      }),
      { numRuns: 40 },
    );
  });

  it("jit(grad): both gradient convolutions, within the float32 dot bound", () => {
    fc.assert(
      fc.property(arbConv, ([k, x, w]) => {
        const conv = convOf(k);
        const y = conv(x, w);
        const g = np.cos(np.arange(y.size).reshape([...y.shape])); // a fixed cotangent, |g| ≤ 1
        const loss = (a: Tensor, b: Tensor) => np.sum(conv(a, b).mul(g.astype(a.dtype)));
        const [gx, gw] = jit(grad(loss, { argnums: [0, 1] }), { backend })(x, w) as [Tensor, Tensor];
        const [wx, ww] = grad(loss, { argnums: [0, 1] })(x.astype("float64"), w.astype("float64")) as [
          Tensor,
          Tensor,
        ];
        // Σ|·| bounds: the same gradients of the loss on |x|, |w|, |g| (linear in each argument).
        const absLoss = (a: Tensor, b: Tensor) => np.sum(conv(a, b).mul(np.abs(g).astype(a.dtype)));
        const [ax, aw] = grad(absLoss, { argnums: [0, 1] })(
          np.abs(x).astype("float64"),
          np.abs(w).astype("float64"),
        ) as [Tensor, Tensor];
        const outPixels = y.size / k.o;
        expectWithin(gx, wx, ax, k.kh * k.kw * k.o);
        expectWithin(gw, ww, aw, outPixels);
      }),
      { numRuns: 30 },
    );
  });
});

it("a CNN training step's convolutions all run on the wasm conv", () => {
  const x = np.ones([2, 6, 6, 1]).mul(0.5);
  const w1 = np.ones([3, 3, 1, 4]).mul(0.1);
  const conv = (v: Tensor, k: Tensor) =>
    lax.convGeneralDilated(v, k, {
      padding: "VALID",
      dimensionNumbers: convDimensionNumbers(v.shape, k.shape, ["NHWC", "HWIO", "NHWC"]),
    });
  const loss = (k: Tensor) => np.sum(np.tanh(conv(x, k)));
  const low = jit(grad(loss)).lower(w1);
  expect(low.escapes).not.toContain("conv_general_dilated");
  expect(low.plan.filter((l) => l.includes("on wasm:conv")).length).toBeGreaterThanOrEqual(1);
});
