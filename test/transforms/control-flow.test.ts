/**
 * Control flow primitives: values against plain JS loops, derivatives against float64 central
 * differences (h = 1e-5, error ~1e-10 · |f'''|, so rtol 1e-6 on these bounded functions), vmap
 * against a per-example loop, and the error paths.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TraceError } from "../../src/core/errors.js";
import * as lax from "../../src/core/lax.js";
import { Tensor } from "../../src/core/tensor.js";
import { expectClose } from "../../src/testing/checks.js";
import { cond, foriLoop, scan, switchCase, whileLoop } from "../../src/transforms/control-flow.js";
import { grad, jvp, makeJaxpr, vmap } from "../../src/transforms/index.js";

const f64 = (xs: number[], shape = [xs.length]) =>
  Tensor._fromBuffer(shape, "float64", Float64Array.from(xs));
const s64 = (x: number) => f64([x], []);
const i32 = (x: number) => Tensor._fromBuffer([], "int32", Int32Array.from([x]));
const bool = (x: boolean) => Tensor._fromBuffer([], "bool", Uint8Array.from([x ? 1 : 0]));
const vals = (t: Tensor) => Array.from(t._buf as ArrayLike<number>);
const sumAll = (x: Tensor) => lax.reduceSum(x, [...x.shape.keys()]);
const c64 = (v: number, like: Tensor) => lax.broadcastInDim(s64(v), [...like.shape], []);

/** Central difference of a scalar function along direction u at x. */
function fd(f: (x: Tensor) => Tensor, x: Tensor, u: Tensor, h = 1e-5): number {
  const xp = f64(
    vals(x).map((v, i) => v + h * vals(u)[i]!),
    [...x.shape],
  );
  const xm = f64(
    vals(x).map((v, i) => v - h * vals(u)[i]!),
    [...x.shape],
  );
  return (f(xp).item() - f(xm).item()) / (2 * h);
}
const dotv = (a: Tensor, b: Tensor) => vals(a).reduce((s, v, i) => s + v * vals(b)[i]!, 0);

const arbVec = (n: number) =>
  fc.array(fc.double({ min: -1.5, max: 1.5, noNaN: true }), { minLength: n, maxLength: n });
const runs = { numRuns: 30 };

describe("cond / switch", () => {
  const branchF = (x: Tensor) => lax.sin(x);
  const branchG = (x: Tensor) => lax.mul(x, x);
  it("picks the branch; switch clamps the index", () => {
    const x = f64([0.3, -0.7]);
    expectClose(cond(bool(true), branchF, branchG, x), lax.sin(x), 0, 0);
    expectClose(cond(bool(false), branchF, branchG, x), lax.mul(x, x), 0, 0);
    const brs = [branchF, branchG, (x: Tensor) => lax.neg(x)];
    expectClose(switchCase(i32(7), brs, x), lax.neg(x), 0, 0);
    expectClose(switchCase(i32(-3), brs, x), lax.sin(x), 0, 0);
    expectClose(switchCase(i32(1), brs, x), lax.mul(x, x), 0, 0);
  });
  it("pytree operands and closed-over values", () => {
    const w = f64([2, 3]);
    const out = cond(
      bool(true),
      (p: { a: Tensor; b: Tensor }) => ({ s: lax.add(lax.mul(p.a, w), p.b) }),
      (p: { a: Tensor; b: Tensor }) => ({ s: p.b }),
      { a: f64([1, 1]), b: f64([1, 2]) },
    );
    expect(vals(out.s)).toEqual([3, 5]);
  });
  it("branches with different avals raise a TraceError naming the branch", () => {
    expect(() =>
      cond(
        bool(true),
        (x: Tensor) => x,
        (x: Tensor) => sumAll(x),
        f64([1, 2]),
      ),
    ).toThrow(/branch 1.*f64\[\]/);
    expect(() =>
      cond(
        bool(true),
        (x: Tensor) => x,
        (x: Tensor) => sumAll(x),
        f64([1, 2]),
      ),
    ).toThrow(TraceError);
  });
  it("jvp and grad match finite differences", () => {
    fc.assert(
      fc.property(arbVec(3), arbVec(3), fc.boolean(), (xs, us, p) => {
        const f = (x: Tensor) =>
          sumAll(
            cond(
              bool(p),
              (y: Tensor) => lax.sin(lax.mul(y, x)),
              (y: Tensor) => lax.mul(y, y),
              x,
            ),
          );
        const x = f64(xs);
        const u = f64(us);
        const expected = fd(f, x, u);
        const [, t] = jvp(f, [x], [u]);
        expect(Math.abs((t as Tensor).item() - expected)).toBeLessThan(1e-6 * (1 + Math.abs(expected)));
        const g = grad(f)(x) as Tensor;
        expect(Math.abs(dotv(g, u) - expected)).toBeLessThan(1e-6 * (1 + Math.abs(expected)));
      }),
      runs,
    );
  });
  it("grad of switch with three branches, index-dependent residuals", () => {
    const brs = [(x: Tensor) => lax.exp(x), (x: Tensor) => lax.tanh(lax.mul(x, x)), (x: Tensor) => x];
    for (const k of [0, 1, 2]) {
      const f = (x: Tensor) => sumAll(switchCase(i32(k), brs, x));
      const x = f64([0.2, -0.4]);
      const u = f64([1, 0.5]);
      const g = grad(f)(x) as Tensor;
      expect(Math.abs(dotv(g, u) - fd(f, x, u))).toBeLessThan(1e-7);
    }
  });
  it("vmap with a batched predicate (select) and an unbatched one match a loop", () => {
    const xs = f64([0.1, -0.5, 0.9, 1.2], [4]);
    const ps = Tensor._fromBuffer([4], "bool", Uint8Array.from([1, 0, 0, 1]));
    const f = (p: Tensor, x: Tensor) => cond(p, branchF, branchG, x);
    const out = vmap(f)(ps, xs) as Tensor;
    const loop = [0, 1, 2, 3].map((i) => (vals(ps)[i] ? Math.sin(vals(xs)[i]!) : vals(xs)[i]! ** 2));
    expectClose(out, loop, 1e-15, 0);
    const out2 = vmap(f, { inAxes: [null, 0] })(bool(false), xs) as Tensor;
    expectClose(
      out2,
      vals(xs).map((v) => v * v),
      1e-15,
      0,
    );
    expect(makeJaxpr((p: Tensor, x: Tensor) => vmap(f)(p, x))(ps, xs).toString()).toContain("select");
  });
  it("vmap of grad with a batched index matches a loop", () => {
    const brs = [(x: Tensor) => lax.exp(x), (x: Tensor) => lax.sin(x), (x: Tensor) => lax.mul(x, x)];
    const f = (k: Tensor, x: Tensor) => switchCase(k, brs, x);
    const ks = Tensor._fromBuffer([3], "int32", Int32Array.from([2, 0, 1]));
    const xs = f64([0.3, -0.2, 0.9]);
    const g = vmap((k: Tensor, x: Tensor) => grad((x: Tensor) => f(k, x))(x))(ks, xs) as Tensor;
    expectClose(g, [2 * 0.3, Math.exp(-0.2), Math.cos(0.9)], 1e-14, 0);
  });
  it("makeJaxpr prints cond with its branches", () => {
    const text = makeJaxpr((x: Tensor) => cond(bool(true), branchF, branchG, x))(f64([1])).toString();
    expect(text).toContain("cond[");
    expect(text).toContain("sin");
  });
});

describe("scan", () => {
  it("cumulative sum matches a loop, forwards and reversed", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 0, maxLength: 6 }),
        fc.boolean(),
        (xs, reverse) => {
          const [c, ys] = scan((c: Tensor, x: Tensor) => [lax.add(c, x), lax.add(c, x)], s64(0), f64(xs), {
            reverse,
          });
          const exp: number[] = new Array(xs.length);
          let acc = 0;
          for (let k = 0; k < xs.length; k++) {
            const t = reverse ? xs.length - 1 - k : k;
            acc += xs[t]!;
            exp[t] = acc;
          }
          expectClose(ys as Tensor, exp, 1e-12, 1e-12);
          expect(Math.abs((c as Tensor).item() - acc)).toBeLessThan(1e-12);
        },
      ),
      runs,
    );
  });
  it("length without xs, pytree carry", () => {
    const [c] = scan(
      (c: { a: Tensor; n: Tensor }) => [{ a: lax.mul(c.a, s64(2)), n: lax.add(c.n, s64(1)) }, null],
      { a: s64(1), n: s64(0) },
      undefined,
      { length: 5 },
    );
    expect(c.a.item()).toBe(32);
    expect(c.n.item()).toBe(5);
  });
  it("carry mismatch raises a TraceError", () => {
    expect(() =>
      scan((c: Tensor, x: Tensor) => [lax.broadcastInDim(c, [2], []), x], s64(0), f64([1, 2])),
    ).toThrow(TraceError);
  });

  // RNN: h <- tanh(W h + x_t); loss = sum(h_T) + sum(ys^2).
  const rnn = (W: Tensor, xs: Tensor, reverse = false) => {
    const [h, ys] = scan(
      (h: Tensor, x: Tensor) => {
        const hn = lax.tanh(lax.add(lax.dotGeneral(W, h, { contracting: [[1], [0]], batch: [[], []] }), x));
        return [hn, sumAll(lax.mul(hn, hn))];
      },
      f64([0.1, -0.2]),
      xs,
      { reverse },
    );
    return lax.add(sumAll(h as Tensor), sumAll(ys as Tensor));
  };
  it("RNN grad w.r.t. W and xs matches finite differences", () => {
    fc.assert(
      fc.property(arbVec(4), arbVec(6), arbVec(4), arbVec(6), fc.boolean(), (w, x, uw, ux, reverse) => {
        const W = f64(w, [2, 2]);
        const X = f64(x, [3, 2]);
        const gW = grad((W: Tensor) => rnn(W, X, reverse))(W) as Tensor;
        const eW = fd((W) => rnn(W, X, reverse), W, f64(uw, [2, 2]));
        expect(Math.abs(dotv(gW, f64(uw, [2, 2])) - eW)).toBeLessThan(1e-6 * (1 + Math.abs(eW)));
        const gX = grad((X: Tensor) => rnn(W, X, reverse))(X) as Tensor;
        const eX = fd((X) => rnn(W, X, reverse), X, f64(ux, [3, 2]));
        expect(Math.abs(dotv(gX, f64(ux, [3, 2])) - eX)).toBeLessThan(1e-6 * (1 + Math.abs(eX)));
        const [, t] = jvp((W: Tensor) => rnn(W, X, reverse), [W], [f64(uw, [2, 2])]);
        expect(Math.abs((t as Tensor).item() - eW)).toBeLessThan(1e-6 * (1 + Math.abs(eW)));
      }),
      { numRuns: 15 },
    );
  });
  it("vmap of scan matches a loop (batched xs, unbatched init; batched init)", () => {
    const W = f64([0.5, -0.3, 0.2, 0.8], [2, 2]);
    const Xb = f64([0.1, 0.2, 0.3, -0.4, 0.5, 0.6, -0.7, 0.8, 0.9, 1.0, -1.1, 1.2], [2, 3, 2]);
    const out = vmap((X: Tensor) => rnn(W, X))(Xb) as Tensor;
    const loop = [0, 1].map((b) =>
      rnn(W, lax.reshape(lax.slice(Xb, [b, 0, 0], [b + 1, 3, 2]), [3, 2])).item(),
    );
    expectClose(out, loop, 1e-14, 1e-14);
    const Ws = f64([0.5, -0.3, 0.2, 0.8, 0.1, 0.2, 0.3, 0.4], [2, 2, 2]);
    const X = f64([0.1, 0.2, 0.3, -0.4, 0.5, 0.6], [3, 2]);
    const out2 = vmap((W: Tensor) => rnn(W, X))(Ws) as Tensor;
    const loop2 = [0, 1].map((b) =>
      rnn(lax.reshape(lax.slice(Ws, [b, 0, 0], [b + 1, 2, 2]), [2, 2]), X).item(),
    );
    expectClose(out2, loop2, 1e-14, 1e-14);
    const g = vmap((W: Tensor) => grad((W: Tensor) => rnn(W, X))(W))(Ws) as Tensor;
    const gl = [0, 1].flatMap((b) =>
      vals(
        grad((W: Tensor) => rnn(W, X))(
          lax.reshape(lax.slice(Ws, [b, 0, 0], [b + 1, 2, 2]), [2, 2]),
        ) as Tensor,
      ),
    );
    expectClose(g, gl, 1e-12, 1e-12);
  });
  it("grad through an empty scan is the identity on the carry", () => {
    const f = (c: Tensor) =>
      sumAll(scan((c: Tensor, x: Tensor) => [lax.mul(c, x), x], c, f64([], [0, 2]))[0] as Tensor);
    expect(vals(grad(f)(f64([1, 2])) as Tensor)).toEqual([1, 1]);
  });
  it("makeJaxpr prints scan with its body", () => {
    const text = makeJaxpr((xs: Tensor) => scan((c: Tensor, x: Tensor) => [lax.add(c, x), c], s64(0), xs)[0])(
      f64([1, 2]),
    ).toString();
    expect(text).toContain("scan[");
    expect(text).toContain("add");
  });
});

describe("foriLoop", () => {
  it("value with static bounds and with traced bounds", () => {
    const body = (i: Tensor, acc: Tensor) => lax.add(acc, lax.convertElementType(i, "float64"));
    expect(foriLoop(2, 6, body, s64(0)).item()).toBe(2 + 3 + 4 + 5);
    expect(foriLoop(i32(2), i32(6), body, s64(0)).item()).toBe(2 + 3 + 4 + 5);
    expect(foriLoop(3, 3, body, s64(1)).item()).toBe(1);
  });
  it("grad with static bounds matches finite differences", () => {
    const f = (x: Tensor) =>
      sumAll(foriLoop(0, 4, (_i: Tensor, c: Tensor) => lax.sin(lax.mul(c, x)), lax.add(x, c64(0.5, x))));
    const x = f64([0.3, -0.8]);
    const u = f64([0.7, 0.2]);
    const g = grad(f)(x) as Tensor;
    expect(Math.abs(dotv(g, u) - fd(f, x, u))).toBeLessThan(1e-7);
  });
});

describe("whileLoop", () => {
  const condFun = (c: [Tensor, Tensor]) => lax.lt(c[0], s64(1.5));
  const bodyFun = (c: [Tensor, Tensor]) =>
    [lax.add(c[0], s64(0.4)), lax.mul(lax.sin(c[1]), s64(1.1))] as [Tensor, Tensor];
  it("value matches a JS loop", () => {
    const [i, y] = whileLoop(condFun, bodyFun, [s64(0), s64(0.7)]);
    let a = 0;
    let b = 0.7;
    while (a < 1.5) [a, b] = [a + 0.4, Math.sin(b) * 1.1];
    expect(Math.abs(i.item() - a)).toBeLessThan(1e-15);
    expect(Math.abs(y.item() - b)).toBeLessThan(1e-15);
  });
  it("jvp matches finite differences", () => {
    const f = (x: Tensor) => whileLoop(condFun, bodyFun, [s64(0), x])[1] as Tensor;
    const [, t] = jvp(f, [s64(0.7)], [s64(1)]);
    expect(Math.abs((t as Tensor).item() - fd(f, s64(0.7), s64(1)))).toBeLessThan(1e-7);
  });
  it("vmap with a batched predicate matches a loop", () => {
    const f = (n: Tensor) =>
      whileLoop(
        (c: [Tensor, Tensor]) => lax.lt(c[0], n),
        (c: [Tensor, Tensor]) => [lax.add(c[0], s64(1)), lax.mul(c[1], s64(2))],
        [s64(0), s64(1)],
      )[1];
    const out = vmap(f)(f64([0, 1, 3, 5])) as Tensor;
    expect(vals(out)).toEqual([1, 2, 8, 32]);
  });
  it("grad raises a TraceError pointing to foriLoop/scan", () => {
    const f = (x: Tensor) => whileLoop(condFun, bodyFun, [s64(0), x])[1] as Tensor;
    expect(() => grad(f)(s64(0.7))).toThrow(TraceError);
    expect(() => grad(f)(s64(0.7))).toThrow(/forward-differentiable only.*foriLoop/);
  });
});
