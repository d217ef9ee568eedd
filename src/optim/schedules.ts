/**
 * optax's schedules: functions of the int32 step count returning a float32 scalar tensor, written
 * with `np` operations so they stage inside a jitted update. Arguments are checked at construction.
 */
import { ConfigError } from "../core/errors.js";
import * as np from "../core/numpy/index.js";
import type { Tensor } from "../core/tensor.js";
import { type Schedule, checkNumber } from "./base.js";

const f32 = (step: Tensor): Tensor => np.astype(step, "float32");

/** `optax.constant_schedule`. @example constantSchedule(0.1)(step) // 0.1 */
export function constantSchedule(value: number): Schedule {
  checkNumber("constantSchedule", "value", value);
  return () => np.array(value, "float32");
}

/**
 * `optax.linear_schedule`: from `initValue` to `endValue` over `transitionSteps` steps starting at
 * `transitionBegin`, constant outside.
 *
 * @example linearSchedule(0, 1, 10)(np.array(5, "int32")) // 0.5
 */
export function linearSchedule(initValue: number, endValue: number, transitionSteps: number, transitionBegin = 0): Schedule {
  const op = "linearSchedule";
  checkNumber(op, "initValue", initValue);
  checkNumber(op, "endValue", endValue);
  checkNumber(op, "transitionSteps", transitionSteps);
  checkNumber(op, "transitionBegin", transitionBegin, { min: 0 });
  if (transitionSteps <= 0) return constantSchedule(initValue);
  return (step) => {
    const count = np.clip(np.subtract(f32(step), transitionBegin), 0, transitionSteps);
    const frac = np.subtract(1, np.divide(count, transitionSteps));
    return np.add(np.multiply(frac, initValue - endValue), endValue);
  };
}

/**
 * `optax.cosine_decay_schedule`: `init · ((1-alpha)·(½(1+cos(π·min(t,T)/T)))^exponent + alpha)`.
 *
 * @example cosineDecaySchedule(0.1, 100)(np.array(50, "int32")) // 0.05
 */
export function cosineDecaySchedule(initValue: number, decaySteps: number, alpha = 0, exponent = 1): Schedule {
  const op = "cosineDecaySchedule";
  checkNumber(op, "initValue", initValue);
  checkNumber(op, "decaySteps", decaySteps, { min: 0, minExclusive: true });
  checkNumber(op, "alpha", alpha);
  checkNumber(op, "exponent", exponent);
  return (step) => {
    const count = np.minimum(f32(step), decaySteps);
    const cosine = np.multiply(np.add(1, np.cos(np.multiply(count, Math.PI / decaySteps))), 0.5);
    const decayed = np.add(np.multiply(np.power(cosine, exponent), 1 - alpha), alpha);
    return np.multiply(decayed, initValue);
  };
}

/**
 * `optax.join_schedules`: `schedules[i+1]` takes over at `boundaries[i]`, fed `step - boundaries[i]`.
 *
 * @example joinSchedules([constantSchedule(1), constantSchedule(2)], [10])
 */
export function joinSchedules(schedules: Schedule[], boundaries: number[]): Schedule {
  const op = "joinSchedules";
  if (schedules.length !== boundaries.length + 1)
    throw new ConfigError(`needs one more schedule than boundaries, got ${schedules.length} and ${boundaries.length}`, op);
  boundaries.forEach((b, i) => {
    checkNumber(op, `boundaries[${i}]`, b, { min: 0 });
    if (i > 0 && b < boundaries[i - 1]!) throw new ConfigError("boundaries must be non-decreasing", op);
  });
  return (step) => {
    let out = np.astype(schedules[0]!(step), "float32");
    boundaries.forEach((b, i) => {
      const next = np.astype(schedules[i + 1]!(np.subtract(step, np.array(b, "int32"))), "float32");
      out = np.where(np.less(step, b), out, next);
    });
    return out;
  };
}

/**
 * `optax.warmup_cosine_decay_schedule`: linear warm-up from `initValue` to `peakValue` over
 * `warmupSteps`, then cosine decay to `endValue` at `decaySteps` (warm-up included).
 *
 * @example warmupCosineDecaySchedule({ initValue: 0, peakValue: 1, warmupSteps: 10, decaySteps: 100 })
 */
export function warmupCosineDecaySchedule(opts: {
  initValue: number;
  peakValue: number;
  warmupSteps: number;
  decaySteps: number;
  endValue?: number;
  exponent?: number;
}): Schedule {
  const { initValue, peakValue, warmupSteps, decaySteps, endValue = 0, exponent = 1 } = opts;
  const op = "warmupCosineDecaySchedule";
  checkNumber(op, "peakValue", peakValue);
  checkNumber(op, "endValue", endValue);
  checkNumber(op, "warmupSteps", warmupSteps, { min: 0 });
  checkNumber(op, "decaySteps", decaySteps);
  if (!(decaySteps > warmupSteps)) throw new ConfigError(`decaySteps (${decaySteps}) must exceed warmupSteps (${warmupSteps})`, op);
  const alpha = peakValue === 0 ? 0 : endValue / peakValue;
  return joinSchedules(
    [linearSchedule(initValue, peakValue, warmupSteps), cosineDecaySchedule(peakValue, decaySteps - warmupSteps, alpha, exponent)],
    [warmupSteps],
  );
}

/**
 * `optax.piecewise_constant_schedule`: `initValue` times the product of the scales of every
 * boundary the step has reached (`step >= boundary`).
 *
 * @example piecewiseConstantSchedule(0.1, { 100: 0.1, 200: 0.1 })
 */
export function piecewiseConstantSchedule(initValue: number, boundariesAndScales: Record<number, number> = {}): Schedule {
  const op = "piecewiseConstantSchedule";
  checkNumber(op, "initValue", initValue);
  const entries = Object.entries(boundariesAndScales)
    .map(([b, s]) => [Number(b), s] as const)
    .sort((a, b) => a[0] - b[0]);
  for (const [b, s] of entries) {
    checkNumber(op, `boundary ${b}`, b, { min: 0 });
    checkNumber(op, `scale at ${b}`, s, { min: 0 });
  }
  return (step) => {
    let v = np.array(initValue, "float32");
    for (const [b, s] of entries) v = np.where(np.less(step, b), v, np.multiply(v, s));
    return v;
  };
}

/**
 * `optax.exponential_decay`: `init · rate^((t - begin)/transitionSteps)` (floored with
 * `staircase`), held at `init` before `transitionBegin` and bounded by `endValue` when given.
 *
 * @example exponentialDecay({ initValue: 1, transitionSteps: 10, decayRate: 0.5 })
 */
export function exponentialDecay(opts: {
  initValue: number;
  transitionSteps: number;
  decayRate: number;
  transitionBegin?: number;
  staircase?: boolean;
  endValue?: number;
}): Schedule {
  const { initValue, transitionSteps, decayRate, transitionBegin = 0, staircase = false, endValue } = opts;
  const op = "exponentialDecay";
  checkNumber(op, "initValue", initValue);
  checkNumber(op, "transitionSteps", transitionSteps);
  checkNumber(op, "decayRate", decayRate, { min: 0 });
  checkNumber(op, "transitionBegin", transitionBegin, { min: 0 });
  if (endValue !== undefined) checkNumber(op, "endValue", endValue);
  if (transitionSteps <= 0 || decayRate === 0) return constantSchedule(initValue);
  return (step) => {
    const count = np.subtract(f32(step), transitionBegin);
    let p = np.divide(count, transitionSteps);
    if (staircase) p = np.floor(p);
    let decayed = np.multiply(np.power(np.array(decayRate, "float32"), p), initValue);
    decayed = np.where(np.lessEqual(count, 0), np.array(initValue, "float32"), decayed);
    if (endValue !== undefined) decayed = decayRate < 1 ? np.maximum(decayed, endValue) : np.minimum(decayed, endValue);
    return decayed;
  };
}
