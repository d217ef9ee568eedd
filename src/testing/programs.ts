/**
 * Random programs: an arbitrary that composes primitives into a function of one array, keeping
 * shapes consistent. Used to check every transform against its oracle on programs nobody wrote by
 * hand (`grad` vs finite differences, `vmap` vs a loop, `evalJaxpr(makeJaxpr(f))` vs `f`, ...).
 * Steps are plain data, so fast-check shrinks a failing program to a short readable one.
 */
import fc from "fast-check";
import * as lax from "../core/lax.js";
import { scalarLike } from "../core/primitives/elementwise.js";
import type { Tensor } from "../core/tensor.js";

export type Step =
  | { op: "sin" | "cos" | "tanh" | "logistic" | "neg" | "square" | "softexp" | "softlog" | "softsqrt" }
  | { op: "scale" | "shift"; c: number }
  | { op: "add" | "mul" | "max"; with: number }
  | { op: "sumBack" | "maxBack"; axis: number }
  | { op: "transpose" };

export interface Program {
  /** Shape of the input (rank 1 or 2). */
  shape: number[];
  steps: Step[];
}

/** Applies one program to `x`; the output has the shape the steps leave (transpose may swap axes). */
export function runProgram(p: Program, x: Tensor): Tensor {
  const values: Tensor[] = [x];
  let v = x;
  for (const s of p.steps) {
    switch (s.op) {
      case "sin":
      case "cos":
      case "tanh":
      case "logistic":
      case "neg":
        v = lax[s.op](v);
        break;
      case "square":
        v = lax.mul(v, v);
        break;
      case "softexp": // exp of a bounded argument, so values stay moderate
        v = lax.exp(lax.tanh(v));
        break;
      case "softlog": // log(1 + x²) is smooth everywhere
        v = lax.log1p(lax.mul(v, v));
        break;
      case "softsqrt":
        v = lax.sqrt(lax.add(lax.mul(v, v), scalarLike(1, v)));
        break;
      case "scale":
        v = lax.mul(v, scalarLike(s.c, v));
        break;
      case "shift":
        v = lax.add(v, scalarLike(s.c, v));
        break;
      case "add":
      case "mul":
      case "max": {
        const same = values.filter((w) => w.shape.join() === v.shape.join());
        const other = same[s.with % same.length]!;
        v = lax[s.op](v, other);
        break;
      }
      case "sumBack":
      case "maxBack": {
        if (v.ndim === 0) break;
        const axis = s.axis % v.ndim;
        const r = s.op === "sumBack" ? lax.reduceSum(v, [axis]) : lax.reduceMax(v, [axis]);
        v = lax.broadcastInDim(
          r,
          v.shape,
          v.shape.map((_, i) => i).filter((i) => i !== axis),
        );
        break;
      }
      case "transpose":
        if (v.ndim === 2) v = lax.transpose(v, [1, 0]);
        break;
    }
    values.push(v);
  }
  return v;
}

/** The same program followed by a sum to a scalar, for gradient checks. */
export function runProgramScalar(p: Program, x: Tensor): Tensor {
  const v = runProgram(p, x);
  return lax.reduceSum(
    v,
    v.shape.map((_, i) => i),
  );
}

const smoothSteps = (): fc.Arbitrary<Step>[] => [
  fc.constantFrom<Step>(
    { op: "sin" },
    { op: "cos" },
    { op: "tanh" },
    { op: "logistic" },
    { op: "neg" },
    { op: "square" },
    { op: "softexp" },
    { op: "softlog" },
    { op: "softsqrt" },
    { op: "transpose" },
  ),
  fc.record({ op: fc.constantFrom("scale" as const, "shift" as const), c: fc.double({ min: -2, max: 2, noNaN: true }) }),
  fc.record({ op: fc.constantFrom("add" as const, "mul" as const), with: fc.nat(8) }),
  fc.record({ op: fc.constant("sumBack" as const), axis: fc.nat(1) }),
];
/** `max` and `maxBack` have kinks at ties, where finite differences cannot check a derivative. */
const kinkSteps = (): fc.Arbitrary<Step>[] => [
  fc.record({ op: fc.constant("max" as const), with: fc.nat(8) }),
  fc.record({ op: fc.constant("maxBack" as const), axis: fc.nat(1) }),
];

/**
 * Random programs over an input of rank 1 or 2 with axes of size 1 to `maxDim`. With `smooth`, the
 * programs avoid `max` (whose derivative at ties is a convention), for finite-difference checks.
 */
export function arbProgram(opts: { maxSteps?: number; maxDim?: number; smooth?: boolean } = {}): fc.Arbitrary<Program> {
  const { maxSteps = 6, maxDim = 4, smooth = false } = opts;
  const step = fc.oneof(...smoothSteps(), ...(smooth ? [] : kinkSteps()));
  return fc.record({
    shape: fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: 1, maxLength: 2 }),
    steps: fc.array(step, { minLength: 1, maxLength: maxSteps }),
  });
}
