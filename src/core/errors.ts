/**
 * Typed errors. Each names the operation, and where known the shapes, dtypes, the argument and the
 * tree path, so a message reads like `add: shapes [2,3] and [4] cannot broadcast (argument 1)`.
 */

/** Base class of every error tsjax raises on purpose. */
export class TsjaxError extends Error {
  /** The operation or primitive that raised. */
  readonly op: string | undefined;
  constructor(message: string, op?: string) {
    super(op ? `${op}: ${message}` : message);
    this.op = op;
    this.name = new.target.name;
  }
}

/** Shapes that do not fit: broadcasting, contraction, reshapes, layer inputs. */
export class ShapeError extends TsjaxError {}

/** A dtype that an operation does not accept, or two that it cannot combine. */
export class DTypeError extends TsjaxError {}

/** Misuse of a transform: a leaked tracer, a concrete value needed under a trace, a bad output. */
export class TraceError extends TsjaxError {}

/** An invalid option or hyper-parameter. */
export class ConfigError extends TsjaxError {}

/** A checkpoint that cannot be read or written. */
export class CheckpointError extends TsjaxError {}

/** Formats a shape as `[2,3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}
