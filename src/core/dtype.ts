import { DTypeError } from "./errors.js";

/** The element types tsjax supports. `float32` is the default; `uint32` carries PRNG keys and bits. */
export type DType = "float32" | "float64" | "int32" | "uint32" | "bool";

export const DTYPES: readonly DType[] = ["float32", "float64", "int32", "uint32", "bool"];

export type TypedArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array;

/** Short names used when printing jaxprs, as JAX prints them (`f32[3]`). */
export const SHORT_NAME: Record<DType, string> = {
  float32: "f32",
  float64: "f64",
  int32: "i32",
  uint32: "u32",
  bool: "bool",
};

export function isDType(x: unknown): x is DType {
  return typeof x === "string" && (DTYPES as readonly string[]).includes(x);
}

export function isFloat(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float64";
}

export function isInteger(dtype: DType): boolean {
  return dtype === "int32" || dtype === "uint32";
}

/** Allocates a zero-filled typed array for `dtype`. */
export function allocate(dtype: DType, size: number): TypedArray {
  switch (dtype) {
    case "float32":
      return new Float32Array(size);
    case "float64":
      return new Float64Array(size);
    case "int32":
      return new Int32Array(size);
    case "uint32":
      return new Uint32Array(size);
    case "bool":
      return new Uint8Array(size);
  }
}

/** Copies `values` into a fresh typed array of `dtype`, converting as a cast would. */
export function fromValues(dtype: DType, values: ArrayLike<number>): TypedArray {
  const out = allocate(dtype, values.length);
  if (dtype === "bool") {
    for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  } else if (dtype === "int32" || dtype === "uint32") {
    // Casting truncates toward zero, as C and XLA do; NaN becomes 0.
    for (let i = 0; i < values.length; i++) out[i] = Math.trunc(values[i]!) || 0;
  } else {
    out.set(values);
  }
  return out;
}

/** The dtype named by a user argument, with a typed error for anything else. */
export function checkDType(dtype: unknown, op: string): DType {
  if (!isDType(dtype)) throw new DTypeError(`unknown dtype ${String(dtype)}; expected one of ${DTYPES.join(", ")}`, op);
  return dtype;
}

const RANK: Record<DType, number> = { bool: 0, uint32: 1, int32: 2, float32: 3, float64: 4 };

/** Joins two strong dtypes on JAX's lattice (with x64 off, int32 ∨ uint32 is int32). */
export function joinDTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  return RANK[a] >= RANK[b] ? a : b;
}

/** What a promoted operand is: a strongly typed tensor, or a weakly typed tensor or JS number. */
export interface PromotionInput {
  dtype: DType;
  weak: boolean;
}

/**
 * JAX's type promotion with weak types: JS numbers (and weakly typed tensors) never widen a strongly
 * typed operand of their kind, so `f32 + 1.5` stays f32 and `i32 + 2` stays i32, while `i32 + 1.5`
 * becomes f32. Returns the dtype and whether the result is itself weak.
 */
export function promoteTypes(inputs: readonly PromotionInput[]): { dtype: DType; weak: boolean } {
  let strong: DType | null = null;
  let weak: DType | null = null;
  for (const { dtype, weak: w } of inputs) {
    if (w) weak = weak === null ? dtype : joinDTypes(weak, dtype);
    else strong = strong === null ? dtype : joinDTypes(strong, dtype);
  }
  if (strong === null) return { dtype: weak ?? "float32", weak: true };
  if (weak === null) return { dtype: strong, weak: false };
  if (isFloat(weak) && !isFloat(strong)) return { dtype: "float32", weak: false };
  if (isInteger(weak) && strong === "bool") return { dtype: "int32", weak: false };
  return { dtype: strong, weak: false };
}

/** The dtype a bare JS number takes when it becomes a weak tensor. */
export function numberDType(x: number): DType {
  return Number.isInteger(x) && Math.abs(x) <= 2147483647 ? "int32" : "float32";
}
