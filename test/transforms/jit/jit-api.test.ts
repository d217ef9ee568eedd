/**
 * jit's front end: the signature cache (trace counts), static arguments by value, pytrees in and
 * out, `lower`, composition with grad / vmap / jvp in both orders, nested jit inlining, tracer
 * leaks, float64 on the reference path, backend requirements. Values are compared with the
 * unjitted function; where both run the same float32 operations in the same order the results are
 * expected bit-equal, elsewhere the tolerance is stated next to the check.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, TraceError } from "../../../src/core/errors.js";
import * as lax from "../../../src/core/lax.js";
import type { Tensor } from "../../../src/core/tensor.js";
import { numpy as np } from "../../../src/index.js";
import { grad, jit, jvp, vmap } from "../../../src/transforms/index.js";

const EPS32 = 2 ** -23;

function close(a: Tensor, b: Tensor, rtol: number): void {
  expect(a.shape).toEqual(b.shape);
  const x = a.data();
  const y = b.data();
  for (let i = 0; i < x.length; i++)
    expect(Math.abs(x[i]! - y[i]!)).toBeLessThanOrEqual(rtol * (1 + Math.abs(y[i]!)));
}

const f = (x: Tensor, w: Tensor) => np.sum(np.tanh(x.mul(w).add(1)).mul(3));
const x = np.array([
  [1, 2, 3],
  [4, 5, 6],
]);
const w = np.array([0.1, -0.2, 0.3]);

describe("jit cache", () => {
  it("does not retrace the same signature, retraces new shapes and dtypes", () => {
    const jf = jit(f, { backend: "ts" });
    jf(x, w);
    jf(x.add(1), w.mul(2));
    expect(jf.traceCount).toBe(1);
    jf(np.ones([3, 3]), w);
    expect(jf.traceCount).toBe(2);
    jf(np.ones([3, 3], "float64"), w.astype("float64"));
    expect(jf.traceCount).toBe(3);
    jf(x, w);
    expect(jf.traceCount).toBe(3);
  });

  it("keys static arguments by value", () => {
    let traces = 0;
    const g = jit(
      (v: Tensor, opts: { scale: number; name: string }) => {
        traces++;
        return v.mul(opts.scale);
      },
      { staticArgnums: 1, backend: "ts" },
    );
    expect(g(x, { scale: 2, name: "a" }).toArray()).toEqual(x.mul(2).toArray());
    g(x, { name: "a", scale: 2 }); // a new object with equal value: no retrace
    expect(traces).toBe(1);
    expect(g(x, { scale: 3, name: "a" }).toArray()).toEqual(x.mul(3).toArray());
    expect(traces).toBe(2);
    expect(g.traceCount).toBe(2);
  });

  it("takes and returns pytrees", () => {
    const step = jit(
      (params: { w: Tensor; b: Tensor }, xs: Tensor) => {
        const y = xs.matmul(params.w).add(params.b);
        return { y, stats: [y.sum(), y.max()] };
      },
      { backend: "ts" },
    );
    const params = { w: np.array([[1], [2], [3]]), b: np.array([0.5]) };
    const out = step(params, x) as { y: Tensor; stats: Tensor[] };
    expect(out.y.toArray()).toEqual([[14.5], [32.5]]);
    expect(out.stats[0]!.item()).toBe(47);
    expect(out.stats[1]!.item()).toBe(32.5);
  });

  it("rejects a tensor as a static argument and an unknown backend", () => {
    expect(() => jit((v: Tensor, _s: Tensor) => v, { staticArgnums: 1 })(x, x)).toThrow(ConfigError);
    expect(() => jit(f, { backend: "nope" as never })(x, w)).toThrow(ConfigError);
  });
});

describe("jit lower", () => {
  it("reports the optimised jaxpr, fused kernels with gpu.js source, and where they ran", () => {
    const jf = jit(f, { backend: { name: "gpu.js", mode: "webasm" } });
    const low = jf.lower(x, w);
    expect(low.backend).toBe("gpu.js:webasm");
    expect(low.kernels).toHaveLength(1); // mul, add, tanh, mul and the sum fuse into one kernel
    const k = low.kernels[0]!;
    expect(k.fused).toEqual(expect.arrayContaining(["reduce_sum", "tanh", "mul", "add"]));
    expect(k.source).toMatch(/^function k_[0-9a-f]+\(a0, a1\) \{/);
    // Literal-bound loops; the two reduced axes stay separate since w is broadcast along one.
    expect(k.source).toContain("for (let r0 = 0; r0 < 2; r0++)");
    expect(k.source).toContain("for (let r1 = 0; r1 < 3; r1++)");
    expect(k.source).not.toContain("Math.tanh"); // webasm gets the inlined polynomial
    expect(low.jaxpr).toContain("reduce_sum");
    close(jf(x, w), f(x, w), 8 * EPS32 * 6);
  });

  it("inlines nested jits and folds constants", () => {
    const inner = jit((v: Tensor) => v.mul(2).add(1));
    const outer = jit((v: Tensor) => inner(v).mul(np.array([1, 2, 3]).sum()), { backend: "ts" });
    const low = outer.lower(w);
    expect(low.jaxpr).not.toContain("pjit");
    expect(low.jaxpr).not.toContain("reduce_sum"); // sum of a constant array is folded
    expect(outer(w).toArray()).toEqual(w.mul(2).add(1).mul(6).toArray());
  });

  it("inlines one nested jit called twice with fresh variables", () => {
    const inner = jit((v: Tensor) => np.sin(v).mul(v));
    const outer = jit((v: Tensor) => inner(inner(v).add(1)).sub(inner(v)), { backend: "ts" });
    const plain = (v: Tensor) => {
      const g = (u: Tensor) => np.sin(u).mul(u);
      return g(g(v).add(1)).sub(g(v));
    };
    // A handful of roundings per element; the kernel may order sums differently from eager.
    close(outer(w), plain(w), 16 * EPS32);
    close(
      grad((v: Tensor) => outer(v).sum())(w) as Tensor,
      grad((v: Tensor) => plain(v).sum())(w) as Tensor,
      16 * EPS32,
    );
  });

  it("eliminates common subexpressions and dead code", () => {
    const g = jit(
      (v: Tensor) => {
        np.exp(v); // dead
        return np.sin(v).add(np.sin(v));
      },
      { backend: "ts" },
    );
    const text = g.lower(w).jaxpr;
    expect(text.match(/sin/g)).toHaveLength(1);
    expect(text).not.toContain("exp");
  });

  it("runs float64 programs on the reference implementations", () => {
    const x64 = x.astype("float64");
    const w64 = w.astype("float64");
    const jf = jit(f);
    const low = jf.lower(x64, w64);
    expect(low.kernels).toHaveLength(0);
    expect(low.backend).toBe("reference");
    expect(jf(x64, w64).data()).toEqual(f(x64, w64).data());
  });

  it("reference backend interprets the staged jaxpr", () => {
    const jf = jit(f, { backend: "reference" });
    expect(jf.lower(x, w).backend).toBe("reference");
    expect(jf(x, w).data()).toEqual(f(x, w).data());
  });
});

describe("jit backends", () => {
  it("require fails loudly when the required runtime did not run", () => {
    const jf = jit(f, { backend: { name: "gpu.js", mode: "webasm", require: "gpu" } });
    expect(() => jf(x, w)).toThrow(ConfigError);
    const ok = jit(f, { backend: { name: "gpu.js", mode: "webasm", require: "webasm" } });
    expect(ok.lower(x, w).backend).toBe("gpu.js:webasm");
  });

  it("headless-gl, when a GL context exists (xvfb-run with gpu.js's optional gl built)", (ctx) => {
    const jf = jit(f, { backend: { name: "gpu.js", mode: "headlessgl", require: "gpu" } });
    let low: ReturnType<typeof jf.lower>;
    try {
      low = jf.lower(x, w);
    } catch (e) {
      // No display or no built `gl` module: gpu.js falls back, and require turns that into an error.
      if (e instanceof ConfigError) return ctx.skip("no GL context here (needs gl built and xvfb-run -a)");
      throw e;
    }
    expect(low.backend).toBe("gpu.js:headlessgl");
    close(jf(x, w), f(x, w), 64 * EPS32);
  });

  it("a gpu.js fallback from mode gpu is reported, and fails under require", (ctx) => {
    const low = jit(f, { backend: { name: "gpu.js", mode: "gpu" } }).lower(x, w);
    if (low.backend !== "gpu.js:webasm" && low.backend !== "gpu.js:cpu")
      return ctx.skip(`a GPU runtime ran here (${low.backend})`);
    expect(low.kernels[0]!.fallbackReason).toMatch(/instead of the requested gpu/);
    expect(() => jit(f, { backend: { name: "gpu.js", mode: "gpu", require: "gpu" } })(x, w)).toThrow(
      ConfigError,
    );
  });

  it("gpu.js cpu mode reports cpu", () => {
    const jf = jit(f, { backend: { name: "gpu.js", mode: "cpu" } });
    expect(jf.lower(x, w).backend).toBe("gpu.js:cpu");
  });
});

describe("jit composes with transforms", () => {
  const loss = (v: Tensor) => np.sum(np.tanh(x.mul(v)).mul(v));
  for (const backend of ["ts", { name: "gpu.js", mode: "webasm" }, "wasm"] as const) {
    const tag = typeof backend === "string" ? backend : "gpu.js webasm";
    // Tolerance: these few-op programs round at most ~10 times per element, and the webasm and
    // wasm tanh polynomials are within 4 ulp; 64 eps32 relative covers both with margin.
    const rtol = 64 * EPS32;
    it(`jit(grad(f)) = grad(f) [${tag}]`, () => {
      close(jit(grad(loss), { backend })(w), grad(loss)(w), rtol);
    });
    it(`grad(jit(f)) = grad(f), compiled once across calls [${tag}]`, () => {
      const jl = jit(loss, { backend });
      const g = grad(jl);
      close(g(w), grad(loss)(w), rtol);
      close(g(w.mul(2)), grad(loss)(w.mul(2)), rtol);
      expect(jl.traceCount).toBe(1);
    });
    it(`vmap(jit(f)) = vmap(f) [${tag}]`, () => {
      const ws = np.stack([w, w.mul(-1), w.add(0.5)]);
      close(vmap(jit(loss, { backend }))(ws), vmap(loss)(ws), rtol);
      close(jit(vmap(loss), { backend })(ws), vmap(loss)(ws), rtol);
    });
    it(`jvp(jit(f)) = jvp(f) [${tag}]`, () => {
      const [y1, t1] = jvp(jit(loss, { backend }), [w], [np.ones([3])]) as [Tensor, Tensor];
      const [y2, t2] = jvp(loss, [w], [np.ones([3])]) as [Tensor, Tensor];
      close(y1, y2, rtol);
      close(t1, t2, rtol);
    });
  }

  it("grad(grad(jit(f))) matches the unjitted second derivative", () => {
    const s = (v: Tensor) => np.sum(np.sin(v).mul(v));
    const d2 = (g: (v: Tensor) => Tensor) => grad((v: Tensor) => np.sum(grad(g)(v)));
    close(d2(jit(s, { backend: "ts" }))(w), d2(s)(w), 64 * EPS32);
  });

  it("closes over tracers of an enclosing transform (staged per call, not cached)", () => {
    const xs = np.array([1, 2, 3]);
    const inner = (wv: Tensor) => jit((v: Tensor) => v.mul(wv).sum(), { backend: "ts" })(xs);
    expect((grad(inner)(np.array(2)) as Tensor).item()).toBe(6);
    expect((vmap(inner)(np.array([1, 2])) as Tensor).toArray()).toEqual([6, 12]);
  });

  it("handles identity, constant and repeated outputs, and no arguments", () => {
    const v = np.array([1, 2, 3]);
    expect(jit((a: Tensor) => a, { backend: "ts" })(v).toArray()).toEqual([1, 2, 3]);
    expect(jit(() => np.array([1, 2]).mul(2), { backend: "ts" })().toArray()).toEqual([2, 4]);
    expect((jit(() => 3, { backend: "ts" })() as unknown as Tensor).item()).toBe(3); // a number leaf comes back as a weak scalar
    const [p, q, r] = jit((a: Tensor) => [a, a, a.mul(2)], { backend: "ts" })(v) as Tensor[];
    expect([p!.toArray(), q!.toArray(), r!.toArray()]).toEqual([
      [1, 2, 3],
      [1, 2, 3],
      [2, 4, 6],
    ]);
  });

  it("a leaked tracer stays an error", () => {
    let leaked: Tensor | null = null;
    const g = jit(
      (v: Tensor) => {
        leaked = v;
        return v.mul(2);
      },
      { backend: "ts" },
    );
    g(w);
    expect(() => lax.add(leaked!, w)).toThrow(TraceError);
  });
});
