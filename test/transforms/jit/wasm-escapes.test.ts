/**
 * The wasm backend's native escapes (src/transforms/jit/wasm-escapes.ts) against the reference
 * implementations: `reduce_window`, `select_and_scatter_add` and `rev` bit for bit (same order, same
 * tie and NaN rules, float64 sums rounded once), on random shapes, windows, strides, paddings and
 * dilations with many ties (±0, repeated values, ±∞, NaN); convolutions through each of the three
 * readings (forward, kernel gradient, input gradient) for random dimension numbers, within the
 * float32 dot bound |ŷ − y| ≤ 2(K + 1)·u·Σ|x||w| + 4u·|y| + (K + 1)·2^-149 (K terms per output);
 * `run` (Tensors) and `runPtr` (heap offsets) both. Declined cases fall back to the reference.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import type { JaxprEqn } from "../../../src/core/jaxpr.js";
import * as lax from "../../../src/core/lax.js";
import type { Primitive } from "../../../src/core/primitive.js";
import {
  type ConvParams,
  convDimensionNumbers,
  convGeneralDilated_p,
  rev_p,
} from "../../../src/core/primitives/conv.js";
import {
  type ReduceWindowParams,
  reduceWindow_p,
  type SelectParams,
  selectAndScatterAdd_p,
} from "../../../src/core/primitives/window.js";
import { Tensor } from "../../../src/core/tensor.js";
import { bind1 } from "../../../src/core/trace.js";
import { nn, numpy as np } from "../../../src/index.js";
import { grad, jit } from "../../../src/transforms/index.js";
import type { CompiledEscape } from "../../../src/transforms/jit/backend.js";
import { makeJaxprFlat } from "../../../src/transforms/staging.js";
import {
  type ConvReading,
  isLayoutNoop,
  permuteInto,
  planConv,
  wasmConvEscape,
} from "../../../src/transforms/jit/wasm-conv.js";
import { wasmEscape } from "../../../src/transforms/jit/wasm-escapes.js";
import { WasmBackend } from "../../../src/transforms/jit/wasm/backend.js";
import { planWindow, simdFits, windowsDisjoint } from "../../../src/transforms/jit/wasm/pool.js";

const U = 2 ** -24;
const TINY = 2 ** -149;

const be = new WasmBackend({ threads: 1 });
const be2 = (() => {
  try {
    return new WasmBackend({ threads: 2 });
  } catch {
    return be;
  }
})();
afterAll(() => {
  be.dispose();
  if (be2 !== be) be2.dispose();
});

const f32 = (shape: readonly number[], v: ArrayLike<number>) =>
  Tensor._fromBuffer(shape, "float32", Float32Array.from(v));

/** The single equation of `prim` on operands of these avals. */
function eqnOf<P>(prim: Primitive<P>, inputs: readonly Tensor[], params: P): JaxprEqn {
  const closed = makeJaxprFlat(
    (...ins) => [bind1(prim, ins, params)],
    inputs.map((t) => t.aval),
  );
  return closed.jaxpr.eqns[0]!;
}

/** Runs an escape through `runPtr`: operands staged in the heap, outputs prefilled with NaN. */
function viaPtr(
  backend: WasmBackend,
  esc: CompiledEscape,
  inputs: readonly Tensor[],
  outShape: readonly number[],
) {
  const heap = backend.heap;
  const size = outShape.reduce((a, b) => a * b, 1);
  const ptrs = inputs.map((t) => heap.alloc(4 * t.size));
  const out = heap.alloc(4 * size);
  try {
    const mem = heap.f32();
    inputs.forEach((t, i) => mem.set(t.data() as Float32Array, ptrs[i]! / 4));
    mem.fill(Number.NaN, out / 4, out / 4 + size);
    esc.runPtr!(ptrs, [out]);
    return heap.f32().slice(out / 4, out / 4 + size);
  } finally {
    heap.free(out);
    for (const p of ptrs) heap.free(p);
  }
}

/** Bitwise equality (NaN equal to NaN, +0 ≠ −0), reporting the first difference. */
function expectSameBits(got: ArrayLike<number>, want: ArrayLike<number>): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const a = got[i]!;
    const b = want[i]!;
    if (!(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)))) expect([i, a]).toEqual([i, b]);
  }
}

/** Values with many ties: small integers, both zeros, infinities and (optionally) NaN. */
const tieValue = (nan: boolean) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(0, -0, 1, -1, 2, 0.5) },
    { weight: 3, arbitrary: fc.float({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true }) },
    { weight: 1, arbitrary: fc.constantFrom(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY) },
    { weight: nan ? 1 : 0, arbitrary: fc.constant(Number.NaN) },
  );

interface WindowCase {
  shape: number[];
  geom: Omit<ReduceWindowParams, "op">;
}

/**
 * A shape of rank 1–5 with up to two windowed axes (window 0–3, stride 1–3, padding 0–2 each side,
 * window dilation 1–2). Half the cases end in 4 or 8 untouched channels (the SIMD layout).
 */
const arbWindowCase: fc.Arbitrary<WindowCase> = fc
  .record({
    rank: fc.integer({ min: 1, max: 5 }),
    channels: fc.constantFrom(0, 4, 8),
    dims: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 5, maxLength: 5 }),
    axes: fc.uniqueArray(fc.integer({ min: 0, max: 4 }), { maxLength: 2 }),
    win: fc.array(
      fc.record({
        k: fc.oneof(
          { weight: 9, arbitrary: fc.integer({ min: 1, max: 3 }) },
          { weight: 1, arbitrary: fc.constant(0) },
        ),
        s: fc.integer({ min: 1, max: 3 }),
        lo: fc.integer({ min: 0, max: 2 }),
        hi: fc.integer({ min: 0, max: 2 }),
        d: fc.integer({ min: 1, max: 2 }),
      }),
      { minLength: 5, maxLength: 5 },
    ),
  })
  .map(({ rank, channels, dims, axes, win }) => {
    const shape = dims.slice(0, rank);
    const last = rank - 1;
    if (channels > 0 && rank > 1) shape[last] = channels;
    const active = axes.filter((a) => a < rank && !(channels > 0 && rank > 1 && a === last));
    const ones = shape.map(() => 1);
    return {
      shape,
      geom: {
        windowDimensions: shape.map((_, d) => (active.includes(d) ? win[d]!.k : 1)),
        windowStrides: shape.map((_, d) => (active.includes(d) ? win[d]!.s : 1)),
        padding: shape.map((_, d): [number, number] =>
          active.includes(d) ? [win[d]!.lo, win[d]!.hi] : [0, 0],
        ),
        baseDilation: ones,
        windowDilation: shape.map((_, d) => win[d]!.d),
      },
    };
  });

const withValues = (nan: boolean) =>
  arbWindowCase.chain((c) => {
    const n = c.shape.reduce((a, b) => a * b, 1);
    return fc.tuple(fc.constant(c), fc.array(tieValue(nan), { minLength: n, maxLength: n }));
  });

describe("reduce_window on wasm:pool", () => {
  it("equals the reference bit for bit (sum, max, min; run and runPtr)", () => {
    let simd = 0;
    fc.assert(
      fc.property(
        withValues(true),
        fc.constantFrom("sum" as const, "max" as const, "min" as const),
        ([c, v], op) => {
          const x = f32(c.shape, v);
          const params = { ...c.geom, op };
          const want = bind1(reduceWindow_p, [x], params);
          const esc = wasmEscape(() => be, eqnOf(reduceWindow_p, [x], params));
          expect(esc?.ranOn).toBe("wasm:pool");
          expectSameBits(esc!.run([x])[0]!.data(), want.data());
          expectSameBits(viaPtr(be, esc!, [x], want.shape), want.data());
          if (simdFits(planWindow(c.shape, want.shape, c.geom)!)) simd++;
        },
      ),
      { numRuns: 300 },
    );
    expect(simd).toBeGreaterThan(20);
  });

  it("sums round once, like the reference's float64 accumulation (SIMD and JS paths)", () => {
    // 1 + 3·2^-26 + 3·2^-26 is 1 + 2^-23 when rounded once, 1 when rounded after each addition.
    const tiny = 3 * 2 ** -26;
    for (const channels of [1, 4]) {
      const shape = [1, 3, channels];
      const x = f32(shape, [...Array(channels).fill(1), ...Array(2 * channels).fill(tiny)]);
      const params: ReduceWindowParams = {
        op: "sum",
        windowDimensions: [1, 3, 1],
        windowStrides: [1, 1, 1],
        padding: [
          [0, 0],
          [0, 0],
          [0, 0],
        ],
        baseDilation: [1, 1, 1],
        windowDilation: [1, 1, 1],
      };
      expect(simdFits(planWindow(shape, [1, 1, channels], params)!)).toBe(channels === 4);
      const esc = wasmEscape(() => be, eqnOf(reduceWindow_p, [x], params))!;
      const want = bind1(reduceWindow_p, [x], params);
      expect(want.data()[0]).toBe(1 + 2 ** -23);
      expectSameBits(esc.run([x])[0]!.data(), want.data());
      expectSameBits(viaPtr(be, esc, [x], want.shape), want.data());
    }
  });

  it("2×2 max pooling of an NHWC batch, ties included, runs on the SIMD loop", () => {
    const shape = [2, 6, 6, 8];
    const v = Array.from({ length: 576 }, (_, i) => [0, -0, 1, 1, Number.NaN, -2][(i * 7) % 6]!);
    const x = f32(shape, v);
    const params = {
      op: "max" as const,
      windowDimensions: [1, 2, 2, 1],
      windowStrides: [1, 2, 2, 1],
      padding: [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ] as [number, number][],
      baseDilation: [1, 1, 1, 1],
      windowDilation: [1, 1, 1, 1],
    };
    expect(simdFits(planWindow(shape, [2, 3, 3, 8], params)!)).toBe(true);
    const esc = wasmEscape(() => be, eqnOf(reduceWindow_p, [x], params))!;
    expectSameBits(esc.run([x])[0]!.data(), bind1(reduceWindow_p, [x], params).data());
  });
});

describe("select_and_scatter_add on wasm:pool", () => {
  it("equals the reference bit for bit: first maximal (minimal) element, NaN rule, overlaps", () => {
    let simd = 0;
    let overlapping = 0;
    fc.assert(
      fc.property(
        withValues(true),
        fc.constantFrom("max" as const, "min" as const),
        fc.integer({ min: 1, max: 1000 }),
        ([c, v], select, seed) => {
          const x = f32(c.shape, v);
          const params: SelectParams = { ...c.geom, select };
          const outShape = bind1(reduceWindow_p, [x], { ...c.geom, op: select }).shape;
          const n = outShape.reduce((a, b) => a * b, 1);
          // Source values whose sums are inexact in float32, so the float64 accumulation shows,
          // and some −0 (the reference's 0 + (−0) is +0).
          const src = f32(
            outShape,
            Array.from({ length: n }, (_, i) =>
              i % 7 === 3 ? -0 : Math.sin(seed + i) * 2 ** ((i * 5) % 30),
            ),
          );
          const want = bind1(selectAndScatterAdd_p, [src, x], params);
          const esc = wasmEscape(() => be, eqnOf(selectAndScatterAdd_p, [src, x], params));
          expect(esc?.ranOn).toBe("wasm:pool");
          expectSameBits(esc!.run([src, x])[0]!.data(), want.data());
          expectSameBits(viaPtr(be, esc!, [src, x], x.shape), want.data());
          const g = planWindow(c.shape, outShape, c.geom)!;
          if (simdFits(g) && windowsDisjoint(g)) simd++;
          if (simdFits(g) && !windowsDisjoint(g)) overlapping++;
        },
      ),
      { numRuns: 300 },
    );
    expect(simd).toBeGreaterThan(10);
    expect(overlapping).toBeGreaterThan(10);
  });
});

describe("rev on wasm:rev", () => {
  it("equals the reference for any shape and axes (run and runPtr)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        (shape, flips) => {
          const dims = shape.map((_, d) => d).filter((d) => flips[d]);
          const x = f32(
            shape,
            Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i),
          );
          const params = { dimensions: dims };
          const want = bind1(rev_p, [x], params);
          const esc = wasmEscape(() => be, eqnOf(rev_p, [x], params))!;
          expectSameBits(esc.run([x])[0]!.data(), want.data());
          expectSameBits(viaPtr(be, esc, [x], shape), want.data());
        },
      ),
      { numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------------------------------------

interface ConvCase {
  lhsSpec: number[];
  rhsSpec: number[];
  outSpec: number[];
  n: number;
  c: number;
  o: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  strides: [number, number];
  dilation: [number, number];
  lhsDilation: [number, number];
  padding: [[number, number], [number, number]];
}

const arbPerm = fc.constantFrom(
  ...(() => {
    const out: number[][] = [];
    const build = (a: number[]) => {
      if (a.length === 4) out.push(a);
      else for (let i = 0; i < 4; i++) if (!a.includes(i)) build([...a, i]);
    };
    build([]);
    return out;
  })(),
);

const arbConvCase: fc.Arbitrary<ConvCase> = fc
  .record({
    lhsSpec: arbPerm,
    rhsSpec: arbPerm,
    outSpec: arbPerm,
    n: fc.integer({ min: 1, max: 3 }),
    c: fc.integer({ min: 1, max: 4 }),
    o: fc.integer({ min: 1, max: 5 }),
    h: fc.integer({ min: 1, max: 7 }),
    w: fc.integer({ min: 1, max: 7 }),
    kh: fc.integer({ min: 1, max: 3 }),
    kw: fc.integer({ min: 1, max: 3 }),
    strides: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
    dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
    lhsDilation: fc.oneof(
      { weight: 3, arbitrary: fc.constant<[number, number]>([1, 1]) },
      { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })) },
    ),
    padding: fc.tuple(
      fc.tuple(fc.integer({ min: -1, max: 3 }), fc.integer({ min: -1, max: 3 })),
      fc.tuple(fc.integer({ min: -1, max: 3 }), fc.integer({ min: -1, max: 3 })),
    ),
  })
  .filter((k) => {
    const dilated = (n: number, e: number) => (n - 1) * e + 1;
    const out = (n: number, k0: number, d: number, s: number, [lo, hi]: [number, number]) =>
      Math.floor((n + lo + hi - ((k0 - 1) * d + 1)) / s) + 1;
    const [h, w] = [dilated(k.h, k.lhsDilation[0]), dilated(k.w, k.lhsDilation[1])];
    return (
      h + k.padding[0][0] + k.padding[0][1] >= 0 &&
      w + k.padding[1][0] + k.padding[1][1] >= 0 &&
      out(h, k.kh, k.dilation[0], k.strides[0], k.padding[0]) >= 1 &&
      out(w, k.kw, k.dilation[1], k.strides[1], k.padding[1]) >= 1
    );
  });

/** Places role-ordered sizes [a, b, s0, s1] on the axes `spec` names. */
const placed = (spec: readonly number[], sizes: readonly number[]) => {
  const shape = new Array<number>(4);
  spec.forEach((axis, role) => {
    shape[axis] = sizes[role]!;
  });
  return shape;
};

function convTensors(k: ConvCase, seed: number) {
  const lShape = placed(k.lhsSpec, [k.n, k.c, k.h, k.w]);
  const rShape = placed(k.rhsSpec, [k.o, k.c, k.kh, k.kw]);
  const data = (shape: number[], s: number) =>
    f32(
      shape,
      Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(s * 7.1 + i * 1.3) * 2),
    );
  const params: ConvParams = {
    windowStrides: k.strides,
    padding: k.padding,
    lhsDilation: k.lhsDilation,
    rhsDilation: k.dilation,
    dimensionNumbers: { lhsSpec: k.lhsSpec, rhsSpec: k.rhsSpec, outSpec: k.outSpec },
    featureGroupCount: 1,
    batchGroupCount: 1,
    preferredElementType: null,
  };
  return { l: data(lShape, seed), r: data(rShape, seed + 1), params };
}

function expectConvWithin(got: ArrayLike<number>, want: Tensor, abs: Tensor, terms: number): void {
  const y = want.data();
  const a = abs.data();
  expect(got.length).toBe(y.length);
  for (let i = 0; i < y.length; i++) {
    const bound = 2 * (terms + 1) * U * a[i]! + 4 * U * Math.abs(y[i]!) + (terms + 1) * TINY;
    if (!(Math.abs(got[i]! - y[i]!) <= bound)) expect([i, got[i]]).toEqual([i, y[i]]);
  }
}

describe("layout copies of the conv escape", () => {
  it("permuteInto matches the index definition with flips; isLayoutNoop means an identical copy", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 4, maxLength: 4 }),
        arbPerm,
        fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 7 }),
        (shape, perm, flips, off) => {
          const n = shape.reduce((a, b) => a * b, 1);
          fc.pre(n <= 30_000);
          const flip = [0, 1, 2, 3].filter((d) => flips[d]);
          const src = Float32Array.from({ length: n + off }, (_, i) => i - off);
          const dst = new Float32Array(n + 3).fill(-1);
          permuteInto(src, off, shape, perm, flip, dst, 3);
          const st = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
          const out = perm.map((p) => shape[p]!);
          let k = 3;
          const idx = [0, 0, 0, 0];
          for (idx[0] = 0; idx[0] < out[0]!; idx[0]++)
            for (idx[1] = 0; idx[1] < out[1]!; idx[1]++)
              for (idx[2] = 0; idx[2] < out[2]!; idx[2]++)
                for (idx[3] = 0; idx[3] < out[3]!; idx[3]++, k++) {
                  let want = 0;
                  perm.forEach((p, t) => {
                    want += (flip.includes(p) ? shape[p]! - 1 - idx[t]! : idx[t]!) * st[p]!;
                  });
                  if (dst[k] !== want) expect([k, dst[k]]).toEqual([k, want]);
                }
          expect([dst[0], dst[1], dst[2]]).toEqual([-1, -1, -1]);
          if (isLayoutNoop(shape, perm, flip)) expectSameBits(dst.subarray(3), src.subarray(off));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("convolutions on wasm:conv, every reading", () => {
  const readings: ConvReading[] = ["forward", "kernelGrad", "inputGrad"];
  it("forward, kernel-gradient and input-gradient readings of random convolutions, run and runPtr", () => {
    const seen = new Set<string>();
    let dilatedLhs = 0;
    fc.assert(
      fc.property(arbConvCase, fc.integer({ min: 0, max: 1000 }), fc.boolean(), (k, seed, two) => {
        const backend = two ? be2 : be;
        const { l, r, params } = convTensors(k, seed);
        const eqn = eqnOf(convGeneralDilated_p, [l, r], params);
        const want = bind1(convGeneralDilated_p, [l.astype("float64"), r.astype("float64")], params);
        const abs = bind1(
          convGeneralDilated_p,
          [np.abs(l).astype("float64"), np.abs(r).astype("float64")],
          params,
        );
        for (const reading of readings) {
          const esc = wasmConvEscape(() => backend, eqn, { reading });
          // The input-gradient reading needs unit window strides; the others no input dilation.
          const applies =
            reading === "inputGrad"
              ? k.strides[0] === 1 && k.strides[1] === 1
              : k.lhsDilation[0] === 1 && k.lhsDilation[1] === 1;
          if (!applies) {
            expect(esc).toBeNull();
            continue;
          }
          expect(esc).not.toBeNull();
          seen.add(reading);
          if (k.lhsDilation[0] * k.lhsDilation[1] > 1) dilatedLhs++;
          const terms = k.c * k.kh * k.kw;
          expectConvWithin(esc!.run([l, r])[0]!.data(), want, abs, terms);
          expectConvWithin(viaPtr(backend, esc!, [l, r], want.shape), want, abs, terms);
        }
      }),
      // Seeded: the coverage counts below depend on the draws (about 1 case in 8 is input-dilated).
      { numRuns: 80, seed: 20261201 },
    );
    expect([...seen].sort()).toEqual(["forward", "inputGrad", "kernelGrad"]);
    expect(dilatedLhs).toBeGreaterThan(3); // strided convolutions' input gradients
  });

  it("a training step's gradient convolutions (NHWC × HWIO) copy no large operand", () => {
    const x = f32([4, 9, 9, 3], new Float32Array(4 * 81 * 3));
    const k1 = f32([3, 3, 3, 5], new Float32Array(135));
    const k2 = f32([3, 3, 5, 6], new Float32Array(270));
    const conv = (v: Tensor, w: Tensor, s: number) =>
      lax.convGeneralDilated(v, w, {
        windowStrides: [s, s],
        padding: "VALID",
        dimensionNumbers: convDimensionNumbers(v.shape, w.shape, ["NHWC", "HWIO", "NHWC"]),
      });
    const loss = (a: Tensor, b: Tensor) => np.sum(np.tanh(conv(np.tanh(conv(x, a, 1)), b, 1)));
    const closed = makeJaxprFlat(
      (a, b) => grad(loss, { argnums: [0, 1] })(a!, b!) as Tensor[],
      [k1.aval, k2.aval],
    );
    const convs = closed.jaxpr.eqns.filter((e) => e.prim.name === "conv_general_dilated");
    expect(convs.length).toBe(5); // two forward, two kernel gradients, one input gradient
    const readings = convs.map((e) => {
      const [ls, rs] = e.inputs.map((a) => a.aval.shape);
      const plan = planConv(e.params as ConvParams, ls!, rs!, e.outBinders[0]!.aval.shape)!;
      // Only the small kernel may be copied (the input gradient reads the flipped kernel back).
      expect(plan.copied).toBeLessThanOrEqual(270);
      return plan.reading;
    });
    expect(readings.sort()).toEqual(["forward", "forward", "inputGrad", "kernelGrad", "kernelGrad"]);
  });
});

describe("declined equations run on the reference", () => {
  it("float64, grouped, input-dilated strided convolutions; base-dilated, 3-axis, float64 windows", () => {
    const l = f32(
      [1, 4, 4, 2],
      Array.from({ length: 32 }, (_, i) => i / 8),
    );
    const r = f32(
      [2, 2, 2, 2],
      Array.from({ length: 16 }, (_, i) => i / 4 - 2),
    );
    const base: ConvParams = {
      windowStrides: [1, 1],
      padding: [
        [0, 0],
        [0, 0],
      ],
      lhsDilation: [1, 1],
      rhsDilation: [1, 1],
      dimensionNumbers: convDimensionNumbers(l.shape, r.shape, ["NHWC", "HWIO", "NHWC"]),
      featureGroupCount: 1,
      batchGroupCount: 1,
      preferredElementType: null,
    };
    expect(wasmEscape(() => be, eqnOf(convGeneralDilated_p, [l, r], base))).not.toBeNull();
    const r1 = f32(
      [2, 2, 1, 2],
      Array.from({ length: 8 }, (_, i) => i),
    );
    const declined: [Tensor[], ConvParams][] = [
      [[l.astype("float64"), r.astype("float64")], base],
      [[l, r1], { ...base, featureGroupCount: 2 }],
      [[l, r], { ...base, lhsDilation: [2, 1], windowStrides: [2, 1] }],
    ];
    for (const [ins, p] of declined) {
      expect(wasmEscape(() => be, eqnOf(convGeneralDilated_p, ins, p))).toBeNull();
      const f = (a: Tensor, b: Tensor) => bind1(convGeneralDilated_p, [a, b], p);
      const low = jit(f, { backend: "wasm" }).lower(ins[0]!, ins[1]!);
      expect(low.escapes).toContain("conv_general_dilated");
      expect(jit(f, { backend: "wasm" })(ins[0]!, ins[1]!).data()).toEqual(f(ins[0]!, ins[1]!).data());
    }
    const x = f32(
      [2, 4, 4, 3],
      Array.from({ length: 96 }, (_, i) => Math.cos(i)),
    );
    const geom = (over: Partial<ReduceWindowParams>): ReduceWindowParams => ({
      op: "max",
      windowDimensions: [1, 2, 2, 1],
      windowStrides: [1, 1, 1, 1],
      padding: [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ],
      baseDilation: [1, 1, 1, 1],
      windowDilation: [1, 1, 1, 1],
      ...over,
    });
    const windows: [Tensor, ReduceWindowParams][] = [
      [x, geom({ baseDilation: [1, 2, 1, 1] })],
      [x, geom({ windowDimensions: [2, 2, 2, 1] })],
      [x.astype("float64"), geom({})],
    ];
    for (const [t, p] of windows) {
      expect(wasmEscape(() => be, eqnOf(reduceWindow_p, [t], p))).toBeNull();
      const f = (a: Tensor) => bind1(reduceWindow_p, [a], p);
      expect(jit(f, { backend: "wasm" }).lower(t).escapes).toContain("reduce_window");
      expect(jit(f, { backend: "wasm" })(t).data()).toEqual(f(t).data());
    }
  });
});

describe("a CNN's jitted loss gradient on the wasm backend", () => {
  it("runs every conv, pool, pool gradient and flip natively and matches the float64 reference", () => {
    const B = 4;
    const rnd = (shape: number[], seed: number, scale: number) =>
      f32(
        shape,
        Array.from(
          { length: shape.reduce((a, b) => a * b, 1) },
          (_, i) => Math.sin(seed * 13.7 + i * 0.917) * scale,
        ),
      );
    const params = {
      k1: rnd([3, 3, 1, 4], 1, 0.5),
      k2: rnd([3, 3, 4, 8], 2, 0.3),
      w: rnd([3 * 3 * 8, 10], 3, 0.2),
    };
    const x = rnd([B, 10, 10, 1], 4, 1);
    const y = Tensor._fromBuffer([B], "int32", Int32Array.from([3, 1, 4, 1]));
    const conv = (v: Tensor, k: Tensor) =>
      lax.convGeneralDilated(v, k, {
        padding: "VALID",
        dimensionNumbers: convDimensionNumbers(v.shape, k.shape, ["NHWC", "HWIO", "NHWC"]),
      });
    const loss = (p: typeof params, xs: Tensor, ys: Tensor) => {
      const h1 = nn.relu(conv(xs, p.k1));
      const h2 = nn.relu(conv(h1, p.k2));
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
      const logits = np.matmul(pooled.reshape([B, -1]), p.w);
      return np.mean(np.sum(nn.oneHot(ys, 10).mul(nn.logSoftmax(logits)), -1)).neg();
    };
    const g = grad(loss);
    const jg = jit(g, { backend: "wasm" });
    const low = jg.lower(params, x, y);
    for (const prim of ["conv_general_dilated", "reduce_window", "select_and_scatter_add", "rev"])
      expect(low.escapes).not.toContain(prim);
    const got = jg(params, x, y) as typeof params;
    const to64 = (t: Tensor) => t.astype("float64");
    const want = g(
      { k1: to64(params.k1), k2: to64(params.k2), w: to64(params.w) },
      to64(x),
      y,
    ) as typeof params;
    // First-order float32 bound: every layer's sums (longest: the conv1 kernel gradient over
    // B·8·8 positions) add relative errors of (K + 1)·u; their sum over the network, doubled for
    // the backward pass, times each gradient's largest entry. The seeded inputs have no near ties
    // in ReLU or the pooling, so no selection flips.
    const K = 9 + 36 + 72 + B * 8 * 8 + B * 6 * 6 + 10;
    for (const key of ["k1", "k2", "w"] as const) {
      const a = got[key].data();
      const b = want[key].data();
      let m = 0;
      for (const v of b) m = Math.max(m, Math.abs(v));
      const tol = 4 * (K + 1) * U * m;
      for (let i = 0; i < b.length; i++)
        if (!(Math.abs(a[i]! - b[i]!) <= tol)) expect([key, i, a[i]]).toEqual([key, i, b[i]]);
    }
  });
});
