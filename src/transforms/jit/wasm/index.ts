/**
 * tsjax's own WebAssembly SIMD CPU backend: kernels generated as wasm bytes from TypeScript (no
 * native or build-time dependency), over one persistent linear memory. A plain Float32Array API,
 * plus pointer-level entry points for buffers kept resident in the heap.
 *
 * - {@link WasmBackend}: heap + GEMM (1 or more threads) + fused elementwise / reduction kernels + conv2d.
 * - {@link matmul}: C = op(A)·op(B) on a default single-threaded backend.
 * - {@link ew}: the elementwise expression IR; {@link compileElementwise}, {@link compileReduction}.
 * - {@link WasmKernelBackend}: the jit's kernel IR (affine loads, reductions, epilogues) on all of the above.
 */
export { ModuleBuilder, FuncBuilder, I32, F32, V128, Op, Simd, uleb, sleb } from "./assembler.js";
export { defaultWasmBackend, matmul, WasmBackend, type WasmBackendOptions } from "./backend.js";
export { type Conv2dOptions, type ConvGeometry, convGeometry, WasmConv } from "./conv.js";
export {
  type ArrayInput,
  type BinaryOp,
  type CompareOp,
  compileElementwise,
  compileReduction,
  ElementwiseKernel,
  type Expr,
  ew,
  type PtrInput,
  type ReduceKind,
  type UnaryOp,
} from "./elementwise.js";
export {
  DEFAULT_BLOCKS,
  type GemmBlocks,
  type MatmulOptions,
  type StridedOperand,
  WasmGemm,
} from "./gemm.js";
export { DEFAULT_SHAPE, type MicroKernelShape } from "./gemm-module.js";
export { type HeapOptions, WasmHeap } from "./heap.js";
export { GemmWorkerPool } from "./threads.js";
export {
  type AffineIndex,
  type AffineKernel,
  type KernelExpr,
  type WasmCompiledKernel,
  WasmKernelBackend,
} from "./kernel-adapter.js";
