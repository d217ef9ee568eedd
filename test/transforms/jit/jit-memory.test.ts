/**
 * Memory: many calls of a jitted training step (grad through jit, an SGD update) must not grow the
 * heap beyond a fixed bound, nor the compile caches (one trace; the transformed jaxprs are
 * memoised). The long soak lives in bench/; this is a modest count. With `--expose-gc` the bound is
 * tight (8 MiB); without it V8 may hold a young generation of garbage, so the bound is loose (64 MiB).
 *
 * The wasm backend runs plans resident in its heap and returns results as views into it, whose
 * blocks are freed only when a view is collected (between tasks, never inside this synchronous
 * loop): below the cap on bytes held by views the heap grows by the results, at the cap results are
 * copied out and the heap stops growing. A small cap shows both within the warm-up.
 */
import { describe, expect, it } from "vitest";
import type { Tensor } from "../../../src/core/tensor.js";
import { numpy as np } from "../../../src/index.js";
import { grad, jit } from "../../../src/transforms/index.js";
import { type BackendOption, resolveBackend } from "../../../src/transforms/jit/backend.js";

const gc = (globalThis as { gc?: () => void }).gc;

function heapMiB(): number {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** The wasm backend's linear memory size in bytes (0 for other backends). */
function wasmHeapBytes(backend: BackendOption): number {
  const b = resolveBackend(backend) as { memoryBytes?: () => number } | null;
  return b?.memoryBytes?.() ?? 0;
}

describe("jit memory", () => {
  const backends: [string, BackendOption][] = [
    ["ts", "ts"],
    ["gpu.js webasm", { name: "gpu.js", mode: "webasm" }],
    ["wasm, results copied out", { name: "wasm", resultViewBytes: 0 }],
    ["wasm, result views capped at 16 KiB", { name: "wasm", resultViewBytes: 16 * 1024 }],
    [
      "wasm, 1 thread, result views capped at 16 KiB",
      { name: "wasm", threads: 1, resultViewBytes: 16 * 1024 },
    ],
  ];
  for (const [tag, backend] of backends) {
    it(`2000 jitted SGD steps keep the heap bounded [${tag}]`, () => {
      const x = np.ones([16, 8]).mul(0.1);
      const y = np.ones([16, 4]);
      const loss = (p: { w: Tensor; b: Tensor }) =>
        np.mean(np.square(np.tanh(x.matmul(p.w).add(p.b)).sub(y)));
      const jloss = jit(loss, { backend });
      const step = jit(
        (p: { w: Tensor; b: Tensor }) => {
          const g = grad(jloss)(p) as { w: Tensor; b: Tensor };
          return { w: p.w.sub(g.w.mul(0.1)), b: p.b.sub(g.b.mul(0.1)) };
        },
        { backend },
      );
      let p = { w: np.zeros([8, 4]), b: np.zeros([4]) };
      for (let i = 0; i < 200; i++) p = step(p);
      const before = heapMiB();
      const wasmBefore = wasmHeapBytes(backend);
      for (let i = 0; i < 2000; i++) p = step(p);
      const growth = heapMiB() - before;
      // The wasm backend's linear memory (outside the JS heap) does not grow either.
      expect(wasmHeapBytes(backend)).toBe(wasmBefore);
      expect(step.traceCount).toBe(1);
      expect(growth).toBeLessThan(gc ? 8 : 64);
      expect(Number.isFinite(p.w.sum().item())).toBe(true);
    });
  }
});
