import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, DTypeError, ShapeError } from "../../src/core/errors.js";
import { UndefPrimal, Zero } from "../../src/core/primitive.js";
import {
  type ConvParams,
  convDimensionNumbers,
  convGeneralDilated,
  convGeneralDilated_p,
  padtypeToPads,
  rev_p,
} from "../../src/core/primitives/conv.js";
import { mul } from "../../src/core/primitives/elementwise.js";
import { reduceSum } from "../../src/core/primitives/reduce.js";
import { moveaxis } from "../../src/core/primitives/structural.js";
import {
  type ReduceWindowParams,
  reduceWindow,
  reduceWindow_p,
  type SelectParams,
  selectAndGatherAdd_p,
  selectAndScatterAdd_p,
} from "../../src/core/primitives/window.js";
import { Tensor } from "../../src/core/tensor.js";
import { grad, jvp, vjp, vmap } from "../../src/transforms/index.js";

// ---------------------------------------------------------------------------------------------
// Helpers.

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

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

function randn(shape: readonly number[], seed: number, dtype: "float64" | "float32" = "float64"): Tensor {
  const r = rng(seed);
  const vals = Array.from({ length: prod(shape) }, () => r() * 2 - 1);
  return Tensor._fromBuffer(
    [...shape],
    dtype,
    dtype === "float64" ? Float64Array.from(vals) : Float32Array.from(vals),
  );
}

const data = (t: Tensor) => Array.from(t.data() as ArrayLike<number>);
const vdot = (a: Tensor, b: Tensor) => {
  const x = data(a);
  const y = data(b);
  return x.reduce((s, v, i) => s + v * y[i]!, 0);
};
const sumAbs = (a: Tensor) => data(a).reduce((s, v) => s + Math.abs(v), 0);
const f64 = (shape: readonly number[], values: number[]) =>
  Tensor._fromBuffer([...shape], "float64", Float64Array.from(values));

function expectClose(actual: Tensor, expected: number[], shape: readonly number[], tol: number) {
  expect([...actual.shape]).toEqual([...shape]);
  const a = data(actual);
  expect(a.length).toBe(expected.length);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(expected[i]!)) expect(a[i]).toBe(expected[i]);
    else expect(Math.abs(a[i]! - expected[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(expected[i]!)));
  }
}

/** A dense n-d array for the oracles. */
interface Nd {
  shape: number[];
  v: number[];
}
function idxOf(shape: readonly number[], k: number): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = k % shape[d]!;
    k = Math.floor(k / shape[d]!);
  }
  return idx;
}
const flat = (shape: readonly number[], idx: readonly number[]) =>
  idx.reduce((a, i, d) => a * shape[d]! + i, 0);

/** Reorders axes: result axis k is input axis perm[k]. */
function permute(a: Nd, perm: readonly number[]): Nd {
  const shape = perm.map((p) => a.shape[p]!);
  const v = new Array<number>(a.v.length);
  for (let k = 0; k < v.length; k++) {
    const idx = idxOf(shape, k);
    const src = new Array<number>(a.shape.length);
    perm.forEach((p, j) => {
      src[p] = idx[j]!;
    });
    v[k] = a.v[flat(a.shape, src)]!;
  }
  return { shape, v };
}

/** Inserts `f - 1` fill values between elements along each axis (factor 1 leaves it alone). */
function dilate(a: Nd, factors: readonly number[], fill: number): Nd {
  const shape = a.shape.map((n, d) => (n === 0 ? 0 : (n - 1) * factors[d]! + 1));
  const v = new Array<number>(prod(shape)).fill(fill);
  for (let k = 0; k < a.v.length; k++) {
    const idx = idxOf(a.shape, k).map((i, d) => i * factors[d]!);
    v[flat(shape, idx)] = a.v[k]!;
  }
  return { shape, v };
}

/** Pads (negative values crop) each axis by [lo, hi] with `fill`. */
function padNd(a: Nd, pads: readonly (readonly [number, number])[], fill: number): Nd {
  const shape = a.shape.map((n, d) => n + pads[d]![0] + pads[d]![1]);
  const v = new Array<number>(prod(shape)).fill(fill);
  for (let k = 0; k < v.length; k++) {
    const idx = idxOf(shape, k).map((i, d) => i - pads[d]![0]);
    if (idx.every((i, d) => i >= 0 && i < a.shape[d]!)) v[k] = a.v[flat(a.shape, idx)]!;
  }
  return { shape, v };
}

const nd = (t: Tensor): Nd => ({ shape: [...t.shape], v: data(t) });
const inverse = (perm: readonly number[]) => {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return inv;
};

// ---------------------------------------------------------------------------------------------
// Convolution oracle: materialise the dilated, padded input and the dilated kernel, then a plain
// strided cross-correlation with explicit group bookkeeping, all in canonical NC... layout.

function convOracle(lhs: Tensor, rhs: Tensor, p: ConvParams): Nd {
  const { lhsSpec, rhsSpec, outSpec } = p.dimensionNumbers;
  const ns = lhs.ndim - 2;
  const x = permute(nd(lhs), lhsSpec);
  const w = permute(nd(rhs), rhsSpec);
  const xp = padNd(dilate(x, [1, 1, ...p.lhsDilation], 0), [[0, 0], [0, 0], ...p.padding], 0);
  const wd = dilate(w, [1, 1, ...p.rhsDilation], 0);
  const N = x.shape[0]!;
  const [O, I] = w.shape as [number, number];
  const G = p.featureGroupCount;
  const BG = p.batchGroupCount;
  const inSp = xp.shape.slice(2);
  const kSp = wd.shape.slice(2);
  const outSp = inSp.map((n, d) => (n >= kSp[d]! ? Math.floor((n - kSp[d]!) / p.windowStrides[d]!) + 1 : 0));
  const outShape = [N / BG, O, ...outSp];
  const v = new Array<number>(prod(outShape)).fill(0);
  for (let k = 0; k < v.length; k++) {
    const [n, o, ...pos] = idxOf(outShape, k) as [number, number, ...number[]];
    const g = Math.floor(o / (O / G));
    const bg = Math.floor(o / (O / BG));
    const nIn = bg * (N / BG) + n;
    let acc = 0;
    for (let c = 0; c < I; c++) {
      for (let kk = 0; kk < prod(kSp); kk++) {
        const kIdx = idxOf(kSp, kk);
        const xIdx = [nIn, g * I + c, ...pos.map((q, d) => q * p.windowStrides[d]! + kIdx[d]!)];
        acc += xp.v[flat(xp.shape, xIdx)]! * wd.v[flat(wd.shape, [o, c, ...kIdx])]!;
      }
    }
    v[k] = acc;
  }
  expect(ns).toBe(outSp.length);
  return permute({ shape: outShape, v }, inverse(outSpec));
}

interface ConvProblem {
  lhsShape: number[];
  rhsShape: number[];
  params: ConvParams;
  seed: number;
  terms: number;
}

function shuffle(n: number, r: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

const small = (min: number, max: number) => fc.integer({ min, max });
const convArb = (opts: { groups?: boolean; negativePad?: boolean } = {}): fc.Arbitrary<ConvProblem> =>
  fc
    .record({
      ns: small(1, 2),
      n0: small(0, 2),
      cg: small(1, 2),
      og: small(1, 2),
      groups:
        opts.groups === false
          ? fc.constant<[number, number]>([1, 1])
          : fc.constantFrom<[number, number]>([1, 1], [2, 1], [3, 1], [1, 2]),
      spatial: fc.array(
        fc.record({
          n: small(0, 5),
          k: small(1, 3),
          s: small(1, 2),
          ld: small(1, 2),
          rd: small(1, 2),
          lo: small(opts.negativePad === false ? 0 : -1, 2),
          hi: small(opts.negativePad === false ? 0 : -1, 2),
        }),
        { minLength: 2, maxLength: 2 },
      ),
      seed: fc.integer({ min: 0, max: 1e9 }),
    })
    .map(({ ns, n0, cg, og, groups: [G, BG], spatial, seed }) => {
      const r = rng(seed + 3);
      const sp = spatial.slice(0, ns).map((s) => {
        const inD = s.n === 0 ? 0 : (s.n - 1) * s.ld + 1;
        // Negative padding may crop at most the whole (dilated) input.
        return inD + s.lo + s.hi < 0 ? { ...s, lo: 0, hi: 0 } : s;
      });
      const lhsSpec = shuffle(ns + 2, r);
      const rhsSpec = shuffle(ns + 2, r);
      const outSpec = shuffle(ns + 2, r);
      const canonL = [n0 * BG, cg * G, ...sp.map((s) => s.n)];
      const canonR = [og * G * BG, cg, ...sp.map((s) => s.k)];
      const lhsShape = new Array<number>(ns + 2);
      const rhsShape = new Array<number>(ns + 2);
      lhsSpec.forEach((d, k) => {
        lhsShape[d] = canonL[k]!;
      });
      rhsSpec.forEach((d, k) => {
        rhsShape[d] = canonR[k]!;
      });
      return {
        lhsShape,
        rhsShape,
        params: {
          windowStrides: sp.map((s) => s.s),
          padding: sp.map((s) => [s.lo, s.hi] as [number, number]),
          lhsDilation: sp.map((s) => s.ld),
          rhsDilation: sp.map((s) => s.rd),
          dimensionNumbers: { lhsSpec, rhsSpec, outSpec },
          featureGroupCount: G,
          batchGroupCount: BG,
          preferredElementType: null,
        },
        seed,
        terms: cg * prod(sp.map((s) => s.k)) + 1,
      };
    });

const conv = (l: Tensor, r: Tensor, p: ConvParams) => convGeneralDilated(l, r, { ...p });

// ---------------------------------------------------------------------------------------------

describe("conv_general_dilated", () => {
  it("matches a float64 oracle (1-D and 2-D, any layout, strides, padding, dilations, groups)", () => {
    fc.assert(
      fc.property(convArb(), (p) => {
        const l = randn(p.lhsShape, p.seed);
        const r = randn(p.rhsShape, p.seed + 1);
        const e = convOracle(l, r, p.params);
        expectClose(conv(l, r, p.params), e.v, e.shape, 1e-14 * p.terms);
      }),
      { numRuns: 100 },
    );
  });

  it("float32 output rounds a float64 sum", () => {
    fc.assert(
      fc.property(convArb(), (p) => {
        const l = randn(p.lhsShape, p.seed, "float32");
        const r = randn(p.rhsShape, p.seed + 1, "float32");
        const y = conv(l, r, p.params);
        expect(y.dtype).toBe("float32");
        const e = convOracle(l, r, p.params);
        expectClose(y, e.v, e.shape, 2 ** -23 * p.terms);
      }),
      { numRuns: 30 },
    );
  });

  it("NHWC / HWIO with SAME padding, via convDimensionNumbers and padtypeToPads", () => {
    const x = randn([2, 5, 4, 3], 1);
    const w = randn([3, 2, 3, 4], 2);
    const dn = convDimensionNumbers(x.shape, w.shape, ["NHWC", "HWIO", "NHWC"]);
    expect(dn).toEqual({ lhsSpec: [0, 3, 1, 2], rhsSpec: [3, 2, 0, 1], outSpec: [0, 3, 1, 2] });
    const y = convGeneralDilated(x, w, { windowStrides: [2, 1], padding: "SAME", dimensionNumbers: dn });
    expect([...y.shape]).toEqual([2, 3, 4, 4]);
    const pads = padtypeToPads([5, 4], [3, 2], [2, 1], "SAME");
    expect(pads).toEqual([
      [1, 1],
      [0, 1],
    ]);
    const e = convOracle(x, w, {
      windowStrides: [2, 1],
      padding: pads,
      lhsDilation: [1, 1],
      rhsDilation: [1, 1],
      dimensionNumbers: dn,
      featureGroupCount: 1,
      batchGroupCount: 1,
      preferredElementType: null,
    });
    expectClose(y, e.v, e.shape, 1e-13);
    expect(padtypeToPads([4], [3], [2], "SAME_LOWER")).toEqual([[1, 0]]);
    expect(padtypeToPads([4], [3], [2], "VALID")).toEqual([[0, 0]]);
    expect(convDimensionNumbers([1, 3, 8], [4, 3, 2], ["NCH", "OIH", "NCH"])).toEqual({
      lhsSpec: [0, 1, 2],
      rhsSpec: [0, 1, 2],
      outSpec: [0, 1, 2],
    });
  });

  it("transpose rules satisfy <ct, f(x)> = <f^T ct, x> for lhs and rhs", () => {
    fc.assert(
      fc.property(convArb(), (p) => {
        const l = randn(p.lhsShape, p.seed);
        const r = randn(p.rhsShape, p.seed + 1);
        const y = conv(l, r, p.params);
        const ct = randn(y.shape, p.seed + 2);
        const [lBar] = convGeneralDilated_p.transpose!([ct], [new UndefPrimal(l.aval), r], p.params);
        const [, rBar] = convGeneralDilated_p.transpose!([ct], [l, new UndefPrimal(r.aval)], p.params);
        const tol = 1e-13 * (sumAbs(ct) + 1) * p.terms;
        expect([...(lBar as Tensor).shape]).toEqual(p.lhsShape);
        expect(Math.abs(vdot(ct, y) - vdot(lBar as Tensor, l))).toBeLessThanOrEqual(tol);
        if (rBar instanceof Zero) expect(y.size).toBe(0);
        else {
          expect([...rBar!.shape]).toEqual(p.rhsShape);
          expect(Math.abs(vdot(ct, y) - vdot(rBar!, r))).toBeLessThanOrEqual(tol);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("batch rule matches a per-example loop (lhs, rhs or both mapped)", () => {
    fc.assert(
      fc.property(
        convArb(),
        small(1, 3),
        fc.constantFrom("lhs", "rhs", "both"),
        fc.nat(),
        fc.nat(),
        (p, n, which, la, ra) => {
          const lb = which === "rhs" ? null : la % (p.lhsShape.length + 1);
          const rb = which === "lhs" ? null : ra % (p.rhsShape.length + 1);
          const lOf = (i: number) => randn(p.lhsShape, p.seed + 100 * i);
          const rOf = (i: number) => randn(p.rhsShape, p.seed + 100 * i + 1);
          const stack = (f: (i: number) => Tensor, axis: number | null, shape: number[]) =>
            axis === null
              ? f(0)
              : moveaxis(f64([n, ...shape], Array.from({ length: n }, (_, i) => data(f(i))).flat()), 0, axis);
          const [[out], [od]] = convGeneralDilated_p.batch(
            [stack(lOf, lb, p.lhsShape), stack(rOf, rb, p.rhsShape)],
            [lb, rb],
            p.params,
            n,
          );
          const outs = moveaxis(out!, od!, 0);
          const all = data(outs);
          const chunk = all.length / n;
          for (let i = 0; i < n; i++) {
            const e = convOracle(lb === null ? lOf(0) : lOf(i), rb === null ? rOf(0) : rOf(i), p.params);
            expectClose(
              f64(outs.shape.slice(1), all.slice(i * chunk, (i + 1) * chunk)),
              e.v,
              e.shape,
              1e-14 * p.terms,
            );
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it("jvp matches central finite differences; vjp agrees with jvp; vmap agrees with a loop", () => {
    fc.assert(
      fc.property(convArb(), small(1, 2), (p, n) => {
        const l = randn(p.lhsShape, p.seed);
        const r = randn(p.rhsShape, p.seed + 1);
        const tl = randn(p.lhsShape, p.seed + 2);
        const tr = randn(p.rhsShape, p.seed + 3);
        const f = (a: Tensor, b: Tensor) => conv(a, b, p.params);
        const [y, dy] = jvp(f, [l, r], [tl, tr]) as [Tensor, Tensor];
        const h = 1e-3;
        const shift = (x: Tensor, t: Tensor, s: number) =>
          f64(
            x.shape,
            data(x).map((v, i) => v + s * data(t)[i]!),
          );
        const plus = data(f(shift(l, tl, h), shift(r, tr, h)));
        const minus = data(f(shift(l, tl, -h), shift(r, tr, -h)));
        expectClose(
          dy,
          plus.map((v, i) => (v - minus[i]!) / (2 * h)),
          y.shape,
          1e-9 * p.terms,
        );
        const v = randn(y.shape, p.seed + 4);
        const [, back] = vjp(f, l, r);
        const [gl, gr] = back(v) as Tensor[];
        expect(Math.abs(vdot(v, dy) - vdot(gl!, tl) - vdot(gr!, tr))).toBeLessThanOrEqual(
          1e-12 * (sumAbs(v) + 1) * p.terms,
        );
        const ls = Array.from({ length: n }, (_, i) => randn(p.lhsShape, p.seed + 10 * i));
        const ys = vmap((a: Tensor) => f(a, r))(f64([n, ...p.lhsShape], ls.flatMap(data))) as Tensor;
        const es = ls.map((a) => convOracle(a, r, p.params));
        expectClose(
          ys,
          es.flatMap((e) => e.v),
          [n, ...es[0]!.shape],
          1e-14 * p.terms,
        );
      }),
      { numRuns: 40 },
    );
  });

  it("rev reverses and is its own transpose", () => {
    const x = f64([2, 3], [1, 2, 3, 4, 5, 6]);
    const y = rev_p.impl([x], { dimensions: [1] }, [x.aval])[0]!;
    expect(y.toArray()).toEqual([
      [3, 2, 1],
      [6, 5, 4],
    ]);
    const z = rev_p.impl([x], { dimensions: [0, 1] }, [x.aval])[0]!;
    expect(data(z)).toEqual([6, 5, 4, 3, 2, 1]);
  });

  it("errors name the primitive and the shapes", () => {
    const x = randn([1, 4, 5], 1);
    expect(() => convGeneralDilated(x, randn([2, 3, 2], 2))).toThrow(ShapeError);
    expect(() => convGeneralDilated(x, randn([2, 3, 2], 2))).toThrow(
      /conv_general_dilated: lhs feature size 4 must equal rhs input feature size 3 .*\[1,4,5\].*\[2,3,2\]/,
    );
    expect(() => convGeneralDilated(x, randn([3, 2, 2], 2), { featureGroupCount: 2 })).toThrow(
      /multiple of featureGroupCount 2/,
    );
    expect(() => convGeneralDilated(x, randn([2, 4, 2], 2), { windowStrides: [1, 1] })).toThrow(
      /windowStrides \[1,1\] must hold 1 positive/,
    );
    expect(() => convGeneralDilated(x, randn([2, 4, 2], 2, "float32"))).toThrow(DTypeError);
    expect(() =>
      convGeneralDilated(x, randn([2, 4, 2], 2), { featureGroupCount: 2, batchGroupCount: 2 }),
    ).toThrow(ConfigError);
    expect(() => convDimensionNumbers([1, 2, 3], [1, 2, 3], ["NCH", "OIW", "NCH"])).toThrow(
      /conv_dimension_numbers/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// reduce_window and the select primitives.

interface WindowProblem {
  shape: number[];
  params: ReduceWindowParams;
  seed: number;
}

const windowArb = (opts: { op?: "sum" | "max" | "min"; plain?: boolean } = {}): fc.Arbitrary<WindowProblem> =>
  fc
    .record({
      dims: fc.array(
        fc.record({
          n: small(0, 5),
          k: small(1, 3),
          s: small(1, 2),
          bd: small(1, 2),
          wd: small(1, 2),
          lo: small(-1, 2),
          hi: small(-1, 2),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      op: opts.op ? fc.constant(opts.op) : fc.constantFrom("sum" as const, "max" as const, "min" as const),
      seed: fc.integer({ min: 0, max: 1e9 }),
    })
    .map(({ dims, op, seed }) => {
      const ds = dims.map((d) => {
        const e = opts.plain ? { ...d, bd: 1, lo: 0, hi: 0, n: Math.max(d.n, 1) } : d;
        const inD = e.n === 0 ? 0 : (e.n - 1) * e.bd + 1;
        return inD + e.lo + e.hi < 0 ? { ...e, lo: 0, hi: 0 } : e;
      });
      return {
        shape: ds.map((d) => d.n),
        params: {
          op,
          windowDimensions: ds.map((d) => d.k),
          windowStrides: ds.map((d) => d.s),
          padding: ds.map((d) => [d.lo, d.hi] as [number, number]),
          baseDilation: ds.map((d) => d.bd),
          windowDilation: ds.map((d) => d.wd),
        },
        seed,
      };
    });

/** Oracle: materialise the base-dilated, padded operand (holes and padding hold the identity). */
function windowOracle(x: Tensor, p: ReduceWindowParams): Nd {
  const init = p.op === "sum" ? 0 : p.op === "max" ? -Infinity : Infinity;
  const xp = padNd(dilate(nd(x), p.baseDilation, init), p.padding, init);
  const wSp = p.windowDimensions.map((k, d) => (k - 1) * p.windowDilation[d]! + 1);
  const outShape = xp.shape.map((n, d) =>
    n >= wSp[d]! ? Math.floor((n - wSp[d]!) / p.windowStrides[d]!) + 1 : 0,
  );
  const v = new Array<number>(prod(outShape));
  for (let k = 0; k < v.length; k++) {
    const o = idxOf(outShape, k);
    let acc = init;
    for (let w = 0; w < prod(p.windowDimensions); w++) {
      const wi = idxOf(p.windowDimensions, w);
      const val =
        xp.v[
          flat(
            xp.shape,
            o.map((q, d) => q * p.windowStrides[d]! + wi[d]! * p.windowDilation[d]!),
          )
        ]!;
      acc = p.op === "sum" ? acc + val : p.op === "max" ? Math.max(acc, val) : Math.min(acc, val);
    }
    v[k] = acc;
  }
  return { shape: outShape, v };
}

const selectParams = (p: ReduceWindowParams): SelectParams => {
  const { op, ...geom } = p;
  return { ...geom, select: op === "min" ? "min" : "max" };
};
const rwTerms = (p: ReduceWindowParams) => prod(p.windowDimensions) + 1;

describe("reduce_window", () => {
  it("matches a float64 oracle (strides, padding, base and window dilation)", () => {
    fc.assert(
      fc.property(windowArb(), (p) => {
        const x = randn(p.shape, p.seed);
        const e = windowOracle(x, p.params);
        const { op, windowDimensions, windowStrides, padding, baseDilation, windowDilation } = p.params;
        const y = reduceWindow(x, op, windowDimensions, windowStrides, padding, {
          baseDilation,
          windowDilation,
        });
        expectClose(y, e.v, e.shape, 1e-15 * rwTerms(p.params));
      }),
      { numRuns: 100 },
    );
  });

  it("int32 max pooling is exact", () => {
    const x = Tensor._fromBuffer(
      [1, 4, 4, 1],
      "int32",
      Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 11),
    );
    const y = reduceWindow(
      x,
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
    expect(y.dtype).toBe("int32");
    expect(data(y)).toEqual([7, 10, 8, 10]);
  });

  it("max pooling propagates NaN, and its tangent is taken at the NaN", () => {
    const x = f64([4], [1, Number.NaN, 3, 2]);
    const t = f64([4], [10, 20, 30, 40]);
    const f = (a: Tensor) => reduceWindow(a, "max", [2], [2], [[0, 0]]);
    const [y, dy] = jvp(f, [x], [t]) as [Tensor, Tensor];
    expect(data(y)).toEqual([Number.NaN, 3]);
    expect(data(dy)).toEqual([20, 30]);
  });

  it("second order: jvp of grad through max pooling is 2·Pᵀ P t (P the window selection)", () => {
    fc.assert(
      fc.property(windowArb({ plain: true, op: "max" }), (p) => {
        const x = randn(p.shape, p.seed);
        const t = randn(p.shape, p.seed + 1);
        const { windowDimensions, windowStrides, padding, baseDilation, windowDilation } = p.params;
        const pool = (a: Tensor) =>
          reduceWindow(a, "max", windowDimensions, windowStrides, padding, { baseDilation, windowDilation });
        const f = (a: Tensor) => {
          const y = pool(a);
          return reduceSum(
            mul(y, y),
            y.shape.map((_, i) => i),
          );
        };
        const [, hv] = jvp(grad(f), [x], [t]) as [Tensor, Tensor];
        const sp = selectParams(p.params);
        const gathered = selectAndGatherAdd_p.impl(
          [t, x],
          sp,
          selectAndGatherAdd_p.abstractEval([t.aval, x.aval], sp),
        )[0]!;
        const expected = data(selectAndScatterAdd_p.impl([gathered, x], sp, [x.aval])[0]!).map((v) => 2 * v);
        expectClose(hv, expected, p.shape, 1e-14 * rwTerms(p.params));
      }),
      { numRuns: 30 },
    );
  });

  it("sum transpose satisfies <ct, f(x)> = <f^T ct, x>", () => {
    fc.assert(
      fc.property(windowArb({ op: "sum" }), (p) => {
        const x = randn(p.shape, p.seed);
        const y = reduceWindow_p.impl([x], p.params, reduceWindow_p.abstractEval([x.aval], p.params))[0]!;
        const ct = randn(y.shape, p.seed + 1);
        const [xBar] = reduceWindow_p.transpose!([ct], [new UndefPrimal(x.aval)], p.params);
        expect([...(xBar as Tensor).shape]).toEqual(p.shape);
        expect(Math.abs(vdot(ct, y) - vdot(xBar as Tensor, x))).toBeLessThanOrEqual(
          1e-13 * (sumAbs(ct) + 1) * rwTerms(p.params),
        );
      }),
      { numRuns: 100 },
    );
  });

  it("select_and_gather_add and select_and_scatter_add are transposes of each other", () => {
    fc.assert(
      fc.property(windowArb(), (p) => {
        const operand = randn(p.shape, p.seed);
        const t = randn(p.shape, p.seed + 1);
        const sp = selectParams(p.params);
        const g = selectAndGatherAdd_p.impl(
          [t, operand],
          sp,
          selectAndGatherAdd_p.abstractEval([t.aval, operand.aval], sp),
        )[0]!;
        const ct = randn(g.shape, p.seed + 2);
        const [tBar, none] = selectAndGatherAdd_p.transpose!([ct], [new UndefPrimal(t.aval), operand], sp);
        expect(none).toBeNull();
        expect(Math.abs(vdot(ct, g) - vdot(tBar as Tensor, t))).toBeLessThanOrEqual(1e-13 * (sumAbs(ct) + 1));
        const [ctBar] = selectAndScatterAdd_p.transpose!([t], [new UndefPrimal(ct.aval), operand], sp);
        const s = selectAndScatterAdd_p.impl([ct, operand], sp, [t.aval])[0]!;
        expect(Math.abs(vdot(t, s) - vdot(ctBar as Tensor, ct))).toBeLessThanOrEqual(1e-13 * (sumAbs(t) + 1));
        // Gathering the operand itself gives the pooled maximum (or minimum) where a window is real.
        const pooled = windowOracle(operand, { ...p.params, op: sp.select });
        data(selectAndGatherAdd_p.impl([operand, operand], sp, [g.aval])[0]!).forEach((v, i) => {
          if (Number.isFinite(pooled.v[i]!)) expect(v).toBe(pooled.v[i]);
          else expect(v).toBe(0);
        });
      }),
      { numRuns: 100 },
    );
  });

  it("batch rules match per-example loops", () => {
    fc.assert(
      fc.property(windowArb(), small(1, 3), fc.nat(), fc.boolean(), (p, n, a, operandMapped) => {
        const b = a % (p.shape.length + 1);
        const xs = Array.from({ length: n }, (_, i) => randn(p.shape, p.seed + 10 * i));
        const stacked = moveaxis(f64([n, ...p.shape], xs.flatMap(data)), 0, b);
        const [[out], [od]] = reduceWindow_p.batch([stacked], [b], p.params, n);
        const es = xs.map((x) => windowOracle(x, p.params));
        expectClose(
          moveaxis(out!, od!, 0),
          es.flatMap((e) => e.v),
          [n, ...es[0]!.shape],
          1e-15 * rwTerms(p.params),
        );

        const sp = selectParams(p.params);
        const operand = randn(p.shape, p.seed + 5);
        const ops = Array.from({ length: n }, (_, i) =>
          operandMapped ? randn(p.shape, p.seed + 7 * i + 5) : operand,
        );
        const opArg = operandMapped ? moveaxis(f64([n, ...p.shape], ops.flatMap(data)), 0, b) : operand;
        const [[g], [gd]] = selectAndGatherAdd_p.batch(
          [stacked, opArg],
          [b, operandMapped ? b : null],
          sp,
          n,
        );
        const gOut = [...selectAndGatherAdd_p.abstractEval([operand.aval, operand.aval], sp)[0]!.shape];
        const ge = xs.flatMap((x, i) =>
          data(
            selectAndGatherAdd_p.impl([x, ops[i]!], sp, [
              { shape: gOut, dtype: "float64", weakType: false },
            ])[0]!,
          ),
        );
        expectClose(moveaxis(g!, gd!, 0), ge, [n, ...gOut], 0);
        const srcs = Array.from({ length: n }, (_, i) => randn(gOut, p.seed + 3 * i + 1));
        const [[s], [sd]] = selectAndScatterAdd_p.batch(
          [f64([n, ...gOut], srcs.flatMap(data)), opArg],
          [0, operandMapped ? b : null],
          sp,
          n,
        );
        const se = srcs.flatMap((src, i) =>
          data(selectAndScatterAdd_p.impl([src, ops[i]!], sp, [operand.aval])[0]!),
        );
        expectClose(moveaxis(s!, sd!, 0), se, [n, ...p.shape], 1e-15 * rwTerms(p.params));
      }),
      { numRuns: 60 },
    );
  });

  it("jvp of sum/max/min pooling matches finite differences; vjp agrees with jvp", () => {
    fc.assert(
      fc.property(windowArb({ plain: true }), (p) => {
        const x = randn(p.shape, p.seed);
        const t = randn(p.shape, p.seed + 1);
        const { op, windowDimensions, windowStrides, padding, baseDilation, windowDilation } = p.params;
        const f = (a: Tensor) =>
          reduceWindow(a, op, windowDimensions, windowStrides, padding, { baseDilation, windowDilation });
        const [y, dy] = jvp(f, [x], [t]) as [Tensor, Tensor];
        // A small step keeps every window's argmax in place (random values are almost surely distinct).
        const h = 1e-7;
        const plus = data(
          f(
            f64(
              x.shape,
              data(x).map((v, i) => v + h * data(t)[i]!),
            ),
          ),
        );
        const minus = data(
          f(
            f64(
              x.shape,
              data(x).map((v, i) => v - h * data(t)[i]!),
            ),
          ),
        );
        expectClose(
          dy,
          plus.map((v, i) => (v - minus[i]!) / (2 * h)),
          y.shape,
          1e-6,
        );
        const v = randn(y.shape, p.seed + 2);
        const [, back] = vjp(f, x);
        const [g] = back(v) as Tensor[];
        expect(Math.abs(vdot(v, dy) - vdot(g!, t))).toBeLessThanOrEqual(
          1e-12 * (sumAbs(v) + 1) * rwTerms(p.params),
        );
      }),
      { numRuns: 60 },
    );
  });

  it("errors name the primitive and the shapes", () => {
    const x = randn([3, 4], 1);
    expect(() => reduceWindow(x, "max", [2], [1], [[0, 0]])).toThrow(ShapeError);
    expect(() => reduceWindow(x, "max", [2], [1], [[0, 0]])).toThrow(
      /reduce_window_max: windowDimensions \[2\] must hold 2 .*\[3,4\]/,
    );
    expect(() =>
      reduceWindow(
        x,
        "sum",
        [1, 1],
        [0, 1],
        [
          [0, 0],
          [0, 0],
        ],
      ),
    ).toThrow(/windowStrides/);
    expect(() =>
      reduceWindow(
        x,
        "prod" as "sum",
        [1, 1],
        [1, 1],
        [
          [0, 0],
          [0, 0],
        ],
      ),
    ).toThrow(ConfigError);
    const sp: SelectParams = {
      select: "max",
      windowDimensions: [2, 2],
      windowStrides: [1, 1],
      padding: [
        [0, 0],
        [0, 0],
      ],
      baseDilation: [1, 1],
      windowDilation: [1, 1],
    };
    expect(() => selectAndGatherAdd_p.abstractEval([randn([3, 3], 1).aval, x.aval], sp)).toThrow(
      /select_and_gather_add: tangent .*\[3,4\].*\[3,3\]/,
    );
  });
});
