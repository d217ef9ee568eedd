import type { ShapedArray, Tensor } from "./tensor.js";

/** A symbolically zero tangent or cotangent: no array is materialised for it. */
export class Zero {
  readonly kind = "zero" as const;
  constructor(readonly aval: ShapedArray) {}
}

/** Marks a linear input of a transposed equation (its value is what transposition computes). */
export class UndefPrimal {
  readonly kind = "undef" as const;
  constructor(readonly aval: ShapedArray) {}
}

/** A tangent or cotangent: an array, or a symbolic zero. */
export type Tangent = Tensor | Zero;

/** The batch dimension of a vmapped value, or `null` when the value is not mapped. */
export type BDim = number | null;

export type JvpRule<P> = (primals: Tensor[], tangents: Tangent[], params: P) => [Tensor[], Tangent[]];

/**
 * Transposes a linear primitive: given the output cotangents and the inputs (the linear ones marked
 * `UndefPrimal`), returns a cotangent per input (`null` for inputs that are not linear).
 */
export type TransposeRule<P> = (cts: Tangent[], args: (Tensor | UndefPrimal)[], params: P) => (Tangent | null)[];

export type BatchRule<P> = (args: Tensor[], dims: BDim[], params: P, axisSize: number) => [Tensor[], BDim[]];

/**
 * One primitive is one record: its name, its shape/dtype rule, its CPU reference implementation, and
 * the rules every transform needs. Adding a primitive touches one place.
 */
export interface Primitive<P = any> {
  readonly name: string;
  /** Shape and dtype rule: raises ShapeError / DTypeError with the primitive's name. */
  abstractEval(avals: ShapedArray[], params: P): ShapedArray[];
  /** The CPU reference implementation on typed arrays (float64 computed in float64). */
  impl(args: Tensor[], params: P, outAvals: ShapedArray[]): Tensor[];
  jvp: JvpRule<P>;
  batch: BatchRule<P>;
  /** Present on linear primitives only. */
  transpose?: TransposeRule<P>;
  /** Parameters as printed in a jaxpr (defaults to `params`). */
  printParams?(params: P): Record<string, unknown>;
  /** Extra rules that higher-order primitives add from `transforms/` (partial evaluation, lowering). */
  readonly extra: Record<string, unknown>;
}

const registry = new Map<string, Primitive>();

/** Defines and registers a primitive record. */
export function definePrimitive<P>(def: Omit<Primitive<P>, "extra"> & { extra?: Record<string, unknown> }): Primitive<P> {
  if (registry.has(def.name)) throw new Error(`primitive ${def.name} defined twice`);
  const prim: Primitive<P> = { ...def, extra: def.extra ?? {} };
  registry.set(def.name, prim as Primitive);
  return prim;
}

/** Every registered primitive, by name. */
export function primitives(): ReadonlyMap<string, Primitive> {
  return registry;
}
