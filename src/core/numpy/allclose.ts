import type { Tensor } from "../tensor.js";
import { type ArrayLike, toTensor } from "./creation.js";
import { promote } from "./elementwise.js";

/** Options of `allclose`. */
export interface AllcloseOptions {
  rtol?: number;
  atol?: number;
  /** Whether NaNs in the same places count as equal. */
  equalNan?: boolean;
}

/**
 * True when `|a - b| <= atol + rtol·|b|` everywhere (after broadcasting). Needs concrete values.
 *
 * @example
 * ```ts
 * np.allclose([1, 2], [1, 2.000001]); // true
 * ```
 */
export function allclose(a: ArrayLike, b: ArrayLike, opts: AllcloseOptions = {}): boolean {
  const { rtol = 1e-5, atol = 1e-8, equalNan = false } = opts;
  const [x, y] = promote("allclose", [toTensor(a, "allclose"), toTensor(b, "allclose")]) as [Tensor, Tensor];
  const xb = x._concrete("allclose");
  const yb = y._concrete("allclose");
  for (let i = 0; i < xb.length; i++) {
    const u = xb[i]!;
    const v = yb[i]!;
    if (Number.isNaN(u) || Number.isNaN(v)) {
      if (equalNan && Number.isNaN(u) && Number.isNaN(v)) continue;
      return false;
    }
    if (u === v) continue; // equal infinities
    if (!(Math.abs(u - v) <= atol + rtol * Math.abs(v))) return false;
  }
  return true;
}
