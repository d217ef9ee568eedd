/**
 * The jit on gpu.js's headless-gl (WebGL 1 / GLSL ES 1.0) runtime: random programs, edge shapes,
 * specials, GLSL's elementary functions, and `require: "gpu"`.
 *
 * Needs a GL context: gpu.js's optional `gl` module built and an X display, so CI runs this file
 * under `xvfb-run -a` (Mesa's llvmpipe software renderer). Without a context the GL tests SKIP
 * (their names say why) and the test of the fallback path runs instead.
 *
 * Accuracy model on GL (Mesa 22.3 llvmpipe behind ANGLE's GLSL ES 1.0 translator), measured here and
 * checked below: `+ - *` and `/` and `sqrt` are correctly rounded (the GLSL 4.x spec allows 2.5 ulp
 * for `/`); GLSL's `exp` is only (3 + 2|x|) ulp and its `log` only 2^-21 absolute near 1 by the
 * spec (33 and 106 ulp measured), so the renderer expands exp/log/tanh from the same ≤ 4-ulp
 * polynomials as on webasm; `sin`/`cos` are GLSL builtins, Cephes-style range-reduced polynomials in
 * llvmpipe (≤ 1 ulp measured on [-10, 10]; the spec itself only promises 2^-11 absolute on [-π, π],
 * so the per-function test below pins the tighter figure and would flag a Mesa that differs).
 * Hence the same 8 ulps per step (two roundings of ≤ 4 ulp) as the webasm backend's bound.
 *
 * Mesa's compiler treats float arithmetic as reassociable: it folds `x - x` and `x * 0` to 0 even
 * for ±∞ and NaN, and `(1 + x) - 1` to `x`. The renderer spells out `x - x` (is_finite is lowered
 * to it), uses a series for log1p, and NaN-propagating comparisons for max/min (GLSL's builtins
 * drop NaN); other IEEE corner cases of non-finite inputs are not promised on GL.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../src/core/errors.js";
import * as lax from "../../../src/core/lax.js";
import { Tensor } from "../../../src/core/tensor.js";
import { numpy as np } from "../../../src/index.js";
import { arbTensorOfShape } from "../../../src/testing/arbitraries.js";
import { arbProgram, runProgram } from "../../../src/testing/programs.js";
import { type BackendOption, jit } from "../../../src/transforms/index.js";
import { gpuJsBackend } from "../../../src/transforms/jit/gpujs-backend.js";
import type { BinaryOp, Kernel, KExpr, UnaryOp } from "../../../src/transforms/jit/kernel-ir.js";
import { programErrorBound } from "./float32-bound.js";

const U = 2 ** -24;
const GL_BACKEND: BackendOption = { name: "gpu.js", mode: "headlessgl", require: "gpu" };

const load = (arg: number): KExpr => ({ op: "load", arg, index: { offset: 0, out: [1], red: [] } });

/** Whether gpu.js can build a headless-gl kernel here, and if not, why. */
function probeGl(): { ok: boolean; reason: string } {
  try {
    const k = gpuJsBackend({ mode: "headlessgl" }).compile({
      argSizes: [1],
      outShape: [1],
      outDType: "float32",
      reduction: null,
      expr: { op: "unary", fn: "neg", x: load(0) },
    });
    const out = k.run([new Float32Array([2])]);
    if (k.ranOn !== "gpu.js:headlessgl" || out[0] !== -2)
      return { ok: false, reason: `gpu.js ran ${k.ranOn} (${k.fallbackReason ?? "no reason given"})` };
    return { ok: true, reason: "" };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

const GL = probeGl();
const SKIP_NOTE = GL.ok
  ? ""
  : ` — SKIPPED: no GL context (${GL.reason.slice(0, 120)}); run under \`xvfb-run -a\` with gpu.js's gl built`;
if (!GL.ok) console.warn(`jit-gl.test.ts:${SKIP_NOTE}`);

function iota(shape: number[], scale = 0.1): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  return Tensor._fromBuffer(
    shape,
    "float32",
    new Float32Array(n).map((_, i) => Math.sin(i * 1.7) * scale * 10),
  );
}

function ints(shape: number[], mod: number): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  return Tensor._fromBuffer(
    shape,
    "float32",
    new Float32Array(n).map((_, i) => i % mod),
  );
}

/** |a − b| ≤ tol·(1 + |b|) elementwise, same shape and dtype; NaN and ±∞ must match exactly. */
function expectClose(a: Tensor, b: Tensor, tol: number): void {
  expect(a.shape).toEqual(b.shape);
  expect(a.dtype).toBe(b.dtype);
  const x = a.data();
  const y = b.data();
  for (let i = 0; i < x.length; i++) {
    if (Number.isFinite(y[i]!))
      expect(Math.abs(x[i]! - y[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(y[i]!)));
    else expect(x[i]).toBe(y[i]); // toBe is Object.is: NaN equals NaN
  }
}

/** Exact equality of every element, reporting the first mismatch's index (not thousands of lines). */
function expectExact(got: ArrayLike<number>, want: ArrayLike<number>): void {
  expect(got.length).toBe(want.length);
  let bad = -1;
  for (let i = 0; i < got.length && bad < 0; i++) if (!Object.is(got[i], want[i])) bad = i;
  expect(bad < 0 ? "all equal" : `first mismatch at ${bad}: ${got[bad]} vs ${want[bad]}`).toBe("all equal");
}

describe.skipIf(!GL.ok)(`jit on headless-gl${SKIP_NOTE}`, () => {
  const j = <F extends (...a: any[]) => any>(f: F) => jit(f, { backend: GL_BACKEND });

  it('require: "gpu" passes, and every kernel reports headless-gl', () => {
    const f = (x: Tensor, w: Tensor) => np.tanh(x.matmul(w)).sum(1);
    const x = iota([5, 6]);
    const w = iota([6, 3], 0.2);
    const low = jit(f, { backend: { name: "gpu.js", mode: "gpu", require: "gpu" } }).lower(x, w);
    expect(low.backend).toBe("gpu.js:headlessgl");
    expect(low.kernels.length).toBeGreaterThan(0);
    for (const k of low.kernels) {
      expect(k.ranOn).toBe("gpu.js:headlessgl");
      expect(k.fallbackReason).toBeUndefined();
    }
  });

  it("jit(f)(x) ≈ f(x) on random programs within the float32 error bound", () => {
    const arb = arbProgram({ maxSteps: 6, maxDim: 5 }).chain((p) =>
      fc.tuple(fc.constant(p), arbTensorOfShape(p.shape, { bound: 1.5 })),
    );
    fc.assert(
      fc.property(arb, ([p, x]) => {
        const f = (v: Tensor) => runProgram(p, v);
        const x64 = x.astype("float64");
        const y64 = f(x64).data();
        const tol = 2 * programErrorBound(p, x64, 8);
        const jitted = j(f)(x);
        expect(jitted.shape).toEqual(f(x).shape);
        const got = jitted.data();
        for (let i = 0; i < y64.length; i++) expect(Math.abs(got[i]! - y64[i]!)).toBeLessThanOrEqual(tol);
      }),
      { numRuns: Number(process.env.JIT_RUNS ?? 30) },
    );
  });

  it("size-0 axes: empty outputs, a sum over an empty axis is 0 and a max is -∞ (not -FLT_MAX)", () => {
    const x = np.zeros([0, 3]);
    expect(j((v: Tensor) => v.mul(2).add(1))(x).shape).toEqual([0, 3]);
    expect(j((v: Tensor) => v.exp().sum(0))(x).toArray()).toEqual([0, 0, 0]);
    const m = j((v: Tensor) => lax.reduceMax(v, [0]));
    expect(m(x).toArray()).toEqual([
      Number.NEGATIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]);
    expect(m.lower(x).kernels.every((k) => k.ranOn === "gpu.js:headlessgl")).toBe(true);
  });

  it("size-1 axes and odd sizes, with broadcasting", () => {
    const x = iota([1, 7, 1]);
    const y = iota([13, 7, 3], 0.05);
    const f = (a: Tensor, b: Tensor) => np.tanh(a.mul(b).add(0.5)).mul(a);
    // Elementwise only: at most 4 roundings plus the ≤ 4-ulp tanh polynomial.
    expectClose(j(f)(x, y), f(x, y), 16 * U);
    const one = np.array([0.75]);
    expect(j((v: Tensor) => v.mul(4).sum())(one).item()).toBe(3);
  });

  it("a 5000-long reduction is exact (the loop bound is a literal, not capped at 1000)", () => {
    const ones = np.ones([5000]);
    expect(j((v: Tensor) => v.sum())(ones).item()).toBe(5000);
    expect(j((v: Tensor) => v.reshape([2, 2500]).sum(1))(ones).toArray()).toEqual([2500, 2500]);
  });

  it("a 2^22-element reduction of small integers is exact (two stages)", () => {
    const n = 2 ** 22;
    // Every partial sum is an integer below 2^24, so float32 accumulation is exact in any order.
    expect(j((v: Tensor) => v.sum())(ints([n], 4)).item()).toBe((n / 4) * 6);
  });

  it("outputs larger than one texture row (16384) come back in order, to the last element", () => {
    // 1D: gpu.js packs the output into a 2D texture; integers below 2^24 make x·2 + 1 exact.
    const n = 16384 * 5 + 3;
    const x = ints([n], 2 ** 23);
    expectExact(j((v: Tensor) => v.mul(2).add(1))(x).data(), x.mul(2).add(1).data());
    // 2D with an x axis wider than the texture: the broadcast keeps the axes from merging.
    const a = ints([3, 20001], 2 ** 20);
    const b = ints([20001], 977);
    expectExact(j((p: Tensor, q: Tensor) => p.add(q))(a, b).data(), a.add(b).data());
  });

  it("2^23 + 3 outputs: texture indices stay exact across the whole range", () => {
    const n = 2 ** 23 + 3;
    const x = ints([n], 2 ** 24);
    const got = j((v: Tensor) => v.sub(1))(x).data();
    expectExact(got, x.sub(1).data());
  });

  it("rank-5 outputs split the leading index space exactly (float division on GL)", () => {
    const x = iota([2, 3, 2, 3, 4]);
    const y = iota([4], 0.3);
    const f = (v: Tensor, w: Tensor) => v.transpose([4, 3, 2, 1, 0]).mul(w.reshape([4, 1, 1, 1, 1]));
    expectExact(j(f)(x, y).data(), f(x, y).data());
    // A leading space of 65·63·67 = 274 365 cells that does not coalesce (axes 0 and 1 swap), split
    // by (q + 0.5)/d, which lies at least 0.5/d from an integer for every q.
    const big = ints([63, 65, 67, 2, 3], 2 ** 23);
    const g = (v: Tensor) => v.transpose([1, 0, 2, 4, 3]).add(1);
    const got = j(g)(big);
    expect(got.shape).toEqual([65, 63, 67, 3, 2]);
    expectExact(got.data(), g(big).data());
    // The GL text corrects each float division's floor with exact integer-valued steps.
    expect(j(g).lower(big).kernels[0]!.source).toMatch(/if \(o0 \* \d+\.0 > q\)/);
  });

  it("dot with transposed operands and a fused bias + relu epilogue, within γ_K", () => {
    const x = iota([7, 11]);
    const w = iota([5, 11], 0.2); // used transposed
    const bias = iota([5], 0.5);
    const f = (p: Tensor, q: Tensor, b: Tensor) => np.maximum(p.matmul(q.T).add(b), 0);
    const got = j(f)(x, w, bias).data();
    const want = f(x, w, bias).data();
    // |err| ≤ (K + 1)·ε·Σ|x_ik w_jk| + |b| on both sides (K = 11).
    const abs = np.abs(x).matmul(np.abs(w).T).add(np.abs(bias)).data();
    for (let i = 0; i < got.length; i++)
      expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(2 * 12 * U * abs[i]!);
    expect(j(f).lower(x, w, bias).kernels).toHaveLength(1);
  });

  it("property: matmuls of random odd shapes, with transposes and a fused epilogue, within γ_K", () => {
    const arb = fc
      .record({
        m: fc.integer({ min: 1, max: 9 }),
        k: fc.integer({ min: 1, max: 40 }),
        n: fc.integer({ min: 1, max: 9 }),
        transposed: fc.boolean(),
      })
      .chain((d) =>
        fc.tuple(
          fc.constant(d),
          arbTensorOfShape([d.m, d.k], { bound: 2 }),
          arbTensorOfShape(d.transposed ? [d.n, d.k] : [d.k, d.n], { bound: 2 }),
          arbTensorOfShape([d.n], { bound: 2 }),
        ),
      );
    fc.assert(
      fc.property(arb, ([d, x, w, bias]) => {
        const f = (p: Tensor, q: Tensor, b: Tensor) => np.tanh(p.matmul(d.transposed ? q.T : q).add(b));
        const got = j(f)(x, w, bias).data();
        const exact = f(x.astype("float64"), w.astype("float64"), bias.astype("float64")).data();
        const abs = np
          .abs(x)
          .matmul(np.abs(d.transposed ? w.T : w))
          .add(np.abs(bias))
          .data();
        // Dot in any order: γ_K·Σ|x_ik w_kj|, one more rounding for the bias, then tanh (Lipschitz
        // 1, ≤ 4-ulp polynomial, result ≤ 1): (K + 1)·ε·Σ + 8ε.
        for (let i = 0; i < got.length; i++)
          expect(Math.abs(got[i]! - exact[i]!)).toBeLessThanOrEqual((d.k + 1) * U * abs[i]! + 8 * U);
      }),
      { numRuns: 20 },
    );
  });

  it("reductions along each axis (sum, max, min, prod) of a transposed operand", () => {
    const x = iota([5, 7, 3], 0.15);
    const f = (v: Tensor) => {
      const t = v.transpose([2, 0, 1]);
      return [t.sum(0), lax.reduceMax(t, [1]), lax.reduceMin(t, [2]), lax.reduceProd(t, [0, 2])];
    };
    const got = j(f)(x) as Tensor[];
    const want64 = f(x.astype("float64")) as Tensor[];
    // The sum over n = 3 terms: (n - 1)·ε·Σ|x| with |x| ≤ 1.5, plus the final rounding; max and min
    // are exact; a product of n = 21 terms is within (n + 1)·ε relative.
    expectClose(got[0]!, want64[0]!.astype("float32"), 2 * U * 3 * 1.5 + U);
    expectExact(got[1]!.data(), want64[1]!.astype("float32").data());
    expectExact(got[2]!.data(), want64[2]!.astype("float32").data());
    const p = got[3]!.data();
    const p64 = want64[3]!.data();
    for (let i = 0; i < p.length; i++)
      expect(Math.abs(p[i]! - p64[i]!)).toBeLessThanOrEqual(22 * U * Math.abs(p64[i]!));
  });

  it("specials: ±∞, NaN and ±0 through inputs, is_finite, comparisons, select, exp and log", () => {
    const x = np.array([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 0, -0, 2, -3]);
    const f = (v: Tensor) => [
      lax.isFinite(v),
      v.greater(0),
      np.where(v.greater(0), v, v.mul(0.5)),
      np.exp(v),
      np.log(np.abs(v)),
      np.maximum(v, 1),
      np.minimum(v, 1),
      lax.reduceMax(v, [0]),
      lax.reduceMin(lax.slice(v, [3], [7]), [0]),
      lax.reduceMax(lax.slice(v, [3], [7]), [0]),
      np.sqrt(v),
      lax.rsqrt(v),
      np.sin(v),
      lax.pow(v, np.full([7], 3)),
    ];
    const got = j(f)(x) as Tensor[];
    const want = f(x) as Tensor[];
    expect(got[0]!.toArray()).toEqual(want[0]!.toArray());
    expect(got[1]!.toArray()).toEqual(want[1]!.toArray());
    for (const k of [2, 3, 4]) expectClose(got[k]!, want[k]!, 8 * U);
    // max and min propagate NaN (GLSL's builtins would drop it) and are exact otherwise.
    for (const k of [5, 6, 7, 8, 9]) expectExact(got[k]!.data(), want[k]!.data());
    // GLSL leaves sqrt, sin and pow of these undefined; they must still be NaN where Math says NaN.
    for (const k of [10, 11, 12, 13]) expectClose(got[k]!, want[k]!, 8 * U);
  });
});

describe.skipIf(!GL.ok)(`GLSL elementary functions against float64 Math${SKIP_NOTE}`, () => {
  const backend = gpuJsBackend({ mode: "headlessgl", require: "gpu" });
  const n = 4096;
  const specials = [0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 1e-6];
  const grid = (lo: number, hi: number, geometric: boolean) =>
    new Float32Array(n + specials.length).map((_, i) =>
      i >= n ? specials[i - n]! : geometric ? lo * (hi / lo) ** (i / n) : lo + ((hi - lo) * i) / n,
    );
  const unaryKernel = (fn: UnaryOp, size: number): Kernel => ({
    argSizes: [size],
    outShape: [size],
    outDType: "float32",
    reduction: null,
    expr: { op: "unary", fn, x: load(0) },
  });

  /** Checks got against ref elementwise: NaN and ±∞ exactly, finite values within bound(x, y). */
  function check(
    xs: Float32Array,
    got: Float32Array,
    ref: (i: number) => number,
    bound: (i: number, y: number) => number,
  ) {
    for (let i = 0; i < xs.length; i++) {
      const want = ref(i);
      if (Number.isNaN(want)) expect(Number.isNaN(got[i]!), `at ${xs[i]}`).toBe(true);
      else if (!Number.isFinite(want)) expect(got[i], `at ${xs[i]}`).toBe(want);
      else expect(Math.abs(got[i]! - want), `at ${xs[i]}`).toBeLessThanOrEqual(bound(i, want));
    }
  }

  // The polynomials (≤ 4 ulp, as on webasm): 8 ulp of the result, or of the smallest normal where
  // it underflows; expm1 and log1p near their cancellation points get 8 ulp of |x|/8.
  const polys: [UnaryOp, number, number, (v: number) => number][] = [
    ["exp", -87, 88, Math.exp],
    ["log", 1e-30, 1e30, Math.log],
    ["tanh", -50, 50, Math.tanh],
    ["logistic", -40, 40, (v) => 1 / (1 + Math.exp(-v))],
    ["log1p", -0.9, 50, Math.log1p],
    ["expm1", -20, 20, Math.expm1],
  ];
  for (const [fn, lo, hi, ref] of polys) {
    it(`${fn} (expanded polynomial) is within a few ulp over [${lo}, ${hi}] and exact on specials`, () => {
      const xs = grid(lo, hi, fn === "log");
      const k = backend.compile(unaryKernel(fn, xs.length));
      const got = k.run([xs]);
      expect(k.ranOn).toBe("gpu.js:headlessgl");
      check(
        xs,
        got,
        (i) => ref(xs[i]!),
        (i, y) =>
          8 *
          U *
          Math.max(Math.abs(y), 2 ** -126, fn === "expm1" || fn === "log1p" ? Math.abs(xs[i]!) / 8 : 0),
      );
    });
  }

  // GLSL builtins: sin/cos range-reduced polynomials (≤ 1 ulp measured; 8 ulp of |y| plus the
  // reduction's |x|·ε² allowed), sqrt correctly rounded, rsqrt = 1/sqrt two roundings.
  const builtins: [UnaryOp, number, number, (v: number) => number, (x: number, y: number) => number][] = [
    ["sin", -10, 10, Math.sin, (x, y) => 8 * U * (Math.abs(y) + U * (1 + Math.abs(x)))],
    ["cos", -10, 10, Math.cos, (x, y) => 8 * U * (Math.abs(y) + U * (1 + Math.abs(x)))],
    ["sqrt", 0, 1e6, Math.sqrt, (_x, y) => U * Math.abs(y)],
    ["rsqrt", 1e-3, 1e6, (v) => 1 / Math.sqrt(v), (_x, y) => 2 * U * Math.abs(y)],
  ];
  for (const [fn, lo, hi, ref, bound] of builtins) {
    it(`${fn} (GLSL builtin) is within its bound over [${lo}, ${hi}]`, () => {
      const xs = grid(lo, hi, false).subarray(0, n);
      const got = backend.compile(unaryKernel(fn, n)).run([xs]);
      check(
        xs,
        got,
        (i) => ref(xs[i]!),
        (i, y) => bound(xs[i]!, y) + 2 ** -149,
      );
    });
  }

  it("pow: negative bases with integer exponents keep their sign, fractional ones give NaN", () => {
    const as: number[] = [];
    const bs: number[] = [];
    for (const a of [-3.5, -2, -1, -0.5, 0.5, 1, 2, 3.5])
      for (const b of [-3, -2, -1, 0, 1, 2, 3, 0.5, -1.5, 2.25]) {
        as.push(a);
        bs.push(b);
      }
    const a = new Float32Array(as);
    const b = new Float32Array(bs);
    const expr: KExpr = { op: "binary", fn: "pow" as BinaryOp, a: load(0), b: load(1) };
    const k = backend.compile({
      argSizes: [a.length, b.length],
      outShape: [a.length],
      outDType: "float32",
      reduction: null,
      expr,
    });
    const got = k.run([a, b]);
    // GLSL pow is exp2(y·log2|x|): (3 + 2|y·log2 x|) ulp by the spec's inheritance rule, plus log2's.
    check(
      a,
      got,
      (i) => Math.fround(a[i]!) ** b[i]!,
      (i, y) => (8 + 2 * Math.abs(b[i]! * Math.log2(Math.abs(a[i]!)))) * 2 * U * Math.abs(y),
    );
  });
});

describe("without a display", () => {
  it('require: "gpu" in a process with no DISPLAY throws a ConfigError naming the fallback', () => {
    // A child process without DISPLAY cannot make a GL context even under xvfb-run, so this path is
    // exercised in every run, GL or not.
    const root = fileURLToPath(new URL("../../../", import.meta.url));
    const backendUrl = new URL("../../../src/transforms/jit/gpujs-backend.ts", import.meta.url).href;
    const script = `
      const { gpuJsBackend } = await import(${JSON.stringify(backendUrl)});
      const load = { op: "load", arg: 0, index: { offset: 0, out: [1], red: [] } };
      const k = gpuJsBackend({ mode: "gpu", require: "gpu" }).compile({
        argSizes: [1], outShape: [1], outDType: "float32", reduction: null,
        expr: { op: "unary", fn: "neg", x: load },
      });
      try { k.run([new Float32Array([1])]); console.log(JSON.stringify({ ran: k.ranOn })); }
      catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })); }`;
    const env = { ...process.env };
    delete env.DISPLAY;
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: root,
      env,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(child.status, child.stderr).toBe(0);
    const res = JSON.parse(child.stdout.trim().split("\n").pop()!) as { name?: string; message?: string };
    expect(res.name).toBe("ConfigError");
    expect(res.message).toMatch(/on (webasm|cpu), but "gpu" is required/);
    expect(res.message).toMatch(/instead of the requested gpu/);
  });
});

describe.skipIf(GL.ok)("without a GL context (plain `vitest run`)", () => {
  it('require: "gpu" throws a ConfigError that names the runtime gpu.js fell back to', () => {
    const f = (v: Tensor) => v.mul(2).add(1);
    const jf = jit(f, { backend: { name: "gpu.js", mode: "gpu", require: "gpu" } });
    let err: unknown;
    try {
      jf(np.ones([3]));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/(webasm|cpu)/);
    expect((err as Error).message).toMatch(/"gpu" is required|cannot run mode/);
    // Without require the same program falls back, and says so.
    const low = jit(f, { backend: { name: "gpu.js", mode: "gpu" } }).lower(np.ones([3]));
    expect(low.kernels[0]!.fallbackReason).toMatch(/instead of the requested gpu/);
  });
});

// CI installs Xvfb and builds gpu.js's `gl`, so there the GL suite above must run, not skip.
describe.runIf(Boolean(process.env.CI))("in CI", () => {
  it("a GL context exists, so the headless-gl tests ran", () => {
    expect(GL.reason).toBe("");
    expect(GL.ok).toBe(true);
  });
});
