/**
 * `tsjax/testing`: arbitraries and checkers for property tests of array programs and optimizers.
 *
 * @module tsjax/testing
 */
export * from "./arbitraries.js";
export * from "./checks.js";
export * from "./programs.js";
export * from "./arbitraries-tree.js";
export * from "./optim-problems.js";
export * from "./optim-checks.js";
