/**
 * The transpose-into-dot rewrite: `transpose(dot_general(a, b))` that only swaps the operands' free
 * axes becomes `dot_general(b, a)`. The same products are summed in the same order (a·b = b·a
 * exactly in IEEE arithmetic), so the rewritten jaxpr must give bit-identical results on the
 * reference interpreter; other permutations and shared products are left alone.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evalJaxpr } from "../../../src/core/jaxpr.js";
import * as lax from "../../../src/core/lax.js";
import type { Tensor } from "../../../src/core/tensor.js";
import { numpy as np } from "../../../src/index.js";
import { makeJaxpr } from "../../../src/transforms/index.js";
import { absorbTransposesIntoDots } from "../../../src/transforms/jit/passes.js";

const rand = (shape: number[], seed: number): Tensor => {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const d = Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
  return np.array(d).reshape(shape);
};

describe("absorbTransposesIntoDots", () => {
  it("rewrites operand-swapping transposes of batched products, bit-identically", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }), // batch size (0: no batch axis)
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }),
        fc.boolean(), // contract lhs axis first or last
        fc.integer(),
        (nb, m, k, n, lhsContractFirst, seed) => {
          const batch = nb === 0 ? [] : [nb];
          const lShape = lhsContractFirst ? [...batch, k, m] : [...batch, m, k];
          const a = rand(lShape, seed);
          const b = rand([...batch, k, n], seed + 1);
          const b0 = batch.length;
          const dn = {
            contracting: [[lhsContractFirst ? b0 : b0 + 1], [b0]] as [number[], number[]],
            batch: [batch.map((_, i) => i), batch.map((_, i) => i)] as [number[], number[]],
          };
          const perm = [...batch.map((_, i) => i), b0 + 1, b0];
          const f = (x: Tensor, y: Tensor) => lax.transpose(lax.dotGeneral(x, y, dn), perm);
          const closed = makeJaxpr(f)(a, b);
          const rewritten = absorbTransposesIntoDots(closed);
          expect(rewritten.toString()).not.toContain("transpose");
          const want = evalJaxpr(closed.jaxpr, closed.consts, [a, b])[0]!;
          const got = evalJaxpr(rewritten.jaxpr, rewritten.consts, [a, b])[0]!;
          expect(got.shape).toEqual(want.shape);
          expect(Array.from(got.data())).toEqual(Array.from(want.data()));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("leaves other permutations and products that are read elsewhere", () => {
    const a = rand([2, 3, 4], 1);
    const b = rand([2, 4, 5], 2);
    const dn = { contracting: [[2], [1]] as [number[], number[]], batch: [[0], [0]] as [number[], number[]] };
    // Moving the batch axis is not an operand swap.
    const moved = makeJaxpr((x: Tensor, y: Tensor) => lax.transpose(lax.dotGeneral(x, y, dn), [1, 0, 2]))(
      a,
      b,
    );
    expect(absorbTransposesIntoDots(moved)).toBe(moved);
    // The product is also an output: rewriting would compute both layouts.
    const shared = makeJaxpr((x: Tensor, y: Tensor) => {
      const p = lax.dotGeneral(x, y, dn);
      return [p, lax.transpose(p, [0, 2, 1])];
    })(a, b);
    expect(absorbTransposesIntoDots(shared)).toBe(shared);
  });
});

describe("kernel grouping recomputes cheap shared values", () => {
  it("ReLU's mask is recomputed by both readers instead of getting its own kernel", async () => {
    const { jit, grad } = await import("../../../src/transforms/index.js");
    const { nn } = await import("../../../src/index.js");
    const f = (w: Tensor, x: Tensor) => np.sum(nn.relu(np.matmul(x, w)).mul(np.matmul(x, w)));
    const w = rand([4, 3], 3);
    const x = rand([5, 4], 4);
    const g = jit(grad(f), { backend: "ts" });
    const low = g.lower(w, x);
    expect(low.plan.filter((l) => l.includes("bool["))).toEqual([]);
    const want = grad(f)(w, x) as Tensor;
    const got = g(w, x);
    // Same products; sums of ≤ 5 terms may be ordered differently: a few ulps of the terms' sizes.
    const wd = want.data();
    const gd = got.data();
    for (let i = 0; i < wd.length; i++) expect(Math.abs(gd[i]! - wd[i]!)).toBeLessThanOrEqual(1e-5);
  });
});

describe("kernel grouping recomputes a scaled gradient instead of storing it", () => {
  it("SAM's guarded dual vector writes each leaf once", async () => {
    const { jit } = await import("../../../src/transforms/index.js");
    const { dualVector } = await import("../../../src/optim/sam/dual-vector.js");
    const g = { a: rand([50, 40], 5), b: rand([40], 6) };
    const f = jit((t: typeof g) => dualVector(t, { eps: 1e-12 }), { backend: "ts" });
    const plan = f.lower(g).plan;
    // g/max|g| is recomputed by the norm's reduction and by the output kernel: one [50,40] kernel.
    expect(plan.filter((l) => l.includes("f32[50,40]"))).toHaveLength(1);
    const want = dualVector(g, { eps: 1e-12 });
    const got = f(g);
    for (const k of ["a", "b"] as const) {
      const w = want[k].data();
      const o = got[k].data();
      // Unit-norm entries; the 2040-term norm may be summed in another order: n·ε32 relative.
      for (let i = 0; i < w.length; i++) expect(Math.abs(o[i]! - w[i]!)).toBeLessThanOrEqual(2040 * 2 ** -23);
    }
  });
});
