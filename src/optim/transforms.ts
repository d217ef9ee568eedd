/**
 * optax's gradient transformations. Every state is a tree of tensors (step counts are int32
 * scalars), and every update is written with `np` operations only, so it stages and differentiates.
 */
import { ConfigError } from "../core/errors.js";
import * as np from "../core/numpy/index.js";
import type { Tensor } from "../core/tensor.js";
import * as tree from "../core/tree.js";
import {
  type GradientTransformation,
  type Params,
  type Schedule,
  type ScalarOrSchedule,
  type Updates,
  checkNumber,
  checkScalarOrSchedule,
  checkSchedule,
} from "./base.js";
import { biasCorrection, safeIncrement, treeNorm, treeZerosLike, updateMoment } from "./tree-math.js";

const zeroCount = (): Tensor => np.array(0, "int32");

function needParams(op: string, params: Params | undefined): Params {
  if (params === undefined) throw new ConfigError("this transformation needs `params` in update(grads, state, params)", op);
  return params;
}

const mapT = <T>(f: (...xs: Tensor[]) => Tensor, t: T, ...rest: unknown[]): T =>
  tree.map(f as (leaf: any, ...r: any[]) => Tensor, t, ...rest) as unknown as T;

/** `optax.scale`: multiplies updates by a constant. @example scale(-0.1) */
export function scale(step: number): GradientTransformation<null> {
  checkNumber("scale", "step", step);
  return { init: () => null, update: (u) => [mapT((g) => np.multiply(g, step), u), null] };
}

/** State of {@link scaleBySchedule}: the number of updates so far. */
export interface ScaleByScheduleState {
  count: Tensor;
}

/** `optax.scale_by_schedule`: multiplies updates by `schedule(count)`, then increments count. @example scaleBySchedule(cosineDecaySchedule(1, 100)) */
export function scaleBySchedule(schedule: Schedule): GradientTransformation<ScaleByScheduleState> {
  checkSchedule("scaleBySchedule", "schedule", schedule);
  return {
    init: () => ({ count: zeroCount() }),
    update: (u, state) => {
      const s = schedule(state.count);
      return [mapT((g) => np.multiply(g, np.astype(s, g.dtype)), u), { count: safeIncrement(state.count) }];
    },
  };
}

/**
 * `optax.scale_by_learning_rate`: scales by `-lr` (or `lr` without `flipSign`); `lr` may be a
 * schedule of the step count.
 *
 * @example chain(scaleByAdam(), scaleByLearningRate(1e-3))
 */
export function scaleByLearningRate(
  learningRate: ScalarOrSchedule,
  flipSign = true,
): GradientTransformation<null> | GradientTransformation<ScaleByScheduleState> {
  checkScalarOrSchedule("scaleByLearningRate", "learningRate", learningRate);
  const m = flipSign ? -1 : 1;
  if (typeof learningRate === "number") return scale(m * learningRate);
  return scaleBySchedule((step) => np.multiply(learningRate(step), m));
}

/** State of {@link traceMomentum}. */
export interface TraceState {
  trace: Updates;
}

/**
 * `optax.trace`: heavy-ball momentum `t ← g + decay·t`; with `nesterov` the update is
 * `g + decay·t_new`, which is also flax.optim.Momentum's Nesterov form (`v ← βv + g; d = g + βv`).
 *
 * @example traceMomentum({ decay: 0.9, nesterov: true })
 */
export function traceMomentum(opts: { decay: number; nesterov?: boolean }): GradientTransformation<TraceState> {
  const { decay, nesterov = false } = opts;
  checkNumber("traceMomentum", "decay", decay, { min: 0, max: 1, maxExclusive: true });
  return {
    init: (params) => ({ trace: treeZerosLike(params) }),
    update: (u, state) => {
      const f = (g: Tensor, t: Tensor) => np.add(g, np.multiply(t, decay));
      const newTrace = mapT(f, u, state.trace);
      const updates = nesterov ? mapT(f, u, newTrace) : newTrace;
      return [updates, { trace: newTrace }];
    },
  };
}

/** State of {@link scaleByAdam}. */
export interface AdamState {
  count: Tensor;
  mu: Updates;
  nu: Updates;
}

/**
 * `optax.scale_by_adam`: `m̂/(sqrt(v̂ + epsRoot) + eps)` with bias-corrected moments.
 *
 * @example chain(scaleByAdam({ b1: 0.9 }), scaleByLearningRate(1e-3))
 */
export function scaleByAdam(opts: { b1?: number; b2?: number; eps?: number; epsRoot?: number } = {}): GradientTransformation<AdamState> {
  const { b1 = 0.9, b2 = 0.999, eps = 1e-8, epsRoot = 0 } = opts;
  const op = "scaleByAdam";
  checkNumber(op, "b1", b1, { min: 0, max: 1, maxExclusive: true });
  checkNumber(op, "b2", b2, { min: 0, max: 1, maxExclusive: true });
  checkNumber(op, "eps", eps, { min: 0 });
  checkNumber(op, "epsRoot", epsRoot, { min: 0 });
  return {
    init: (params) => ({ count: zeroCount(), mu: treeZerosLike(params), nu: treeZerosLike(params) }),
    update: (u, state) => {
      const mu = updateMoment(u, state.mu, b1, 1);
      const nu = updateMoment(u, state.nu, b2, 2);
      const count = safeIncrement(state.count);
      const muHat = biasCorrection(mu, b1, count);
      const nuHat = biasCorrection(nu, b2, count);
      const updates = mapT((m, v) => np.divide(m, np.add(np.sqrt(np.add(v, epsRoot)), eps)), muHat, nuHat);
      return [updates, { count, mu, nu }];
    },
  };
}

/** State of {@link scaleByRms}. */
export interface RmsState {
  nu: Updates;
}

/** `optax.scale_by_rms`: `g / (sqrt(ν) + eps)` with `ν ← decay·ν + (1-decay)·g²`. @example scaleByRms({ decay: 0.9 }) */
export function scaleByRms(opts: { decay?: number; eps?: number; initialScale?: number } = {}): GradientTransformation<RmsState> {
  const { decay = 0.9, eps = 1e-8, initialScale = 0 } = opts;
  checkNumber("scaleByRms", "decay", decay, { min: 0, max: 1, maxExclusive: true });
  checkNumber("scaleByRms", "eps", eps, { min: 0 });
  checkNumber("scaleByRms", "initialScale", initialScale, { min: 0 });
  return {
    init: (params) => ({ nu: mapT((p) => np.fullLike(p, initialScale), params) }),
    update: (u, state) => {
      const nu = updateMoment(u, state.nu, decay, 2);
      return [mapT((g, v) => np.divide(g, np.add(np.sqrt(v), eps)), u, nu), { nu }];
    },
  };
}

/** State of {@link scaleByRss}. */
export interface RssState {
  sumOfSquares: Updates;
}

/**
 * `optax.scale_by_rss` (Adagrad): `g · rsqrt(Σg² + eps)`, 0 where the accumulated sum is 0.
 *
 * @example scaleByRss({ initialAccumulatorValue: 0.1 })
 */
export function scaleByRss(opts: { initialAccumulatorValue?: number; eps?: number } = {}): GradientTransformation<RssState> {
  const { initialAccumulatorValue = 0.1, eps = 1e-7 } = opts;
  checkNumber("scaleByRss", "initialAccumulatorValue", initialAccumulatorValue, { min: 0 });
  checkNumber("scaleByRss", "eps", eps, { min: 0 });
  return {
    init: (params) => ({ sumOfSquares: mapT((p) => np.fullLike(p, initialAccumulatorValue), params) }),
    update: (u, state) => {
      const sumOfSquares = mapT((g, s) => np.add(s, np.square(g)), u, state.sumOfSquares);
      const updates = mapT(
        (g, s) => np.where(np.greater(s, 0), np.multiply(g, np.rsqrt(np.add(s, eps))), np.zerosLike(g)),
        u,
        sumOfSquares,
      );
      return [updates, { sumOfSquares }];
    },
  };
}

/**
 * A mask: a tree of booleans with the parameters' structure, a predicate on each leaf's key path
 * (`(path, leaf) => boolean`, path as `"dense.kernel"`), {@link byPath} of one, or
 * {@link maskFromParams} of a function building the boolean tree from the parameters (optax's form).
 */
export type Mask = unknown;

/** A key-path predicate: `path` is `keyPathToString(keyPath)`, e.g. `"layers[0].kernel"`. */
export type PathTest = (path: string, leaf: Tensor, keyPath: tree.KeyPath) => boolean;

/** A tagged predicate mask. */
export interface PathPredicate {
  readonly kind: "pathPredicate";
  readonly test: PathTest;
}

/** A tagged mask built from the parameters, as optax's callable masks are. */
export interface ParamsMask {
  readonly kind: "paramsMask";
  readonly build: (params: Params) => unknown;
}

/**
 * Wraps a key-path predicate as a mask (a bare function works too; this names the intent).
 *
 * @example addDecayedWeights(1e-4, byPath((p) => !p.endsWith("bias")))
 */
export function byPath(test: PathTest): PathPredicate {
  return { kind: "pathPredicate", test };
}

/**
 * A mask computed from the parameters (optax's callable `mask(params)`).
 *
 * @example masked(t, maskFromParams((p) => tree.map((x) => x.ndim > 1, p)))
 */
export function maskFromParams(build: (params: Params) => unknown): ParamsMask {
  return { kind: "paramsMask", build };
}

const isTagged = (m: unknown, kind: string): boolean =>
  typeof m === "object" && m !== null && (m as { kind?: unknown }).kind === kind;

/** Resolves a mask to a tree of booleans with the structure of `params`. */
function resolveMask(op: string, mask: unknown, params: Params): unknown {
  let m: unknown;
  const byPathTest = (test: PathTest) =>
    tree.mapWithPath((p, leaf: Tensor) => {
      const b = test(tree.keyPathToString(p), leaf, p);
      if (typeof b !== "boolean")
        throw new ConfigError(`the mask predicate must return a boolean, got ${String(b)} at ${tree.keyPathToString(p)}`, op);
      return b;
    }, params);
  if (isTagged(mask, "pathPredicate")) m = byPathTest((mask as PathPredicate).test);
  else if (isTagged(mask, "paramsMask")) m = (mask as ParamsMask).build(params);
  else if (typeof mask === "function") m = byPathTest(mask as PathTest);
  else m = mask;
  const ok = tree.leaves(m).every((b) => typeof b === "boolean");
  if (!ok) throw new ConfigError("the mask must be a tree of booleans, a key-path predicate, or maskFromParams(f)", op);
  tree.assertSameStructure(tree.structure(params), tree.structure(m), op);
  return m;
}

/** Keeps the leaves where the mask is true and empties (null) the others. */
function selectMasked(t: unknown, m: unknown): unknown {
  const [ls, def] = tree.flatten(t);
  const ms = tree.leaves<boolean>(m);
  return tree.unflatten(def, ls.map((l, i) => (ms[i] ? l : null)));
}

/** State of {@link masked}. */
export interface MaskedState {
  inner: unknown;
}

/**
 * `optax.masked`: applies `inner` to the leaves where the mask is true; the other updates pass
 * through unchanged. Unmasked leaves appear as `null` in the inner state.
 *
 * @example masked(addDecayedWeights(1e-4), byPath((p) => p.endsWith("kernel")))
 */
export function masked<S>(inner: GradientTransformation<S>, mask: Mask): GradientTransformation<MaskedState> {
  const op = "masked";
  return {
    init: (params) => {
      const m = resolveMask(op, mask, params);
      return { inner: inner.init(selectMasked(params, m)) };
    },
    update: (u, state, params) => {
      // The mask is resolved on the parameters when given, else on the updates (same structure).
      const m = resolveMask(op, mask, params ?? u);
      const [innerU, innerS] = inner.update(
        selectMasked(u, m),
        state.inner as S,
        params === undefined ? undefined : selectMasked(params, m),
      );
      const [ls, def] = tree.flatten(u);
      const ms = tree.leaves<boolean>(m);
      const newLs = tree.leaves<Tensor>(innerU);
      let k = 0;
      const out = ls.map((l, i) => (ms[i] ? newLs[k++]! : l));
      return [tree.unflatten(def, out), { inner: innerS }];
    },
  };
}

/**
 * `optax.multi_transform`: each leaf is updated by the transformation named by its label. `labels`
 * is a tree of strings with the parameters' structure, or a function of the parameters giving one.
 *
 * @example multiTransform({ adam: adam(1e-3), sgd: sgd(0.1) }, { w: "adam", b: "sgd" })
 */
export function multiTransform(
  transforms: Record<string, GradientTransformation<any>>,
  labels: unknown | ((params: Params) => unknown),
): GradientTransformation<Record<string, MaskedState>> {
  const op = "multiTransform";
  const labelTree = (params: Params): unknown => {
    const l = typeof labels === "function" ? (labels as (p: Params) => unknown)(params) : labels;
    for (const s of tree.leaves(l)) {
      if (typeof s !== "string" || !(s in transforms))
        throw new ConfigError(`label ${JSON.stringify(s)} names no transformation (have ${Object.keys(transforms).join(", ")})`, op);
    }
    return l;
  };
  const parts = Object.fromEntries(
    Object.entries(transforms).map(([k, t]) => [k, masked(t, maskFromParams((p: Params) => tree.map((s: string) => s === k, labelTree(p))))]),
  );
  return {
    init: (params) => Object.fromEntries(Object.entries(parts).map(([k, t]) => [k, t.init(params)])),
    update: (u, state, params) => {
      const out: Record<string, MaskedState> = {};
      let cur = u;
      for (const [k, t] of Object.entries(parts)) {
        const [nu, ns] = t.update(cur, state[k]!, params);
        cur = nu;
        out[k] = ns;
      }
      return [cur, out];
    },
  };
}

/**
 * `optax.add_decayed_weights`: `updates + weightDecay · params`, optionally only where `mask` is
 * true (a tree of booleans, `byPath(predicate)`, or a function of the params).
 *
 * @example chain(scaleByAdam(), addDecayedWeights(1e-4, byPath((p) => !p.endsWith("bias"))), scaleByLearningRate(1e-3))
 */
export function addDecayedWeights(weightDecay: number, mask?: Mask): GradientTransformation<any> {
  checkNumber("addDecayedWeights", "weightDecay", weightDecay, { min: 0 });
  const base: GradientTransformation<null> = {
    init: () => null,
    update: (u, _s, params) => [
      mapT((g, p) => np.add(g, np.multiply(p, weightDecay)), u, needParams("addDecayedWeights", params)),
      null,
    ],
  };
  return mask === undefined || mask === null ? base : masked(base, mask);
}

/**
 * `optax.clip_by_global_norm`: when the global norm `n ≥ maxNorm`, scales every leaf by `maxNorm/n`.
 *
 * @example chain(clipByGlobalNorm(5), traceMomentum({ decay: 0.9, nesterov: true }))
 */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<null> {
  checkNumber("clipByGlobalNorm", "maxNorm", maxNorm, { min: 0, minExclusive: true });
  return {
    init: () => null,
    update: (u) => {
      const n = treeNorm(u);
      const updates = mapT((g) => {
        const nn = np.astype(n, g.dtype);
        return np.where(np.less(nn, maxNorm), g, np.multiply(np.divide(g, nn), maxNorm));
      }, u);
      return [updates, null];
    },
  };
}

/** `optax.clip`: clips every element to `[-maxDelta, maxDelta]`. @example clip(1) */
export function clip(maxDelta: number): GradientTransformation<null> {
  checkNumber("clip", "maxDelta", maxDelta, { min: 0 });
  return { init: () => null, update: (u) => [mapT((g) => np.clip(g, -maxDelta, maxDelta), u), null] };
}

/** State of {@link applyIfFinite}. */
export interface ApplyIfFiniteState {
  notFiniteCount: Tensor;
  lastFinite: Tensor;
  totalNotFinite: Tensor;
  innerState: unknown;
}

/**
 * `optax.apply_if_finite`: skips (zero updates, inner state kept) any step whose updates hold a
 * NaN or infinity, unless more than `maxConsecutiveErrors` such steps came in a row.
 *
 * @example applyIfFinite(adam(1e-3), 5)
 */
export function applyIfFinite<S>(inner: GradientTransformation<S>, maxConsecutiveErrors: number): GradientTransformation<ApplyIfFiniteState> {
  checkNumber("applyIfFinite", "maxConsecutiveErrors", maxConsecutiveErrors, { min: 0 });
  if (!Number.isInteger(maxConsecutiveErrors))
    throw new ConfigError(`maxConsecutiveErrors must be an integer, got ${maxConsecutiveErrors}`, "applyIfFinite");
  return {
    init: (params) => ({
      notFiniteCount: zeroCount(),
      lastFinite: np.array(true),
      totalNotFinite: zeroCount(),
      innerState: inner.init(params),
    }),
    update: (u, state, params) => {
      const [innerU, innerS] = inner.update(u, state.innerState as S, params);
      const finite = tree
        .leaves<Tensor>(u)
        .reduce<Tensor>((acc, g) => np.logicalAnd(acc, np.all(np.isfinite(g))), np.array(true));
      const notFiniteCount = np.where(finite, np.array(0, "int32"), safeIncrement(state.notFiniteCount));
      const totalNotFinite = np.where(finite, state.totalNotFinite, safeIncrement(state.totalNotFinite));
      const apply = np.logicalOr(finite, np.greater(notFiniteCount, maxConsecutiveErrors));
      const updates = mapT((n: Tensor) => np.where(apply, n, np.zerosLike(n)), innerU);
      const innerState = mapT((n: Tensor, o: Tensor) => np.where(apply, n, o), innerS as unknown, state.innerState);
      return [updates, { notFiniteCount, lastFinite: finite, totalNotFinite, innerState }];
    },
  };
}

/** State of {@link scaleByLion}. */
export interface LionState {
  mu: Updates;
}

/** `optax.scale_by_lion`: `sign((1-b1)·g + b1·μ)`, then `μ ← b2·μ + (1-b2)·g`. @example scaleByLion({ b1: 0.9, b2: 0.99 }) */
export function scaleByLion(opts: { b1?: number; b2?: number } = {}): GradientTransformation<LionState> {
  const { b1 = 0.9, b2 = 0.99 } = opts;
  checkNumber("scaleByLion", "b1", b1, { min: 0, max: 1, maxExclusive: true });
  checkNumber("scaleByLion", "b2", b2, { min: 0, max: 1, maxExclusive: true });
  return {
    init: (params) => ({ mu: treeZerosLike(params) }),
    update: (u, state) => {
      const updates = mapT((g, m) => np.sign(np.add(np.multiply(g, 1 - b1), np.multiply(m, b1))), u, state.mu);
      const mu = updateMoment(u, state.mu, b2, 1);
      return [updates, { mu }];
    },
  };
}

/**
 * `optax.scale_by_trust_ratio` (LAMB/LARS): scales each leaf by `‖p‖/‖u‖`, or by 1 when either
 * norm is zero.
 *
 * @example chain(scaleByAdam(), scaleByTrustRatio(), scaleByLearningRate(1e-3))
 */
export function scaleByTrustRatio(): GradientTransformation<null> {
  return {
    init: () => null,
    update: (u, _s, params) => {
      const updates = mapT(
        (g, p) => {
          const pn = np.sqrt(np.sum(np.square(p)));
          const un = np.sqrt(np.sum(np.square(g)));
          const zero = np.logicalOr(np.equal(pn, 0), np.equal(un, 0));
          // Divide by a safe norm so a zero norm does not put a NaN in the (unused) branch.
          const ratio = np.where(zero, np.onesLike(pn), np.divide(pn, np.where(zero, np.onesLike(un), un)));
          return np.multiply(g, np.astype(ratio, g.dtype));
        },
        u,
        needParams("scaleByTrustRatio", params),
      );
      return [updates, null];
    },
  };
}


