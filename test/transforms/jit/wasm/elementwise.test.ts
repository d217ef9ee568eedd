import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, ShapeError } from "../../../../src/core/errors.js";
import {
  compileElementwise,
  compileReduction,
  type Expr,
  ew,
} from "../../../../src/transforms/jit/wasm/elementwise.js";
import { WasmHeap } from "../../../../src/transforms/jit/wasm/heap.js";

const heap = new WasmHeap();
const f32 = Math.fround;
const MIN_NORMAL = 2 ** -126;

/** Spacing of float32 numbers at |y| (the subnormal spacing 2^-149 below the normal range). */
function ulp32(y: number): number {
  const a = Math.abs(y);
  if (a < MIN_NORMAL) return 2 ** -149;
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

/** Largest error in float32 ulps of the true (float64) value; NaN/inf must match exactly. */
function maxUlp(got: Float32Array, xs: Float32Array, ref: (x: number) => number): number {
  let worst = 0;
  for (let i = 0; i < xs.length; i++) {
    const r = ref(xs[i]!);
    const g = got[i]!;
    if (Number.isNaN(r) || !Number.isFinite(f32(r))) {
      if (!Object.is(g, f32(r))) throw new Error(`at x = ${xs[i]}: got ${g}, expected ${f32(r)}`);
      continue;
    }
    worst = Math.max(worst, Math.abs(g - r) / ulp32(r));
  }
  return worst;
}

const unary = (e: (x: Expr) => Expr) => compileElementwise(heap, e(ew.input(0)), 1);
const run1 = (k: ReturnType<typeof unary>, xs: Float32Array) =>
  k.run([{ data: xs, shape: [xs.length] }], [xs.length]);

/** Float32 values: uniform bit patterns (every binade, subnormals, ±0, ±inf, NaN) plus a range. */
const SPECIALS = [
  0,
  -0,
  1,
  -1,
  Infinity,
  -Infinity,
  Number.NaN,
  2 ** -149,
  -(2 ** -149),
  MIN_NORMAL,
  3.4028234663852886e38,
];
function f32Samples(lo: number, hi: number, seed: number, n = 1 << 14): Float32Array {
  const bits = new Uint32Array(n);
  const out = new Float32Array(bits.buffer);
  const r = fc.sample(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { numRuns: n, seed });
  for (let i = 0; i < n; i++) bits[i] = r[i]!;
  const uniform = fc.sample(fc.double({ min: lo, max: hi, noNaN: true }), { numRuns: n, seed: seed + 1 });
  return Float32Array.from([...out, ...uniform, ...SPECIALS]);
}

/**
 * Tolerances, from the error analysis in src/transforms/jit/wasm/simd-math.ts: exp and log are one
 * polynomial (truncation < 0.05 ulp) plus a handful of roundings each below 0.5 ulp of a term at
 * most the result's size: ≤ 2 ulp. tanh and logistic combine an expm1/exp (≤ 2 ulp), one add and
 * one division: ≤ 4 ulp. expm1 = 2^n·q + (2^n − 1) cancels by at most 2.4× (|n| ≤ 1 is where it
 * can): ≤ 3 ulp. log1p = log(u)·x/(u − 1): log's 2 ulp, one division and one product: ≤ 3 ulp.
 * rsqrt: two correctly rounded operations: ≤ 1.5 ulp.
 */
const TOL = { exp: 2, log: 2, tanh: 4, logistic: 4, expm1: 3, log1p: 3, rsqrt: 1.5 };

describe("wasm elementwise: vectorised transcendentals against float64 Math", () => {
  it(`exp within ${TOL.exp} ulp (whole range, overflow to inf, subnormal results)`, () => {
    const xs = f32Samples(-110, 90, 11);
    expect(maxUlp(run1(unary(ew.exp), xs), xs, Math.exp)).toBeLessThanOrEqual(TOL.exp);
    const tail = f32Samples(-104, -85, 12);
    expect(maxUlp(run1(unary(ew.exp), tail), tail, Math.exp)).toBeLessThanOrEqual(TOL.exp);
  });

  it(`log within ${TOL.log} ulp (subnormal inputs, near 1, −inf at 0, NaN below 0)`, () => {
    const xs = f32Samples(0, 1e6, 21);
    expect(maxUlp(run1(unary(ew.log), xs), xs, Math.log)).toBeLessThanOrEqual(TOL.log);
    const near1 = f32Samples(0.9, 1.1, 22);
    expect(maxUlp(run1(unary(ew.log), near1), near1, Math.log)).toBeLessThanOrEqual(TOL.log);
  });

  it(`tanh within ${TOL.tanh} ulp (tiny, medium and saturated arguments, signed zero)`, () => {
    const xs = f32Samples(-12, 12, 31);
    expect(maxUlp(run1(unary(ew.tanh), xs), xs, Math.tanh)).toBeLessThanOrEqual(TOL.tanh);
    const small = f32Samples(-0.7, 0.7, 32);
    expect(maxUlp(run1(unary(ew.tanh), small), small, Math.tanh)).toBeLessThanOrEqual(TOL.tanh);
    expect(Object.is(run1(unary(ew.tanh), new Float32Array([-0]))[0], -0)).toBe(true);
  });

  it(`logistic within ${TOL.logistic} ulp (both tails)`, () => {
    const xs = f32Samples(-100, 100, 41);
    const ref = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
    expect(maxUlp(run1(unary(ew.logistic), xs), xs, ref)).toBeLessThanOrEqual(TOL.logistic);
  });

  it(`expm1 within ${TOL.expm1} ulp and log1p within ${TOL.log1p} ulp (accurate near 0)`, () => {
    for (const [lo, hi, seed] of [
      [-25, 90, 61],
      [-1, 1, 62],
      [-1e-4, 1e-4, 63],
    ] as const) {
      const xs = f32Samples(lo, hi, seed);
      expect(maxUlp(run1(unary(ew.expm1), xs), xs, Math.expm1)).toBeLessThanOrEqual(TOL.expm1);
    }
    for (const [lo, hi, seed] of [
      [-1, 1e6, 64],
      [-1e-3, 1e-3, 65],
    ] as const) {
      const xs = f32Samples(lo, hi, seed);
      expect(maxUlp(run1(unary(ew.log1p), xs), xs, Math.log1p)).toBeLessThanOrEqual(TOL.log1p);
    }
  });

  it(`rsqrt within ${TOL.rsqrt} ulp`, () => {
    const xs = f32Samples(0, 1e6, 71);
    expect(maxUlp(run1(unary(ew.rsqrt), xs), xs, (x) => 1 / Math.sqrt(x))).toBeLessThanOrEqual(TOL.rsqrt);
  });

  it("sqrt, abs, neg are exact", () => {
    const xs = f32Samples(-1e3, 1e3, 51);
    expect(maxUlp(run1(unary(ew.sqrt), xs), xs, (x) => f32(Math.sqrt(x)))).toBe(0);
    expect(maxUlp(run1(unary(ew.abs), xs), xs, Math.abs)).toBe(0);
    expect(maxUlp(run1(unary(ew.neg), xs), xs, (x) => -x)).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Random expressions of correctly rounded ops against a float32 interpreter (bitwise).

type Leaf = { kind: "input"; index: number } | { kind: "const"; value: number };
type ExactUnary = "neg" | "abs" | "sqrt" | "floor" | "ceil" | "sign" | "not";
type Node =
  | Leaf
  | { kind: "un"; op: ExactUnary; x: Node }
  | { kind: "bin"; op: string; x: Node; y: Node }
  | { kind: "sel"; c: Node; x: Node; y: Node };

const BIN = [
  "add",
  "sub",
  "mul",
  "div",
  "max",
  "min",
  "lt",
  "le",
  "gt",
  "ge",
  "eq",
  "ne",
  "and",
  "or",
] as const;
const UN: ExactUnary[] = ["neg", "abs", "sqrt", "floor", "ceil", "sign", "not"];

function nodeArb(arity: number): fc.Arbitrary<Node> {
  const leaf: fc.Arbitrary<Node> = fc.oneof(
    fc.integer({ min: 0, max: arity - 1 }).map((index) => ({ kind: "input", index }) as Node),
    fc.constantFrom(0, 1, -2.5, 0.1, 3).map((value) => ({ kind: "const", value }) as Node),
  );
  const { node } = fc.letrec<{ node: Node }>((tie) => ({
    node: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      leaf,
      fc.record({
        kind: fc.constant("un" as const),
        op: fc.constantFrom(...UN),
        x: tie("node"),
      }),
      fc.record({
        kind: fc.constant("bin" as const),
        op: fc.constantFrom(...BIN),
        x: tie("node"),
        y: tie("node"),
      }),
      fc.record({ kind: fc.constant("sel" as const), c: tie("node"), x: tie("node"), y: tie("node") }),
    ),
  }));
  return node;
}

function toExpr(n: Node): Expr {
  switch (n.kind) {
    case "input":
      return ew.input(n.index);
    case "const":
      return ew.c(n.value);
    case "un":
      return ew[n.op](toExpr(n.x));
    case "bin":
      return (ew as unknown as Record<string, (a: Expr, b: Expr) => Expr>)[n.op]!(toExpr(n.x), toExpr(n.y));
    case "sel":
      return ew.select(toExpr(n.c), toExpr(n.x), toExpr(n.y));
  }
}

/** The float32 semantics: every op rounds once (add/sub/mul/div/sqrt are correctly rounded). */
function interp(n: Node, inputs: number[]): number {
  switch (n.kind) {
    case "input":
      return inputs[n.index]!;
    case "const":
      return f32(n.value);
    case "un": {
      const x = interp(n.x, inputs);
      switch (n.op) {
        case "neg":
          return -x;
        case "abs":
          return Math.abs(x);
        case "sqrt":
          return f32(Math.sqrt(x));
        case "floor":
          return Math.floor(x);
        case "ceil":
          return Math.ceil(x);
        case "sign":
          return x > 0 ? 1 : x < 0 ? -1 : x;
        default:
          return x === 0 ? 1 : 0;
      }
    }
    case "sel":
      // Nonzero is true, NaN included (as numpy's bool(nan)).
      return interp(n.c, inputs) !== 0 ? interp(n.x, inputs) : interp(n.y, inputs);
    case "bin": {
      const x = interp(n.x, inputs);
      const y = interp(n.y, inputs);
      const b = (c: boolean) => (c ? 1 : 0);
      switch (n.op) {
        case "add":
          return f32(x + y);
        case "sub":
          return f32(x - y);
        case "mul":
          return f32(x * y);
        case "div":
          return f32(x / y);
        case "max":
          return Number.isNaN(x) || Number.isNaN(y)
            ? Number.NaN
            : x === y
              ? Object.is(x, -0)
                ? y
                : x
              : Math.max(x, y);
        case "min":
          return Number.isNaN(x) || Number.isNaN(y)
            ? Number.NaN
            : x === y
              ? Object.is(x, -0)
                ? x
                : y
              : Math.min(x, y);
        case "lt":
          return b(x < y);
        case "le":
          return b(x <= y);
        case "gt":
          return b(x > y);
        case "ge":
          return b(x >= y);
        case "eq":
          return b(x === y);
        case "and":
          return b(x !== 0 && y !== 0);
        case "or":
          return b(x !== 0 || y !== 0);
        default:
          return b(x !== y);
      }
    }
  }
}

/** Output shapes of rank ≤ 5 and, per input, a broadcastable shape (dims dropped or set to 1). */
const problemArb = fc
  .record({
    arity: fc.integer({ min: 1, max: 3 }),
    out: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 0, maxLength: 5 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })
  .chain(({ arity, out, seed }) =>
    fc.record({
      out: fc.constant(out),
      seed: fc.constant(seed),
      expr: nodeArb(arity),
      shapes: fc.array(
        fc
          .tuple(
            fc.integer({ min: 0, max: out.length }),
            fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
          )
          .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d))),
        { minLength: arity, maxLength: arity },
      ),
    }),
  );

describe("wasm elementwise: fused random expressions with broadcasting", () => {
  it("equal a float32 interpreter bitwise, on every broadcast pattern and size (incl. 0 and 1)", () => {
    fc.assert(
      fc.property(problemArb, ({ out, seed, expr, shapes }) => {
        const datas = shapes.map((s, i) => {
          const n = s.reduce((a, b) => a * b, 1);
          return Float32Array.from(
            fc.sample(
              fc.oneof(
                fc.constantFrom(0, -0, 1, -1, 2, Number.NaN),
                fc.float({ min: -4, max: 4, noNaN: true }),
              ),
              {
                numRuns: n,
                seed: seed + i,
              },
            ),
          );
        });
        const k = compileElementwise(heap, toExpr(expr), shapes.length);
        const got = k.run(
          shapes.map((shape, i) => ({ data: datas[i]!, shape })),
          out,
        );
        const size = out.reduce((a, b) => a * b, 1);
        expect(got.length).toBe(size);
        // Index each input by broadcasting the output multi-index.
        for (let flat = 0; flat < size; flat++) {
          const idx: number[] = [];
          let r = flat;
          for (let d = out.length - 1; d >= 0; d--) {
            idx[d] = r % out[d]!;
            r = Math.floor(r / out[d]!);
          }
          const vals = shapes.map((s, i) => {
            let off = 0;
            for (let d = 0; d < s.length; d++)
              off = off * s[d]! + (s[d] === 1 ? 0 : idx[d + out.length - s.length]!);
            return datas[i]![off]!;
          });
          const want = interp(expr, vals);
          if (!Object.is(got[flat], f32(want)) && !(Number.isNaN(got[flat]) && Number.isNaN(want))) {
            throw new Error(`element ${flat}: got ${got[flat]}, want ${want}`);
          }
        }
        k.dispose();
      }),
      { numRuns: 150 },
    );
  });

  it("transposed (strided) inputs and resident buffers through runPtr", () => {
    const [r, c] = [5, 7];
    const a = Float32Array.from({ length: r * c }, (_, i) => i - 10);
    const k = compileElementwise(heap, ew.add(ew.mul(ew.input(0), ew.c(2)), ew.input(1)), 2);
    const pa = heap.alloc(4 * r * c);
    const po = heap.alloc(4 * r * c);
    heap.f32().set(a, pa / 4);
    const out = () => heap.f32().slice(po / 4, po / 4 + r * c);
    // Contiguous [r, c] plus a broadcast row [c].
    k.runPtr(
      po,
      [r, c],
      [
        { ptr: pa, shape: [r, c] },
        { ptr: pa, shape: [c] },
      ],
    );
    expect(Array.from(out())).toEqual(Array.from(a, (v, i) => v * 2 + a[i % c]!));
    // The [c, r] transpose of the same buffer (strides [1, c]) plus a column [c, 1].
    k.runPtr(
      po,
      [c, r],
      [
        { ptr: pa, shape: [c, r], strides: [1, c] },
        { ptr: pa, shape: [c, 1] },
      ],
    );
    const got = out();
    for (let i = 0; i < c; i++)
      for (let j = 0; j < r; j++) expect(got[i * r + j]).toBe(a[j * c + i]! * 2 + a[i]!);
    // One module per inner access pattern: (contiguous, contiguous) and (strided, broadcast).
    expect(k.compiled).toBe(2);
    heap.free(pa);
    heap.free(po);
  });

  it("run writes into a given out array, and repeated calls do not grow the heap", () => {
    const k = compileElementwise(heap, ew.mul(ew.input(0), ew.c(3)), 1);
    const xs = Float32Array.from({ length: 1001 }, (_, i) => i);
    const out = new Float32Array(1001);
    expect(k.run([{ data: xs, shape: [1001] }], [1001], out)).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(xs, (v) => v * 3));
    const bytes = heap.byteLength;
    const live = heap.liveBytes;
    for (let i = 0; i < 200; i++) k.run([{ data: xs, shape: [1001] }], [1001], out);
    expect([heap.byteLength, heap.liveBytes]).toEqual([bytes, live]);
    expect(() => k.run([{ data: xs, shape: [1001] }], [1001], new Float32Array(3))).toThrow(ShapeError);
    k.dispose();
    expect(heap.liveBytes).toBeLessThan(live);
  });

  it("bad inputs raise typed errors naming the operation", () => {
    const k = compileElementwise(heap, ew.add(ew.input(0), ew.input(1)), 2);
    const x = { data: new Float32Array(3), shape: [3] };
    expect(() => k.run([x], [3])).toThrow(ConfigError);
    expect(() => k.run([x, { data: new Float32Array(2), shape: [2] }], [3])).toThrow(
      /elementwise: input 1 shape \[2\]/,
    );
    expect(() => k.run([x, { data: new Float32Array(2), shape: [3] }], [3])).toThrow(ShapeError);
    expect(() => compileElementwise(heap, ew.input(2), 2)).toThrow(/input index 2 out of range/);
  });
});

describe("wasm row reductions fused with an elementwise producer", () => {
  const u = 2 ** -24;
  const gamma = (n: number) => (n * u) / (1 - n * u);
  /** Chunks of 1024 summed in 4 lanes, then chunk sums, then the 4 lanes pairwise. */
  const sumBound = (cols: number) => gamma(1024 / 4 + Math.ceil(cols / 1024) + 3);

  const caseArb = fc.record({
    rows: fc.integer({ min: 0, max: 6 }),
    cols: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1000, max: 3000 })),
    rowBroadcast: fc.boolean(),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  });

  it("sum of x·y (y a broadcast row or column) is within γ·Σ|x·y| of the float64 sum", () => {
    const k = compileReduction(heap, ew.mul(ew.input(0), ew.input(1)), 2, "sum");
    fc.assert(
      fc.property(caseArb, ({ rows, cols, rowBroadcast, seed }) => {
        const x = Float32Array.from(
          fc.sample(fc.float({ min: -4, max: 4, noNaN: true }), { numRuns: rows * cols, seed }),
        );
        const yShape = rowBroadcast ? [cols] : [rows, 1];
        const yLen = rowBroadcast ? cols : rows;
        const y = Float32Array.from(
          fc.sample(fc.float({ min: -4, max: 4, noNaN: true }), { numRuns: yLen, seed: seed + 1 }),
        );
        const got = k.run(
          [
            { data: x, shape: [rows, cols] },
            { data: y, shape: yShape },
          ],
          [rows, cols],
        );
        expect(got.length).toBe(rows);
        for (let r = 0; r < rows; r++) {
          let exact = 0;
          let mag = 0;
          for (let c = 0; c < cols; c++) {
            const v = f32(x[r * cols + c]! * y[rowBroadcast ? c : r]!);
            exact += v;
            mag += Math.abs(v);
          }
          expect(Math.abs(got[r]! - exact)).toBeLessThanOrEqual(sumBound(cols) * mag);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("max of a random expression equals the interpreter's (NaN propagates, empty rows give -inf)", () => {
    fc.assert(
      fc.property(caseArb, nodeArb(1), ({ rows, cols, seed }, expr) => {
        const x = Float32Array.from(
          fc.sample(
            fc.oneof(fc.constantFrom(0, -0, Number.NaN), fc.float({ min: -4, max: 4, noNaN: true })),
            {
              numRuns: rows * cols,
              seed,
            },
          ),
        );
        const k = compileReduction(heap, toExpr(expr), 1, "max");
        const got = k.run([{ data: x, shape: [rows, cols] }], [rows, cols]);
        for (let r = 0; r < rows; r++) {
          let want = -Infinity;
          for (let c = 0; c < cols; c++) {
            const v = interp(expr, [x[r * cols + c]!]);
            want =
              Number.isNaN(v) || Number.isNaN(want)
                ? Number.NaN
                : v > want || (v === 0 && want === 0 && !Object.is(v, -0))
                  ? v
                  : want;
          }
          if (!(Number.isNaN(want) && Number.isNaN(got[r]))) expect(got[r]).toBe(want);
        }
        k.dispose();
      }),
      { numRuns: 60 },
    );
  });

  it("a 2^22-element sum stays within its bound (the two-level sum keeps it tight)", () => {
    const n = 1 << 22;
    const x = new Float32Array(n);
    let s = 12345;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      x[i] = s / 2 ** 32;
    }
    const got = compileReduction(heap, ew.input(0), 1, "sum").run([{ data: x, shape: [n] }], [n]);
    let exact = 0;
    for (let i = 0; i < n; i++) exact += x[i]!;
    expect(got.length).toBe(1);
    expect(Math.abs(got[0]! - exact)).toBeLessThanOrEqual(sumBound(n) * exact);
    // Far tighter than a single running sum's γ_n bound would need to be.
    expect(sumBound(n)).toBeLessThan(gamma(n) / 100);
  });

  it("min of a random expression equals the interpreter's; prod is within γ_n·|Π|", () => {
    fc.assert(
      fc.property(caseArb, nodeArb(1), ({ rows, cols, seed }, expr) => {
        const x = Float32Array.from(
          fc.sample(
            fc.oneof(fc.constantFrom(0, -0, Number.NaN), fc.float({ min: -4, max: 4, noNaN: true })),
            {
              numRuns: rows * cols,
              seed,
            },
          ),
        );
        const k = compileReduction(heap, toExpr(expr), 1, "min");
        const got = k.run([{ data: x, shape: [rows, cols] }], [rows, cols]);
        for (let r = 0; r < rows; r++) {
          let want = Infinity;
          for (let c = 0; c < cols; c++) {
            const v = interp(expr, [x[r * cols + c]!]);
            want =
              Number.isNaN(v) || Number.isNaN(want)
                ? Number.NaN
                : v < want || (v === 0 && want === 0 && Object.is(v, -0))
                  ? v
                  : want;
          }
          if (!(Number.isNaN(want) && Number.isNaN(got[r]))) expect(got[r]).toBe(want);
        }
        k.dispose();
      }),
      { numRuns: 40 },
    );
    // Products of values near 1 (no overflow): relative error ≤ γ_n.
    const prod = compileReduction(heap, ew.input(0), 1, "prod");
    for (const n of [0, 1, 5, 37, 3001]) {
      const x = Float32Array.from(
        fc.sample(fc.float({ min: Math.fround(0.99), max: Math.fround(1.01), noNaN: true }), {
          numRuns: n,
          seed: n,
        }),
      );
      const got = prod.run([{ data: x, shape: [1, n] }], [1, n]);
      let exact = 1;
      for (const v of x) exact *= v;
      expect(Math.abs(got[0]! - exact)).toBeLessThanOrEqual(gamma(n + 1) * Math.abs(exact));
    }
  });

  it("a reduction of a rank-0 shape is a ShapeError", () => {
    expect(() =>
      compileReduction(heap, ew.input(0), 1, "sum").run([{ data: new Float32Array(1), shape: [] }], []),
    ).toThrow(ShapeError);
  });
});
