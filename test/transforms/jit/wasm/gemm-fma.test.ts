/**
 * The relaxed-SIMD FMA micro-kernel (`f32x4.relaxed_madd`). Node 20 has relaxed SIMD behind a V8
 * flag, which this test file (its own process) turns on when the engine lacks it, so the path is
 * tested on every Node; library code never sets V8 flags.
 */
import { setFlagsFromString } from "node:v8";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../../../src/core/errors.js";
import { WasmGemm } from "../../../../src/transforms/jit/wasm/gemm.js";
import {
  buildGemmModule,
  DEFAULT_SHAPE,
  relaxedSimdSupported,
} from "../../../../src/transforms/jit/wasm/gemm-module.js";
import { WasmHeap } from "../../../../src/transforms/jit/wasm/heap.js";
import { GemmWorkerPool } from "../../../../src/transforms/jit/wasm/threads.js";
import { data, expectWithinBound } from "./gemm-oracle.js";

const native = relaxedSimdSupported();

describe("wasm GEMM, relaxed-SIMD FMA kernel", () => {
  if (!native) {
    // Without the engine's support, asking for the kernel is a configuration error.
    it("is refused where the engine lacks relaxed SIMD", () => {
      expect(() => buildGemmModule({ ...DEFAULT_SHAPE, fma: true }, { shared: false, maxPages: 16 })).toThrow(
        ConfigError,
      );
    });
  }

  it("where available, within γ_K·Σ|a||b| of the float64 product, any blocking, transposes", () => {
    if (!native) setFlagsFromString("--experimental-wasm-relaxed-simd");
    expect(relaxedSimdSupported()).toBe(true);
    const heap = new WasmHeap();
    const gemms = [
      new WasmGemm(heap, { ...DEFAULT_SHAPE, fma: true }),
      new WasmGemm(heap, { ...DEFAULT_SHAPE, fma: true }, { kc: 13, mc: 36, nc: 40 }),
      new WasmGemm(heap, { mr: 3, nr: 4, unroll: 4, fma: true }, { kc: 7, mc: 10, nc: 12 }),
    ];
    expect(gemms[0]!.shape.fma).toBe(true);
    fc.assert(
      fc.property(
        fc.record({
          g: fc.integer({ min: 0, max: gemms.length - 1 }),
          m: fc.integer({ min: 0, max: 70 }),
          k: fc.integer({ min: 0, max: 90 }),
          n: fc.integer({ min: 0, max: 70 }),
          tA: fc.boolean(),
          tB: fc.boolean(),
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        }),
        ({ g, m, k, n, tA, tB, seed }) => {
          const a = data(m * k, seed);
          const b = data(k * n, seed + 1);
          const c = gemms[g]!.matmul(a, b, m, k, n, { transA: tA, transB: tB });
          expectWithinBound(c, a, b, m, k, n, tA, tB);
        },
      ),
      { numRuns: 120 },
    );
  });

  describe("on two threads", () => {
    let gemm: WasmGemm | undefined;
    afterAll(() => gemm?.pool?.terminate());

    it("is bitwise identical to one thread, chunks claimed dynamically", () => {
      if (!native) setFlagsFromString("--experimental-wasm-relaxed-simd");
      gemm = new WasmGemm(new WasmHeap({ shared: true }), { ...DEFAULT_SHAPE, fma: true });
      const single = new WasmGemm(gemm.heap, gemm.shape);
      gemm.pool = GemmWorkerPool.start(gemm.heap, gemm.module, 1);
      gemm.minThreadFlops = 0;
      gemm.minChunk = 1;
      gemm.chunksPerThread = 8;
      for (const [m, k, n, seed] of [
        [40, 300, 200, 1],
        [301, 50, 20, 2],
        [130, 260, 131, 3],
      ] as const) {
        const a = data(m * k, seed);
        const b = data(k * n, seed + 1);
        const two = gemm.matmul(a, b, m, k, n, { threads: 2 });
        expect(Buffer.from(two.buffer).equals(Buffer.from(single.matmul(a, b, m, k, n).buffer))).toBe(true);
        expectWithinBound(two, a, b, m, k, n);
      }
    });
  });
});
