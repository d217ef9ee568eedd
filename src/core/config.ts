/** Global debugging switches, as JAX's `jax.config` flags. Off by default: they cost time per op. */
export const config = {
  /** Like `jax_debug_nans`: raise on the first primitive whose float output holds a NaN. */
  debugNans: false,
};

/**
 * Sets a debugging flag.
 *
 * @example
 * ```ts
 * setConfig("debugNans", true);
 * np.log(np.array(-1)); // throws FloatingPointError-like TsjaxError naming `log`
 * ```
 */
export function setConfig(name: keyof typeof config, value: boolean): void {
  config[name] = value;
}
