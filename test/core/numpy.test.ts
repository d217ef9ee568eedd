import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, DTypeError, ShapeError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import { Tensor } from "../../src/core/tensor.js";

// ---------------------------------------------------------------------------------------------
// Helpers: seeded data, NumPy broadcasting written out index by index, float64 oracles.

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
function data(shape: readonly number[], seed: number, lo = -3, hi = 3): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: size(shape) }, () => lo + (hi - lo) * r());
}
const f64 = (shape: readonly number[], buf: Float64Array) => Tensor._fromBuffer([...shape], "float64", buf);

function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}
function ravelIdx(idx: readonly number[], shape: readonly number[]): number {
  let o = 0;
  for (let d = 0; d < shape.length; d++) o = o * shape[d]! + idx[d]!;
  return o;
}
/** Element of `buf` (shape `s`) read at output index `idx` under right-aligned broadcasting. */
function at(buf: ArrayLike<number>, s: readonly number[], idx: readonly number[]): number {
  const off = idx.length - s.length;
  return buf[
    ravelIdx(
      s.map((d, k) => (d === 1 ? 0 : idx[k + off]!)),
      s,
    )
  ]!;
}
function bshape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    return x === 1 ? y : x;
  });
}

/** `|actual - expected| <= atol + rtol·|expected|`, NaN matching NaN and equal infinities. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol = rtol) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e) || a === e) {
      if (Number.isNaN(e)) expect(a).toBeNaN();
      continue;
    }
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e)))
      throw new Error(`element ${i}: got ${a}, expected ${e}`);
  }
}

const dimArb = fc.integer({ min: 0, max: 3 });
const shapeArb = fc.array(dimArb, { maxLength: 3 });
/** A shape that broadcasts to `out`: some leading axes dropped, some set to 1. */
const derivedArb = (out: number[]) =>
  fc
    .tuple(
      fc.integer({ min: 0, max: out.length }),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
    )
    .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));
const pairArb = shapeArb.chain((out) => fc.tuple(derivedArb(out), derivedArb(out), fc.integer()));
const runs = { numRuns: 60 };

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), independent of the library's series.
function erfAS(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-x * x);
  return Math.sign(x) * y;
}
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

// ---------------------------------------------------------------------------------------------

describe("creation", () => {
  it("array infers shape and dtype; JS numbers default to float32", () => {
    const x = np.array([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(x.shape).toEqual([2, 3]);
    expect(x.dtype).toBe("float32");
    expect(x.weakType).toBe(false);
    expect(np.array([true, false]).dtype).toBe("bool");
    expect(np.array(3).shape).toEqual([]);
    expect(np.array([]).shape).toEqual([0]);
    expect(np.array([[], []]).shape).toEqual([2, 0]);
    expect(np.array([1.7, -1.7], "int32").toArray()).toEqual([1, -1]);
    expect(np.array(new Int32Array([1, 2])).dtype).toBe("int32");
    expect(np.array(np.array([1, 2]), "float64").dtype).toBe("float64");
  });

  it("ragged nested arrays raise ShapeError naming the path", () => {
    expect(() => np.array([[1, 2], [3]])).toThrow(ShapeError);
    expect(() => np.array([[1, 2], [3]])).toThrow(
      /array: ragged nested array: x\[1\] has length 1, expected length 2/,
    );
    expect(() => np.array([[1, 2], 3] as never)).toThrow(ShapeError);
    expect(() => np.array([1, [2]] as never)).toThrow(ShapeError);
  });

  it("zeros, ones, full, arange, linspace, eye, *Like", () => {
    expect(np.zeros([2, 0]).shape).toEqual([2, 0]);
    expect(np.ones(3).toArray()).toEqual([1, 1, 1]);
    expect(np.full([2], 7, "int32").toArray()).toEqual([7, 7]);
    expect(np.full([1], true).dtype).toBe("bool");
    expect(np.arange(5).toArray()).toEqual([0, 1, 2, 3, 4]);
    expect(np.arange(5).dtype).toBe("int32");
    expect(np.arange(1, 2, 0.25).toArray()).toEqual([1, 1.25, 1.5, 1.75]);
    expect(np.arange(5, 0, -2).toArray()).toEqual([5, 3, 1]);
    expect(np.arange(3, 1).shape).toEqual([0]);
    expect(np.linspace(0, 1, 5).toArray()).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(np.linspace(0, 1, 4, false).toArray()).toEqual([0, 0.25, 0.5, 0.75]);
    expect(np.eye(2, 3, 1).toArray()).toEqual([
      [0, 1, 0],
      [0, 0, 1],
    ]);
    const x = np.array([[1, 2]], "int32");
    expect(np.zerosLike(x).dtype).toBe("int32");
    expect(np.onesLike(x).toArray()).toEqual([[1, 1]]);
    expect(np.fullLike(x, 4, "float64").toArray()).toEqual([[4, 4]]);
    expect(() => np.zeros([-1])).toThrow(ShapeError);
    expect(() => np.zeros([2], "float16" as never)).toThrow(DTypeError);
    expect(() => np.arange(0, 1, 0)).toThrow(ConfigError);
    expect(np.float32).toBe("float32");
    expect(np.int32).toBe("int32");
  });
});

describe("promotion", () => {
  const f32 = np.array([1, 2]);
  const i32 = np.array([1, 2], "int32");
  const b = np.array([true, false]);
  const f64v = np.array([1, 2], "float64");
  it.each([
    ["f32 + 1.5", () => np.add(f32, 1.5), "float32"],
    ["i32 + 1.5", () => np.add(i32, 1.5), "float32"],
    ["i32 + 2", () => np.add(i32, 2), "int32"],
    ["bool + 1", () => np.add(b, 1), "int32"],
    ["bool + 1.5", () => np.add(b, 1.5), "float32"],
    ["f32 + f64", () => np.add(f32, f64v), "float64"],
    ["i32 + f32", () => np.add(i32, f32), "float32"],
    ["f64 * 2", () => np.multiply(f64v, 2), "float64"],
    ["i32 / i32", () => np.divide(i32, i32), "float32"],
    ["exp(i32)", () => np.exp(i32), "float32"],
    ["i32 > 1.5", () => np.greater(i32, 1.5), "bool"],
  ])("%s", (_name, f, dtype) => {
    const y = (f as () => Tensor)();
    expect(y.dtype).toBe(dtype);
    expect(y.weakType).toBe(false);
  });
  it("values are computed in the promoted dtype", () => {
    expect(np.add(i32, 1.5).toArray()).toEqual([2.5, 3.5]);
    expect(np.add(b, 1).toArray()).toEqual([2, 1]);
    expect(np.divide(np.array([1], "int32"), 2).toArray()).toEqual([0.5]);
  });
  it("JS numbers alone stay weak", () => {
    const y = np.add(1, 2);
    expect(y.weakType).toBe(true);
    expect(y.dtype).toBe("int32");
    expect(np.multiply(0.5, 3).weakType).toBe(true);
  });
  it("nested arrays and booleans are accepted as operands", () => {
    expect(np.add([1, 2], [[10], [20]]).toArray()).toEqual([
      [11, 12],
      [21, 22],
    ]);
    expect(np.logicalAnd([true, true], false).toArray()).toEqual([false, false]);
  });
});

describe("broadcasting errors", () => {
  it("names the op, both shapes and the argument", () => {
    expect(() => np.add(np.zeros([2, 3]), np.zeros([4]))).toThrow(
      new ShapeError("shapes [2,3] and [4] cannot broadcast (argument 1)", "add"),
    );
    expect(() => np.add(np.zeros([2, 3]), np.zeros([4]))).toThrow(
      "add: shapes [2,3] and [4] cannot broadcast (argument 1)",
    );
    expect(() => np.where(true, np.zeros([2]), np.zeros([3]))).toThrow(
      /where: shapes \[2\] and \[3\] cannot broadcast \(argument 2\)/,
    );
    expect(() => np.broadcastTo(np.zeros([3]), [2, 2])).toThrow(ShapeError);
    expect(() => np.broadcastTo(np.zeros([2, 3]), [3])).toThrow(ShapeError);
  });
});

type Bin = [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number, [number, number]?];
const binaries: Bin[] = [
  ["add", np.add, (x, y) => x + y],
  ["subtract", np.subtract, (x, y) => x - y],
  ["multiply", np.multiply, (x, y) => x * y],
  ["divide", np.divide, (x, y) => x / y],
  ["maximum", np.maximum, Math.max],
  ["minimum", np.minimum, Math.min],
  ["power", np.power, (x, y) => x ** y, [0.1, 3]],
  ["mod", np.mod, (x, y) => x - y * Math.floor(x / y)],
  ["floorDivide", np.floorDivide, (x, y) => Math.floor(x / y)],
  ["logaddexp", np.logaddexp, (x, y) => Math.log(Math.exp(x) + Math.exp(y))],
  ["greater", np.greater, (x, y) => +(x > y)],
  ["greaterEqual", np.greaterEqual, (x, y) => +(x >= y)],
  ["less", np.less, (x, y) => +(x < y)],
  ["lessEqual", np.lessEqual, (x, y) => +(x <= y)],
  ["equal", np.equal, (x, y) => +(x === y)],
  ["notEqual", np.notEqual, (x, y) => +(x !== y)],
];

describe("binary elementwise vs float64 oracle (random broadcastable shapes)", () => {
  for (const [name, f, oracle, range] of binaries) {
    it(name, () => {
      fc.assert(
        fc.property(pairArb, ([sa, sb, seed]) => {
          const [lo, hi] = range ?? [-3, 3];
          const a = data(sa, seed, lo, hi);
          // Round some values so that ties and equalities occur.
          const b = data(sb, seed + 1, lo, hi).map((v, i) =>
            i % 3 === 0 ? (a[i % Math.max(a.length, 1)] ?? v) : v,
          );
          const y = f(f64(sa, a), f64(sb, b));
          const out = bshape(sa, sb);
          expect(y.shape).toEqual(out);
          const exp = Float64Array.from({ length: size(out) }, (_, i) => {
            const idx = unravel(i, out);
            return oracle(at(a, sa, idx), at(b, sb, idx));
          });
          expectClose(y.data(), exp, 1e-12, 1e-12);
        }),
        runs,
      );
    });
  }
  it("float32 inputs stay float32 and match within float32 rounding", () => {
    fc.assert(
      fc.property(pairArb, ([sa, sb, seed]) => {
        const a = Float32Array.from(data(sa, seed));
        const b = Float32Array.from(data(sb, seed + 1));
        const y = np.multiply(
          Tensor._fromBuffer(sa, "float32", a),
          np.add(Tensor._fromBuffer(sb, "float32", b), 1.5),
        );
        expect(y.dtype).toBe("float32");
        const out = bshape(sa, sb);
        const exp = Float64Array.from({ length: size(out) }, (_, i) => {
          const idx = unravel(i, out);
          return at(a, sa, idx) * (at(b, sb, idx) + 1.5);
        });
        expectClose(y.data(), exp, 4 * 2 ** -24, 1e-6);
      }),
      runs,
    );
  });
});

describe("integer arithmetic", () => {
  it("mod and floorDivide follow NumPy's sign convention", () => {
    const a = np.array([-7, 7, -7, 7, 6], "int32");
    const b = np.array([3, -3, -3, 3, 3], "int32");
    expect(np.mod(a, b).toArray()).toEqual([2, -2, -1, 1, 0]);
    expect(np.floorDivide(a, b).toArray()).toEqual([-3, -3, 2, 2, 2]);
    expect(np.mod(a, b).dtype).toBe("int32");
  });
  it("power with integers", () => {
    expect(np.power(np.array([2, 3], "int32"), 3).toArray()).toEqual([8, 27]);
    expect(np.power(np.array([2, 3], "int32"), np.array([2, 0], "int32")).toArray()).toEqual([4, 1]);
    expect(np.power(np.array([4]), -1).toArray()).toEqual([0.25]);
  });
});

type Un = [string, (a: Tensor) => Tensor, (x: number) => number, [number, number]?, number?];
const unaries: Un[] = [
  ["negative", np.negative, (x) => -x],
  ["exp", np.exp, Math.exp],
  ["log", np.log, Math.log, [0.01, 5]],
  ["log1p", np.log1p, Math.log1p, [-0.9, 5]],
  ["expm1", np.expm1, Math.expm1],
  ["sqrt", np.sqrt, Math.sqrt, [0, 5]],
  ["rsqrt", np.rsqrt, (x) => 1 / Math.sqrt(x), [0.01, 5]],
  ["tanh", np.tanh, Math.tanh],
  ["sin", np.sin, Math.sin],
  ["cos", np.cos, Math.cos],
  ["abs", np.abs, Math.abs],
  ["sign", np.sign, Math.sign],
  ["floor", np.floor, Math.floor],
  ["ceil", np.ceil, Math.ceil],
  ["round", (x) => np.round(np.multiply(x, 2)), (x) => roundHalfEven(x * 2)],
  ["erf", np.erf, erfAS, undefined, 2e-7],
  ["square", np.square, (x) => x * x],
  ["reciprocal", np.reciprocal, (x) => 1 / x],
  ["isnan", (x) => np.isnan(np.log(x)), (x) => +Number.isNaN(Math.log(x))],
  ["isfinite", (x) => np.isfinite(np.divide(1, x)), (x) => +Number.isFinite(1 / x)],
  ["logicalNot", (x) => np.logicalNot(np.greater(x, 0)), (x) => +!(x > 0)],
];

describe("unary elementwise vs float64 oracle", () => {
  for (const [name, f, oracle, range, tol] of unaries) {
    it(name, () => {
      fc.assert(
        fc.property(shapeArb, fc.integer(), (s, seed) => {
          const [lo, hi] = range ?? [-3, 3];
          const a = data(s, seed, lo, hi);
          const y = f(f64(s, a));
          expect(y.shape).toEqual(s);
          expectClose(y.data(), a.map(oracle), tol ?? 1e-13, tol ?? 1e-13);
        }),
        runs,
      );
    });
  }
  it("round is half to even; clip; where; integer inputs of float functions", () => {
    expect(np.round([0.5, 1.5, 2.5, -0.5, -1.5]).toArray()).toEqual([0, 2, 2, -0, -2]);
    expect(np.clip([-1, 0.5, 2], 0, 1).toArray()).toEqual([0, 0.5, 1]);
    expect(np.clip([-1, 0.5, 2], null, 1).toArray()).toEqual([-1, 0.5, 1]);
    expect(np.where([true, false], [1, 2], 0).toArray()).toEqual([1, 0]);
    expect(np.where(np.array([[1], [0]]), np.array([1, 2]), 5).toArray()).toEqual([
      [1, 2],
      [5, 5],
    ]);
    expect(np.sqrt(np.array([4], "int32")).toArray()).toEqual([2]);
    expect(np.abs(np.array([-3], "int32")).toArray()).toEqual([3]);
    expect(np.isnan(np.array([1], "int32")).toArray()).toEqual([false]);
  });
  it("logaddexp is stable and handles infinities", () => {
    const y = np.logaddexp(
      np.array([1000, -1000, -Infinity, Infinity], "float64"),
      np.array([1000, -1000, -Infinity, 3], "float64"),
    );
    expectClose(y.data(), [1000 + Math.LN2, -1000 + Math.LN2, -Infinity, Infinity], 1e-14);
  });
});

// ---------------------------------------------------------------------------------------------
// Reductions.

const axesArb = (rank: number): fc.Arbitrary<number | number[] | null | undefined> =>
  fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    ...(rank > 0 ? [fc.integer({ min: -rank, max: rank - 1 })] : []),
    fc
      .subarray(Array.from({ length: rank }, (_, i) => i))
      .chain((ax) => fc.tuple(...ax.map((a) => fc.constantFrom(a, a - rank)))),
  );
const reduceCase = shapeArb.chain((s) =>
  fc.tuple(fc.constant(s), axesArb(s.length), fc.boolean(), fc.integer()),
);

function normAxes(axis: number | number[] | null | undefined, rank: number): number[] {
  if (axis == null) return Array.from({ length: rank }, (_, i) => i);
  return (typeof axis === "number" ? [axis] : axis).map((a) => (a < 0 ? a + rank : a));
}

/** Groups the elements of `a` (shape `s`) by their index outside `axes`. */
function groups(a: Float64Array, s: readonly number[], axes: number[], keepdims: boolean) {
  const outShape = s.flatMap((d, i) => (axes.includes(i) ? (keepdims ? [1] : []) : [d]));
  const kept = s.map((d, i) => (axes.includes(i) ? 1 : d));
  const g: number[][] = Array.from({ length: size(kept) }, () => []);
  for (let i = 0; i < a.length; i++) {
    const idx = unravel(i, s).map((v, k) => (axes.includes(k) ? 0 : v));
    g[ravelIdx(idx, kept)]!.push(a[i]!);
  }
  return { outShape, g };
}

type Red = [
  string,
  (x: Tensor, axis: never, opts: { keepdims: boolean }) => Tensor,
  (v: number[]) => number,
  boolean?,
];
const reductions: Red[] = [
  ["sum", np.sum as never, (v) => v.reduce((p, q) => p + q, 0)],
  ["prod", np.prod as never, (v) => v.reduce((p, q) => p * q, 1)],
  ["mean", np.mean as never, (v) => v.reduce((p, q) => p + q, 0) / v.length],
  ["max", np.max as never, (v) => Math.max(...v), true],
  ["min", np.min as never, (v) => Math.min(...v), true],
  [
    "var",
    np.var as never,
    (v) => {
      const m = v.reduce((p, q) => p + q, 0) / v.length;
      return v.reduce((p, q) => p + (q - m) ** 2, 0) / v.length;
    },
  ],
  [
    "std ddof=1",
    ((x: Tensor, axis: never, o: { keepdims: boolean }) => np.std(x, axis, { ...o, ddof: 1 })) as never,
    (v) => {
      const m = v.reduce((p, q) => p + q, 0) / v.length;
      return Math.sqrt(v.reduce((p, q) => p + (q - m) ** 2, 0) / (v.length - 1));
    },
  ],
  [
    "all",
    ((x: Tensor, a: never, o: never) => np.all(np.greater(x, -2), a, o)) as never,
    (v) => +v.every((q) => q > -2),
  ],
  [
    "any",
    ((x: Tensor, a: never, o: never) => np.any(np.greater(x, 2), a, o)) as never,
    (v) => +v.some((q) => q > 2),
  ],
];

describe("reductions over random axis sets with keepdims", () => {
  for (const [name, f, oracle, needsNonEmpty] of reductions) {
    it(name, () => {
      fc.assert(
        fc.property(reduceCase, ([s, axis, keepdims, seed]) => {
          const axes = normAxes(axis as never, s.length);
          if (needsNonEmpty && axes.some((a) => s[a] === 0)) {
            expect(() => f(f64(s, data(s, seed)), axis as never, { keepdims })).toThrow(ShapeError);
            return;
          }
          const a = data(s, seed);
          const y = f(f64(s, a), axis as never, { keepdims });
          const { outShape, g } = groups(a, s, axes, keepdims);
          expect(y.shape).toEqual(outShape);
          const n = Math.max(...g.map((v) => v.length), 1);
          expectClose(y.data(), g.map(oracle), n * 4e-16 * 8, 1e-12);
        }),
        runs,
      );
    });
  }
  it("argmax / argmin along an axis and flattened", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
        fc.integer(),
        fc.boolean(),
        (s, seed, flat) => {
          const a = data(s, seed).map((v) => Math.round(v)); // ties: the first index wins
          const x = f64(s, a);
          const axis = flat ? undefined : seed % s.length;
          for (const [f, pick] of [
            [np.argmax, (v: number[]) => v.indexOf(Math.max(...v))],
            [np.argmin, (v: number[]) => v.indexOf(Math.min(...v))],
          ] as const) {
            const y = f(x, axis);
            const { g } = groups(a, s, normAxes(axis, s.length), false);
            expect(y.dtype).toBe("int32");
            expect(Array.from(y.data())).toEqual(g.map(pick));
          }
        },
      ),
      runs,
    );
  });
  it("cumsum along an axis and flattened; sums of bools are int32", () => {
    expect(
      np
        .cumsum([
          [1, 2],
          [3, 4],
        ])
        .toArray(),
    ).toEqual([1, 3, 6, 10]);
    expect(
      np
        .cumsum(
          [
            [1, 2],
            [3, 4],
          ],
          -2,
        )
        .toArray(),
    ).toEqual([
      [1, 2],
      [4, 6],
    ]);
    expect(np.sum([true, true, false]).dtype).toBe("int32");
    expect(np.sum([true, true, false]).item()).toBe(2);
    expect(np.mean(np.array([1, 2], "int32")).dtype).toBe("float32");
    expect(np.sum(np.zeros([0, 2]), 0).toArray()).toEqual([0, 0]);
    expect(np.mean(np.zeros([0]), 0).item()).toBeNaN();
  });
  it("bad axes raise", () => {
    expect(() => np.sum(np.zeros([2, 3]), 2)).toThrow(ShapeError);
    expect(() => np.sum(np.zeros([2, 3]), -3)).toThrow(
      /sum: axis -3 is out of bounds for an array of rank 2/,
    );
    expect(() => np.sum(np.zeros([2, 3]), [0, -2])).toThrow(/repeated axis/);
    expect(() => np.argmax(np.zeros([0]))).toThrow(ShapeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Shapes.

describe("shape functions", () => {
  it("reshape with -1, and its errors", () => {
    fc.assert(
      fc.property(shapeArb, fc.integer(), (s, seed) => {
        const n = size(s);
        const x = f64(s, data(s, seed));
        const pos = s.length === 0 ? 0 : Math.abs(seed) % s.length;
        if (s.length > 0 && n > 0) {
          const t = [...s];
          t[pos] = -1;
          const y = np.reshape(x, t);
          expect(y.shape).toEqual(s);
        }
        expect(np.reshape(x, [n]).data()).toEqual(x.data());
        expect(np.ravel(x).shape).toEqual([n]);
      }),
      runs,
    );
    expect(() => np.reshape(np.zeros([6]), [-1, -1])).toThrow(
      /reshape: can only specify one unknown dimension/,
    );
    expect(() => np.reshape(np.zeros([6]), [4, -1])).toThrow(ShapeError);
    expect(() => np.reshape(np.zeros([6]), [4])).toThrow(/cannot reshape \[6\] \(size 6\) into \[4\]/);
    expect(np.reshape(np.zeros([2, 3]), [3, -1]).shape).toEqual([3, 2]);
    expect(np.zeros([2, 3]).reshape(-1).shape).toEqual([6]);
  });

  it("transpose, moveaxis, swapaxes vs an index oracle", () => {
    fc.assert(
      fc.property(
        shapeArb.chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.shuffledSubarray(
              s.map((_, i) => i),
              { minLength: s.length, maxLength: s.length },
            ),
            fc.integer(),
          ),
        ),
        ([s, perm, seed]) => {
          const a = data(s, seed);
          const y = np.transpose(f64(s, a), perm);
          const out = perm.map((p) => s[p]!);
          expect(y.shape).toEqual(out);
          const exp = Float64Array.from({ length: size(out) }, (_, i) => {
            const o = unravel(i, out);
            const idx = new Array<number>(s.length);
            perm.forEach((p, k) => {
              idx[p] = o[k]!;
            });
            return a[ravelIdx(idx, s)]!;
          });
          expect(y.data()).toEqual(exp);
        },
      ),
      runs,
    );
    const x = np.zeros([2, 3, 4]);
    expect(np.transpose(x).shape).toEqual([4, 3, 2]);
    expect(x.T.shape).toEqual([4, 3, 2]);
    expect(np.moveaxis(x, 0, -1).shape).toEqual([3, 4, 2]);
    expect(np.moveaxis(x, [0, 1], [-1, 0]).shape).toEqual([3, 4, 2]);
    expect(np.swapaxes(x, 0, 2).shape).toEqual([4, 3, 2]);
    expect(() => np.transpose(x, [0, 0, 1])).toThrow(ShapeError);
  });

  it("expandDims, squeeze, broadcastTo", () => {
    const x = np.zeros([1, 3, 1]);
    expect(np.squeeze(x).shape).toEqual([3]);
    expect(np.squeeze(x, -1).shape).toEqual([1, 3]);
    expect(() => np.squeeze(x, 1)).toThrow(ShapeError);
    expect(np.expandDims(np.zeros([3]), [0, -1]).shape).toEqual([1, 3, 1]);
    expect(() => np.expandDims(np.zeros([3]), 3)).toThrow(ShapeError);
    expect(np.broadcastTo([1, 2, 3], [2, 3]).toArray()).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ]);
  });

  it("concatenate, stack and split round-trip", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer(),
        (s, k, seed) => {
          const axis = Math.abs(seed) % s.length;
          const parts = Array.from({ length: k }, (_, i) => f64(s, data(s, seed + i)));
          const c = np.concatenate(parts, axis - s.length);
          expect(c.shape).toEqual(s.map((d, i) => (i === axis ? d * k : d)));
          const back = np.split(c, k, axis);
          back.forEach((p, i) => expect(p.data()).toEqual(parts[i]!.data()));
          const st = np.stack(parts, axis);
          expect(np.split(st, k, axis).map((p) => np.squeeze(p, axis).data())).toEqual(
            parts.map((p) => p.data()),
          );
        },
      ),
      runs,
    );
    expect(np.split(np.arange(5), [1, 3]).map((t) => t.toArray())).toEqual([[0], [1, 2], [3, 4]]);
    expect(() => np.split(np.arange(5), 2)).toThrow(ShapeError);
    expect(() => np.concatenate([np.zeros([2, 3]), np.zeros([2, 4])], 0)).toThrow(/argument 1/);
    expect(() => np.stack([np.zeros([2]), np.zeros([3])])).toThrow(ShapeError);
    expect(np.concatenate([np.array([1], "int32"), np.array([0.5])]).dtype).toBe("float32");
  });

  it("take, takeAlongAxis, pad, flip, tile, repeat", () => {
    const x = np.array([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(np.take(x, [2, -1, 0], 1).toArray()).toEqual([
      [3, 3, 1],
      [6, 6, 4],
    ]);
    expect(np.take(x, 4).item()).toBe(5);
    expect(np.take(x, np.array([[0, 1]], "int32"), 0).shape).toEqual([1, 2, 3]);
    expect(np.takeAlongAxis(x, np.array([[2], [0]], "int32"), 1).toArray()).toEqual([[3], [4]]);
    expect(np.takeAlongAxis(x, np.argmax(x, 0, { keepdims: true }), 0).toArray()).toEqual([[4, 5, 6]]);
    expect(np.takeAlongAxis(x, np.array([[1, 0, 1]], "int32"), 0).toArray()).toEqual([[4, 2, 6]]);
    expect(np.pad([1, 2], [1, 2]).toArray()).toEqual([0, 1, 2, 0, 0]);
    expect(
      np
        .pad(
          x,
          [
            [0, 1],
            [1, 0],
          ],
          { constantValue: 9 },
        )
        .toArray(),
    ).toEqual([
      [9, 1, 2, 3],
      [9, 4, 5, 6],
      [9, 9, 9, 9],
    ]);
    expect(np.pad([1], 1).toArray()).toEqual([0, 1, 0]);
    expect(np.flip(x).toArray()).toEqual([
      [6, 5, 4],
      [3, 2, 1],
    ]);
    expect(np.flip(x, 1).toArray()).toEqual([
      [3, 2, 1],
      [6, 5, 4],
    ]);
    expect(np.tile([1, 2], [2, 2]).toArray()).toEqual([
      [1, 2, 1, 2],
      [1, 2, 1, 2],
    ]);
    expect(np.repeat(x, 2, 0).toArray()).toEqual([
      [1, 2, 3],
      [1, 2, 3],
      [4, 5, 6],
      [4, 5, 6],
    ]);
    expect(np.repeat(x, 2).shape).toEqual([12]);
    expect(np.sort([3, Number.NaN, 1, 2]).toArray()).toEqual([1, 2, 3, Number.NaN]);
    expect(
      np
        .sort(
          [
            [3, 1],
            [0, 2],
          ],
          0,
        )
        .toArray(),
    ).toEqual([
      [0, 1],
      [3, 2],
    ]);
    expect(
      np
        .sort(
          [
            [3, 1],
            [0, 2],
          ],
          null,
        )
        .toArray(),
    ).toEqual([0, 1, 2, 3]);
    expect(np.argsort([3, 1, 2, 1]).toArray()).toEqual([1, 3, 2, 0]);
    expect(
      np
        .argsort(
          [
            [3, 1],
            [0, 2],
          ],
          0,
        )
        .toArray(),
    ).toEqual([
      [1, 0],
      [0, 1],
    ]);
    expect(np.astype(x, "int32").dtype).toBe("int32");
    expect(x.astype("bool").toArray()).toEqual([
      [true, true, true],
      [true, true, true],
    ]);
  });
});

describe("allclose and Tensor methods", () => {
  it("allclose", () => {
    expect(np.allclose([1, 2], [1, 2.000001])).toBe(true);
    expect(np.allclose([1, 2], [1, 2.1])).toBe(false);
    expect(np.allclose([1, Number.NaN], [1, Number.NaN])).toBe(false);
    expect(np.allclose([1, Number.NaN], [1, Number.NaN], { equalNan: true })).toBe(true);
    expect(np.allclose([1, 1], 1)).toBe(true);
    expect(np.allclose([Infinity], [Infinity])).toBe(true);
    expect(np.allclose([1], [1.1], { atol: 0.2 })).toBe(true);
  });
  it("method sugar delegates to np", () => {
    const x = np.array([
      [1, 2],
      [3, 4],
    ]);
    expect(x.add(1).sum(0).toArray()).toEqual([6, 8]);
    expect(x.sub(1).mul(2).div(2).neg().toArray()).toEqual([
      [-0, -1],
      [-2, -3],
    ]);
    expect(x.pow(2).sqrt().toArray()).toEqual(x.toArray());
    expect(x.matmul(x).toArray()).toEqual([
      [7, 10],
      [15, 22],
    ]);
    expect(x.max(1, { keepdims: true }).toArray()).toEqual([[2], [4]]);
    expect(x.argmax().item()).toBe(3);
    expect(x.greater(2).toArray()).toEqual([
      [false, false],
      [true, true],
    ]);
    expect(x.reshape(4).shape).toEqual([4]);
    expect(x.reshape(1, 4).shape).toEqual([1, 4]);
    expect(x.flatten().shape).toEqual([4]);
    expect(x.mean().item()).toBe(2.5);
  });
});
