/** customJvp, customVjp and checkpoint: the rules are used, compose with grad/vmap/jvp, and fail loudly. */
import { describe, expect, it } from "vitest";
import { DTypeError, ShapeError, TraceError } from "../../src/core/errors.js";
import * as lax from "../../src/core/lax.js";
import { scalarLike } from "../../src/core/primitives/elementwise.js";
import { instantiate } from "../../src/core/primitives/util.js";
import { Tensor } from "../../src/core/tensor.js";
import { expectClose, finiteDifference } from "../../src/testing/checks.js";
import { checkpoint, customJvp, customVjp } from "../../src/transforms/custom.js";
import {
  grad,
  jvp,
  jvpFlat,
  makeJaxpr,
  makeJaxprFlat,
  partialEvalJaxpr,
  vjp,
  vmap,
} from "../../src/transforms/index.js";

const f32 = (xs: number[], shape = [xs.length]) =>
  Tensor._fromBuffer(shape, "float32", Float32Array.from(xs));
const f64 = (xs: number[], shape = [xs.length]) =>
  Tensor._fromBuffer(shape, "float64", Float64Array.from(xs));
const sumAll = (x: Tensor) => lax.reduceSum(x, [...x.shape.keys()]);
const arr = (t: Tensor) => Array.from(t._buf as ArrayLike<number>);

// The JAX docs' example: log(1 + e^x) whose naive derivative overflows to nan for large x.
const log1pexpNaive = (x: Tensor) => lax.log(lax.add(scalarLike(1, x), lax.exp(x)));
function makeLog1pexp(scale: number) {
  const f = customJvp(log1pexpNaive);
  f.defJvp(([x]: Tensor[], [t]: Tensor[]) => {
    // 1 - 1/(1+e^x), stable for large x.
    const d = lax.sub(scalarLike(1, x), lax.div(scalarLike(1, x), lax.add(scalarLike(1, x), lax.exp(x))));
    return [f(x), lax.mul(lax.mul(d, scalarLike(scale, x)), t)];
  });
  return f;
}
const log1pexp = makeLog1pexp(1);

describe("customJvp", () => {
  it("evaluates f and grad uses the rule (finite where the naive grad is nan)", () => {
    const x = f32([100]);
    expect(arr(log1pexp(x))).toEqual(arr(log1pexpNaive(x)));
    expect(Number.isNaN(arr(grad((y: Tensor) => sumAll(log1pexpNaive(y)))(x))[0]!)).toBe(true);
    expect(arr(grad((y: Tensor) => sumAll(log1pexp(y)))(x))).toEqual([1]);
  });

  it("a deliberately scaled rule changes grad, jvp and vjp: the rule is what is used", () => {
    const x = f64([0.3, -1.2, 2]);
    const sig = arr(x).map((v) => 1 / (1 + Math.exp(-v)));
    const scaled = makeLog1pexp(3);
    expectClose(
      grad((y: Tensor) => sumAll(scaled(y)))(x),
      sig.map((s) => 3 * s),
      1e-12,
      1e-12,
    );
    expectClose(
      jvp(scaled, [x], [f64([1, 1, 1])])[1] as Tensor,
      sig.map((s) => 3 * s),
      1e-12,
      1e-12,
    );
    const [, pullback] = vjp(scaled, x);
    expectClose(
      pullback(f64([1, 1, 1]))[0] as Tensor,
      sig.map((s) => 3 * s),
      1e-12,
      1e-12,
    );
  });

  it("jvp of a correct rule matches central finite differences (float64)", () => {
    const x = f64([0.5, -2, 3, 0]);
    const u = f64([0.3, -1, 0.7, 2]);
    const [, t] = jvp(log1pexp, [x], [u]);
    const fd = finiteDifference(log1pexpNaive, x, u);
    expectClose(t as Tensor, fd.value, 1e-6, 1e-7);
  });

  it("higher order: the second derivative differentiates the rule (sigmoid')", () => {
    const x = f64([0.7]);
    const s = 1 / (1 + Math.exp(-0.7));
    const g2 = grad((y: Tensor) => sumAll(grad((z: Tensor) => sumAll(log1pexp(z)))(y)))(x);
    expectClose(g2, [s * (1 - s)], 1e-12, 1e-12);
  });

  it("vmap of f, of grad, and of jvp equals the per-example results", () => {
    const xs = f64([0.1, -3, 2.5, 40], [4, 1]);
    const ys = vmap(log1pexp)(xs) as Tensor;
    expectClose(ys, arr(log1pexpNaive(xs)), 1e-15, 0);
    const gs = vmap(grad((y: Tensor) => sumAll(log1pexp(y))))(xs) as Tensor;
    expect(gs.shape).toEqual([4, 1]);
    expectClose(
      gs,
      arr(xs).map((v) => 1 / (1 + Math.exp(-v))),
      1e-12,
      1e-12,
    );
    const ts = vmap((x: Tensor) => jvp(log1pexp, [x], [scalarLike(2, x)])[1])(xs) as Tensor;
    expectClose(
      ts,
      arr(xs).map((v) => 2 / (1 + Math.exp(-v))),
      1e-12,
      1e-12,
    );
  });

  it("appears as custom_jvp_call under makeJaxpr", () => {
    const text = makeJaxpr(log1pexp)(f32([1, 2])).toString();
    expect(text).toBe(
      [
        "{ lambda ; a:f32[2]. let",
        "    b:f32[2] = custom_jvp_call[call_jaxpr={ lambda ; c:f32[2]. let",
        "      d:f32[2] = broadcast_in_dim[broadcast_dimensions=() shape=(2,)] 1.0:f32[]",
        "      e:f32[2] = exp c",
        "      f:f32[2] = add d e",
        "      g:f32[2] = log f",
        "    in (g,) } jvp_jaxpr_fun=log1pexpNaive num_consts=0] a",
        "  in (b,) }",
      ].join("\n"),
    );
  });

  it("pytrees and nondiffArgnums", () => {
    const f = customJvp(
      (n: number, p: { a: Tensor; b: Tensor }) => [lax.mul(p.a, p.b), lax.mul(p.a, scalarLike(n, p.a))],
      { nondiffArgnums: [0] },
    );
    f.defJvp((n: number, [p]: [{ a: Tensor; b: Tensor }], [t]: [{ a: Tensor; b: Tensor }]) => [
      f(n, p),
      [lax.add(lax.mul(t.a, p.b), lax.mul(p.a, t.b)), lax.mul(t.a, scalarLike(n, p.a))],
    ]);
    const p = { a: f64([2]), b: f64([5]) };
    const g = grad((q: { a: Tensor; b: Tensor }) => {
      const [u, v] = f(3, q) as Tensor[];
      return sumAll(lax.add(u!, v!));
    })(p) as { a: Tensor; b: Tensor };
    expect(arr(g.a)).toEqual([8]);
    expect(arr(g.b)).toEqual([2]);
  });

  it("a rule returning the wrong shape or dtype raises a typed error", () => {
    const bad = customJvp((x: Tensor) => lax.sin(x));
    bad.defJvp(([x]: Tensor[], [t]: Tensor[]) => [lax.sin(x), sumAll(t)]);
    expect(() => grad((y: Tensor) => sumAll(bad(y)))(f32([1, 2]))).toThrow(ShapeError);
    const bad2 = customJvp((x: Tensor) => lax.sin(x));
    bad2.defJvp(([x]: Tensor[], [t]: Tensor[]) => [lax.sin(x), lax.convertElementType(t, "float64")]);
    expect(() => jvp(bad2, [f32([1])], [f32([1])])).toThrow(DTypeError);
    const none = customJvp((x: Tensor) => x);
    expect(() => none(f32([1]))).toThrow(TraceError);
  });
});

// Identity forward, cotangent clipped to [-1, 1] backward.
const clipGradient = customVjp((x: Tensor) => x);
clipGradient.defVjp(
  (x: Tensor) => [x, null],
  (_res: unknown, g: Tensor) => [lax.max(lax.min(g, scalarLike(1, g)), scalarLike(-1, g))],
);

describe("customVjp", () => {
  it("grad uses bwd: the cotangent is clipped", () => {
    const x = f64([1, -2, 3]);
    expect(arr(clipGradient(x))).toEqual([1, -2, 3]);
    // d/dx sum(5 * clip(x)) = clip(5) = 1 per element
    expect(arr(grad((y: Tensor) => sumAll(lax.mul(clipGradient(y), scalarLike(5, y))))(x))).toEqual([
      1, 1, 1,
    ]);
    expect(arr(grad((y: Tensor) => sumAll(lax.mul(clipGradient(y), scalarLike(0.25, y))))(x))).toEqual([
      0.25, 0.25, 0.25,
    ]);
  });

  it("used twice, residuals flow to bwd, and grad matches the analytic value", () => {
    const sinV = customVjp((x: Tensor) => lax.sin(x));
    sinV.defVjp(
      (x: Tensor) => [lax.sin(x), { c: lax.cos(x) }],
      (res: { c: Tensor }, g: Tensor) => [lax.mul(res.c, g)],
    );
    const x = f64([0.2, 1.1]);
    const g = grad((y: Tensor) => sumAll(sinV(sinV(y))))(x);
    expectClose(
      g,
      arr(x).map((v) => Math.cos(Math.sin(v)) * Math.cos(v)),
      1e-14,
      0,
    );
    const g2 = grad((y: Tensor) =>
      sumAll(lax.mul(clipGradient(lax.mul(y, scalarLike(3, y))), clipGradient(y))),
    )(f64([0.1]));
    // d/dy [3y * y] with both cotangents clipped: clip(y)*3 + clip(3y) = 0.3 + 0.3
    expectClose(g2, [0.6], 1e-14, 0);
  });

  it("second order through a differentiable bwd, and custom_lin in the linear jaxpr", () => {
    const sq = customVjp((x: Tensor) => lax.mul(x, x));
    sq.defVjp(
      (x: Tensor) => [lax.mul(x, x), x],
      (x: Tensor, g: Tensor) => [lax.mul(lax.mul(scalarLike(2, x), x), g)],
    );
    const x = f64([1.5, -2]);
    expectClose(grad((y: Tensor) => sumAll(grad((z: Tensor) => sumAll(sq(z)))(y)))(x), [2, 2], 1e-15, 0);
    const closed = makeJaxprFlat(
      (p, t) => {
        const [o, to] = jvpFlat((y) => [sq(y!)], [p!], [t!]);
        return [...o, ...to.map(instantiate)];
      },
      [x.aval, x.aval],
    );
    const { unknown, numResiduals } = partialEvalJaxpr(closed.jaxpr, [false, true], [false, true]);
    expect(unknown.eqns.map((e) => e.prim.name)).toEqual(["custom_lin"]);
    expect(numResiduals).toBe(1);
  });

  it("vmap(grad(...)) and vmap of the function", () => {
    const xs = f64([0.5, -4, 2], [3, 1]);
    const gs = vmap(grad((y: Tensor) => sumAll(lax.mul(clipGradient(y), y))))(xs) as Tensor;
    // d/dy clip(y)*y: ct for clip = y clipped, plus clip(y)=y
    expectClose(
      gs,
      arr(xs).map((v) => Math.max(-1, Math.min(1, v)) + v),
      1e-14,
      0,
    );
    expect(arr(vmap(clipGradient)(xs) as Tensor)).toEqual(arr(xs));
  });

  it("jvp raises as in JAX", () => {
    expect(() => jvp(clipGradient, [f64([1])], [f64([1])])).toThrow(
      /can't apply forward-mode autodiff \(jvp\) to a custom_vjp function/,
    );
    expect(() => jvp(clipGradient, [f64([1])], [f64([1])])).toThrow(TraceError);
  });

  it("bwd returning the wrong shape or count raises a typed error", () => {
    const bad = customVjp((x: Tensor) => x);
    bad.defVjp(
      (x: Tensor) => [x, null],
      (_r: unknown, g: Tensor) => [sumAll(g)],
    );
    expect(() => grad((y: Tensor) => sumAll(bad(y)))(f64([1, 2]))).toThrow(ShapeError);
    const bad2 = customVjp((x: Tensor, y: Tensor) => lax.add(x, y));
    bad2.defVjp(
      (x: Tensor, y: Tensor) => [lax.add(x, y), null],
      (_r: unknown, g: Tensor) => [g],
    );
    expect(() => grad((y: Tensor) => sumAll(bad2(y, y)))(f64([1, 2]))).toThrow(TraceError);
  });

  it("nondiffArgnums are passed first to bwd", () => {
    const scaleCt = customVjp((_k: number, x: Tensor) => x, { nondiffArgnums: [0] });
    scaleCt.defVjp(
      (_k: number, x: Tensor) => [x, null],
      (k: number, _r: unknown, g: Tensor) => [lax.mul(g, scalarLike(k, g))],
    );
    expect(arr(grad((y: Tensor) => sumAll(scaleCt(7, y)))(f64([1, 2])))).toEqual([7, 7]);
  });
});

describe("checkpoint", () => {
  const body = (x: Tensor) => lax.sin(lax.sin(lax.mul(lax.sin(x), lax.cos(x))));
  const loss = (x: Tensor) => sumAll(body(x));
  const lossCk = (x: Tensor) => sumAll(checkpoint(body)(x));

  it("same values and gradients, bitwise in float64", () => {
    const x = f64([0.3, -1.4, 2.2, 0]);
    expect(arr(checkpoint(body)(x))).toEqual(arr(body(x)));
    expect(arr(grad(lossCk)(x))).toEqual(arr(grad(loss)(x)));
    expect(arr(grad((y: Tensor) => sumAll(grad(lossCk)(y)))(x))).toEqual(
      arr(grad((y: Tensor) => sumAll(grad(loss)(y)))(x)),
    );
    const [, t] = jvp(checkpoint(body), [x], [f64([1, 2, 3, 4])]);
    expect(arr(t as Tensor)).toEqual(arr(jvp(body, [x], [f64([1, 2, 3, 4])])[1] as Tensor));
    const xs = f64([0.3, -1.4, 2.2, 0, 1, 2], [3, 2]);
    expect(arr(vmap(grad(lossCk))(xs) as Tensor)).toEqual(arr(vmap(grad(loss))(xs) as Tensor));
  });

  it("differentiates through closed-over tracers (hoisted into inputs)", () => {
    const x = f64([0.3, -1.4]);
    const w = f64([2, 0.5]);
    const viaClosure = (v: Tensor) => sumAll(checkpoint((y: Tensor) => body(lax.mul(y, v)))(x));
    const direct = (v: Tensor) => sumAll(body(lax.mul(x, v)));
    expect(arr(grad(viaClosure)(w))).toEqual(arr(grad(direct)(w)));
    expect(arr(vmap(grad(viaClosure))(f64([1, 2, 3, 4], [2, 2])) as Tensor)).toEqual(
      arr(vmap(grad(direct))(f64([1, 2, 3, 4], [2, 2])) as Tensor),
    );
  });

  it("everything_saveable gives the same gradients", () => {
    const x = f64([0.3, -1.4]);
    const ck = (y: Tensor) => sumAll(checkpoint(body, { policy: "everything_saveable" })(y));
    expect(arr(grad(ck)(x))).toEqual(arr(grad(loss)(x)));
  });

  it("reverse mode saves only the inputs as residuals", () => {
    const residuals = (f: (x: Tensor) => Tensor, x: Tensor) => {
      const closed = makeJaxprFlat(
        (p, t) => {
          const [o, to] = jvpFlat((y) => [f(y)], [p!], [t!]);
          return [...o, ...to.map(instantiate)];
        },
        [x.aval, x.aval],
      );
      return partialEvalJaxpr(closed.jaxpr, [false, true], [false, true]).numResiduals;
    };
    const x = f64([0.3, -1.4]);
    const plain = residuals(body, x);
    const ck = residuals(checkpoint(body), x);
    expect(ck).toBe(1);
    expect(plain).toBeGreaterThan(ck);
    expect(makeJaxpr(grad(lossCk))(x).toString()).toContain("checkpoint[");
  });
});
