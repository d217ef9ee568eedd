/**
 * `optax.contrib.sam` (SAM.md §3.1) with optax's semantics, so optax code ports line for line:
 * an outer optimizer and an inner adversarial optimizer (typically `chain(normalize(), sgd(rho))`),
 * alternated over `syncPeriod` calls of `update` (transparent mode) or looped inside one call
 * (opaque mode, the user's `gradFn` called `syncPeriod − 1` times).
 *
 * What differs from optax (at 2edbcbe2) and why, SAM.md §3.2:
 * 1. Transparent mode with `syncPeriod = 1` is the outer optimizer. optax jumps back to the cache
 *    of the previous call (`w_{t+1} = w_{t−1} + u_t`, PR #1788) because it refreshes the cache
 *    after using it; here the cache is refreshed first. For `syncPeriod >= 2` the two agree.
 * 2. The branch is chosen with `cond`, not optax's arithmetic `c·a + (1−c)·b`, so a NaN or Inf in
 *    the branch not taken (e.g. `normalize` of a zero gradient) cannot leak into the update, and
 *    only the chosen branch is computed.
 * 3. `normalize({ eps })` may guard the zero gradient (optax's has no epsilon, PR #1743); the
 *    default is optax's unguarded form.
 * 4. There is no `batch_axis_name` (no pmap); average the gradients in `gradFn` instead.
 * As in optax, `syncPeriod > 2` takes `syncPeriod − 1` unprojected ascent steps, so ‖ε‖ can reach
 * `(syncPeriod − 1)ρ`; `sam(loss, { ascentSteps })` is the projected form of paper C.6.
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import type { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { cond } from "../../transforms/index.js";
import {
  type GradientTransformation,
  type Params,
  type Updates,
  applyUpdates,
  checkNumber,
} from "../base.js";
import { treeNorm } from "../tree-math.js";

/** `optax.contrib.SAMState`. `cache` is the clean parameters in transparent mode, `null` in opaque mode. */
export interface SamState<O = unknown, A = unknown> {
  stepsSinceSync: Tensor;
  optState: O;
  advState: A;
  cache: Params | null;
}

/** The extra argument of the opaque mode's `update`: `gradFn(params, i)` for the `i`-th adversarial step. */
export interface SamExtraArgs {
  gradFn?: (params: Params, i: number) => Updates;
}

/** A gradient transformation whose `update` takes optax's extra keyword arguments as a 4th argument. */
export interface GradientTransformationExtraArgs<S = unknown> extends GradientTransformation<S> {
  update(updates: Updates, state: S, params?: Params, extra?: SamExtraArgs): [Updates, S];
}

/** Options of {@link sam}. */
export interface ContribSamOptions {
  /** Outer step every `syncPeriod` calls (integer >= 1, default 2: one ascent, one descent). */
  syncPeriod?: number;
  /** Re-initialise the adversarial state at every sync (default true). */
  resetState?: boolean;
  /** Run the adversarial steps inside one `update` call through `extra.gradFn` (default false). */
  opaqueMode?: boolean;
}

/**
 * `optax.contrib.normalize`: `g / ‖g‖` over the whole tree. Without `eps` a zero gradient gives
 * NaN, as in optax; with `eps` the norm is `‖g‖ + eps` and a zero gradient gives zeros.
 *
 * @example const adv = chain(normalize(), sgd(0.05));
 */
export function normalize(opts: { eps?: number } = {}): GradientTransformation<null> {
  const { eps } = opts;
  if (eps !== undefined) checkNumber("normalize", "eps", eps, { min: 0 });
  return {
    init: () => null,
    update: (updates) => {
      let n = treeNorm(updates);
      if (eps !== undefined) {
        const d = np.add(n, eps);
        n = np.where(np.greater(d, 0), d, np.onesLike(d));
      }
      return [tree.map((g: Tensor) => np.divide(g, np.astype(n, g.dtype)), updates), null];
    },
  };
}

const negate = (u: unknown): unknown => tree.map((x: Tensor) => np.negative(x), u);

/**
 * SAM in optax's two-optimizer form. Transparent mode: call `update` with the gradient at the
 * current parameters every step; steps `0 … syncPeriod−2` of a period are ascent steps (the
 * negated adversarial updates), the last one returns `cache − params + outerUpdate`, which lands
 * the parameters on the outer optimizer's step from the clean cache. Opaque mode: one call per
 * outer step, with `extra.gradFn(params, i)` giving the gradient at the `i`-th perturbed point.
 *
 * @example
 * ```ts
 * const opt = contrib.sam(sgd(0.1), chain(contrib.normalize(), sgd(0.05)));
 * let s = opt.init(params);
 * for (;;) { const [u, s1] = opt.update(grad(loss)(params, x, y), s, params); params = applyUpdates(params, u); s = s1; }
 * ```
 */
export function sam<O, A>(
  optimizer: GradientTransformation<O>,
  advOptimizer: GradientTransformation<A>,
  opts: ContribSamOptions = {},
): GradientTransformationExtraArgs<SamState<O, A>> {
  const op = "contrib.sam";
  if (!optimizer || typeof optimizer.update !== "function")
    throw new ConfigError("optimizer must be a GradientTransformation", op);
  if (!advOptimizer || typeof advOptimizer.update !== "function")
    throw new ConfigError("advOptimizer must be a GradientTransformation", op);
  const { syncPeriod = 2, resetState = true, opaqueMode = false } = opts;
  if (!Number.isInteger(syncPeriod) || syncPeriod < 1)
    throw new ConfigError(`syncPeriod must be an integer >= 1, got ${String(syncPeriod)}`, op);

  const init = (params: Params): SamState<O, A> => ({
    stepsSinceSync: np.array(0, "int32"),
    optState: optimizer.init(params),
    advState: advOptimizer.init(params),
    cache: opaqueMode ? null : params,
  });

  const needParams = (params: Params | undefined): Params => {
    if (params === undefined) throw new ConfigError("update needs the current params", op);
    return params;
  };

  const transparent = (
    updates: Updates,
    state: SamState<O, A>,
    params?: Params,
  ): [Updates, SamState<O, A>] => {
    const w = needParams(params);
    const s = state.stepsSinceSync;
    // Refresh the cache before it is used, so syncPeriod = 1 is the outer optimizer (optax #1788).
    const cache = cond(
      np.equal(s, 0),
      (p: Params) => p,
      (_p: Params, c: Params) => c,
      w,
      state.cache,
    );
    const outer = (g: Updates, p: Params, c: Params, os: O, _as: A): [Updates, O, A] => {
      const [u, nos] = optimizer.update(g, os, c);
      const jump = tree.map((ci: Tensor, pi: Tensor, ui: Tensor) => np.add(np.subtract(ci, pi), ui), c, p, u);
      return [jump, nos, resetState ? advOptimizer.init(p) : _as];
    };
    const ascent = (g: Updates, p: Params, _c: Params, os: O, as: A): [Updates, O, A] => {
      const [u, nas] = advOptimizer.update(g, as, p);
      return [negate(u), os, nas];
    };
    const last = np.equal(s, syncPeriod - 1);
    const [out, optState, advState] = cond(
      last,
      outer,
      ascent,
      updates,
      w,
      cache,
      state.optState,
      state.advState,
    ) as [Updates, O, A];
    const next = np.mod(np.add(s, np.array(1, "int32")), syncPeriod);
    return [out, { stepsSinceSync: np.astype(next, "int32"), optState, advState, cache }];
  };

  const opaque = (
    updates: Updates,
    state: SamState<O, A>,
    params?: Params,
    extra?: SamExtraArgs,
  ): [Updates, SamState<O, A>] => {
    const w = needParams(params);
    const gradFn = extra?.gradFn;
    if (typeof gradFn !== "function")
      throw new ConfigError("opaque mode needs update(updates, state, params, { gradFn })", op);
    let advParams = w;
    let adv = updates;
    let advState = state.advState;
    for (let i = 0; i < syncPeriod - 1; i++) {
      const [u, nas] = advOptimizer.update(adv, advState, advParams);
      advState = nas;
      advParams = applyUpdates(advParams, negate(u));
      adv = gradFn(advParams, i);
    }
    if (resetState) advState = advOptimizer.init(w);
    const [u, optState] = optimizer.update(adv, state.optState, w);
    return [u, { stepsSinceSync: np.array(0, "int32"), optState, advState, cache: null }];
  };

  return { init, update: opaqueMode ? opaque : transparent };
}
