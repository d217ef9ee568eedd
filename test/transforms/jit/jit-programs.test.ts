/**
 * `jit(f)(x) ≈ f(x)` on random programs, for every backend available here: the reference
 * interpreter, the kernel-IR evaluator (`ts`), gpu.js `cpu`, gpu.js `webasm` and the own `wasm`.
 *
 * Tolerance, from a first-order float32 error analysis of the program (not tuned): the bound of
 * ./float32-bound.ts with c = 8 ulps per step. The checks allow 2·e_final (the second-order terms)
 * for jit and for the eager float32 run alike, so the eager run also validates the bound.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Tensor } from "../../../src/core/tensor.js";
import "../../../src/index.js"; // installs the Tensor method sugar (astype)
import { arbTensorOfShape } from "../../../src/testing/arbitraries.js";
import { type Program, arbProgram, runProgram } from "../../../src/testing/programs.js";
import { type BackendOption, jit, vmap } from "../../../src/transforms/index.js";
import { programErrorBound } from "./float32-bound.js";

/** Ulps per step: at most two roundings of at most 4 ulp each (the webasm polynomial transcendentals). */
const C = 8;
const errorBound = (p: Program, x64: Tensor) => programErrorBound(p, x64, C);

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
