/** `lax`: the primitives by their JAX names in camelCase; no promotion, no implicit broadcasting. */
export {
  abs,
  add,
  and,
  atan2,
  ceil,
  convertElementType,
  cos,
  div,
  eq,
  erf,
  exp,
  expm1,
  floor,
  ge,
  gt,
  integerPow,
  isFiniteLax as isFinite,
  le,
  log,
  log1p,
  logistic,
  lt,
  max,
  min,
  mul,
  ne,
  neg,
  not,
  or,
  pow,
  rem,
  round,
  rsqrt,
  select,
  shiftLeft,
  shiftRightLogical,
  sign,
  sin,
  sqrt,
  stopGradient,
  sub,
  tanh,
  xor,
} from "./primitives/elementwise.js";
export { argmax, argmin, reduceMax, reduceMin, reduceProd, reduceSum } from "./primitives/reduce.js";
export { broadcastInDim, expandDims, reshape, squeeze, transpose } from "./primitives/structural.js";
export { concatenate, dynamicSlice, dynamicUpdateSlice, gather, iota, pad, scatterAdd, slice } from "./primitives/indexing.js";
export { cumsum } from "./primitives/cumsum.js";
export { dotGeneral } from "./primitives/contract.js";
export { convDimensionNumbers, convGeneralDilated, padtypeToPads } from "./primitives/conv.js";
export { reduceWindow } from "./primitives/window.js";
export { sort } from "./primitives/sort.js";
export { bitcastConvertType } from "./primitives/random.js";
