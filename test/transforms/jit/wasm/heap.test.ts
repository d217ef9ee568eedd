import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../../src/core/errors.js";
import {
  type FuncBuilder,
  I32,
  ModuleBuilder,
  Op,
  sleb,
  uleb,
} from "../../../../src/transforms/jit/wasm/assembler.js";
import { ALIGN, WasmHeap } from "../../../../src/transforms/jit/wasm/heap.js";

describe("wasm assembler", () => {
  it("LEB128 round-trips every 32-bit value (decoded here independently)", () => {
    const decode = (bytes: number[], signed: boolean) => {
      let result = 0n;
      let shift = 0n;
      let byte = 0;
      for (const b of bytes) {
        byte = b;
        result |= BigInt(b & 0x7f) << shift;
        shift += 7n;
      }
      if (signed && byte & 0x40) result -= 1n << shift;
      return result;
    };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (u, s) => {
          const ub = uleb(u);
          const sb = sleb(s);
          expect(decode(ub, false)).toBe(BigInt(u));
          expect(decode(sb, true)).toBe(BigInt(s));
          // Minimal encodings: only the last byte lacks the continuation bit.
          expect(ub.slice(0, -1).every((b) => b & 0x80) && !(ub[ub.length - 1]! & 0x80)).toBe(true);
          expect(ub.length).toBeLessThanOrEqual(5);
          expect(sb.length).toBeLessThanOrEqual(5);
        },
      ),
    );
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
  });

  it("assembles a valid module whose loop computes what it says", () => {
    const m = new ModuleBuilder();
    m.importMemory("env", "memory", { shared: false });
    const f: FuncBuilder = m.func("sumTo", [I32], [I32]);
    const i = f.local(I32);
    const s = f.local(I32);
    f.forRange(
      i,
      () => f.i32Const(0),
      () => f.localGet(0),
      1,
      () => f.localGet(s).localGet(i).op(Op.i32_add).localSet(s),
    );
    f.localGet(s);
    const bytes = m.toBytes();
    expect(WebAssembly.validate(bytes)).toBe(true);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
      env: { memory: new WebAssembly.Memory({ initial: 1 }) },
    });
    const sumTo = inst.exports.sumTo as (n: number) => number;
    expect([0, 1, 10, 1000].map(sumTo)).toEqual([0, 0, 45, 499500]);
  });
});

describe("WasmHeap", () => {
  it("allocations are aligned, disjoint, and free blocks are reused and coalesced", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.constant(-1)), {
          minLength: 1,
          maxLength: 60,
        }),
        (ops) => {
          const heap = new WasmHeap({ shared: false, maxPages: 256 });
          const live: [number, number][] = [];
          for (const op of ops) {
            if (op === -1 && live.length) heap.free(live.splice(live.length >> 1, 1)[0]![0]);
            else if (op > 0) {
              const p = heap.alloc(op);
              expect(p % ALIGN).toBe(0);
              expect(p + op).toBeLessThanOrEqual(heap.byteLength);
              for (const [q, n] of live) expect(p + op <= q || q + n <= p).toBe(true);
              live.push([p, op]);
            }
          }
          for (const [p] of live) heap.free(p);
          expect(heap.liveBytes).toBe(0);
          // Everything freed coalesces back into the bump region: the next block starts at the base.
          expect(heap.alloc(5000)).toBe(ALIGN);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("grows without moving offsets, and rejects bad requests with ConfigError", () => {
    const heap = new WasmHeap({ shared: false, maxPages: 64 });
    const p = heap.alloc(16);
    heap.f32()[p / 4] = 1.5;
    heap.alloc(3 << 20);
    expect(heap.f32()[p / 4]).toBe(1.5);
    expect(() => heap.alloc(8 << 20)).toThrow(ConfigError);
    expect(() => heap.free(p + 4)).toThrow(/WasmHeap.free/);
    expect(() => new WasmHeap({ maxPages: 0 })).toThrow(ConfigError);
  });
});
