/** `nn`: jax.nn's functions (layers, initializers, losses and models join in later issues). */
export * from "./functions.js";
