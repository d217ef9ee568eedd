import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../../src/core/errors.js";
import {
  type AffineIndex,
  type AffineKernel,
  type KernelExpr,
  WasmKernelBackend,
} from "../../../../src/transforms/jit/wasm/kernel-adapter.js";

const f32 = Math.fround;
const backend = new WasmKernelBackend();

function data(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = f32(s / 2 ** 31 - 1);
  }
  return out;
}

const load = (arg: number, offset: number, out: number[], red: number[] = []): KernelExpr => ({
  op: "load",
  arg,
  index: { offset, out, red },
});
const bin = (fn: string, a: KernelExpr, b: KernelExpr): KernelExpr => ({ op: "binary", fn, a, b });
const ACC: KernelExpr = { op: "acc" };

/** Evaluates an IR expression at output index `o` (and reduction index `r`) in float32 steps. */
function evalExpr(e: KernelExpr, args: Float32Array[], o: number[], r: number[], acc: number): number {
  const at = (a: AffineIndex) =>
    a.offset + a.out.reduce((s, c, d) => s + c * o[d]!, 0) + a.red.reduce((s, c, d) => s + c * r[d]!, 0);
  switch (e.op) {
    case "load":
      return args[e.arg]![at(e.index)]!;
    case "const":
      return f32(e.value);
    case "acc":
      return acc;
    case "unary": {
      const x = evalExpr(e.x, args, o, r, acc);
      return e.fn === "neg" ? -x : e.fn === "abs" ? Math.abs(x) : Number.NaN;
    }
    case "binary": {
      const x = evalExpr(e.a, args, o, r, acc);
      const y = evalExpr(e.b, args, o, r, acc);
      const ops: Record<string, () => number> = {
        add: () => f32(x + y),
        sub: () => f32(x - y),
        mul: () => f32(x * y),
        max: () => (x === y ? (Object.is(x, -0) ? y : x) : Math.max(x, y)),
        lt: () => (x < y ? 1 : 0),
      };
      return ops[e.fn]!();
    }
    case "select":
      return evalExpr(e.c, args, o, r, acc) !== 0
        ? evalExpr(e.t, args, o, r, acc)
        : evalExpr(e.f, args, o, r, acc);
  }
}

function* indices(shape: readonly number[]): Generator<number[]> {
  const size = shape.reduce((a, b) => a * b, 1);
  for (let flat = 0; flat < size; flat++) {
    const idx: number[] = [];
    let rest = flat;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
    }
    yield idx;
  }
}

describe("WasmKernelBackend: the jit's kernel IR on the wasm backend", () => {
  it("elementwise kernels with transposed, broadcast, reversed and offset loads equal a float32 evaluator", () => {
    const exprArb = (): fc.Arbitrary<KernelExpr> => {
      // Loads of arg 0 ([6, 7] buffer) and arg 1 ([7]) at random legal affine indices over out [6, 7].
      const leaf = fc.oneof(
        fc.constantFrom(
          load(0, 0, [7, 1]), // contiguous
          load(0, 0, [1, 6]), // the [6, 7] transpose of a [7, 6] buffer
          load(1, 0, [0, 1]), // row broadcast
          load(1, 6, [0, -1]), // reversed row
          load(0, 41, [-7, -1]), // both axes reversed
          { op: "const", value: 0.5 } as KernelExpr,
        ),
      );
      const { e } = fc.letrec<{ e: KernelExpr }>((tie) => ({
        e: fc.oneof(
          { depthSize: "small" },
          leaf,
          fc.record({ op: fc.constant("unary" as const), fn: fc.constantFrom("neg", "abs"), x: tie("e") }),
          fc.record({
            op: fc.constant("binary" as const),
            fn: fc.constantFrom("add", "sub", "mul", "max", "lt"),
            a: tie("e"),
            b: tie("e"),
          }),
          fc.record({ op: fc.constant("select" as const), c: tie("e"), t: tie("e"), f: tie("e") }),
        ) as fc.Arbitrary<KernelExpr>,
      }));
      return e;
    };
    fc.assert(
      fc.property(exprArb(), fc.integer({ min: 0, max: 1e9 }), (expr, seed) => {
        const kernel: AffineKernel = {
          argSizes: [42, 7],
          outShape: [6, 7],
          outDType: "float32",
          reduction: null,
          expr,
        };
        const args = [data(42, seed), data(7, seed + 1)];
        const k = backend.compile(kernel);
        expect(k.path).toBe("elementwise");
        const got = k.run(args);
        let i = 0;
        for (const o of indices([6, 7])) {
          const want = evalExpr(expr, args, o, [], 0);
          expect(Object.is(got[i], f32(want)) || (Number.isNaN(got[i]) && Number.isNaN(want))).toBe(true);
          i++;
        }
      }),
      { numRuns: 60 },
    );
  });

  it("matmul kernels (any transposes, batched) take the GEMM path, with a bias + relu epilogue", () => {
    fc.assert(
      fc.property(
        fc.record({
          b: fc.integer({ min: 1, max: 3 }),
          m: fc.integer({ min: 1, max: 20 }),
          k: fc.integer({ min: 1, max: 40 }),
          n: fc.integer({ min: 1, max: 20 }),
          tA: fc.boolean(),
          tB: fc.boolean(),
          swap: fc.boolean(),
          epilogue: fc.boolean(),
          seed: fc.integer({ min: 0, max: 1e9 }),
        }),
        ({ b, m, k, n, tA, tB, swap, epilogue, seed }) => {
          // A: [b, m, k] (or [b, k, m] when tA), B: [k, n] shared by the batch (or [n, k] when tB).
          const aL = load(0, 0, [m * k, tA ? 1 : k, 0], [tA ? m : 1]);
          const bL = load(1, 0, [0, 0, tB ? k : 1], [tB ? 1 : n]);
          const body = swap ? bin("mul", bL, aL) : bin("mul", aL, bL);
          const expr = epilogue
            ? bin("max", bin("add", ACC, load(2, 0, [0, 0, 1])), { op: "const", value: 0 })
            : ACC;
          const kernel: AffineKernel = {
            argSizes: [b * m * k, k * n, n],
            outShape: [b, m, n],
            outDType: "float32",
            reduction: { op: "sum", shape: [k], body },
            expr,
          };
          const args = [data(b * m * k, seed), data(k * n, seed + 1), data(n, seed + 2)];
          const compiled = backend.compile(kernel);
          expect(compiled.path).toBe("gemm");
          const out = new Float32Array(b * m * n);
          expect(compiled.run(args, out)).toBe(out);
          const u = 2 ** -24;
          const gamma = ((k + 2) * u) / (1 - (k + 2) * u);
          let i = 0;
          for (const o of indices([b, m, n])) {
            let s = 0;
            let mag = 0;
            for (let p = 0; p < k; p++) {
              const t = evalExpr(aL, args, o, [p], 0) * evalExpr(bL, args, o, [p], 0);
              s += t;
              mag += Math.abs(t);
            }
            if (epilogue) {
              const bias = args[2]![o[2]!]!;
              s = Math.max(s + bias, 0);
              mag += Math.abs(bias);
            }
            expect(Math.abs(out[i]! - s)).toBeLessThanOrEqual(gamma * mag);
            i++;
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("other reductions (max over two contiguous axes, sum of a product with a broadcast) take the reduction path", () => {
    const x = data(3 * 4 * 5, 9);
    // max over axes (4, 5) of x[3, 4, 5], coalescable into one axis of 20.
    const kmax: AffineKernel = {
      argSizes: [60],
      outShape: [3],
      outDType: "float32",
      reduction: { op: "max", shape: [4, 5], body: load(0, 0, [20], [5, 1]) },
      expr: bin("add", ACC, { op: "const", value: 1 }),
    };
    const c = backend.compile(kmax);
    expect(c.path).toBe("reduction");
    const got = c.run([x]);
    for (let r = 0; r < 3; r++) expect(got[r]).toBe(f32(Math.max(...x.subarray(r * 20, r * 20 + 20)) + 1));
    // Reducing axes 0 and 2 of [3, 4, 5] cannot merge into one strided axis: ConfigError.
    expect(() =>
      backend.compile({
        ...kmax,
        outShape: [4],
        reduction: { op: "sum", shape: [3, 5], body: load(0, 0, [5], [20, 1]) },
      }),
    ).toThrow(ConfigError);
  });

  it("ops the backend lacks raise ConfigError at compile time (the jit can fall back)", () => {
    const k = (fn: string): AffineKernel => ({
      argSizes: [4],
      outShape: [4],
      outDType: "float32",
      reduction: null,
      expr: { op: "unary", fn, x: load(0, 0, [1]) },
    });
    expect(() => backend.compile(k("sin"))).toThrow(/sin is not supported/);
    expect(backend.compile(k("tanh")).run([new Float32Array([0, 1, -1, 2])])[1]).toBeCloseTo(Math.tanh(1), 6);
  });

  it("column sums (Σ_r G[r, c], strided rows, optional epilogue) run as column reductions within γ_{R+2}·Σ|g| (two-level sums), via run and runPtr", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 8, max: 300 }),
        fc.integer({ min: 8, max: 40 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 1000 }),
        (R, C, pad, cs, offset, withEpilogue, seed) => {
          const rs = C * cs + pad; // a sub-matrix of a wider one
          const size = offset + (R - 1) * rs + (C - 1) * cs + 1;
          const g = data(size, seed);
          const bias = data(C, seed + 1);
          const kernel: AffineKernel = {
            argSizes: [size, C],
            outShape: [C],
            outDType: "float32",
            reduction: { op: "sum", shape: [R], body: load(0, offset, [cs], [rs]) },
            // The bias gradient's update: b - 0.5·Σ g.
            expr: withEpilogue
              ? bin("sub", load(1, 0, [1]), bin("mul", { op: "const", value: 0.5 }, ACC))
              : ACC,
          };
          const compiled = backend.compile(kernel);
          expect(compiled.ranOn).toBe("wasm:column-reduction");
          const viaRun = compiled.run([g, bias]);
          // runPtr on buffers placed in the heap by hand.
          const heap = backend.backend.heap;
          const pg = heap.alloc(4 * size);
          const pb = heap.alloc(4 * C);
          const po = heap.alloc(4 * C);
          heap.f32().set(g, pg / 4);
          heap.f32().set(bias, pb / 4);
          compiled.runPtr([pg, pb], po);
          const viaPtr = heap.f32().slice(po / 4, po / 4 + C);
          for (const p of [pg, pb, po]) heap.free(p);
          expect(Array.from(viaPtr)).toEqual(Array.from(viaRun));
          const u = 2 ** -24;
          const gamma = ((R + 2) * u) / (1 - (R + 2) * u);
          for (let c = 0; c < C; c++) {
            let s = 0;
            let mag = 0;
            for (let r = 0; r < R; r++) {
              const v = g[offset + r * rs + c * cs]!;
              s += v;
              mag += Math.abs(v);
            }
            const want = withEpilogue ? bias[c]! - 0.5 * s : s;
            const tol = withEpilogue
              ? 0.5 * gamma * mag + 2 * u * (Math.abs(bias[c]!) + 0.5 * mag)
              : gamma * mag;
            expect(Math.abs(viaRun[c]! - want)).toBeLessThanOrEqual(tol);
          }
        },
      ),
      { numRuns: 40, seed: 4242 },
    );
  });
});
