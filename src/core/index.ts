/** The core public surface: arrays, dtypes, numpy, lax, random, trees, jaxprs and errors. */
export * as numpy from "./numpy/index.js";
export * as random from "./random.js";
export * as tree from "./tree.js";
export { Tensor, type ShapedArray, type NestedArray } from "./tensor.js";
export type { DType } from "./dtype.js";
export { ClosedJaxpr, Jaxpr, evalJaxpr } from "./jaxpr.js";
export { CheckpointError, ConfigError, DTypeError, ShapeError, TraceError, TsjaxError } from "./errors.js";
export { bind, Tracer } from "./trace.js";
export { primitives, type Primitive } from "./primitive.js";
export { config, setConfig } from "./config.js";
export { NaNError } from "./trace.js";
