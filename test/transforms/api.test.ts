/** The transforms' API: options, known jaxpr texts, per-primitive rules, and every error path. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TraceError, ShapeError, DTypeError } from "../../src/core/errors.js";
import * as lax from "../../src/core/lax.js";
import { scalarLike } from "../../src/core/primitives/elementwise.js";
import { Tensor } from "../../src/core/tensor.js";
import { arbTensorOfShape } from "../../src/testing/arbitraries.js";
import { dot, expectClose, finiteDifference } from "../../src/testing/checks.js";
import { grad, hessian, hvp, jacfwd, jacrev, jvp, linearize, makeJaxpr, valueAndGrad, vjp, vmap } from "../../src/transforms/index.js";

const f32 = (xs: number[], shape = [xs.length]) => Tensor._fromBuffer(shape, "float32", Float32Array.from(xs));
const f64 = (xs: number[], shape = [xs.length]) => Tensor._fromBuffer(shape, "float64", Float64Array.from(xs));
const sumAll = (x: Tensor) => lax.reduceSum(x, [...x.shape.keys()]);

describe("makeJaxpr prints JAX's text form", () => {
  it("sin", () => {
    expect(makeJaxpr((x: Tensor) => lax.sin(x))(f32([1, 2, 3])).toString()).toBe("{ lambda ; a:f32[3]. let b:f32[3] = sin a in (b,) }");
  });
  it("two inputs, a literal and a reduction", () => {
    const text = makeJaxpr((x: Tensor, y: Tensor) => lax.reduceSum(lax.mul(lax.add(x, y), scalarLike(2, x)), [0]))(f32([1, 2]), f32([3, 4])).toString();
    expect(text).toBe(
      [
        "{ lambda ; a:f32[2] b:f32[2]. let",
        "    c:f32[2] = add a b",
        "    d:f32[2] = broadcast_in_dim[broadcast_dimensions=() shape=(2,)] 2.0:f32[]",
        "    e:f32[2] = mul c d",
        "    f:f32[] = reduce_sum[axes=(0,)] e",
        "  in (f,) }",
      ].join("\n"),
    );
  });
  it("closed-over arrays become constvars", () => {
    const c = f32([1, 2, 3]);
    expect(makeJaxpr((x: Tensor) => lax.mul(x, c))(f32([1, 1, 1])).toString()).toBe("{ lambda a:f32[3]; b:f32[3]. let c:f32[3] = mul b a in (c,) }");
  });
});

describe("grad options", () => {
  const f = (x: Tensor, y: Tensor) => sumAll(lax.mul(lax.mul(x, x), y));
  it("argnums as a number and a list", () => {
    const x = f64([1, 2]);
    const y = f64([3, 4]);
    expect((grad(f)(x, y) as Tensor).toArray()).toEqual([6, 16]);
    expect((grad(f, { argnums: 1 })(x, y) as Tensor).toArray()).toEqual([1, 4]);
    const [gx, gy] = grad(f, { argnums: [0, 1] })(x, y) as Tensor[];
    expect([gx!.toArray(), gy!.toArray()]).toEqual([[6, 16], [1, 4]]);
  });
  it("valueAndGrad with hasAux returns [[value, aux], grads]", () => {
    const [[v, aux], g] = valueAndGrad((x: Tensor) => [sumAll(lax.mul(x, x)), { double: lax.add(x, x) }], { hasAux: true })(f64([1, 2])) as any;
    expect(v.item()).toBe(5);
    expect(aux.double.toArray()).toEqual([2, 4]);
    expect(g.toArray()).toEqual([2, 4]);
  });
  it("gradients over pytrees", () => {
    const params = { w: f64([1, 2]), b: f64([3]) };
    const g = grad((p: typeof params) => lax.add(sumAll(lax.mul(p.w, p.w)), sumAll(p.b)))(params) as typeof params;
    expect(g.w.toArray()).toEqual([2, 4]);
    expect(g.b.toArray()).toEqual([1]);
  });
  it("higher order: grad(grad(sin)) = -sin", () => {
    const x = f64([0.7], []);
    expect((grad(grad((v: Tensor) => lax.sin(v)))(x) as Tensor).item()).toBeCloseTo(-Math.sin(0.7), 14);
  });
  it("jacfwd, jacrev and hessian agree", () => {
    const f = (x: Tensor) => lax.mul(lax.sin(x), lax.reduceSum(x, []));
    const x = f64([0.1, 0.5, -0.3]);
    expectClose(jacfwd(f)(x), jacrev(f)(x), 1e-14, 1e-14);
    const h = hessian((v: Tensor) => sumAll(lax.mul(lax.mul(v, v), v)))(x);
    // d²/dx² Σx³ = diag(6x).
    expectClose(h, f64([0.6, 0, 0, 0, 3, 0, 0, 0, -1.8], [3, 3]), 1e-14, 1e-14, "hessian");
  });
  it("hvp is the Hessian times a vector", () => {
    const x = f64([1, 2]);
    const v = f64([1, -1]);
    const out = hvp((w: Tensor) => sumAll(lax.mul(lax.mul(w, w), w)), [x], [v]) as Tensor;
    expect(out.toArray()).toEqual([6, -12]);
  });
  it("linearize gives the jvp as a linear function", () => {
    const [y, fJvp] = linearize((x: Tensor) => lax.sin(x), f64([0, 1]));
    expect((y as Tensor).toArray()).toEqual([0, Math.sin(1)]);
    expect((fJvp(f64([1, 1])) as Tensor).toArray()).toEqual([1, Math.cos(1)]);
  });
  it("stopGradient blocks the gradient", () => {
    const g = grad((x: Tensor) => sumAll(lax.mul(x, lax.stopGradient(x))))(f64([3])) as Tensor;
    expect(g.toArray()).toEqual([3]);
  });
});

describe("per-primitive JVPs against float64 finite differences", () => {
  type Case = { name: string; f: (x: Tensor) => Tensor; minAbs?: number; positive?: boolean };
  const cases: Case[] = [
    { name: "exp", f: lax.exp },
    { name: "log", f: (x) => lax.log(lax.abs(x)), minAbs: 0.1 },
    { name: "log1p", f: (x) => lax.log1p(lax.mul(x, x)) },
    { name: "expm1", f: lax.expm1 },
    { name: "sqrt", f: (x) => lax.sqrt(lax.abs(x)), minAbs: 0.1 },
    { name: "rsqrt", f: (x) => lax.rsqrt(lax.abs(x)), minAbs: 0.1 },
    { name: "tanh", f: lax.tanh },
    { name: "logistic", f: lax.logistic },
    { name: "sin", f: lax.sin },
    { name: "cos", f: lax.cos },
    { name: "abs", f: lax.abs, minAbs: 0.01 },
    { name: "erf", f: lax.erf },
    { name: "integer_pow", f: (x) => lax.integerPow(x, 3) },
    { name: "div", f: (x) => lax.div(lax.sin(x), lax.add(lax.mul(x, x), scalarLike(1, x))) },
    { name: "pow", f: (x) => lax.pow(lax.add(lax.abs(x), scalarLike(0.5, x)), lax.cos(x)), minAbs: 0.01 },
    { name: "atan2", f: (x) => lax.atan2(lax.sin(x), lax.add(lax.cos(x), scalarLike(2, x))) },
    { name: "max", f: (x) => lax.max(x, lax.neg(lax.mul(x, scalarLike(0.5, x)))), minAbs: 0.01 },
    { name: "reduce_max", f: (x) => lax.reduceMax(lax.add(x, iotaLike(x)), [0]) },
    { name: "reduce_prod", f: (x) => lax.reduceProd(x, [0]) },
    { name: "transpose", f: (x) => lax.transpose(lax.reshape(x, [2, 2]), [1, 0]) },
  ];
  for (const c of cases) {
    it(c.name, () => {
      fc.assert(
        fc.property(
          arbTensorOfShape([4], { dtype: "float64", bound: 2, minAbs: c.minAbs ?? 1e-3 }),
          arbTensorOfShape([4], { dtype: "float64", bound: 1, minAbs: 1e-3 }),
          (x, u) => {
            const [y, t] = jvp(c.f, [x], [u]) as [Tensor, Tensor];
            const fd = finiteDifference(c.f, x, u).value;
            const scale = 1 + Math.max(...Array.from(y.data(), Math.abs));
            expectClose(t.data(), fd, 1e-6, 1e-6 * scale, c.name);
            // And reverse mode agrees with forward mode: <v, J u> = <J^T v, u> with v = 1.
            const ones = Tensor._fromBuffer(y.shape, "float64", new Float64Array(y.size).fill(1));
            const [, pull] = vjp(c.f, x);
            const jt = pull(ones)[0] as Tensor;
            expect(dot(jt.data(), u.data())).toBeCloseTo(dot(ones.data(), t.data()), 9);
          },
        ),
        { numRuns: 40 },
      );
    });
  }
});

function iotaLike(x: Tensor): Tensor {
  // Distinct offsets keep the maximum unique (the JVP at ties is a convention).
  return Tensor._fromBuffer(x.shape, x.dtype, Float64Array.from({ length: x.size }, (_, i) => 10 * i));
}

describe("vmap", () => {
  it("maps pytrees with prefix inAxes and null", () => {
    const f = (p: { w: Tensor; b: Tensor }, x: Tensor) => lax.add(lax.mul(p.w, x), p.b);
    const p = { w: f32([1, 2]), b: f32([10, 20]) };
    const xs = f32([1, 2, 3, 4, 5, 6], [3, 2]);
    const out = vmap(f, { inAxes: [{ w: null, b: null }, 0] })(p, xs) as Tensor;
    expect(out.toArray()).toEqual([[11, 24], [13, 28], [15, 32]]);
  });
  it("nested vmap", () => {
    const xs = f32([1, 2, 3, 4, 5, 6], [2, 3]);
    const out = vmap(vmap((x: Tensor) => lax.mul(x, x)))(xs) as Tensor;
    expect(out.toArray()).toEqual([[1, 4, 9], [16, 25, 36]]);
  });
  it("inconsistent sizes name the arguments and sizes", () => {
    expect(() => vmap((a: Tensor, b: Tensor) => lax.add(a, b))(f32([1, 2]), f32([1, 2, 3]))).toThrow(ShapeError);
    expect(() => vmap((a: Tensor, b: Tensor) => lax.add(a, b))(f32([1, 2]), f32([1, 2, 3]))).toThrow(/size 2 for leaves 0; size 3 for leaves 1/);
  });
});

describe("errors", () => {
  it("grad of a non-scalar output is a TraceError", () => {
    expect(() => grad((x: Tensor) => lax.sin(x))(f32([1, 2]))).toThrow(TraceError);
    expect(() => grad((x: Tensor) => lax.sin(x))(f32([1, 2]))).toThrow(/scalar float output, got f32\[2\]/);
  });
  it("grad with respect to an integer input is a DTypeError", () => {
    const ints = Tensor._fromBuffer([2], "int32", Int32Array.from([1, 2]));
    expect(() => grad((x: Tensor) => lax.reduceSum(x, [0]))(ints)).toThrow(DTypeError);
  });
  it("a leaked tracer raises a TraceError that says so", () => {
    let leaked: Tensor | null = null;
    grad((x: Tensor) => {
      leaked = x;
      return sumAll(x);
    })(f32([1]));
    expect(() => lax.sin(leaked!)).toThrow(/escaped the transform/);
  });
  it("needing a concrete value under a transform points to lax.cond and staticArgnums", () => {
    expect(() => grad((x: Tensor) => (x.item() > 0 ? x : lax.neg(x)))(f32([1], []))).toThrow(/lax.cond.*staticArgnums/s);
  });
  it("argnums out of range", () => {
    expect(() => grad((x: Tensor) => sumAll(x), { argnums: 2 })(f32([1]))).toThrow(/argnums 2 is out of range/);
  });
  it("jvp with mismatched tangent shapes", () => {
    expect(() => jvp((x: Tensor) => x, [f32([1, 2])], [f32([1])])).toThrow(/tangent 0 has shape \[1\]/);
  });
});
