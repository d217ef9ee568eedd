/**
 * `np`: the jax.numpy API. Every function accepts tensors, JS numbers and nested JS arrays,
 * promotes with JAX's weak-type rules and broadcasts NumPy-style, then binds lax primitives, so
 * everything here composes with every transform.
 */
import { installTensorMethods } from "../tensor.js";
import { astype } from "./creation.js";
import * as ew from "./elementwise.js";
import { dot, matmul } from "./linalg.js";
import * as red from "./reductions.js";
import { ravel, reshape, transpose } from "./shape.js";

export {
  type ArrayLike,
  arange,
  array,
  asarray,
  astype,
  bool,
  eye,
  float32,
  float64,
  full,
  fullLike,
  int32,
  linspace,
  ones,
  onesLike,
  uint32,
  zeros,
  zerosLike,
} from "./creation.js";
export {
  abs,
  add,
  ceil,
  clip,
  cos,
  divide,
  equal,
  erf,
  exp,
  expm1,
  floor,
  floorDivide,
  greater,
  greaterEqual,
  isfinite,
  isnan,
  less,
  lessEqual,
  log,
  log1p,
  logaddexp,
  logicalAnd,
  logicalNot,
  logicalOr,
  maximum,
  minimum,
  mod,
  multiply,
  negative,
  notEqual,
  power,
  reciprocal,
  round,
  rsqrt,
  sign,
  sin,
  sqrt,
  square,
  subtract,
  tanh,
  where,
} from "./elementwise.js";
export { type Axis, type ReduceOptions, type VarOptions, all, any, argmax, argmin, cumsum, max, mean, min, prod, std, sum, var_ as var } from "./reductions.js";
export { broadcastTo, expandDims, moveaxis, ravel, repeat, reshape, squeeze, swapaxes, tile, transpose } from "./shape.js";
export { type PadWidth, concatenate, flip, pad, split, stack, take, takeAlongAxis } from "./indexing.js";
export { type NormOrd, dot, einsum, linalg, matmul, outer, tensordot, vdot } from "./linalg.js";
export { allclose } from "./allclose.js";

installTensorMethods({
  add: ew.add,
  subtract: ew.subtract,
  multiply: ew.multiply,
  divide: ew.divide,
  power: ew.power,
  negative: ew.negative,
  maximum: ew.maximum,
  minimum: ew.minimum,
  exp: ew.exp,
  log: ew.log,
  sqrt: ew.sqrt,
  square: ew.square,
  abs: ew.abs,
  tanh: ew.tanh,
  sin: ew.sin,
  cos: ew.cos,
  greater: ew.greater,
  less: ew.less,
  equal: ew.equal,
  sum: red.sum,
  mean: red.mean,
  max: red.max,
  min: red.min,
  prod: red.prod,
  argmax: red.argmax,
  argmin: red.argmin,
  reshape,
  transpose,
  ravel,
  astype,
  matmul,
  dot,
});
