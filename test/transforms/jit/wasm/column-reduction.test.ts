/**
 * Column reductions against a float64 oracle on the same float32 inputs: max and min must equal
 * the largest / smallest float32-rounded term exactly; a sum of R terms in two levels (partials of
 * 64 rows) carries at most (2 + 64 + ⌈R/64⌉)·u·Σ|term| of rounding (two roundings in the term
 * `x·y + 1`, then Higham's γ bound per level), u = 2^-24; a product of R ≤ 8 terms near 1 at most
 * (2R + 2)·u·|product|. Inputs read contiguously, broadcast along columns, and strided.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../../src/core/errors.js";
import { ColumnReduction } from "../../../../src/transforms/jit/wasm/column-reduction.js";
import { ew, type ReduceKind } from "../../../../src/transforms/jit/wasm/elementwise.js";
import { WasmHeap } from "../../../../src/transforms/jit/wasm/heap.js";

const U = 2 ** -24;
const heap = new WasmHeap();
const expr = ew.add(ew.mul(ew.input(0), ew.input(1)), ew.c(1));
const kernels = new Map<ReduceKind, ColumnReduction>();
const kernel = (k: ReduceKind) => {
  let c = kernels.get(k);
  if (!c) kernels.set(k, (c = new ColumnReduction(heap, expr, 2, k)));
  return c;
};

describe("ColumnReduction", () => {
  it("matches the float64 oracle for every access pattern and reduction", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<ReduceKind>("sum", "max", "min", "prod"),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 41 }),
        fc.constantFrom("contiguous", "broadcast", "strided"),
        fc.integer(),
        (kind, rows0, cols, yKind, seed) => {
          const rows = kind === "prod" ? Math.min(rows0, 8) : rows0;
          let s = seed >>> 0;
          const rand = () => {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            return Math.fround(s / 2 ** 31 - 1);
          };
          // x: [rows, cols] row-major; y: per kind, element (r, c) at r·rs + c·cs.
          const [yrs, ycs, ySize] =
            yKind === "contiguous"
              ? [cols, 1, rows * cols]
              : yKind === "broadcast"
                ? [1, 0, rows]
                : [1, rows, rows * cols]; // column-major: a transposed read
          const xs = Array.from({ length: rows * cols }, rand);
          const scale = kind === "prod" ? 0.1 : 1;
          const ys = Array.from({ length: ySize }, () => Math.fround(rand() * scale));
          const xp = heap.alloc(4 * xs.length);
          const yp = heap.alloc(4 * ys.length);
          const op = heap.alloc(4 * cols);
          heap.f32().set(xs, xp / 4);
          heap.f32().set(ys, yp / 4);
          kernel(kind).runPtr(op, rows, cols, [
            { ptr: xp, rs: cols, cs: 1 },
            { ptr: yp, rs: yrs, cs: ycs },
          ]);
          const got = heap.f32().slice(op / 4, op / 4 + cols);
          for (const p of [xp, yp, op]) heap.free(p);
          for (let c = 0; c < cols; c++) {
            const terms = Array.from({ length: rows }, (_, r) => ({
              exact: xs[r * cols + c]! * ys[r * yrs + c * ycs]! + 1,
              f32: Math.fround(Math.fround(xs[r * cols + c]! * ys[r * yrs + c * ycs]!) + 1),
            }));
            const g = got[c]!;
            if (kind === "max") expect(g).toBe(Math.max(-Infinity, ...terms.map((t) => t.f32)));
            else if (kind === "min") expect(g).toBe(Math.min(Infinity, ...terms.map((t) => t.f32)));
            else if (kind === "sum") {
              const want = terms.reduce((a, t) => a + t.exact, 0);
              const abs = terms.reduce((a, t) => a + Math.abs(t.exact), 0);
              expect(Math.abs(g - want)).toBeLessThanOrEqual((2 + 64 + Math.ceil(rows / 64)) * U * abs);
            } else {
              const want = terms.reduce((a, t) => a * t.exact, 1);
              expect(Math.abs(g - want)).toBeLessThanOrEqual((2 * rows + 2) * U * Math.abs(want));
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("writes the identity for zero rows and rejects bad arguments", () => {
    const op = heap.alloc(4 * 5);
    kernel("sum").runPtr(op, 0, 5, [
      { ptr: 0, rs: 0, cs: 1 },
      { ptr: 0, rs: 0, cs: 1 },
    ]);
    expect(Array.from(heap.f32().slice(op / 4, op / 4 + 5))).toEqual([0, 0, 0, 0, 0]);
    heap.free(op);
    expect(() => kernel("sum").runPtr(0, 1, 1, [{ ptr: 0, rs: 0, cs: 1 }])).toThrow(ConfigError);
    expect(() => new ColumnReduction(heap, expr, 2, "mean" as ReduceKind)).toThrow(ConfigError);
  });
});
