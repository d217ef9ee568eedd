import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DType } from "../../src/core/dtype.js";
import { ConfigError, ShapeError } from "../../src/core/errors.js";
import { sort, sort_p, sortKeyVal } from "../../src/core/primitives/sort.js";
import { sizeOf } from "../../src/core/shape.js";
import { Tensor } from "../../src/core/tensor.js";
import { jvp, vjp, vmap } from "../../src/transforms/index.js";

function t(shape: number[], values: ArrayLike<number>, dtype: DType = "float64"): Tensor {
  const ctor = {
    float32: Float32Array,
    float64: Float64Array,
    int32: Int32Array,
    uint32: Uint32Array,
    bool: Uint8Array,
  }[dtype];
  return Tensor._fromBuffer(shape, dtype, ctor.from(values as ArrayLike<number>));
}
const vals = (x: Tensor) => Array.from(x.data());

/** Oracle: lexicographic stable sort of each lane along `dim`, NaN last, written independently. */
function oracle(ops: number[][], shape: number[], dim: number, numKeys: number): number[][] {
  const n = shape[dim]!;
  const inner = sizeOf(shape.slice(dim + 1));
  const outer = sizeOf(shape.slice(0, dim));
  const outs = ops.map((o) => o.slice());
  const key = (v: number) => (Number.isNaN(v) ? [1, 0] : [0, v === 0 ? 0 : v]);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => o * n * inner + j * inner + i;
      const rows = Array.from({ length: n }, (_, j) => j);
      const decorated = rows.map((j) => ({ j, k: ops.slice(0, numKeys).flatMap((op) => key(op[at(j)]!)) }));
      decorated.sort((a, b) => {
        for (let q = 0; q < a.k.length; q++) if (a.k[q] !== b.k[q]) return a.k[q]! < b.k[q]! ? -1 : 1;
        return a.j - b.j;
      });
      decorated.forEach((d, pos) => ops.forEach((op, s) => (outs[s]![at(pos)] = op[at(d.j)]!)));
    }
  }
  return outs;
}

const arbShape = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 });
const arbValue = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constant(Number.NaN),
  fc.double({ min: -10, max: 10, noNaN: true }),
  fc.constant(-0),
);

describe("sort", () => {
  it("matches a JS oracle on random arrays with NaNs, ties and -0, any dimension and numKeys", () => {
    fc.assert(
      fc.property(
        arbShape,
        fc.nat(),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(arbValue, { minLength: 200, maxLength: 200 }),
        (shape, d, nOps, k, pool) => {
          const dim = d % shape.length;
          const numKeys = Math.min(k, nOps);
          const size = sizeOf(shape);
          const ops = Array.from({ length: nOps }, (_, s) =>
            Array.from({ length: size }, (_, i) => pool[(i * 7 + s * 13) % pool.length]!),
          );
          const got = sort(
            ops.map((o) => t(shape, o)),
            dim,
            numKeys,
          );
          const want = oracle(ops, shape, dim, numKeys);
          got.forEach((g, s) => expect(vals(g)).toEqual(want[s]));
        },
      ),
      { numRuns: 80 },
    );
  });

  it("is stable: equal keys keep their order, and a second key breaks ties", () => {
    const keys = t([6], [2, 1, 2, 1, 2, 1], "int32");
    const idx = t([6], [0, 1, 2, 3, 4, 5], "int32");
    expect(vals(sort([keys, idx], 0, 1)[1]!)).toEqual([1, 3, 5, 0, 2, 4]);
    const second = t([6], [9, 8, 7, 6, 5, 4], "int32");
    expect(vals(sort([keys, second, idx], 0, 2)[2]!)).toEqual([5, 3, 1, 4, 2, 0]);
    // -0 and 0 are equal keys: order kept.
    const z = t([3], [0, -0, -1]);
    const zi = t([3], [0, 1, 2]);
    expect(vals(sort([z, zi], 0)[1]!)).toEqual([2, 0, 1]);
  });

  it("sorts uint32 as unsigned, float32 with NaNs last, and the last axis by default", () => {
    expect(vals(sort([t([3], [4294967295, 1, 2147483648], "uint32")])[0]!)).toEqual([
      1, 2147483648, 4294967295,
    ]);
    const f = sort([t([2, 3], [Number.NaN, 1, -2, 3, Number.NaN, -Infinity], "float32")])[0]!;
    expect(vals(f)).toEqual([-2, 1, Number.NaN, -Infinity, 3, Number.NaN]);
    const [k, v] = sortKeyVal(t([3], [3, 1, 2]), t([3], [30, 10, 20]));
    expect([vals(k), vals(v)]).toEqual([
      [1, 2, 3],
      [10, 20, 30],
    ]);
  });

  it("raises typed errors for bad operands", () => {
    expect(() => sort([t([2], [1, 2]), t([3], [1, 2, 3])], 0)).toThrow(ShapeError);
    expect(() => sort([t([2], [1, 2])], 0, 2)).toThrow(ConfigError);
    expect(() => sort([t([], [1])], 0)).toThrow(ShapeError);
    expect(() => sort([t([2], [1, 2])], 1)).toThrow(ShapeError);
    expect(() => sort([], 0)).toThrow(ShapeError);
  });

  it("batch rule equals a per-example loop (mapped and unmapped operands)", () => {
    const keys = t([3, 4], [3, 1, 2, 0, 5, 5, 4, 1, 0, 0, 0, 0]);
    const valsT = t([4], [10, 20, 30, 40]);
    // keys mapped along axis 0, values unmapped; sort along the per-example axis 0.
    const [outs, dims] = sort_p.batch([keys, valsT], [0, null], { dimension: 0, numKeys: 1 }, 3);
    expect(dims).toEqual([0, 0]);
    for (let b = 0; b < 3; b++) {
      const kb = t([4], vals(keys).slice(4 * b, 4 * b + 4));
      const want = sort([kb, valsT], 0);
      expect(vals(outs[0]!).slice(4 * b, 4 * b + 4)).toEqual(vals(want[0]!));
      expect(vals(outs[1]!).slice(4 * b, 4 * b + 4)).toEqual(vals(want[1]!));
    }
    // Batch axis 1 of a [4, 3] operand.
    const kt = t([4, 3], [3, 5, 0, 1, 5, 0, 2, 4, 0, 0, 1, 0]);
    const vm = vmap((x: Tensor) => sort([x], 0)[0]!, { inAxes: 1 })(kt);
    expect(vm.shape).toEqual([3, 4]);
    expect(vals(vm)).toEqual([0, 1, 2, 3, 1, 4, 5, 5, 0, 0, 0, 0]);
  });

  it("jvp permutes the tangent like the primal; vjp is its adjoint", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 8, maxLength: 8 }),
        (xs, us) => {
          const n = xs.length;
          const x = t([n], xs);
          const u = t([n], us.slice(0, n));
          const f = (a: Tensor) => sort([a], 0)[0]!;
          const [y, dy] = jvp(f, [x], [u]);
          // The derivative of sorting is the permutation itself: dy[j] = u[perm[j]].
          const perm = oracle([xs, xs.map((_, i) => i)], [n], 0, 1)[1]!;
          expect(vals(y)).toEqual(oracle([xs], [n], 0, 1)[0]);
          expect(vals(dy)).toEqual(perm.map((p) => us[p]!));
          const v = t([n], us.slice(0, n).reverse());
          const [, pull] = vjp(f, x);
          const [g] = pull(v) as Tensor[];
          const lhs = vals(v).reduce((s, vi, i) => s + vi * vals(dy)[i]!, 0);
          const rhs = vals(g!).reduce((s, gi, i) => s + gi * us[i]!, 0);
          expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(lhs)));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("jvp of a value operand sorted by a key operand follows the key's permutation", () => {
    const k = t([4], [2, 0, 3, 1]);
    const v = t([4], [1, 2, 3, 4]);
    const [, dv] = jvp((a: Tensor) => sort([k, a], 0, 1)[1]!, [v], [t([4], [10, 20, 30, 40])]);
    expect(vals(dv)).toEqual([20, 40, 10, 30]);
  });
});
