/**
 * The reference evaluator of the kernel IR, in plain TypeScript: the oracle every other kernel
 * renderer is tested against, and the fallback when a target declines a kernel. Each node is
 * rounded to float32 (`Math.fround`), as the primitives' CPU implementations store float32 after
 * every operation, so it agrees with `evalJaxpr` to the last bit on elementwise chains.
 */
import {
  type BinaryOp,
  type KExpr,
  type Kernel,
  REDUCE_INIT,
  type ReduceOp,
  type UnaryOp,
  sizeOfShape,
} from "./kernel-ir.js";
import type { CompiledKernel, KernelBackend } from "./backend.js";

const f32 = Math.fround;

/** Scalar semantics of each unary op (the table every renderer mirrors). */
export const UNARY_FN: Record<UnaryOp, (v: number) => number> = {
  neg: (v) => -v,
  exp: Math.exp,
  log: Math.log,
  log1p: Math.log1p,
  expm1: Math.expm1,
  sqrt: Math.sqrt,
  rsqrt: (v) => 1 / Math.sqrt(v),
  tanh: Math.tanh,
  logistic: (v) => 1 / (1 + Math.exp(-v)),
  sin: Math.sin,
  cos: Math.cos,
  abs: Math.abs,
  sign: (v) => (v > 0 ? 1 : v < 0 ? -1 : v),
  floor: Math.floor,
  ceil: Math.ceil,
  not: (v) => (v !== 0 ? 0 : 1),
};

export const BINARY_FN: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : Math.max(a, b)),
  min: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : Math.min(a, b)),
  pow: (a, b) => a ** b,
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  and: (a, b) => (a !== 0 && b !== 0 ? 1 : 0),
  or: (a, b) => (a !== 0 || b !== 0 ? 1 : 0),
};

export const REDUCE_FN: Record<ReduceOp, (acc: number, v: number) => number> = {
  sum: (a, v) => a + v,
  max: BINARY_FN.max,
  min: BINARY_FN.min,
  prod: (a, v) => a * v,
};

/** Loop state read by compiled nodes: current output and reduction indices, inputs, accumulator. */
interface Env {
  o: Int32Array;
  r: Int32Array;
  inputs: readonly Float32Array[];
  acc: number;
}

type Node = (env: Env) => number;

/** Compiles an expression tree into nested closures once, so each element costs no tree walk. */
function compileExpr(e: KExpr): Node {
  switch (e.op) {
    case "const": {
      const v = f32(e.value);
      return () => v;
    }
    case "acc":
      return (env) => env.acc;
    case "load": {
      const { arg, index } = e;
      const { offset, out, red } = index;
      return (env) => {
        let i = offset;
        for (let d = 0; d < out.length; d++) i += out[d]! * env.o[d]!;
        for (let d = 0; d < red.length; d++) i += red[d]! * env.r[d]!;
        return env.inputs[arg]![i]!;
      };
    }
    case "unary": {
      const x = compileExpr(e.x);
      const fn = UNARY_FN[e.fn];
      return (env) => f32(fn(x(env)));
    }
    case "binary": {
      const a = compileExpr(e.a);
      const b = compileExpr(e.b);
      const fn = BINARY_FN[e.fn];
      return (env) => f32(fn(a(env), b(env)));
    }
    case "select": {
      const c = compileExpr(e.c);
      const t = compileExpr(e.t);
      const f = compileExpr(e.f);
      return (env) => (c(env) !== 0 ? t(env) : f(env));
    }
  }
}

/** Advances a row-major multi-index; returns false after the last one. */
function increment(idx: Int32Array, shape: readonly number[]): boolean {
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d]!++;
    if (idx[d]! < shape[d]!) return true;
    idx[d] = 0;
  }
  return false;
}

/** Runs a kernel with the reference evaluator, writing into `out` when given (its size must match). */
export function evaluateKernel(k: Kernel, inputs: readonly Float32Array[], out?: Float32Array): Float32Array {
  return compileKernelEval(k)(inputs, out);
}

function compileKernelEval(k: Kernel): (inputs: readonly Float32Array[], out?: Float32Array) => Float32Array {
  const expr = compileExpr(k.expr);
  const red = k.reduction;
  const body = red ? compileExpr(red.body) : null;
  const combine = red ? REDUCE_FN[red.op] : null;
  const init = red ? REDUCE_INIT[red.op] : 0;
  const redSize = red ? sizeOfShape(red.shape) : 0;
  const n = sizeOfShape(k.outShape);
  return (inputs, given) => {
    const out = given ?? new Float32Array(n);
    if (n === 0) return out;
    const env: Env = {
      o: new Int32Array(k.outShape.length),
      r: new Int32Array(red?.shape.length ?? 0),
      inputs,
      acc: 0,
    };
    for (let i = 0; i < n; i++) {
      if (body) {
        let acc = init;
        env.r.fill(0);
        for (let j = 0; j < redSize; j++) {
          acc = f32(combine!(acc, body(env)));
          increment(env.r, red!.shape);
        }
        env.acc = acc;
      }
      out[i] = expr(env);
      increment(env.o, k.outShape);
    }
    return out;
  };
}

/** The kernel-IR evaluator as a backend: always available, exact float32 semantics per node. */
export const tsBackend: KernelBackend = {
  name: "ts",
  compile(kernel): CompiledKernel {
    const run = compileKernelEval(kernel);
    return { ranOn: "ts", reusesOutput: true, run: (inputs, out) => run(inputs, out) };
  },
};
