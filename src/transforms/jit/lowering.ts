/**
 * How jaxpr equations lower into the kernel IR: a table from primitive names to kernel-IR ops,
 * and the classification the grouping pass works from. Only float32 and bool values are lowered
 * (gpu.js is float32-only); everything else (float64, integers, gather, sort, convolutions,
 * control flow, PRNG) is an escape: it runs through the primitive's CPU reference implementation.
 */
import type { JaxprEqn } from "../../core/jaxpr.js";
import type { BinaryOp, KExpr, ReduceOp, UnaryOp } from "./kernel-ir.js";

export type EqnClass = "elementwise" | "view" | "reduce" | "dot" | "escape";

const UNARY: Record<string, UnaryOp> = {
  neg: "neg",
  exp: "exp",
  log: "log",
  log1p: "log1p",
  expm1: "expm1",
  sqrt: "sqrt",
  rsqrt: "rsqrt",
  tanh: "tanh",
  logistic: "logistic",
  sin: "sin",
  cos: "cos",
  abs: "abs",
  sign: "sign",
  floor: "floor",
  ceil: "ceil",
  not: "not",
};

const BINARY: Record<string, BinaryOp> = {
  add: "add",
  sub: "sub",
  mul: "mul",
  div: "div",
  max: "max",
  min: "min",
  pow: "pow",
  eq: "eq",
  ne: "ne",
  lt: "lt",
  le: "le",
  gt: "gt",
  ge: "ge",
  and: "and",
  or: "or",
};

const OTHER_ELEMENTWISE = new Set([
  "select",
  "convert_element_type",
  "stop_gradient",
  "integer_pow",
  "is_finite",
]);
const VIEWS = new Set(["broadcast_in_dim", "reshape", "transpose", "squeeze", "slice"]);

export const REDUCE_OPS: Record<string, ReduceOp> = {
  reduce_sum: "sum",
  reduce_max: "max",
  reduce_min: "min",
  reduce_prod: "prod",
};

const LOWERED_DTYPES = new Set(["float32", "bool"]);

/** Which kind of kernel work an equation is (or `"escape"`: run its CPU implementation). */
export function classify(eqn: JaxprEqn): EqnClass {
  const name = eqn.prim.name;
  const avals = [...eqn.inputs.map((a) => a.aval), ...eqn.outBinders.map((v) => v.aval)];
  if (!avals.every((a) => LOWERED_DTYPES.has(a.dtype))) return "escape";
  if (name in UNARY || name in BINARY || OTHER_ELEMENTWISE.has(name)) return "elementwise";
  if (VIEWS.has(name)) return "view";
  // Reductions and contractions accumulate in float32 only (a bool max is an escape).
  if (!avals.every((a) => a.dtype === "float32")) return "escape";
  if (name in REDUCE_OPS) return "reduce";
  if (name === "dot_general") return "dot";
  return "escape";
}

const unary = (fn: UnaryOp, x: KExpr): KExpr => ({ op: "unary", fn, x });
const binary = (fn: BinaryOp, a: KExpr, b: KExpr): KExpr => ({ op: "binary", fn, a, b });
const constant = (value: number): KExpr => ({ op: "const", value });

/** `x^y` for an integer `y`, by repeated squaring (as XLA expands `integer_pow`). */
function integerPow(x: KExpr, y: number): KExpr {
  if (y === 0) return constant(1);
  let n = Math.abs(y);
  let result: KExpr | null = null;
  let base = x;
  while (n > 0) {
    if (n & 1) result = result === null ? base : binary("mul", result, base);
    n >>= 1;
    if (n > 0) base = binary("mul", base, base);
  }
  return y < 0 ? binary("div", constant(1), result!) : result!;
}

/** The kernel-IR expression of an elementwise equation, given its operands' expressions. */
export function lowerElementwise(eqn: JaxprEqn, args: KExpr[]): KExpr {
  const name = eqn.prim.name;
  const u = UNARY[name];
  if (u) return unary(u, args[0]!);
  const b = BINARY[name];
  if (b) return binary(b, args[0]!, args[1]!);
  switch (name) {
    case "select":
      return { op: "select", c: args[0]!, t: args[1]!, f: args[2]! };
    case "stop_gradient":
      return args[0]!;
    case "convert_element_type": {
      const from = eqn.inputs[0]!.aval.dtype;
      const to = eqn.outBinders[0]!.aval.dtype;
      return to === "bool" && from !== "bool" ? binary("ne", args[0]!, constant(0)) : args[0]!;
    }
    case "integer_pow":
      return integerPow(args[0]!, eqn.params.y as number);
    case "is_finite": // x - x is 0 exactly for finite x, NaN for ±inf and NaN
      return binary("eq", binary("sub", args[0]!, args[0]!), constant(0));
    default:
      throw new Error(`jit: no lowering for ${name}`);
  }
}
