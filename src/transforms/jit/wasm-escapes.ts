/**
 * The wasm backend's native escapes: the equations the fusion leaves outside kernels that the
 * backend runs itself instead of the CPU reference implementations. Convolutions go to the wasm
 * conv (wasm-conv.ts); `reduce_window` (sum, max, min), `select_and_scatter_add` (max/min pooling's
 * gradient) and `rev` go to the window loops of wasm/pool.ts. Each escape offers `run` (Tensors)
 * and `runPtr` (buffers in the backend's heap); anything that does not fit (other dtypes, base
 * dilation, windows over more than two axes) is declined with null and runs on the reference.
 */
import type { JaxprEqn } from "../../core/jaxpr.js";
import type { ReduceWindowParams, SelectParams } from "../../core/primitives/window.js";
import { Tensor } from "../../core/tensor.js";
import type { CompiledEscape } from "./backend.js";
import { wasmConvEscape } from "./wasm-conv.js";
import type { WasmBackend } from "./wasm/backend.js";
import {
  operandSize,
  planWindow,
  reduceWindowF32,
  revF32,
  selectAndScatterAddF32,
  simdFits,
  WasmPool,
  windowOutputSize,
} from "./wasm/pool.js";

const asF32 = (t: Tensor): Float32Array => {
  const b = t._buf!;
  return b instanceof Float32Array ? b : Float32Array.from(b as ArrayLike<number>);
};

const allFloat32 = (eqn: JaxprEqn): boolean =>
  eqn.inputs.every((a) => a.aval.dtype === "float32") &&
  eqn.outBinders.every((b) => b.aval.dtype === "float32");

/**
 * The backend's implementation of an escape equation, or null to leave it to the reference.
 *
 * @example
 * ```ts
 * const impl = wasmEscape(() => backend, eqn); // eqn: e.g. a reduce_window max JaxprEqn
 * impl?.run([x]);                              // [pooled]
 * ```
 */
export function wasmEscape(backend: () => WasmBackend, eqn: JaxprEqn): CompiledEscape | null {
  switch (eqn.prim.name) {
    case "conv_general_dilated":
      return wasmConvEscape(backend, eqn);
    case "reduce_window":
      return reduceWindowEscape(backend, eqn);
    case "select_and_scatter_add":
      return selectAndScatterAddEscape(backend, eqn);
    case "rev":
      return revEscape(backend, eqn);
    default:
      return null;
  }
}

/**
 * Runs `f` on heap copies of `inputs` and a heap output of `outSize` floats, and returns the output
 * (the Tensor path of an escape whose kernel works on heap offsets).
 */
function staged(
  be: WasmBackend,
  inputs: readonly Float32Array[],
  outSize: number,
  f: (ptrs: number[], out: number) => void,
): Float32Array {
  const heap = be.heap;
  const ptrs = inputs.map((a) => heap.alloc(4 * a.length));
  const out = heap.alloc(4 * outSize);
  try {
    const mem = heap.f32();
    inputs.forEach((a, i) => mem.set(a, ptrs[i]! / 4));
    f(ptrs, out);
    return heap.f32().slice(out / 4, out / 4 + outSize);
  } finally {
    heap.free(out);
    for (const p of ptrs.reverse()) heap.free(p);
  }
}

function reduceWindowEscape(backend: () => WasmBackend, eqn: JaxprEqn): CompiledEscape | null {
  if (eqn.inputs.length !== 1 || eqn.outBinders.length !== 1 || !allFloat32(eqn)) return null;
  const p = eqn.params as ReduceWindowParams;
  const op = p.op;
  if (op !== "sum" && op !== "max" && op !== "min") return null;
  const out = eqn.outBinders[0]!.aval;
  const g = planWindow(eqn.inputs[0]!.aval.shape, out.shape, p);
  if (!g) return null;
  const ySize = windowOutputSize(g);
  const wrap = (y: Float32Array) => [Tensor._fromBuffer(out.shape, "float32", y, out.weakType)];
  // Whole vectors of channels: the SIMD loop; other layouts: the JS loop.
  if (simdFits(g)) {
    const runPtr = (x: number, y: number) => WasmPool.forHeap(backend().heap).reducePtr(g, x, y, op);
    return {
      ranOn: "wasm:pool",
      run: ([x]) => wrap(staged(backend(), [asF32(x!)], ySize, ([px], py) => runPtr(px!, py))),
      runPtr: ([x], [y]) => runPtr(x!, y!),
    };
  }
  return {
    ranOn: "wasm:pool",
    run([x]) {
      const y = new Float32Array(ySize);
      reduceWindowF32(asF32(x!), 0, y, 0, g, op);
      return wrap(y);
    },
    runPtr([x], [y]) {
      const mem = backend().heap.f32();
      reduceWindowF32(mem, x! / 4, mem, y! / 4, g, op);
    },
  };
}

function selectAndScatterAddEscape(backend: () => WasmBackend, eqn: JaxprEqn): CompiledEscape | null {
  if (eqn.inputs.length !== 2 || eqn.outBinders.length !== 1 || !allFloat32(eqn)) return null;
  const p = eqn.params as SelectParams;
  const select = p.select;
  if (select !== "max" && select !== "min") return null;
  const [source, operand] = eqn.inputs.map((a) => a.aval) as [Tensor["aval"], Tensor["aval"]];
  const out = eqn.outBinders[0]!.aval;
  const g = planWindow(operand.shape, source.shape, p);
  if (!g) return null;
  const xSize = operandSize(g);
  const wrap = (y: Float32Array) => [Tensor._fromBuffer(out.shape, "float32", y, out.weakType)];
  // Whole vectors of channels: the SIMD loop (overlapping windows accumulate in float64 there).
  if (simdFits(g)) {
    const runPtr = (s: number, x: number, y: number) =>
      WasmPool.forHeap(backend().heap).scatterPtr(g, s, x, y, select);
    return {
      ranOn: "wasm:pool",
      run: ([s, x]) =>
        wrap(staged(backend(), [asF32(s!), asF32(x!)], xSize, ([ps, px], py) => runPtr(ps!, px!, py))),
      runPtr: ([s, x], [y]) => runPtr(s!, x!, y!),
    };
  }
  return {
    ranOn: "wasm:pool",
    run([s, x]) {
      const y = new Float32Array(xSize);
      selectAndScatterAddF32(asF32(s!), 0, asF32(x!), 0, y, 0, g, select);
      return wrap(y);
    },
    runPtr([s, x], [y]) {
      const mem = backend().heap.f32();
      selectAndScatterAddF32(mem, s! / 4, mem, x! / 4, mem, y! / 4, g, select);
    },
  };
}

function revEscape(backend: () => WasmBackend, eqn: JaxprEqn): CompiledEscape | null {
  if (eqn.inputs.length !== 1 || eqn.outBinders.length !== 1 || !allFloat32(eqn)) return null;
  const dims = (eqn.params as { dimensions: readonly number[] }).dimensions;
  const out = eqn.outBinders[0]!.aval;
  const size = out.shape.reduce((a, b) => a * b, 1);
  return {
    ranOn: "wasm:rev",
    run([x]) {
      const y = new Float32Array(size);
      revF32(asF32(x!), 0, y, 0, out.shape, dims);
      return [Tensor._fromBuffer(out.shape, "float32", y, out.weakType)];
    },
    runPtr([x], [y]) {
      const mem = backend().heap.f32();
      revF32(mem, x! / 4, mem, y! / 4, out.shape, dims);
    },
  };
}
