import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, ShapeError } from "../../../../src/core/errors.js";
import { matmul, WasmBackend } from "../../../../src/transforms/jit/wasm/backend.js";
import { WasmGemm } from "../../../../src/transforms/jit/wasm/gemm.js";
import { buildGemmModule, DEFAULT_SHAPE } from "../../../../src/transforms/jit/wasm/gemm-module.js";
import { WasmHeap } from "../../../../src/transforms/jit/wasm/heap.js";
import { GemmWorkerPool } from "../../../../src/transforms/jit/wasm/threads.js";
import { data, expectWithinBound } from "./gemm-oracle.js";

const dims = fc.record({
  m: fc.integer({ min: 0, max: 70 }),
  k: fc.integer({ min: 0, max: 70 }),
  n: fc.integer({ min: 0, max: 70 }),
  tA: fc.boolean(),
  tB: fc.boolean(),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

describe("wasm GEMM", () => {
  const heap = new WasmHeap();
  // Default blocking, and tiny blocks so sizes ≤ 70 cross every MC/KC/NC boundary.
  const gemms = {
    default: new WasmGemm(heap),
    tiny: new WasmGemm(heap, { mr: 4, nr: 8, unroll: 1 }, { kc: 5, mc: 6, nc: 9 }),
    unrolled: new WasmGemm(heap, { mr: 3, nr: 4, unroll: 4 }, { kc: 7, mc: 10, nc: 12 }),
    // The default tile with blocks that cross the packs' multi-panel paths (four A panels, two B
    // panels per pass) and their single-panel and partial-panel tails: MC = 36 = 2·16 + 4 rows,
    // NC = 40 = 2·16 + 8 columns, several KC blocks.
    panels: new WasmGemm(heap, DEFAULT_SHAPE, { kc: 13, mc: 36, nc: 40 }),
  };

  for (const [name, gemm] of Object.entries(gemms)) {
    it(`${name} blocking: random M, K, N in [0, 70], transposes, within γ_K·Σ|a||b|`, () => {
      fc.assert(
        fc.property(dims, ({ m, k, n, tA, tB, seed }) => {
          const a = data(m * k, seed);
          const b = data(k * n, seed + 1);
          const c = gemm.matmul(a, b, m, k, n, { transA: tA, transB: tB });
          expect(c.length).toBe(m * n);
          expectWithinBound(c, a, b, m, k, n, tA, tB);
        }),
        { numRuns: name === "default" ? 120 : name === "panels" ? 60 : 80 },
      );
    });
  }

  it("K = 0 gives zeros, size-1 and size-0 axes work, the default entry point agrees", () => {
    expect(Array.from(matmul(new Float32Array(0), new Float32Array(0), 2, 0, 3))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(matmul(new Float32Array(0), new Float32Array(12), 0, 4, 3).length).toBe(0);
    expect(Array.from(matmul(new Float32Array([3]), new Float32Array([-2]), 1, 1, 1))).toEqual([-6]);
    expect(
      Array.from(matmul(new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), 2, 2, 2)),
    ).toEqual([19, 22, 43, 50]);
    // `out` is overwritten, not accumulated into, even when K = 0.
    const out = new Float32Array([9, 9]);
    gemms.tiny.matmul(new Float32Array(0), new Float32Array(0), 1, 0, 2, { out });
    expect(Array.from(out)).toEqual([0, 0]);
  });

  it("a larger problem (several KC blocks, MC blocks, edge tiles) stays within the bound", () => {
    const [m, k, n] = [131, 517, 75];
    const a = data(m * k, 7);
    const b = data(k * n, 8);
    expectWithinBound(gemms.default.matmul(a, b, m, k, n), a, b, m, k, n);
  });

  it("pointer API: strided operands and a C row stride larger than N leave the gaps alone", () => {
    const [m, k, n, ldc] = [5, 6, 7, 11];
    const a = data(m * k, 3);
    const b = data(k * n, 4);
    const pa = heap.alloc(4 * m * k);
    const pb = heap.alloc(4 * k * n);
    const pc = heap.alloc(4 * m * ldc);
    const mem = heap.f32();
    mem.set(a, pa / 4);
    mem.set(b, pb / 4);
    mem.fill(42, pc / 4, pc / 4 + m * ldc);
    // A given as [K, M] (its transpose), read through strides.
    const at = new Float32Array(m * k);
    for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) at[p * m + i] = a[i * k + p]!;
    heap.f32().set(at, pa / 4);
    gemms.tiny.gemmPtr(m, n, k, { ptr: pa, rs: 1, cs: m }, { ptr: pb, rs: n, cs: 1 }, pc, ldc);
    const got = heap.f32().slice(pc / 4, pc / 4 + m * ldc);
    const c = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < ldc; j++) {
        if (j < n) c[i * n + j] = got[i * ldc + j]!;
        else expect(got[i * ldc + j]).toBe(42);
      }
    }
    expectWithinBound(c, a, b, m, k, n);
    for (const p of [pa, pb, pc]) heap.free(p);
  });

  it("repeated calls reuse the staging buffers: no heap growth", () => {
    const [m, k, n] = [33, 47, 29];
    const a = data(m * k, 5);
    const b = data(k * n, 6);
    const out = new Float32Array(m * n);
    gemms.default.matmul(a, b, m, k, n, { out });
    const before = [heap.byteLength, heap.liveBytes];
    for (let i = 0; i < 300; i++) gemms.default.matmul(a, b, m, k, n, { out, transB: i % 2 === 1 });
    expect([heap.byteLength, heap.liveBytes]).toEqual(before);
  });

  it("bad sizes raise ShapeError naming matmul", () => {
    expect(() => matmul(new Float32Array(5), new Float32Array(6), 2, 3, 2)).toThrow(ShapeError);
    expect(() => matmul(new Float32Array(6), new Float32Array(5), 2, 3, 2)).toThrow(/matmul: B has 5/);
    expect(() => matmul(new Float32Array(0), new Float32Array(0), -1, 0, 0)).toThrow(ShapeError);
    expect(() =>
      matmul(new Float32Array(4), new Float32Array(4), 2, 2, 2, { out: new Float32Array(3) }),
    ).toThrow(ShapeError);
  });
});

/**
 * The packed layouts, read back from the module's own `packA` / `packB` and compared exactly
 * with a direct transcription of their definition: A in panels of MR rows, element (i, k) of
 * panel p at p·kcp·MR + k·MR + i; B in panels of NR columns, (k, j) at p·kcp·NR + k·NR + j; rows
 * and columns past the edge and k in [kc, kcp) zero.
 */
describe("wasm GEMM packing", () => {
  const { mr: MR, nr: NR } = DEFAULT_SHAPE;
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 64 });
  const inst = new WebAssembly.Instance(
    new WebAssembly.Module(buildGemmModule(DEFAULT_SHAPE, { shared: false, maxPages: 64 })),
    { env: { memory } },
  );
  const packA = inst.exports.packA as (...args: number[]) => void;
  const packB = inst.exports.packB as (...args: number[]) => void;
  const SRC = 0;
  const DST = 2 << 20;
  const layouts = fc.constantFrom("row-major", "transposed", "strided");
  // Strides (in elements) of an r × c operand read as [r, c].
  const strides = (layout: string, r: number, c: number) =>
    layout === "row-major" ? [c, 1] : layout === "transposed" ? [1, r] : [3 * c + 1, 2];

  it("packA and packB write exactly the defined layout, whatever the strides and sizes", () => {
    fc.assert(
      fc.property(
        fc.record({
          rows: fc.integer({ min: 1, max: 45 }),
          kc: fc.integer({ min: 1, max: 40 }),
          pad: fc.integer({ min: 0, max: 3 }),
          layout: layouts,
          which: fc.constantFrom("A", "B"),
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        }),
        ({ rows, kc, pad, layout, which, seed }) => {
          const f32 = new Float32Array(memory.buffer);
          const kcp = kc + pad;
          const tile = which === "A" ? MR : NR;
          const panels = Math.ceil(rows / tile);
          // A is [rows, kc]; B is [kc, rows] (rows = its columns).
          const [rs, cs] = which === "A" ? strides(layout, rows, kc) : strides(layout, kc, rows);
          const span =
            which === "A" ? (rows - 1) * rs! + (kc - 1) * cs! + 1 : (kc - 1) * rs! + (rows - 1) * cs! + 1;
          f32.set(data(span, seed), SRC / 4);
          f32.fill(Number.NaN, DST / 4, DST / 4 + panels * kcp * tile + 64);
          if (which === "A") packA(rows, kc, SRC, 4 * rs!, 4 * cs!, DST, kcp);
          else packB(kc, rows, SRC, 4 * rs!, 4 * cs!, DST, kcp);
          const want = new Float32Array(panels * kcp * tile + 64).fill(Number.NaN);
          for (let p = 0; p < panels; p++) {
            for (let k = 0; k < kcp; k++) {
              for (let e = 0; e < tile; e++) {
                const r = p * tile + e;
                const src = which === "A" ? r * rs! + k * cs! : k * rs! + r * cs!;
                want[p * kcp * tile + k * tile + e] = k < kc && r < rows ? f32[SRC / 4 + src]! : 0;
              }
            }
          }
          const got = f32.slice(DST / 4, DST / 4 + want.length);
          expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("wasm GEMM on two threads", () => {
  const be = new WasmBackend({ threads: 2 });
  const single = new WasmGemm(be.heap, be.gemm.shape, be.gemm.blocks);
  be.gemm.minThreadFlops = 0;
  afterAll(() => be.dispose());

  it("is bitwise identical to one thread (same blocking), splitting N or M, sizes on and off the tile grid", () => {
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 90 }),
          k: fc.integer({ min: 0, max: 300 }),
          n: fc.integer({ min: 16, max: 200 }),
          tB: fc.boolean(),
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        }),
        ({ m, k, n, tB, seed }) => {
          const a = data(m * k, seed);
          const b = data(k * n, seed + 1);
          const one = single.matmul(a, b, m, k, n, { transB: tB });
          const two = be.matmul(a, b, m, k, n, { transB: tB });
          expect(Buffer.from(two.buffer).equals(Buffer.from(one.buffer))).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
    // Tall problems split M instead of N (row blocks on offset A and C pointers).
    for (const [m, k, n, seed] of [
      [301, 50, 20, 3],
      [97, 33, 9, 4],
    ] as const) {
      const a = data(m * k, seed);
      const b = data(k * n, seed + 1);
      const two = be.matmul(a, b, m, k, n, { transA: seed === 4 });
      expect(
        Buffer.from(two.buffer).equals(
          Buffer.from(single.matmul(a, b, m, k, n, { transA: seed === 4 }).buffer),
        ),
      ).toBe(true);
      expectWithinBound(two, a, b, m, k, n, seed === 4);
    }
    // Many small chunks claimed dynamically, both split directions.
    be.gemm.minChunk = 1;
    be.gemm.chunksPerThread = 16;
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 150 }),
          k: fc.integer({ min: 1, max: 60 }),
          n: fc.integer({ min: 1, max: 150 }),
          tA: fc.boolean(),
          tB: fc.boolean(),
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        }),
        ({ m, k, n, tA, tB, seed }) => {
          const a = data(m * k, seed);
          const b = data(k * n, seed + 1);
          const one = single.matmul(a, b, m, k, n, { transA: tA, transB: tB });
          const two = be.matmul(a, b, m, k, n, { transA: tA, transB: tB });
          expect(Buffer.from(two.buffer).equals(Buffer.from(one.buffer))).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
    be.gemm.minChunk = 128;
    be.gemm.chunksPerThread = 3;
    // And one problem large enough to cross the default threshold and several NC blocks.
    be.gemm.minThreadFlops = 1 << 23;
    const [m, k, n] = [96, 300, 1100];
    const a = data(m * k, 1);
    const b = data(k * n, 2);
    const two = be.matmul(a, b, m, k, n);
    expect(Buffer.from(two.buffer).equals(Buffer.from(single.matmul(a, b, m, k, n).buffer))).toBe(true);
    expectWithinBound(two, a, b, m, k, n);
  });
});

describe("GEMM worker pool", () => {
  it("without spinning (every handshake through Atomics.wait) gives the same bits", () => {
    const gemm = new WasmGemm(new WasmHeap({ shared: true }));
    const single = new WasmGemm(gemm.heap);
    gemm.pool = GemmWorkerPool.start(gemm.heap, gemm.module, 1, { spinMicros: 0, waitSpinMicros: 0 });
    gemm.minThreadFlops = 0;
    try {
      for (const [m, k, n, seed] of [
        [40, 30, 200, 1],
        [300, 20, 24, 2],
        [64, 1, 64, 3],
      ] as const) {
        const a = data(m * k, seed);
        const b = data(k * n, seed + 1);
        const two = gemm.matmul(a, b, m, k, n, { threads: 2 });
        expect(Buffer.from(two.buffer).equals(Buffer.from(single.matmul(a, b, m, k, n).buffer))).toBe(true);
      }
    } finally {
      gemm.pool.terminate();
    }
    expect(() => gemm.matmul(data(64 * 64, 1), data(64 * 64, 2), 64, 64, 64, { threads: 2 })).toThrow(
      /GemmWorkerPool: the pool was terminated/,
    );
  });

  it("bad options raise ConfigError naming the pool", () => {
    const heap = new WasmHeap({ shared: true });
    const bytes = new WasmGemm(heap).bytes;
    expect(() => GemmWorkerPool.start(heap, bytes, 0)).toThrow(ConfigError);
    expect(() => GemmWorkerPool.start(heap, bytes, 1, { spinMicros: -1 })).toThrow(
      /GemmWorkerPool: spinMicros/,
    );
    expect(() => GemmWorkerPool.start(new WasmHeap({ shared: false }), bytes, 1)).toThrow(/shared heap/);
  });
});
