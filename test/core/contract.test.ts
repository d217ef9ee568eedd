import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DTypeError, ShapeError } from "../../src/core/errors.js";
import { UndefPrimal, Zero } from "../../src/core/primitive.js";
import { type DotDimensionNumbers, dotGeneral, dotGeneral_p } from "../../src/core/primitives/contract.js";
import { moveaxis } from "../../src/core/primitives/structural.js";
import { stridesOf } from "../../src/core/shape.js";
import { Tensor } from "../../src/core/tensor.js";
import { jvp, vjp, vmap } from "../../src/transforms/index.js";

// ---------------------------------------------------------------------------------------------
// Helpers: seeded data, an index-by-index float64 oracle, inner products.

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

function randn(shape: number[], seed: number, dtype: "float64" | "float32" | "int32" = "float64"): Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const vals = Array.from({ length: n }, () => (dtype === "int32" ? Math.floor(r() * 7) - 3 : r() * 2 - 1));
  const buf =
    dtype === "float64"
      ? Float64Array.from(vals)
      : dtype === "float32"
        ? Float32Array.from(vals)
        : Int32Array.from(vals);
  return Tensor._fromBuffer(shape, dtype, buf);
}

const data = (t: Tensor) => Array.from(t.data() as ArrayLike<number>);
const vdot = (a: Tensor, b: Tensor) => data(a).reduce((s, v, i) => s + v * data(b)[i]!, 0);
const sumAbs = (a: Tensor) => data(a).reduce((s, v) => s + Math.abs(v), 0);

function expectClose(actual: Tensor, expected: number[], shape: readonly number[], tol: number) {
  expect([...actual.shape]).toEqual([...shape]);
  const a = data(actual);
  expect(a.length).toBe(expected.length);
  for (let i = 0; i < a.length; i++)
    expect(Math.abs(a[i]! - expected[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(expected[i]!)));
}

/** A random dot_general problem: sizes of batch / contracting / free axes and shuffled layouts. */
interface Problem {
  lhsShape: number[];
  rhsShape: number[];
  dn: DotDimensionNumbers;
  seed: number;
}

function shuffle<T>(xs: T[], r: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

const dimSize = fc.integer({ min: 0, max: 3 });
const problemArb: fc.Arbitrary<Problem> = fc
  .record({
    batch: fc.array(dimSize, { maxLength: 2 }),
    contract: fc.array(dimSize, { maxLength: 2 }),
    lfree: fc.array(dimSize, { maxLength: 2 }),
    rfree: fc.array(dimSize, { maxLength: 2 }),
    seed: fc.integer({ min: 0, max: 1e9 }),
  })
  .map(({ batch, contract, lfree, rfree, seed }) => {
    const r = rng(seed + 1);
    // Each operand's logical axes ("b0", "c1", "f0", ...) are placed at shuffled positions.
    const lLogical = [
      ...batch.map((_, i) => `b${i}`),
      ...contract.map((_, i) => `c${i}`),
      ...lfree.map((_, i) => `f${i}`),
    ];
    const rLogical = [
      ...batch.map((_, i) => `b${i}`),
      ...contract.map((_, i) => `c${i}`),
      ...rfree.map((_, i) => `g${i}`),
    ];
    // Free axes keep their relative order, so that the output order is well defined by the test.
    const size = (name: string) =>
      ({ b: batch, c: contract, f: lfree, g: rfree })[name[0] as "b"]![Number(name.slice(1))]!;
    const place = (logical: string[]) => {
      const positions = shuffle(
        logical.map((_, i) => i),
        r,
      );
      const layout = new Array<string>(logical.length);
      logical.forEach((name, i) => {
        layout[positions[i]!] = name;
      });
      // Re-sort the free axes so their order in the layout matches their logical order.
      const freeSlots = layout.map((n, i) => [n, i] as const).filter(([n]) => n[0] === "f" || n[0] === "g");
      const sortedFree = freeSlots.map(([n]) => n).sort();
      freeSlots.forEach(([, slot], k) => {
        layout[slot] = sortedFree[k]!;
      });
      return layout;
    };
    const lLayout = place(lLogical);
    const rLayout = place(rLogical);
    const cPerm = shuffle(
      contract.map((_, i) => i),
      r,
    );
    const bPerm = shuffle(
      batch.map((_, i) => i),
      r,
    );
    return {
      lhsShape: lLayout.map(size),
      rhsShape: rLayout.map(size),
      dn: {
        contracting: [cPerm.map((i) => lLayout.indexOf(`c${i}`)), cPerm.map((i) => rLayout.indexOf(`c${i}`))],
        batch: [bPerm.map((i) => lLayout.indexOf(`b${i}`)), bPerm.map((i) => rLayout.indexOf(`b${i}`))],
      } as DotDimensionNumbers,
      seed,
    };
  });

/** Float64 oracle: out[b, f, g] = Σ_c lhs[...] · rhs[...], by explicit multi-indices. */
function oracle(lhs: Tensor, rhs: Tensor, dn: DotDimensionNumbers): { shape: number[]; values: number[] } {
  const [lc, rc] = dn.contracting;
  const [lb, rb] = dn.batch;
  const lf = lhs.shape.map((_, i) => i).filter((i) => !lc.includes(i) && !lb.includes(i));
  const rf = rhs.shape.map((_, i) => i).filter((i) => !rc.includes(i) && !rb.includes(i));
  const outShape = [
    ...lb.map((a) => lhs.shape[a]!),
    ...lf.map((a) => lhs.shape[a]!),
    ...rf.map((a) => rhs.shape[a]!),
  ];
  const cShape = lc.map((a) => lhs.shape[a]!);
  const L = data(lhs);
  const R = data(rhs);
  const ls = stridesOf(lhs.shape);
  const rs = stridesOf(rhs.shape);
  const values: number[] = [];
  const each = (shape: number[], f: (idx: number[]) => void) => {
    const n = shape.reduce((a, b) => a * b, 1);
    for (let k = 0; k < n; k++) {
      const idx: number[] = [];
      let rem = k;
      for (let d = shape.length - 1; d >= 0; d--) {
        idx.unshift(rem % shape[d]!);
        rem = Math.floor(rem / shape[d]!);
      }
      f(idx);
    }
  };
  each(outShape, (o) => {
    let acc = 0;
    each(cShape, (c) => {
      let li = 0;
      let ri = 0;
      lb.forEach((a, i) => {
        li += o[i]! * ls[a]!;
        ri += o[i]! * rs[rb[i]!]!;
      });
      lf.forEach((a, i) => {
        li += o[lb.length + i]! * ls[a]!;
      });
      rf.forEach((a, i) => {
        ri += o[lb.length + lf.length + i]! * rs[a]!;
      });
      lc.forEach((a, i) => {
        li += c[i]! * ls[a]!;
        ri += c[i]! * rs[rc[i]!]!;
      });
      acc += L[li]! * R[ri]!;
    });
    values.push(acc);
  });
  return { shape: outShape, values };
}

const params = (dn: DotDimensionNumbers) => ({ dimensionNumbers: dn, preferredElementType: null });
const K = (p: Problem) => p.dn.contracting[0].reduce((a, d) => a * p.lhsShape[d]!, 1);

// ---------------------------------------------------------------------------------------------

describe("dot_general", () => {
  it("matches a float64 oracle for random dimension numbers", () => {
    fc.assert(
      fc.property(problemArb, (p) => {
        const l = randn(p.lhsShape, p.seed);
        const r = randn(p.rhsShape, p.seed + 7);
        const { shape, values } = oracle(l, r, p.dn);
        expectClose(dotGeneral(l, r, p.dn), values, shape, 1e-14 * (K(p) + 1));
      }),
      { numRuns: 100 },
    );
  });

  it("float32 rounds the float64 sum once; int32 is exact", () => {
    fc.assert(
      fc.property(problemArb, (p) => {
        const l = randn(p.lhsShape, p.seed, "float32");
        const r = randn(p.rhsShape, p.seed + 7, "float32");
        const { shape, values } = oracle(l, r, p.dn);
        const y = dotGeneral(l, r, p.dn);
        expect(y.dtype).toBe("float32");
        expectClose(y, values, shape, 2 ** -23 * (K(p) + 1));
        const li = randn(p.lhsShape, p.seed, "int32");
        const ri = randn(p.rhsShape, p.seed + 7, "int32");
        const yi = dotGeneral(li, ri, p.dn);
        expect(yi.dtype).toBe("int32");
        expectClose(yi, oracle(li, ri, p.dn).values, shape, 0);
      }),
      { numRuns: 50 },
    );
  });

  it("preferredElementType sets the output dtype", () => {
    const a = randn([2, 3], 1, "int32");
    const b = randn([3, 2], 2, "int32");
    const y = dotGeneral(a, b, { contracting: [[1], [0]], batch: [[], []] }, "float32");
    expect(y.dtype).toBe("float32");
    expectClose(y, oracle(a, b, { contracting: [[1], [0]], batch: [[], []] }).values, [2, 2], 0);
  });

  it("transpose rules satisfy <ct, f(x)> = <f^T ct, x> for both operands", () => {
    fc.assert(
      fc.property(problemArb, (p) => {
        const l = randn(p.lhsShape, p.seed);
        const r = randn(p.rhsShape, p.seed + 7);
        const y = dotGeneral(l, r, p.dn);
        const ct = randn([...y.shape], p.seed + 13);
        const lhsBar = dotGeneral_p.transpose!([ct], [new UndefPrimal(l.aval), r], params(p.dn))[0] as Tensor;
        const rhsBar = dotGeneral_p.transpose!([ct], [l, new UndefPrimal(r.aval)], params(p.dn))[1] as Tensor;
        expect([...lhsBar.shape]).toEqual(p.lhsShape);
        expect([...rhsBar.shape]).toEqual(p.rhsShape);
        const tol = 1e-13 * (sumAbs(ct) + 1) * (K(p) + 1);
        expect(Math.abs(vdot(ct, y) - vdot(lhsBar, l))).toBeLessThanOrEqual(tol);
        expect(Math.abs(vdot(ct, y) - vdot(rhsBar, r))).toBeLessThanOrEqual(tol);
        const z = dotGeneral_p.transpose!([new Zero(y.aval)], [new UndefPrimal(l.aval), r], params(p.dn))[0];
        expect(z).toBeInstanceOf(Zero);
      }),
      { numRuns: 100 },
    );
  });

  it("batch rule matches a per-example loop (lhs, rhs or both mapped, at any axis)", () => {
    fc.assert(
      fc.property(
        problemArb,
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom("lhs", "rhs", "both"),
        fc.nat(),
        fc.nat(),
        (p, n, which, la, ra) => {
          const lb = which === "rhs" ? null : la % (p.lhsShape.length + 1);
          const rb = which === "lhs" ? null : ra % (p.rhsShape.length + 1);
          const lUnb = (i: number) => randn(p.lhsShape, p.seed + 100 * i);
          const rUnb = (i: number) => randn(p.rhsShape, p.seed + 100 * i + 7);
          const stack = (f: (i: number) => Tensor, axis: number | null, shape: number[]) => {
            if (axis === null) return f(0);
            const parts = Array.from({ length: n }, (_, i) => data(f(i))).flat();
            return moveaxis(Tensor._fromBuffer([n, ...shape], "float64", Float64Array.from(parts)), 0, axis);
          };
          const L = stack(lUnb, lb, p.lhsShape);
          const R = stack(rUnb, rb, p.rhsShape);
          const [[out], [od]] = dotGeneral_p.batch([L, R], [lb, rb], params(p.dn), n);
          const outs = moveaxis(out!, od!, 0);
          const per = data(outs);
          const chunk = per.length / n;
          for (let i = 0; i < n; i++) {
            const e = oracle(lb === null ? lUnb(0) : lUnb(i), rb === null ? rUnb(0) : rUnb(i), p.dn);
            expect([...outs.shape.slice(1)]).toEqual(e.shape);
            per
              .slice(i * chunk, (i + 1) * chunk)
              .forEach((v, k) =>
                expect(Math.abs(v - e.values[k]!)).toBeLessThanOrEqual(
                  1e-14 * (K(p) + 1) * (1 + Math.abs(e.values[k]!)),
                ),
              );
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it("jvp matches central finite differences in float64 (exact for a bilinear map)", () => {
    fc.assert(
      fc.property(problemArb, (p) => {
        const l = randn(p.lhsShape, p.seed);
        const r = randn(p.rhsShape, p.seed + 7);
        const tl = randn(p.lhsShape, p.seed + 3);
        const tr = randn(p.rhsShape, p.seed + 5);
        const f = (a: Tensor, b: Tensor) => dotGeneral(a, b, p.dn);
        const [, dy] = jvp(f, [l, r], [tl, tr]);
        const h = 1e-3;
        const shift = (x: Tensor, t: Tensor, s: number) =>
          Tensor._fromBuffer(
            [...x.shape],
            "float64",
            Float64Array.from(data(x).map((v, i) => v + s * data(t)[i]!)),
          );
        const plus = data(f(shift(l, tl, h), shift(r, tr, h)));
        const minus = data(f(shift(l, tl, -h), shift(r, tr, -h)));
        const fd = plus.map((v, i) => (v - minus[i]!) / (2 * h));
        expectClose(dy as Tensor, fd, (dy as Tensor).shape, 1e-10 * (K(p) + 1));
      }),
      { numRuns: 50 },
    );
  });

  it("vjp agrees with jvp (<v, J u> = <J^T v, u>) and vmap agrees with a loop", () => {
    fc.assert(
      fc.property(problemArb, fc.integer({ min: 1, max: 3 }), (p, n) => {
        const l = randn(p.lhsShape, p.seed);
        const r = randn(p.rhsShape, p.seed + 7);
        const f = (a: Tensor, b: Tensor) => dotGeneral(a, b, p.dn);
        const tl = randn(p.lhsShape, p.seed + 3);
        const tr = randn(p.rhsShape, p.seed + 5);
        const [y, dy] = jvp(f, [l, r], [tl, tr]);
        const v = randn([...(y as Tensor).shape], p.seed + 11);
        const [, back] = vjp(f, l, r);
        const [gl, gr] = back(v) as Tensor[];
        const tol = 1e-12 * (sumAbs(v) + 1) * (K(p) + 1);
        expect(Math.abs(vdot(v, dy as Tensor) - (vdot(gl!, tl) + vdot(gr!, tr)))).toBeLessThanOrEqual(tol);

        const ls = Array.from({ length: n }, (_, i) => randn(p.lhsShape, p.seed + 50 * i));
        const stacked = Tensor._fromBuffer(
          [n, ...p.lhsShape],
          "float64",
          Float64Array.from(ls.flatMap(data)),
        );
        const ys = vmap((a: Tensor) => f(a, r))(stacked) as Tensor;
        const expected = ls.flatMap((a) => oracle(a, r, p.dn).values);
        expectClose(ys, expected, [n, ...oracle(ls[0]!, r, p.dn).shape], 1e-14 * (K(p) + 1));
      }),
      { numRuns: 40 },
    );
  });

  it("prints JAX's parameters", () => {
    expect(dotGeneral_p.printParams!(params({ contracting: [[1], [0]], batch: [[], []] }))).toEqual({
      dimension_numbers: "(([1], [0]), ([], []))",
      precision: "None",
      preferred_element_type: "None",
    });
  });

  it("errors name the primitive and the shapes", () => {
    const a = randn([2, 3], 1);
    const b = randn([4, 2], 2);
    expect(() => dotGeneral(a, b, { contracting: [[1], [0]], batch: [[], []] })).toThrow(ShapeError);
    expect(() => dotGeneral(a, b, { contracting: [[1], [0]], batch: [[], []] })).toThrow(
      /dot_general: .*\[2,3\].*\[4,2\]/,
    );
    expect(() => dotGeneral(a, b, { contracting: [[5], [0]], batch: [[], []] })).toThrow(
      /dot_general: lhs contracting dimensions \[5\] are invalid for lhs shape \[2,3\]/,
    );
    expect(() => dotGeneral(a, b, { contracting: [[1], []], batch: [[], []] })).toThrow(/differ in length/);
    expect(() => dotGeneral(a, b, { contracting: [[], []], batch: [[0], [1]] })).not.toThrow();
    expect(() => dotGeneral(a, b, { contracting: [[0], [1]], batch: [[0], [1]] })).toThrow(
      /both batch and contracting/,
    );
    expect(() =>
      dotGeneral(a, randn([3, 2], 3, "float32"), { contracting: [[1], [0]], batch: [[], []] }),
    ).toThrow(DTypeError);
  });
});
