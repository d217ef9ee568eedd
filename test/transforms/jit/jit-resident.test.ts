/**
 * Resident plans on the wasm heap (executable.ts, resident.ts): inputs placed once, intermediates
 * as heap blocks, kernels on offsets, results as views into a shared heap.
 *
 * The oracle for values is the same program on the same compiled kernels through the copying plan
 * (a twin backend without `memory`, whose kernels copy in and out): both run identical float32
 * kernels on identical data, so they must agree bit for bit; the float32 error bound against
 * float64 is checked for the wasm backend in jit-programs.test.ts.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocate } from "../../../src/core/dtype.js";
import { Lit } from "../../../src/core/jaxpr.js";
import { ConfigError } from "../../../src/core/errors.js";
import { Tensor } from "../../../src/core/tensor.js";
import { grad, nn, numpy as np } from "../../../src/index.js";
import { arbTensorOfShape } from "../../../src/testing/arbitraries.js";
import { arbProgram, runProgram } from "../../../src/testing/programs.js";
import { jit } from "../../../src/transforms/index.js";
import {
  type BackendOption,
  type CompiledKernel,
  type DeviceMemory,
  type KernelBackend,
  resolveBackend,
} from "../../../src/transforms/jit/backend.js";
import { wasmJitBackend } from "../../../src/transforms/jit/wasm-backend.js";
import { JOB_VIEW_BYTES, residentMemory } from "../../../src/transforms/jit/resident.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** The same backend instance's kernels, but without `memory`: the executable's copying plan. */
function copyingTwin(option: BackendOption, name: string): KernelBackend {
  const be = resolveBackend(option)!;
  return {
    name,
    compile(k): CompiledKernel {
      const c = be.compile(k);
      return {
        get ranOn() {
          return c.ranOn;
        },
        reusesOutput: c.reusesOutput,
        run: (ins, out) => c.run(ins, out),
      };
    },
    compileEscape: (e) => {
      const c = be.compileEscape?.(e);
      return c ? { ranOn: c.ranOn, run: (ins) => c.run(ins) } : null;
    },
  };
}

const stateOf = (option: BackendOption) => residentMemory(resolveBackend(option)!.memory!);
const isHeapView = (t: Tensor) => t._buf!.buffer instanceof SharedArrayBuffer;
const data = (n: number, seed: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));
const f32 = (shape: number[], seed: number) =>
  Tensor._fromBuffer(
    shape,
    "float32",
    data(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
  );
const bits = (t: Tensor) => Array.from(new Uint32Array(Float32Array.from(t.data()).buffer));

const CONFIGS: [string, BackendOption][] = [
  ["1 thread", { name: "wasm", threads: 1 }],
  ["2 threads", { name: "wasm", threads: 2 }],
  ["non-shared memory", { name: "wasm", threads: 1, shared: false }],
];

describe("jit resident on the wasm heap", () => {
  for (const [tag, option] of CONFIGS) {
    it(`random programs: resident results equal the copying plan bit for bit [${tag}]`, () => {
      const twin = copyingTwin(option, `copying ${tag}`);
      const programAndInput = arbProgram({ maxSteps: 6, maxDim: 5 }).chain((p) =>
        fc.tuple(fc.constant(p), arbTensorOfShape(p.shape, { bound: 1.5 })),
      );
      fc.assert(
        fc.property(programAndInput, ([p, x]) => {
          const f = (v: Tensor) => runProgram(p, v);
          const resident = jit(f, { backend: option })(x);
          const copying = jit(f, { backend: twin })(x);
          expect(resident.shape).toEqual(copying.shape);
          expect(bits(resident)).toEqual(bits(copying));
          // A non-shared memory copies results out; a shared one returns views into itself.
          if (resident.size > 0) expect(isHeapView(resident)).toBe(tag !== "non-shared memory");
        }),
        { numRuns: 25, seed: 20261201 },
      );
    });

    it(`an MLP gradient step (gemm + epilogues, reductions, int32 labels) equals the copying plan [${tag}]`, () => {
      const twin = copyingTwin(option, `copying mlp ${tag}`);
      const p = { w1: f32([12, 16], 1), b1: f32([16], 2), w2: f32([16, 5], 3), b2: f32([5], 4) };
      const x = f32([8, 12], 5);
      const y = Tensor._fromBuffer(
        [8],
        "int32",
        Int32Array.from({ length: 8 }, (_, i) => (i * 3) % 5),
      );
      const loss = (q: typeof p, xs: Tensor, ys: Tensor) => {
        const h = nn.relu(np.matmul(xs, q.w1).add(q.b1));
        const logits = np.matmul(h, q.w2).add(q.b2);
        return np.mean(np.sum(nn.oneHot(ys, 5).mul(nn.logSoftmax(logits)), -1)).neg();
      };
      const step = (q: typeof p, xs: Tensor, ys: Tensor) => {
        const g = grad(loss)(q, xs, ys) as typeof p;
        return {
          w1: q.w1.sub(g.w1.mul(0.1)),
          b1: q.b1.sub(g.b1.mul(0.1)),
          w2: q.w2.sub(g.w2.mul(0.1)),
          b2: q.b2.sub(g.b2.mul(0.1)),
          // Non-float32 outputs leave the heap converted, as they did before.
          argmax: np.argmax(np.matmul(xs, q.w1), -1),
          positive: np.greater(q.b1, 0),
        };
      };
      const rs = jit(step, { backend: option });
      const cp = jit(step, { backend: twin });
      let a = p;
      let b = p;
      for (let i = 0; i < 5; i++) {
        const ra = rs(a, x, y);
        const rb = cp(b, x, y);
        for (const k of Object.keys(ra) as (keyof typeof ra)[]) {
          expect(ra[k].dtype).toBe(rb[k].dtype);
          expect(bits(ra[k])).toEqual(bits(rb[k]));
        }
        expect(ra.argmax.dtype).toBe("int32");
        expect(ra.positive.dtype).toBe("bool");
        // The updated parameters are fed back: views of the heap used in place.
        a = { w1: ra.w1, b1: ra.b1, w2: ra.w2, b2: ra.b2 };
        b = { w1: rb.w1, b1: rb.b1, w2: rb.w2, b2: rb.b2 };
      }
    });
  }

  const shared: BackendOption = { name: "wasm", threads: 1, inputCacheBytes: 2 ** 26 };

  it("results are views into the heap that stay correct after the heap grows and other programs run", () => {
    const f = jit((v: Tensor) => v.mul(3).add(1), { backend: shared });
    const x = f32([1000], 7);
    const y = f(x);
    expect(isHeapView(y)).toBe(true);
    const want = Array.from(x.data(), (v) => Math.fround(Math.fround(v * 3) + 1));
    const mem = resolveBackend(shared)!.memory!;
    const before = mem.f32().buffer.byteLength;
    // A program on 16 MiB buffers grows the memory (a new SharedArrayBuffer object).
    const big = jit((v: Tensor) => np.tanh(v).mul(2), { backend: shared });
    const z = big(Tensor._fromBuffer([1 << 22], "float32", new Float32Array(1 << 22).fill(0.5)));
    expect(mem.f32().buffer.byteLength).toBeGreaterThan(before);
    expect(z.data()[123]).toBeCloseTo(2 * Math.tanh(0.5), 6);
    for (let i = 0; i < 20; i++) jit((v: Tensor) => v.sub(i), { backend: shared })(x);
    expect(Array.from(y.data())).toEqual(want);
    // The old view still works as an input after the growth, in place (no new cached copy).
    const cached = stateOf(shared).cachedBytes;
    const y2 = f(y);
    expect(stateOf(shared).cachedBytes).toBe(cached);
    expect(Array.from(y2.data())).toEqual(want.map((v) => Math.fround(Math.fround(v * 3) + 1)));
  });

  it("keeps 50 outputs intact while later calls run (no block is reused while its view lives)", () => {
    const f = jit((v: Tensor, s: Tensor) => np.exp(v.mul(s)).add(v), { backend: shared });
    const twin = jit((v: Tensor, s: Tensor) => np.exp(v.mul(s)).add(v), {
      backend: copyingTwin(shared, "copying aliasing"),
    });
    const x = f32([257], 11);
    const outs: Tensor[] = [];
    const want: number[][] = [];
    let v = x;
    for (let i = 0; i < 50; i++) {
      const s = np.array(0.01 * (i % 7));
      // Alternate chained calls (a view fed back) and fresh inputs.
      const arg = i % 2 === 0 ? v : f32([257], i);
      v = f(arg, s);
      outs.push(v);
      want.push(bits(twin(arg, s)));
    }
    outs.forEach((o, i) => expect(bits(o)).toEqual(want[i]));
    expect(new Set(outs.map((o) => o._buf!.byteOffset)).size).toBe(50);
  });

  it("caches a JS-side input's heap copy from its second call on, once, and bounds the cache", () => {
    const option: BackendOption = { name: "wasm", threads: 1, inputCacheBytes: 64 * 1024 };
    const st = stateOf(option);
    const f = jit((v: Tensor) => v.add(1), { backend: option });
    const x = f32([4096], 1); // 16 KiB
    const c0 = st.cachedBytes;
    f(x);
    expect(st.cachedBytes).toBe(c0); // seen once: copied for this call only
    expect(st.isCached(x._buf!)).toBe(false);
    f(x);
    expect(st.cachedBytes).toBe(c0 + 16 * 1024);
    f(x);
    expect(st.cachedBytes).toBe(c0 + 16 * 1024);
    // Many distinct inputs, each passed twice: the cache stays within its bound, results stay right.
    for (let i = 0; i < 10; i++) {
      const xi = f32([4096], i + 2);
      for (let r = 0; r < 2; r++) expect(f(xi).data()[5]).toBe(Math.fround(xi.data()[5]! + 1));
    }
    expect(st.cachedBytes).toBeLessThanOrEqual(64 * 1024);
    expect(st.cachedBytes).toBeGreaterThan(0);
    // An input above the bound is never cached and still correct.
    const huge = f32([32768], 3);
    for (let r = 0; r < 2; r++) expect(f(huge).data()[7]).toBe(Math.fround(huge.data()[7]! + 1));
    expect(st.cachedBytes).toBeLessThanOrEqual(64 * 1024);
    // A constant (closed over) is cached at its first call.
    const k = f32([4096], 99);
    const g = jit((v: Tensor) => v.mul(k), { backend: option });
    expect(g(x).data()[3]).toBe(Math.fround(x.data()[3]! * k.data()[3]!));
    expect(st.isCached(k._buf!)).toBe(true);
    expect(st.isCached(huge._buf!)).toBe(false);
  });

  it("above the cap on bytes held by views, results are copied out", () => {
    const option: BackendOption = { name: "wasm", threads: 1, resultViewBytes: 40 * 1024 };
    const st = stateOf(option);
    const f = jit((v: Tensor) => v.mul(2), { backend: option });
    const x = f32([2048], 5); // 8 KiB results
    const outs = Array.from({ length: 10 }, () => f(x));
    const views = outs.filter(isHeapView).length;
    expect(views).toBe(Math.floor((40 * 1024 - (st.heldBytes - views * 8192)) / 8192));
    expect(views).toBeLessThan(10);
    expect(st.heldBytes).toBeLessThanOrEqual(40 * 1024);
    for (const o of outs) expect(Array.from(o.data())).toEqual(Array.from(x.data(), (v) => v * 2));
    // resultViewBytes 0: every result is a copy.
    const none: BackendOption = { name: "wasm", threads: 1, resultViewBytes: 0 };
    expect(isHeapView(jit((v: Tensor) => v.mul(2), { backend: none })(x))).toBe(false);
  });

  it("frees a result view's block after the view is garbage-collected", async () => {
    const option: BackendOption = { name: "wasm", threads: 1, resultViewBytes: 2 ** 24 + 1 };
    const st = stateOf(option);
    const f = jit((v: Tensor) => v.mul(2).add(1), { backend: option });
    const x = f32([1024], 9);
    f(x);
    const held = () => st.heldBytes;
    (() => {
      for (let i = 0; i < 20; i++) f(x);
    })();
    expect(held()).toBeGreaterThanOrEqual(20 * 4096);
    for (let i = 0; i < 50 && held() > 0; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(held()).toBe(0);
    // The freed blocks are reused: the memory does not grow over further (async) calls.
    const bytes = resolveBackend(option)!.memory!.f32().buffer.byteLength;
    for (let k = 0; k < 5; k++) {
      for (let i = 0; i < 20; i++) f(x);
      gc();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(resolveBackend(option)!.memory!.f32().buffer.byteLength).toBe(bytes);
  });

  it("fallback kernels and reference escapes inside a resident plan", () => {
    const option: BackendOption = { name: "wasm", threads: 1, fallback: "ts" };
    const g = (v: Tensor) => {
      const s = np.sin(v.mul(2)).add(1); // sin: the wasm backend declines, the ts evaluator runs it
      const c = np.cumsum(s.mul(v), 0); // cumsum: a reference escape between kernels
      return c.mul(0.5).add(np.sum(s));
    };
    const x = f32([33], 4);
    const got = jit(g, { backend: option })(x);
    const want = jit(g, { backend: copyingTwin(option, "copying fallback") })(x);
    expect(bits(got)).toEqual(bits(want));
    const low = jit(g, { backend: option }).lower(x);
    expect(low.kernels.some((k) => k.ranOn === "ts")).toBe(true);
    expect(low.escapes).toContain("cumsum");
  });

  it("a program output that is an input is returned as that tensor", () => {
    const f = jit((a: Tensor, b: Tensor) => [a, b.add(1), b.add(1)] as const, { backend: shared });
    const a = f32([5], 1);
    const [ra, rb, rc] = f(a, f32([5], 2));
    expect(ra).toBe(a);
    expect(bits(rb)).toEqual(bits(rc));
  });

  it("every block is freed or owned by a live view or the cache, also when a kernel throws mid-run", () => {
    const inner = wasmJitBackend({ threads: 1 });
    const heap = inner.memory;
    const blocks = new Set<number>();
    const memory: DeviceMemory = {
      alloc: (b) => {
        const p = heap.alloc(b);
        blocks.add(p);
        return p;
      },
      free: (p) => {
        expect(blocks.delete(p)).toBe(true);
        heap.free(p);
      },
      f32: () => heap.f32(),
      shared: heap.shared,
    };
    let kernelRuns = 0;
    let throwAt = -1;
    const backend: KernelBackend = {
      name: "counting",
      memory,
      compile(k): CompiledKernel {
        const c = inner.compile(k);
        return {
          ranOn: c.ranOn,
          reusesOutput: c.reusesOutput,
          run: (ins, out) => c.run(ins, out),
          runPtr: (ins, out) => {
            if (++kernelRuns === throwAt) throw new Error("kernel failed");
            c.runPtr!(ins, out);
          },
        };
      },
      compileEscape: (e) => inner.compileEscape?.(e) ?? null,
    };
    const st = residentMemory(memory);
    const w = f32([6, 4], 1);
    const loss = (q: Tensor, xs: Tensor) => np.sum(np.square(np.tanh(np.matmul(xs, q))));
    const step = jit((q: Tensor, xs: Tensor) => [q.sub(grad(loss)(q, xs).mul(0.1)), loss(q, xs)] as const, {
      backend,
    });
    const x = f32([5, 6], 2);
    const kept: Tensor[] = [];
    let q = w;
    for (let i = 0; i < 5; i++) {
      const [next, l] = step(q, x);
      kept.push(next, l);
      q = next;
      expect(blocks.size).toBe(st.viewCount + st.cacheCount);
    }
    const before = new Set(blocks);
    throwAt = kernelRuns + 3;
    expect(() => step(q, x)).toThrow("kernel failed");
    expect(blocks).toEqual(before);
    const [again] = step(q, x);
    const twin = jit((a: Tensor, xs: Tensor) => a.sub(grad(loss)(a, xs).mul(0.1)), {
      backend: copyingTwin({ name: "wasm", threads: 1 }, "copying counting"),
    });
    expect(bits(again)).toEqual(bits(twin(q, x)));
    inner.dispose();
  });

  it("a disposed backend starts a new heap; results of the old one stay readable", () => {
    const option: BackendOption = { name: "wasm", threads: 1, inputCacheBytes: 12345 };
    const f = jit((v: Tensor) => v.mul(2).add(0.5), { backend: option });
    const x = f32([300], 3);
    const y1 = f(x);
    const old = resolveBackend(option)!.memory;
    (resolveBackend(option) as unknown as { dispose(): void }).dispose();
    const y2 = f(x);
    expect(resolveBackend(option)!.memory).not.toBe(old);
    expect(bits(y2)).toEqual(bits(y1));
    expect(bits(f(y1))).toEqual(bits(f(y2)));
  });

  it("a result view serialises, copies and reshapes like any tensor (its buffer is the heap)", () => {
    const f = jit((v: Tensor) => v.mul(4), { backend: shared });
    const x = f32([2, 6], 8);
    const y = f(x);
    expect(isHeapView(y)).toBe(true);
    const back = nn.deserialize<{ y: Tensor }>(nn.serialize({ y }));
    expect(back.tree.y.shape).toEqual([2, 6]);
    expect(bits(back.tree.y)).toEqual(bits(y));
    // data() copies into an ordinary buffer; reshape shares the view object itself.
    expect(y.data().buffer instanceof SharedArrayBuffer).toBe(false);
    const r = y.reshape([3, 4]);
    expect(r._buf).toBe(y._buf);
    expect(bits(f(r))).toEqual(bits(f(y.reshape([3, 4]))));
  });

  it("escapes with runPtr run in place on the heap (literal inputs, several outputs, int and bool values)", () => {
    // Every escape runs through runPtr: it reads its inputs from the heap, runs the reference
    // implementation and writes its outputs back, as a native escape would.
    const inner = wasmJitBackend({ threads: 1 });
    const memory = inner.memory;
    let ptrCalls = 0;
    let literalInputs = 0;
    const backend: KernelBackend = {
      name: "heap escapes",
      memory,
      compile: (k) => inner.compile(k),
      compileEscape(eqn) {
        const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
        return {
          ranOn: "test:heap",
          run: (ins) =>
            eqn.prim.impl(
              [...ins],
              eqn.params,
              eqn.prim.abstractEval(
                ins.map((t) => t.aval),
                eqn.params,
              ),
            ),
          runPtr(ins, outs) {
            ptrCalls++;
            literalInputs += eqn.inputs.filter((a) => a instanceof Lit).length;
            const tensors = eqn.inputs.map((a, i) => {
              const { shape, dtype, weakType } = a.aval;
              const n = size(shape);
              const buf = allocate(dtype, n);
              buf.set(memory.f32().subarray(ins[i]! / 4, ins[i]! / 4 + n));
              return Tensor._fromBuffer(shape, dtype, buf, weakType);
            });
            const res = eqn.prim.impl(
              tensors,
              eqn.params,
              eqn.outBinders.map((v) => v.aval),
            );
            res.forEach((t, i) => memory.f32().set(t._buf!, outs[i]! / 4));
          },
        };
      },
    };
    const twin = copyingTwin({ name: "wasm", threads: 1 }, "copying heap escapes");
    const g = (v: Tensor, labels: Tensor) => {
      const s = np.cumsum(np.tanh(v), 1);
      const hot = nn.oneHot(labels, 4);
      const top = np.argmax(s, -1);
      const padded = np.pad(s, [
        [1, 0],
        [0, 2],
      ]);
      return [s.mul(hot).sum(), top, np.greater(s, 0), padded.mul(2)] as const;
    };
    const x = f32([6, 4], 12);
    const labels = Tensor._fromBuffer([6], "int32", Int32Array.from([0, 3, 1, 2, 2, 0]));
    const got = jit(g, { backend })(x, labels);
    const want = jit(g, { backend: twin })(x, labels);
    expect(ptrCalls).toBeGreaterThan(0);
    got.forEach((t, i) => {
      expect(t.dtype).toBe(want[i]!.dtype);
      expect(bits(t)).toEqual(bits(want[i]!));
    });
    expect(literalInputs).toBeGreaterThan(0); // the pad value
    inner.dispose();
  });

  it("a synchronous job gets at most JOB_VIEW_BYTES of views; the next job gets views again", async () => {
    const option: BackendOption = { name: "wasm", threads: 1, resultViewBytes: 4 * JOB_VIEW_BYTES };
    const f = jit((v: Tensor) => v.add(1), { backend: option });
    const n = JOB_VIEW_BYTES / 4 / 4; // a quarter of the budget per result
    const x = Tensor._fromBuffer([n], "float32", new Float32Array(n).fill(2));
    await Promise.resolve(); // start from a fresh job
    const first = Array.from({ length: 6 }, () => f(x));
    expect(first.map(isHeapView)).toEqual([true, true, true, true, false, false]);
    await Promise.resolve();
    expect(isHeapView(f(x))).toBe(true);
    for (const y of first) expect(y.data()[n - 1]).toBe(3);
  });

  it("delete() hands a result view's block back at once, once every tensor over it is deleted", async () => {
    const option: BackendOption = { name: "wasm", threads: 1 };
    const state = stateOf(option);
    const f = jit((v: Tensor) => v.mul(2).add(1), { backend: option });
    const n = 65536;
    const x = f32([n], 1);
    const want = bits(f(x));
    await Promise.resolve(); // a fresh job
    const held0 = state.heldBytes;
    const y = f(x);
    expect(isHeapView(y)).toBe(true);
    const offset = y._buf!.byteOffset;
    expect(state.heldBytes).toBe(held0 + 4 * n);
    y.delete();
    expect(y.isDeleted()).toBe(true);
    expect(state.heldBytes).toBe(held0);
    // The next result reuses the block (first fit), and many delete()d results stay within one
    // job's budget: each keeps getting a view.
    for (let i = 0; i < (2 * JOB_VIEW_BYTES) / (4 * n); i++) {
      const z = f(x);
      expect(isHeapView(z)).toBe(true);
      expect(z._buf!.byteOffset).toBe(offset);
      if (i % 32 === 0) expect(bits(z)).toEqual(want);
      z.delete();
    }
    // A reshape shares the view: the block lives until both are deleted.
    const a = f(x);
    const b = a.reshape([256, 256]);
    a.delete();
    expect(state.heldBytes).toBe(held0 + 4 * n);
    const other = f(x.add(1)); // another result must not land on b's block
    expect(other._buf!.byteOffset).not.toBe(b._buf!.byteOffset);
    expect(bits(b)).toEqual(want);
    b.delete();
    expect(state.heldBytes).toBe(held0 + 4 * n); // only `other` is held now
  });

  it("a deleted tensor raises a TraceError wherever it is used", () => {
    const y = jit((v: Tensor) => v.add(1), { backend: { name: "wasm", threads: 1 } })(f32([8], 2));
    y.delete();
    y.delete(); // twice is fine
    expect(() => y.data()).toThrow(/has been deleted/);
    expect(() => np.add(y, 1)).toThrow(/has been deleted/);
    expect(() => jit((v: Tensor) => v.mul(3))(y)).toThrow(/has been deleted/);
    const plain = f32([3], 3);
    plain.delete();
    expect(() => plain.toArray()).toThrow(/has been deleted/);
    expect(() => grad((v: Tensor) => v.sum())(plain)).toThrow(/has been deleted/);
  });

  it("rejects bad memory options with ConfigErrors naming them", () => {
    expect(() => wasmJitBackend({ threads: 2, shared: false })).toThrow(ConfigError);
    expect(() => wasmJitBackend({ resultViewBytes: -1 })).toThrow(/resultViewBytes/);
    expect(() => wasmJitBackend({ inputCacheBytes: Number.NaN })).toThrow(/inputCacheBytes/);
  });
});
