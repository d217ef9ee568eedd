/**
 * optax's core abstraction: a gradient transformation is an `(init, update)` pair over trees whose
 * state is a tree of tensors, so an update step stages (`makeJaxpr`), jits and checkpoints.
 */
import type { Monoid } from "fp-ts/Monoid";
import { ConfigError } from "../core/errors.js";
import * as np from "../core/numpy/index.js";
import type { Tensor } from "../core/tensor.js";
import * as tree from "../core/tree.js";

/** A tree of tensors (plain objects, arrays, `null` for empty). */
export type Params = unknown;
/** Updates have the structure of the parameters. */
export type Updates = unknown;

/**
 * `optax.GradientTransformation`: `init(params)` builds the state; `update(grads, state, params?)`
 * returns `[updates, newState]`. State is a tree of tensors only.
 *
 * @example const [u, s1] = opt.update(grads, opt.init(params), params);
 */
export interface GradientTransformation<S = unknown> {
  init(params: Params): S;
  update(updates: Updates, state: S, params?: Params): [Updates, S];
}

/** A learning-rate (or other hyper-parameter) schedule: the step count (int32 scalar) to a value. */
export type Schedule = (step: Tensor) => Tensor;
/** A constant or a schedule. */
export type ScalarOrSchedule = number | Schedule;

/** The transformation that passes updates through and keeps no state. @example chain(identity(), sgd(0.1)) */
export function identity(): GradientTransformation<null> {
  return {
    init: () => null,
    update: (updates) => [updates, null],
  };
}

/**
 * Composes transformations left to right: each one's updates feed the next; the state is the
 * array of the parts' states.
 *
 * @example const opt = chain(clipByGlobalNorm(1), scaleByAdam(), scaleByLearningRate(1e-3));
 */
export function chain(...ts: GradientTransformation<any>[]): GradientTransformation<unknown[]> {
  return {
    init: (params) => ts.map((t) => t.init(params)),
    update: (updates, state, params) => {
      if (!Array.isArray(state) || state.length !== ts.length)
        throw new ConfigError(`state must be an array of ${ts.length} states (one per transformation)`, "chain");
      const out: unknown[] = [];
      let u = updates;
      ts.forEach((t, i) => {
        const [nu, ns] = t.update(u, state[i], params);
        u = nu;
        out.push(ns);
      });
      return [u, out];
    },
  };
}

/**
 * Transformations form a monoid under `chain` (associative up to the nesting of states, which the
 * produced updates do not see) with `identity` as the unit.
 *
 * @example concatAll(gradientTransformationMonoid)([clip(1), scale(-0.1)])
 */
export const gradientTransformationMonoid: Monoid<GradientTransformation<any>> = {
  concat: (a, b) => chain(a, b),
  empty: identity(),
};

/**
 * `optax.apply_updates`: `params + updates` leaf by leaf, cast back to each parameter's dtype.
 *
 * @example const newParams = applyUpdates(params, updates);
 */
export function applyUpdates<P>(params: P, updates: Updates): P {
  return tree.map(
    (p: Tensor, u: Tensor) => np.astype(np.add(p, u), p.dtype),
    params,
    updates,
  ) as unknown as P;
}

/** Raises a ConfigError unless `v` is a finite number (within optional bounds). @internal */
export function checkNumber(
  op: string,
  name: string,
  v: number,
  opts: { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean } = {},
): void {
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new ConfigError(`${name} must be a finite number, got ${String(v)}`, op);
  const { min, max, minExclusive = false, maxExclusive = false } = opts;
  if (min !== undefined && (minExclusive ? !(v > min) : !(v >= min)))
    throw new ConfigError(`${name} must be ${minExclusive ? ">" : ">="} ${min}, got ${v}`, op);
  if (max !== undefined && (maxExclusive ? !(v < max) : !(v <= max)))
    throw new ConfigError(`${name} must be ${maxExclusive ? "<" : "<="} ${max}, got ${v}`, op);
}

/** Checks a schedule by evaluating it at step 0: it must return a finite scalar. @internal */
export function checkSchedule(op: string, name: string, s: Schedule, nonNegative = false): void {
  if (typeof s !== "function") throw new ConfigError(`${name} must be a number or a schedule function`, op);
  let v: number;
  try {
    v = s(np.array(0, "int32")).item();
  } catch (e) {
    throw new ConfigError(`${name}: the schedule failed at step 0 (${(e as Error).message})`, op);
  }
  if (!Number.isFinite(v)) throw new ConfigError(`${name}: the schedule returns ${v} at step 0`, op);
  if (nonNegative && v < 0) throw new ConfigError(`${name}: the schedule returns ${v} < 0 at step 0`, op);
}

/** Checks a number-or-schedule hyper-parameter. @internal */
export function checkScalarOrSchedule(op: string, name: string, v: ScalarOrSchedule, nonNegative = true): void {
  if (typeof v === "number") checkNumber(op, name, v, nonNegative ? { min: 0 } : {});
  else checkSchedule(op, name, v, nonNegative);
}
