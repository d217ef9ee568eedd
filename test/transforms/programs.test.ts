/**
 * Every transform against its oracle on random programs: grad and jvp vs central finite differences
 * in float64, the jvp/vjp dot-product identity, vmap vs a loop, evalJaxpr(makeJaxpr(f)) vs f, and
 * the compositions vmap(grad) and jvp(grad).
 *
 * Tolerance: a float64 central difference with h = ε^(1/3)·scale has error about ε^(2/3) ≈ 4e-11
 * times the size of f and its third derivative. Programs draw inputs in [-1.5, 1.5] and use bounded
 * operations, so those sizes stay below ~1e4; hence rtol = atol = 1e-6 (scaled by max|f|).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evalJaxpr } from "../../src/core/jaxpr.js";
import { Tensor } from "../../src/core/tensor.js";
import { type Program, arbProgram, runProgram, runProgramScalar } from "../../src/testing/programs.js";
import { arbTensorOfShape } from "../../src/testing/arbitraries.js";
import { absDot, dot, expectClose, finiteDifference } from "../../src/testing/checks.js";
import { grad, jvp, makeJaxpr, vjp, vmap } from "../../src/transforms/index.js";
import { sizeOf } from "../../src/core/shape.js";

const runs = { numRuns: 60 };
// minAbs keeps inputs off the kinks of max at 0 (fast-check favours 0) and directions off denormals.
const f64 = { dtype: "float64" as const, bound: 1.5, minAbs: 1e-3 };

const programAndInput = arbProgram({ smooth: true }).chain((p) =>
  fc.tuple(fc.constant(p), arbTensorOfShape(p.shape, f64), arbTensorOfShape(p.shape, f64)),
);

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

describe("random programs", () => {
  it("grad matches a central finite difference along a random direction", () => {
    fc.assert(
      fc.property(programAndInput, ([p, x, u]) => {
        const f = (v: Tensor) => runProgramScalar(p, v);
        const g = grad(f)(x) as Tensor;
        const fd = finiteDifference(f, x, u).value[0]!;
        const directional = dot(g.data(), u.data());
        const scale = 1 + Math.abs(f(x).item()) + absDot(g.data(), u.data());
        expect(Math.abs(directional - fd)).toBeLessThanOrEqual(1e-6 * scale);
      }),
      runs,
    );
  });

  it("jvp matches a central finite difference", () => {
    fc.assert(
      fc.property(programAndInput, ([p, x, u]) => {
        const f = (v: Tensor) => runProgram(p, v);
        const [y, t] = jvp(f, [x], [u]) as [Tensor, Tensor];
        const fd = finiteDifference(f, x, u).value;
        expectClose(t.data(), fd, 1e-6, 1e-6 * (1 + maxAbs(y.data())), "jvp");
      }),
      runs,
    );
  });

  it("<v, J u> == <J^T v, u>", () => {
    fc.assert(
      fc.property(
        programAndInput.chain(([p, x, u]) => {
          const outShape = runProgram(p, x).shape;
          return fc.tuple(fc.constant(p), fc.constant(x), fc.constant(u), arbTensorOfShape(outShape, f64));
        }),
        ([p, x, u, v]) => {
          const f = (w: Tensor) => runProgram(p, w);
          const Ju = (jvp(f, [x], [u]) as [Tensor, Tensor])[1];
          const [, pullback] = vjp(f, x);
          const JTv = pullback(v)[0] as Tensor;
          const lhs = dot(v.data(), Ju.data());
          const rhs = dot(JTv.data(), u.data());
          // Both sides are float64 sums of the same products in different orders.
          const bound = 64 * 2 ** -52 * (absDot(v.data(), Ju.data()) + absDot(JTv.data(), u.data()) + 1) * sizeOf(x.shape);
          expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(bound);
        },
      ),
      runs,
    );
  });

  it("evalJaxpr(makeJaxpr(f)) == f", () => {
    fc.assert(
      fc.property(programAndInput, ([p, x]) => {
        const f = (v: Tensor) => runProgram(p, v);
        const closed = makeJaxpr(f)(x);
        const [out] = evalJaxpr(closed.jaxpr, closed.consts, [x]);
        // The same primitives on the same data in the same order: bit-identical.
        expect(Array.from(out!.data())).toEqual(Array.from(f(x).data()));
      }),
      runs,
    );
  });

  const batched = (p: Program, n: number, dtype: "float32" | "float64") => arbTensorOfShape([n, ...p.shape], { dtype, bound: 1.5, minAbs: 1e-3 });

  it("vmap(f)(xs) == stack(xs.map(f)) at every in/out axis", () => {
    fc.assert(
      fc.property(
        arbProgram().chain((p) =>
          fc.tuple(fc.constant(p), fc.integer({ min: 0, max: 4 }).chain((n) => batched(p, n, "float32")), fc.nat(2), fc.nat(2)),
        ),
        ([p, xs, inAxisSeed, outAxisSeed]) => {
          const inAxis = inAxisSeed % xs.ndim;
          const perm = [...xs.shape.keys()].filter((i) => i !== 0);
          perm.splice(inAxis, 0, 0);
          const moved = Tensor._fromBuffer(
            perm.map((i) => xs.shape[i]!),
            xs.dtype,
            transposeData(xs, perm),
          );
          const f = (v: Tensor) => runProgram(p, v);
          const n = xs.shape[0]!;
          const per = Array.from({ length: n }, (_, i) => f(sliceFirst(xs, i)));
          const outRank = per.length ? per[0]!.ndim + 1 : runProgram(p, sliceFirst0(p)).ndim + 1;
          const outAxis = outAxisSeed % outRank;
          const ys = vmap(f, { inAxes: inAxis, outAxes: outAxis, axisSize: n })(moved) as Tensor;
          const back = moveToFront(ys, outAxis);
          const expected = per.flatMap((t) => Array.from(t.data()));
          expectClose(back, expected, 1e-6, 1e-6, "vmap");
        },
      ),
      runs,
    );
  });

  it("vmap(grad(f)) == per-example grad, and jvp(grad(f)) matches finite differences of grad", () => {
    fc.assert(
      fc.property(
        arbProgram({ smooth: true }).chain((p) => fc.tuple(fc.constant(p), batched(p, 3, "float64"), arbTensorOfShape(p.shape, f64))),
        ([p, xs, u]) => {
          const f = (v: Tensor) => runProgramScalar(p, v);
          const g = grad(f);
          const all = vmap(g)(xs) as Tensor;
          const per = [0, 1, 2].flatMap((i) => Array.from((g(sliceFirst(xs, i)) as Tensor).data()));
          expectClose(all, per, 1e-12, 1e-12, "vmap(grad)");
          const x = sliceFirst(xs, 0);
          const [, hv] = jvp(g, [x], [u]) as [Tensor, Tensor];
          const fd = finiteDifference((v) => g(v) as Tensor, x, u).value;
          expectClose(hv.data(), fd, 1e-6, 1e-6 * (1 + maxAbs((g(x) as Tensor).data())), "jvp(grad)");
        },
      ),
      { numRuns: 30 },
    );
  });
});

function sliceFirst(x: Tensor, i: number): Tensor {
  const inner = sizeOf(x.shape.slice(1));
  return Tensor._fromBuffer(x.shape.slice(1), x.dtype, x._buf!.slice(i * inner, (i + 1) * inner));
}
function sliceFirst0(p: Program): Tensor {
  return Tensor._zeros(p.shape, "float32");
}
function transposeData(x: Tensor, perm: number[]) {
  const shape = perm.map((i) => x.shape[i]!);
  const strides = x.shape.map((_, i) => sizeOf(x.shape.slice(i + 1)));
  const out = new Float32Array(sizeOf(shape));
  const idx = new Array(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let d = 0; d < shape.length; d++) src += idx[d] * strides[perm[d]!]!;
    out[o] = x._buf![src]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}
function moveToFront(x: Tensor, axis: number): Float32Array {
  const perm = [axis, ...[...x.shape.keys()].filter((i) => i !== axis)];
  return transposeData(x, perm);
}
