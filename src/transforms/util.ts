import { TraceError } from "../core/errors.js";
import { scalar } from "../core/primitives/util.js";
import { Tensor } from "../core/tensor.js";

/** A pytree leaf as a tensor: JS numbers become weakly typed scalars, anything else is an error. */
export function asTensor(leaf: unknown, op: string): Tensor {
  if (leaf instanceof Tensor) return leaf;
  if (typeof leaf === "number") return scalar(leaf, "float32", true);
  if (typeof leaf === "boolean") return scalar(leaf ? 1 : 0, "bool", true);
  throw new TraceError(`expected arrays or numbers as leaves, got ${typeof leaf} (${String(leaf)})`, op);
}

/** Normalises `argnums` (a number or a list) against the number of arguments. */
export function normalizeArgnums(argnums: number | readonly number[], nargs: number, op: string): number[] {
  const list = typeof argnums === "number" ? [argnums] : [...argnums];
  return list.map((a) => {
    const i = a < 0 ? a + nargs : a;
    if (!Number.isInteger(i) || i < 0 || i >= nargs) {
      throw new TraceError(`argnums ${JSON.stringify(argnums)} is out of range for a function called with ${nargs} arguments`, op);
    }
    return i;
  });
}
