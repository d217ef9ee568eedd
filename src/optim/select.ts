/**
 * Tree-path predicates: which parameter leaves a perturbation, a measure or a look-ahead touches.
 * A predicate sees each leaf's key path as `tree.keyPathToString` writes it (`"layers[0].kernel"`)
 * and the leaf itself, so it can select by name (one layer) or by shape (only kernels).
 */
import { ConfigError } from "../core/errors.js";
import { Tensor } from "../core/tensor.js";
import * as tree from "../core/tree.js";

/** Selects parameter leaves by key path (as `tree.keyPathToString` writes it) and value. */
export type ParamPredicate = (path: string, leaf: Tensor) => boolean;

/** Every leaf. @example worstCaseSharpness(loss, params, { alpha: 0.1, where: allParams }) */
export const allParams: ParamPredicate = () => true;

/**
 * Leaves with at least two axes: dense and convolution kernels, not biases or norm scales.
 *
 * @example parameterCorruption(loss, params, [x, y], { epsilon: 0.01, where: kernelsOnly })
 */
export const kernelsOnly: ParamPredicate = (_path, leaf) => leaf.ndim >= 2;

/**
 * Leaves at `prefix` or below it (`"layers[0]"` selects `"layers[0].kernel"` and
 * `"layers[0].bias"`, not `"layers[01]"` or `"layers[0]x"`).
 *
 * @example underPath("w1")("w1", w); // true
 */
export function underPath(prefix: string): ParamPredicate {
  if (typeof prefix !== "string")
    throw new ConfigError(`prefix must be a string, got ${String(prefix)}`, "underPath");
  return (path) => path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
}

/** Leaves whose path matches `re`. @example pathMatches(/kernel$/) */
export function pathMatches(re: RegExp): ParamPredicate {
  if (!(re instanceof RegExp)) throw new ConfigError("pathMatches needs a RegExp", "pathMatches");
  return (path) => {
    re.lastIndex = 0; // a global or sticky RegExp keeps state between tests
    return re.test(path);
  };
}

/** Leaves selected by every predicate. @example allOf(kernelsOnly, underPath("encoder")) */
export function allOf(...preds: ParamPredicate[]): ParamPredicate {
  return (path, leaf) => preds.every((p) => p(path, leaf));
}

/** Leaves selected by at least one predicate. @example anyOf(underPath("w1"), underPath("w2")) */
export function anyOf(...preds: ParamPredicate[]): ParamPredicate {
  return (path, leaf) => preds.some((p) => p(path, leaf));
}

/** Leaves the predicate rejects. @example excluding(kernelsOnly) // biases and scales */
export function excluding(pred: ParamPredicate): ParamPredicate {
  return (path, leaf) => !pred(path, leaf);
}

/**
 * The selection mask of `params`: one boolean per leaf, in flatten order. Throws a `ConfigError`
 * naming `op` when `where` is not a function, a leaf is not a floating tensor, or nothing is
 * selected (a measure over no parameters would be a silent 0).
 *
 * @example selectLeaves({ w, b }, kernelsOnly, "worstCaseSharpness"); // [false, true] (b, w sorted)
 */
export function selectLeaves(params: unknown, where: ParamPredicate | undefined, op: string): boolean[] {
  if (where !== undefined && typeof where !== "function")
    throw new ConfigError("where must be a function (path: string, leaf: Tensor) => boolean", op);
  const pairs = tree.leavesWithPath<unknown>(params);
  const mask = pairs.map(([path, leaf], i) => {
    if (!(leaf instanceof Tensor)) throw new ConfigError(`parameter leaf ${i} is not a tensor`, op);
    if (leaf.dtype !== "float32" && leaf.dtype !== "float64")
      throw new ConfigError(
        `parameter ${tree.keyPathToString(path)} has dtype ${leaf.dtype}; a floating dtype is needed`,
        op,
      );
    return where === undefined ? true : Boolean(where(tree.keyPathToString(path), leaf));
  });
  if (!mask.some((m, i) => m && (pairs[i]![1] as Tensor).size > 0))
    throw new ConfigError("no parameter is selected (where rejects every non-empty leaf)", op);
  return mask;
}
