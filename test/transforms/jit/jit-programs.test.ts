/**
 * `jit(f)(x) ≈ f(x)` on random programs, for every backend available here: the reference
 * interpreter, the kernel-IR evaluator (`ts`), gpu.js `cpu`, gpu.js `webasm` and the own `wasm`.
 *
 * Tolerance, from a first-order float32 error analysis of the program (not tuned): running the
 * program in float64 on the same (float32-exact) input gives the oracle y and, step by step, the
 * largest magnitude M_k of each intermediate. Any float32 evaluation then has an error e_k with
 *   e_k ≤ L_k·e_{k-1} + c·ε·(M_k + |const|)     for a unary step with Lipschitz bound L_k
 *   e_k ≤ n·e_{k-1} + (n-1)·ε·n·M_{k-1}          for a sum over n terms (Higham's γ_{n-1} bound)
 *   e_k ≤ M_w·e_{k-1} + M_{k-1}·e_w + c·ε·M_k     for a product with an earlier value w
 * (c = 8: a step is at most two roundings of at most 4 ulp each: the webasm polynomial
 * transcendentals are within 4 ulp; ε = 2^-24, the unit roundoff). Underflow is absolute, not
 * relative, so every step also adds c·η·(1 + M_{k-1}) with η = 2^-126, the smallest normal float32
 * (a flushed denormal, or a constant like 5e-324 that rounds to 0). Earlier values are bounded by the
 * largest M and e so far. The checks allow 2·e_final (the second-order terms) for jit and for the
 * eager float32 run alike, so the eager run also validates the bound.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Tensor } from "../../../src/core/tensor.js";
import "../../../src/index.js"; // installs the Tensor method sugar (astype)
import { arbTensorOfShape } from "../../../src/testing/arbitraries.js";
import { type Program, type Step, arbProgram, runProgram } from "../../../src/testing/programs.js";
import { type BackendOption, jit, vmap } from "../../../src/transforms/index.js";

const U = 2 ** -24;
const C = 8;
const TINY = 2 ** -126;

const LIPSCHITZ: Record<string, number> = {
  sin: 1,
  cos: 1,
  tanh: 1,
  logistic: 0.25,
  neg: 1,
  softexp: Math.E, // d/dv exp(tanh v) = exp(tanh v)·sech²v ≤ e
  softlog: 1, // 2v/(1+v²) ≤ 1
  softsqrt: 1, // v/√(v²+1) ≤ 1
  transpose: 1,
  maxBack: 1,
};

function maxAbs(t: Tensor): number {
  let m = 0;
  for (const v of t.data()) m = Math.max(m, Math.abs(v));
  return m;
}

/** The first-order float32 error bound of a program at x (float64), as described above. */
function errorBound(p: Program, x64: Tensor): number {
  const ms = [maxAbs(x64)];
  const es = [0];
  let shape = x64.shape;
  for (let k = 1; k <= p.steps.length; k++) {
    const s = p.steps[k - 1]! as Step;
    const vk = runProgram({ shape: p.shape, steps: p.steps.slice(0, k) }, x64);
    const mPrev = ms[k - 1]!;
    const ePrev = es[k - 1]!;
    const mk = maxAbs(vk);
    const mAll = Math.max(...ms);
    const eAll = Math.max(...es);
    let e: number;
    switch (s.op) {
      case "square":
        e = 2 * mPrev * ePrev + C * U * mk;
        break;
      case "scale":
        e = Math.abs(s.c) * ePrev + C * U * (mk + Math.abs(s.c) * mPrev);
        break;
      case "shift":
        e = ePrev + C * U * (mk + Math.abs(s.c));
        break;
      case "add":
        e = ePrev + eAll + C * U * mk;
        break;
      case "mul":
        e = mAll * ePrev + mPrev * eAll + C * U * mk;
        break;
      case "max":
        e = Math.max(ePrev, eAll);
        break;
      case "sumBack": {
        const n = shape.length ? shape[s.axis % shape.length]! : 1;
        e = n * ePrev + Math.max(0, n - 1) * U * n * mPrev;
        break;
      }
      default:
        e = LIPSCHITZ[s.op]! * ePrev + C * U * mk;
    }
    e += C * TINY * (1 + mPrev);
    ms.push(mk);
    es.push(e);
    shape = vk.shape;
  }
  return es[es.length - 1]!;
}

const BACKENDS: [string, BackendOption][] = [
  ["reference", "reference"],
  ["ts", "ts"],
  ["gpu.js cpu", { name: "gpu.js", mode: "cpu" }],
  ["gpu.js webasm", { name: "gpu.js", mode: "webasm" }],
  ["wasm", "wasm"],
];

const programAndInput = arbProgram({ maxSteps: 6, maxDim: 5 }).chain((p) =>
  fc.tuple(fc.constant(p), arbTensorOfShape(p.shape, { bound: 1.5 })),
);

describe("jit on random programs", () => {
  for (const [tag, backend] of BACKENDS) {
    it(`jit(f)(x) ≈ f(x) within the float32 error bound [${tag}]`, () => {
      fc.assert(
        fc.property(programAndInput, ([p, x]) => {
          const f = (v: Tensor) => runProgram(p, v);
          const x64 = x.astype("float64");
          const y64 = f(x64).data();
          const tol = 2 * errorBound(p, x64);
          const eager = f(x).data();
          const jitted = jit(f, { backend })(x);
          expect(jitted.shape).toEqual(f(x).shape);
          const got = jitted.data();
          for (let i = 0; i < y64.length; i++) {
            expect(Math.abs(eager[i]! - y64[i]!)).toBeLessThanOrEqual(tol);
            expect(Math.abs(got[i]! - y64[i]!)).toBeLessThanOrEqual(tol);
          }
        }),
        { numRuns: Number(process.env.JIT_RUNS ?? (tag === "reference" ? 30 : 40)) },
      );
    });
  }

  for (const [tag, backend] of BACKENDS.filter(
    ([t]) => t === "ts" || t === "gpu.js webasm" || t === "wasm",
  )) {
    it(`vmap(jit(f)) equals jit(f) per example, bit for bit [${tag}]`, () => {
      // The batched kernels run the same float32 operations in the same order per example (the
      // reductions walk the same axis), so no tolerance is needed.
      const arb = arbProgram({ maxSteps: 5, maxDim: 4 }).chain((p) =>
        fc.tuple(
          fc.constant(p),
          fc.integer({ min: 1, max: 3 }).chain((b) => arbTensorOfShape([b, ...p.shape], { bound: 1.5 })),
        ),
      );
      fc.assert(
        fc.property(arb, ([p, xs]) => {
          const jf = jit((v: Tensor) => runProgram(p, v), { backend });
          const batched = vmap(jf)(xs) as Tensor;
          const size = p.shape.reduce((a, d) => a * d, 1);
          const rows = Array.from({ length: xs.shape[0]! }, (_, i) =>
            jf(Tensor._fromBuffer(p.shape, "float32", xs.data().slice(i * size, (i + 1) * size))).data(),
          );
          const got = batched.data();
          const per = rows[0]!.length;
          rows.forEach((r, i) => {
            for (let k = 0; k < per; k++)
              expect(Object.is(got[i * per + k], r[k]) || got[i * per + k] === r[k]).toBe(true);
          });
        }),
        { numRuns: 25 },
      );
    });
  }

  it("runs the compiled kernels on the backend it reports", () => {
    const p: Program = {
      shape: [3, 4],
      steps: [{ op: "tanh" }, { op: "sumBack", axis: 1 }, { op: "softexp" }],
    };
    const x = Tensor._fromBuffer(
      [3, 4],
      "float32",
      new Float32Array(12).map((_, i) => i / 10),
    );
    const low = jit((v: Tensor) => runProgram(p, v), { backend: { name: "gpu.js", mode: "webasm" } }).lower(
      x,
    );
    expect(low.backend).toBe("gpu.js:webasm");
    expect(low.kernels.every((k) => k.ranOn === "gpu.js:webasm")).toBe(true);
  });
});
