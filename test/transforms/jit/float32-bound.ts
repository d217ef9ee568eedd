/**
 * The first-order float32 error bound of a random program (src/testing/programs.ts) at an input,
 * for tests comparing a float32 backend against the float64 run of the same program.
 *
 * Running the program in float64 on the same (float32-exact) input gives, step by step, the largest
 * magnitude M_k of each intermediate. Any float32 evaluation then has an error e_k with
 *   e_k ≤ L_k·e_{k-1} + c·ε·(M_k + |const|)     for a unary step with Lipschitz bound L_k
 *   e_k ≤ n·e_{k-1} + (n-1)·ε·n·M_{k-1}          for a sum over n terms (Higham's γ_{n-1} bound)
 *   e_k ≤ M_w·e_{k-1} + M_{k-1}·e_w + c·ε·M_k     for a product with an earlier value w
 * where c is the backend's ulps per step (two roundings of its worst elementary function) and
 * ε = 2^-24. Underflow is absolute, so every step also adds c·η·(1 + M_{k-1}) with η = 2^-126.
 * Earlier values are bounded by the largest M and e so far. Callers allow 2·e_final (second-order
 * terms).
 */
import type { Tensor } from "../../../src/core/tensor.js";
import { type Program, type Step, runProgram } from "../../../src/testing/programs.js";

const U = 2 ** -24;
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

/** The bound described above, with `c` ulps per step. */
export function programErrorBound(p: Program, x64: Tensor, c: number): number {
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
        e = 2 * mPrev * ePrev + c * U * mk;
        break;
      case "scale":
        e = Math.abs(s.c) * ePrev + c * U * (mk + Math.abs(s.c) * mPrev);
        break;
      case "shift":
        e = ePrev + c * U * (mk + Math.abs(s.c));
        break;
      case "add":
        e = ePrev + eAll + c * U * mk;
        break;
      case "mul":
        e = mAll * ePrev + mPrev * eAll + c * U * mk;
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
        e = LIPSCHITZ[s.op]! * ePrev + c * U * mk;
    }
    e += c * TINY * (1 + mPrev);
    ms.push(mk);
    es.push(e);
    shape = vk.shape;
  }
  return es[es.length - 1]!;
}
