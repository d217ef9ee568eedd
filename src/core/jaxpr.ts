/**
 * The typed IR: variables with avals, equations (primitive, inputs, params, outputs), literals and
 * sub-jaxprs in params for control flow. `evalJaxpr` interprets a jaxpr through `bind`, so running
 * a jaxpr is itself transformable; it is the reference interpreter every compiled kernel is checked
 * against. `toString()` prints JAX's text form.
 */
import { SHORT_NAME } from "./dtype.js";
import type { Primitive } from "./primitive.js";
import { type ShapedArray, type Tensor, avalToString } from "./tensor.js";
import { bind } from "./trace.js";

export class Var {
  constructor(readonly aval: ShapedArray) {}
}

/** A scalar constant inlined into an equation. */
export class Lit {
  constructor(readonly value: Tensor) {}
  get aval(): ShapedArray {
    return this.value.aval;
  }
}

export type Atom = Var | Lit;

export interface JaxprEqn {
  readonly prim: Primitive;
  readonly inputs: readonly Atom[];
  readonly params: any;
  readonly outBinders: readonly Var[];
}

export class Jaxpr {
  constructor(
    /** Variables bound to the closed-over constants. */
    readonly constBinders: readonly Var[],
    readonly inBinders: readonly Var[],
    readonly eqns: readonly JaxprEqn[],
    readonly outs: readonly Atom[],
  ) {}

  get inAvals(): ShapedArray[] {
    return this.inBinders.map((v) => v.aval);
  }
  get outAvals(): ShapedArray[] {
    return this.outs.map((v) => v.aval);
  }

  toString(): string {
    return printJaxpr(this, new Namer(), "");
  }
}

/** A jaxpr together with the values of its constants. */
export class ClosedJaxpr {
  constructor(
    readonly jaxpr: Jaxpr,
    readonly consts: readonly Tensor[],
  ) {}
  get inAvals(): ShapedArray[] {
    return this.jaxpr.inAvals;
  }
  get outAvals(): ShapedArray[] {
    return this.jaxpr.outAvals;
  }
  toString(): string {
    return this.jaxpr.toString();
  }
}

/** Evaluates a jaxpr on arguments through `bind` (so it composes with every transform). */
export function evalJaxpr(jaxpr: Jaxpr, consts: readonly Tensor[], args: readonly Tensor[]): Tensor[] {
  const env = new Map<Var, Tensor>();
  const read = (a: Atom): Tensor => (a instanceof Lit ? a.value : env.get(a)!);
  jaxpr.constBinders.forEach((v, i) => env.set(v, consts[i]!));
  jaxpr.inBinders.forEach((v, i) => env.set(v, args[i]!));
  for (const eqn of jaxpr.eqns) {
    const outs = bind(eqn.prim, eqn.inputs.map(read), eqn.params);
    eqn.outBinders.forEach((v, i) => env.set(v, outs[i]!));
  }
  return jaxpr.outs.map(read);
}

/** Evaluates a closed jaxpr. */
export function evalClosedJaxpr(closed: ClosedJaxpr, args: readonly Tensor[]): Tensor[] {
  return evalJaxpr(closed.jaxpr, closed.consts, args);
}

// ---------------------------------------------------------------------------------------------
// Printing, in JAX's form: `{ lambda a:f32[3]; b:f32[3]. let c:f32[3] = add a b in (c,) }`.

class Namer {
  private names = new Map<Var, string>();
  name(v: Var): string {
    let n = this.names.get(v);
    if (n === undefined) {
      n = varName(this.names.size);
      this.names.set(v, n);
    }
    return n;
  }
}

function varName(i: number): string {
  // a, b, …, z, ba, bb, … as JAX names variables.
  let s = "";
  do {
    s = String.fromCharCode(97 + (i % 26)) + s;
    i = Math.floor(i / 26);
  } while (i > 0);
  return s;
}

function atomString(a: Atom, namer: Namer): string {
  if (a instanceof Lit) {
    const v = a.value.item();
    const d = a.value.dtype;
    const text = d === "bool" ? (v ? "True" : "False") : d.startsWith("float") && Number.isInteger(v) ? v.toFixed(1) : String(v);
    return `${text}:${SHORT_NAME[d]}[]`;
  }
  return namer.name(a);
}

function binder(v: Var, namer: Namer): string {
  return `${namer.name(v)}:${avalToString(v.aval)}`;
}

function paramString(value: unknown, namer: Namer, indent: string): string {
  if (value instanceof Jaxpr) return printJaxpr(value, namer, `${indent}  `);
  if (value instanceof ClosedJaxpr) return printJaxpr(value.jaxpr, namer, `${indent}  `);
  if (Array.isArray(value) && value.some((v) => v instanceof Jaxpr || v instanceof ClosedJaxpr)) {
    return `(${value.map((v) => paramString(v, namer, indent)).join(", ")})`;
  }
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null || value === undefined) return "None";
  if (Array.isArray(value)) return value.length === 1 ? `(${paramString(value[0], namer, indent)},)` : `(${value.map((v) => paramString(v, namer, indent)).join(", ")})`;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function printJaxpr(jaxpr: Jaxpr, namer: Namer, indent: string): string {
  const consts = jaxpr.constBinders.map((v) => binder(v, namer)).join(" ");
  const ins = jaxpr.inBinders.map((v) => binder(v, namer)).join(" ");
  const lines: string[] = [];
  for (const eqn of jaxpr.eqns) {
    const outs = eqn.outBinders.map((v) => binder(v, namer)).join(" ");
    const params = eqn.prim.printParams ? eqn.prim.printParams(eqn.params) : (eqn.params as Record<string, unknown>);
    const keys = Object.keys(params ?? {}).sort();
    const p = keys.length ? `[${keys.map((k) => `${k}=${paramString(params[k], namer, indent)}`).join(" ")}]` : "";
    const args = eqn.inputs.map((a) => atomString(a, namer)).join(" ");
    lines.push(`${outs} = ${eqn.prim.name}${p} ${args}`.trimEnd());
  }
  const outs = jaxpr.outs.map((a) => atomString(a, namer));
  const outText = `(${outs.join(", ")}${outs.length === 1 ? "," : ""})`;
  const head = `{ lambda ${consts}; ${ins}. let`;
  // Like JAX's pretty-printer: one line when it fits, else one equation per line.
  const oneLine = `${head} ${lines.join("; ")}${lines.length ? " " : ""}in ${outText} }`;
  if (oneLine.length + indent.length <= 80 && !oneLine.includes("\n")) return oneLine;
  const pad = `${indent}    `;
  return `${head}\n${lines.map((l) => pad + l).join("\n")}\n${indent}  in ${outText} }`;
}
