import { config } from "./config.js";
import { TraceError, TsjaxError } from "./errors.js";
import type { Primitive } from "./primitive.js";
import { type ShapedArray, Tensor, avalToString } from "./tensor.js";

/**
 * The interpreter stack, as in JAX's autodidax: each transform pushes a main trace with a level;
 * `bind` finds the highest-level trace among its arguments (or the dynamic trace, for staging) and
 * lets it interpret the primitive. The eval trace sits at level 0 and runs the CPU implementations.
 */
export class MainTrace {
  /** False once the transform that pushed it has returned: its tracers have leaked if seen again. */
  active = true;
  constructor(
    readonly level: number,
    readonly traceType: new (main: MainTrace) => Trace,
    readonly globalData: unknown,
  ) {}
}

export abstract class Trace {
  constructor(readonly main: MainTrace) {}
  /** Boxes a value that belongs to no trace at or above this one. */
  abstract pure(x: Tensor): Tensor;
  /** Boxes a tracer of a lower trace. */
  lift(x: Tensor): Tensor {
    return this.pure(x);
  }
  abstract processPrimitive(prim: Primitive, tracers: Tensor[], params: unknown): Tensor[];
}

/** A value inside a transform: it carries an abstract value and whatever its trace adds. */
export abstract class Tracer extends Tensor {
  constructor(readonly _trace: Trace) {
    super(null, null);
  }
  abstract override get aval(): ShapedArray;
  /** The value without this trace's box, when the box adds nothing (e.g. a zero tangent). */
  fullLower(): Tensor {
    return this;
  }
}

class EvalTrace extends Trace {
  pure(x: Tensor): Tensor {
    return x;
  }
  processPrimitive(prim: Primitive, args: Tensor[], params: unknown): Tensor[] {
    return evalPrimitive(prim, args, params);
  }
}

function evalPrimitive(prim: Primitive, args: Tensor[], params: unknown): Tensor[] {
  const outAvals = prim.abstractEval(
    args.map((a) => a.aval),
    params,
  );
  const outs = prim.impl(args, params, outAvals);
  if (config.debugNans) checkNans(prim, args, outs);
  return outs;
}

/** Raised under `debugNans` by the first primitive that turns NaN-free inputs into a NaN. */
export class NaNError extends TsjaxError {}

function hasNaN(x: Tensor): boolean {
  if (x.dtype !== "float32" && x.dtype !== "float64") return false;
  for (const v of x._buf!) if (Number.isNaN(v)) return true;
  return false;
}

function checkNans(prim: Primitive, args: Tensor[], outs: Tensor[]): void {
  if (args.some(hasNaN)) return;
  const i = outs.findIndex(hasNaN);
  if (i >= 0) {
    throw new NaNError(
      `produced a NaN in output ${i} (${avalToString(outs[i]!.aval)}) from NaN-free inputs ${args.map((a) => avalToString(a.aval)).join(", ")}`,
      prim.name,
    );
  }
}

const stack: MainTrace[] = [new MainTrace(0, EvalTrace, null)];
let dynamic: MainTrace = stack[0]!;

/**
 * Runs `fn` with a new main trace of `traceType` on top of the stack; the main is popped (and its
 * tracers marked as leaked) however `fn` exits.
 */
export function withMainTrace<T>(traceType: new (main: MainTrace) => Trace, globalData: unknown, fn: (main: MainTrace) => T): T {
  const main = new MainTrace(stack.length, traceType, globalData);
  stack.push(main);
  try {
    return fn(main);
  } finally {
    stack.pop();
    main.active = false;
  }
}

/** Runs `fn` with `main` as the dynamic trace: every `bind` reaches it, even without tracer inputs. */
export function withDynamicTrace<T>(main: MainTrace, fn: () => T): T {
  const prev = dynamic;
  dynamic = main;
  try {
    return fn();
  } finally {
    dynamic = prev;
  }
}

/** The current number of main traces above the eval trace (0 when nothing is being transformed). */
export function traceDepth(): number {
  return stack.length - 1;
}

function leakedError(x: Tracer): TraceError {
  return new TraceError(
    `a tracer ${avalToString(x.aval)} escaped the transform that created it (it was stored outside the ` +
      "function being transformed and used after that transform returned). Return values from the " +
      "transformed function instead of keeping them in outer variables.",
    "bind",
  );
}

function findTopTrace(args: readonly Tensor[]): Trace {
  let top = dynamic;
  for (const x of args) {
    if (x instanceof Tracer) {
      const main = x._trace.main;
      if (!main.active) throw leakedError(x);
      if (main.level > top.level) top = main;
    }
  }
  return new top.traceType(top);
}

function fullRaise(trace: Trace, x: Tensor): Tensor {
  if (!(x instanceof Tracer)) return trace.pure(x);
  const level = x._trace.main.level;
  if (x._trace.main === trace.main) return x;
  if (level < trace.main.level) return trace.lift(x);
  throw leakedError(x);
}

function fullLower(x: Tensor): Tensor {
  return x instanceof Tracer ? x.fullLower() : x;
}

/** Applies a primitive through the interpreter stack. Every public operation goes through here. */
export function bind(prim: Primitive, args: Tensor[], params: unknown): Tensor[] {
  if (stack.length === 1) {
    // Nothing is being transformed: run the implementation directly (the eager fast path).
    for (const a of args) if (a instanceof Tracer) throw leakedError(a);
    return evalPrimitive(prim, args, params);
  }
  const trace = findTopTrace(args);
  const tracers = args.map((a) => fullRaise(trace, a));
  const outs = trace.processPrimitive(prim, tracers, params);
  return outs.map(fullLower);
}

/** `bind` for single-output primitives. */
export function bind1(prim: Primitive, args: Tensor[], params: unknown): Tensor {
  return bind(prim, args, params)[0]!;
}
