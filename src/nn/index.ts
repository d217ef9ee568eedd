/** `nn`: jax.nn's functions, layers as (init, apply) pairs, initializers, and safetensors checkpoints. */
export * from "./functions.js";
export * from "./layer.js";
export * from "./layers.js";
export * as initializers from "./initializers.js";
export { type Checkpoint, deserialize, load, save, serialize } from "./checkpoint.js";
export * as losses from "./losses.js";
export * as metrics from "./metrics.js";
export * as models from "./models.js";
