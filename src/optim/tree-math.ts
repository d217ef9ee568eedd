/** Tree arithmetic used by the transformations: norms, dot products, moments, bias correction. */
import * as np from "../core/numpy/index.js";
import type { Tensor } from "../core/tensor.js";
import * as tree from "../core/tree.js";

/** Leaf-wise `a + b`. @example treeAdd({ w: x }, { w: y }) */
export function treeAdd<T>(a: T, b: unknown): T {
  return tree.map((x: Tensor, y: Tensor) => np.add(x, y), a, b) as unknown as T;
}

/** Leaf-wise `a - b`. @example treeSub(params, updates) */
export function treeSub<T>(a: T, b: unknown): T {
  return tree.map((x: Tensor, y: Tensor) => np.subtract(x, y), a, b) as unknown as T;
}

/** Leaf-wise `s * a` (a JS number keeps each leaf's dtype). @example treeScale(0.5, grads) */
export function treeScale<T>(s: number | Tensor, a: T): T {
  return tree.map((x: Tensor) => np.multiply(x, typeof s === "number" ? s : np.astype(s, x.dtype)), a) as unknown as T;
}

/** Zeros with each leaf's shape and dtype. @example treeZerosLike(params) */
export function treeZerosLike<T>(a: T): T {
  return tree.map((x: Tensor) => np.zerosLike(x), a) as unknown as T;
}

/** `Σ_leaves Σ a·b` as a scalar tensor (0 for an empty tree). @example treeVdot(g, g) */
export function treeVdot(a: unknown, b: unknown): Tensor {
  const parts = tree.leaves<Tensor>(tree.map((x: Tensor, y: Tensor) => np.sum(np.multiply(x, y)), a, b));
  return parts.reduce<Tensor>((acc, p) => np.add(acc, p), np.array(0, parts[0]?.dtype ?? "float32"));
}

/** Global L2 norm over every leaf: `sqrt(Σ_leaves Σ x²)`. @example treeNorm(grads) */
export function treeNorm(a: unknown): Tensor {
  return np.sqrt(treeVdot(a, a));
}

/** `order`-th moment EMA: `decay·m + (1-decay)·g^order`, leaf-wise. @example updateMoment(g, mu, 0.9, 1) */
export function updateMoment<T>(updates: unknown, moments: T, decay: number, order: 1 | 2): T {
  return tree.map(
    (g: Tensor, m: Tensor) => np.add(np.multiply(m, decay), np.multiply(order === 1 ? g : np.square(g), 1 - decay)),
    updates,
    moments,
  ) as unknown as T;
}

/** Debiases an EMA after `count` steps: `m / (1 - decay^count)`, in each leaf's dtype. @example biasCorrection(mu, 0.9, count) */
export function biasCorrection<T>(moments: T, decay: number, count: Tensor): T {
  return tree.map((m: Tensor) => {
    const c = np.astype(count, m.dtype);
    return np.divide(m, np.subtract(1, np.power(np.array(decay, m.dtype), c)));
  }, moments) as unknown as T;
}

/** Adds one to an int32 step count, saturating at the int32 maximum. @example safeIncrement(count) */
export function safeIncrement(count: Tensor): Tensor {
  const max = 2147483647;
  return np.where(np.less(count, max), np.add(count, 1), count);
}
