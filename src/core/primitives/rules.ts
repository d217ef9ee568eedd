/** Rule builders shared by several primitive records. */
import { type JvpRule, type Primitive, Zero } from "../primitive.js";
import type { Tensor } from "../tensor.js";
import { bind1 } from "../trace.js";
import { add } from "./elementwise.js";
import { isZero } from "./util.js";

/** The JVP of a primitive bilinear in its two operands: d(l·r) = dl·r + l·dr. */
export function bilinearJvp<P>(prim: () => Primitive<P>): JvpRule<P> {
  return ([l, r], [tl, tr], params) => {
    const p = prim();
    const y = bind1(p, [l!, r!], params);
    const parts: Tensor[] = [];
    if (!isZero(tl!)) parts.push(bind1(p, [tl!, r!], params));
    if (!isZero(tr!)) parts.push(bind1(p, [l!, tr!], params));
    if (parts.length === 0) return [[y], [new Zero(y.aval)]];
    return [[y], [parts.length === 1 ? parts[0]! : add(parts[0]!, parts[1]!)]];
  };
}
