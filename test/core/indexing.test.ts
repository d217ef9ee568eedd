import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DType, allocate } from "../../src/core/dtype.js";
import { DTypeError, ShapeError } from "../../src/core/errors.js";
import { type BDim, type Primitive, UndefPrimal } from "../../src/core/primitive.js";
import { cumsum, cumsum_p } from "../../src/core/primitives/cumsum.js";
import {
  type PadConfig,
  concatenate,
  concatenate_p,
  dynamicSlice,
  dynamicSlice_p,
  dynamicUpdateSlice,
  dynamicUpdateSlice_p,
  gather,
  gather_p,
  iota,
  iota_p,
  pad,
  pad_p,
  scatterAdd,
  scatterAdd_p,
  slice,
  slice_p,
} from "../../src/core/primitives/indexing.js";
import { sizeOf, stridesOf, unravel } from "../../src/core/shape.js";
import { Tensor } from "../../src/core/tensor.js";
import { mul } from "../../src/core/primitives/elementwise.js";
import { bind } from "../../src/core/trace.js";
import { linearizeFlat } from "../../src/transforms/autodiff.js";
import { jvpFlat } from "../../src/transforms/jvp.js";
import { vmapFlat } from "../../src/transforms/vmap.js";

// ---------------------------------------------------------------------------------------------
// Independent helpers: every expected value below is computed index by index in float64.

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tensor(shape: number[], values: ArrayLike<number>, dtype: DType = "float64"): Tensor {
  const buf = allocate(dtype, sizeOf(shape));
  for (let i = 0; i < buf.length; i++) buf[i] = values[i]!;
  return Tensor._fromBuffer(shape, dtype, buf);
}
const randn = (shape: number[], r: () => number, dtype: DType = "float64") =>
  tensor(
    shape,
    Array.from({ length: sizeOf(shape) }, () => r() * 2 - 1),
    dtype,
  );
const randInt = (shape: number[], r: () => number, lo: number, hi: number) =>
  tensor(
    shape,
    Array.from({ length: sizeOf(shape) }, () => lo + Math.floor(r() * (hi - lo + 1))),
    "int32",
  );
const int = (v: number) => tensor([], [v], "int32");

/** Builds a row-major array of `shape` from a function of the multi-index. */
function fromFn(shape: number[], f: (idx: number[]) => number): Float64Array {
  const out = new Float64Array(sizeOf(shape));
  const idx = new Array<number>(shape.length).fill(0);
  for (let p = 0; p < out.length; p++) out[p] = f(unravel(p, shape, idx));
  return out;
}
function at(x: Tensor, idx: number[]): number {
  const s = stridesOf(x.shape);
  return x._buf![idx.reduce((acc, v, i) => acc + v * s[i]!, 0)]!;
}
/** Element `i` along `axis` (a per-example view for checking batch rules). */
function take(x: Tensor, axis: number, i: number): Tensor {
  const shape = x.shape.filter((_, k) => k !== axis);
  return tensor(
    shape,
    fromFn(shape, (idx) => at(x, [...idx.slice(0, axis), i, ...idx.slice(axis)])),
    x.dtype,
  );
}

function expectArray(got: Tensor, shape: number[], want: ArrayLike<number>, tol = 0): void {
  expect([...got.shape]).toEqual(shape);
  const g = got._buf!;
  expect(g.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (Math.abs(g[i]! - want[i]!) > tol) expect(g[i]).toBe(want[i]);
  }
}

const dot = (a: Tensor, b: Tensor): [number, number] => {
  let s = 0;
  let m = 0;
  for (let i = 0; i < a._buf!.length; i++) {
    s += a._buf![i]! * b._buf![i]!;
    m += Math.abs(a._buf![i]! * b._buf![i]!);
  }
  return [s, m];
};

/**
 * `<ct, f(x)> = Σ_k <f^T(ct)_k, x_k>` for a primitive linear in the arguments listed in `linear`;
 * the tolerance is float64 rounding over the sums' lengths.
 */
function checkTranspose(
  prim: Primitive,
  args0: Tensor[],
  linear: number[],
  params: unknown,
  r: () => number,
  operands: number[] = linear,
): void {
  // Operands left out of `linear` are held at zero: with a nonzero value the map would be affine.
  const args = args0.map((a, k) =>
    operands.includes(k) && !linear.includes(k) ? Tensor._zeros(a.shape, a.dtype) : a,
  );
  const [y] = bind(prim, args, params);
  const ct = randn([...y!.shape], r);
  const undef = args.map((a, k) => (linear.includes(k) ? new UndefPrimal(a.aval) : a));
  const cts = prim.transpose!([ct], undef, params);
  const [lhs, lm] = dot(ct, y!);
  let rhs = 0;
  let rm = 0;
  let n = y!.size;
  args.forEach((a, k) => {
    if (!linear.includes(k)) {
      expect(cts[k]).toBeNull();
      return;
    }
    const c = cts[k]!;
    expect([...c.aval.shape]).toEqual([...a.shape]);
    const [s, m] = dot(c as Tensor, a);
    rhs += s;
    rm += m;
    n += a.size;
  });
  expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(4 * (n + 1) * 2 ** -52 * (lm + rm) + 1e-300);
}

/** The batch rule against a per-example loop over the unbatched primitive. */
function checkBatch(prim: Primitive, args: Tensor[], dims: BDim[], params: unknown, n: number): void {
  const [[out], [od]] = prim.batch(args, dims, params, n);
  for (let i = 0; i < n; i++) {
    const argsI = args.map((a, k) => (dims[k] === null ? a : take(a, dims[k]!, i)));
    const [want] = bind(prim, argsI, params);
    const got = od === null ? out! : take(out!, od!, i);
    expectArray(got, [...want!.shape], want!._buf!);
  }
}

const dimArb = fc.integer({ min: 0, max: 3 });
const shapeArb = (min = 0, max = 3) => fc.array(dimArb, { minLength: min, maxLength: max });
const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });
/** Inserts a batch axis of size `n` at `b` into `shape`. */
const withBatch = (shape: number[], b: number, n: number) => [...shape.slice(0, b), n, ...shape.slice(b)];

// ---------------------------------------------------------------------------------------------

describe("slice", () => {
  const caseArb = fc
    .tuple(shapeArb(0, 3), seedArb)
    .chain(([shape, seed]) =>
      fc.tuple(
        fc.constant(shape),
        fc.tuple(
          ...shape.map((d) =>
            fc.tuple(
              fc.integer({ min: 0, max: d }),
              fc.integer({ min: 0, max: d }),
              fc.integer({ min: 1, max: 3 }),
            ),
          ),
        ),
        fc.constant(seed),
      ),
    );

  it("matches an index-by-index oracle, transposes, batches", () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 0, max: 3 }), ([shape, bounds, seed], n) => {
        const r = rng(seed);
        const start = bounds.map(([a, b]) => Math.min(a, b));
        const limit = bounds.map(([a, b]) => Math.max(a, b));
        const strides = bounds.map(([, , s]) => s);
        const x = randn(shape, r);
        const y = slice(x, start, limit, strides);
        const outShape = shape.map((_, i) => Math.ceil((limit[i]! - start[i]!) / strides[i]!));
        expectArray(
          y,
          outShape,
          fromFn(outShape, (o) =>
            at(
              x,
              o.map((v, i) => start[i]! + v * strides[i]!),
            ),
          ),
        );
        const params = { startIndices: start, limitIndices: limit, strides };
        checkTranspose(slice_p, [x], [0], params, r);
        checkTranspose(slice_p, [x], [0], { ...params, strides: null }, r);
        const b = Math.floor(r() * (shape.length + 1));
        checkBatch(slice_p, [randn(withBatch(shape, b, n), r)], [b], params, n);
      }),
      { numRuns: 80 },
    );
  });

  it("keeps int32 and bool values", () => {
    const x = tensor([4], [1, 0, 1, 1], "bool");
    expect(slice(x, [1], [4], [2]).toArray()).toEqual([false, true]);
    expect(slice(tensor([3], [7, -8, 9], "int32"), [1], [3]).toArray()).toEqual([-8, 9]);
  });

  it("rejects bad bounds with a ShapeError naming slice", () => {
    const x = randn([2, 3], rng(1));
    expect(() => slice(x, [0], [1])).toThrow(ShapeError);
    expect(() => slice(x, [0, 0], [2, 4])).toThrow(/slice: .*out of range.*\[2,3\]/);
    expect(() => slice(x, [2, 0], [1, 3])).toThrow(ShapeError);
    expect(() => slice(x, [0, 0], [2, 3], [1, 0])).toThrow(/slice: strides/);
  });
});

describe("pad", () => {
  const caseArb = fc
    .tuple(shapeArb(0, 3), seedArb)
    .chain(([shape, seed]) =>
      fc.tuple(
        fc.constant(shape),
        fc.tuple(
          ...shape.map(() =>
            fc.tuple(
              fc.integer({ min: -3, max: 2 }),
              fc.integer({ min: -3, max: 2 }),
              fc.integer({ min: 0, max: 2 }),
            ),
          ),
        ),
        fc.constant(seed),
      ),
    )
    .filter(([shape, config]) =>
      shape.every((d, i) => config[i]![0] + config[i]![1] + d + Math.max(0, d - 1) * config[i]![2] >= 0),
    );

  it("matches an index-by-index oracle (negative lo/hi crop), transposes in both operands, batches", () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 1, max: 3 }), ([shape, config, seed], n) => {
        const r = rng(seed);
        const x = randn(shape, r);
        const pv = randn([], r);
        const cfg = config as PadConfig[];
        const y = pad(x, pv, cfg);
        const outShape = shape.map((d, i) => cfg[i]![0] + cfg[i]![1] + d + Math.max(0, d - 1) * cfg[i]![2]);
        const want = fromFn(outShape, (o) => {
          const src: number[] = [];
          for (let i = 0; i < o.length; i++) {
            const [lo, , interior] = cfg[i]!;
            const rel = o[i]! - lo;
            if (rel < 0 || rel % (interior + 1) !== 0 || rel / (interior + 1) >= shape[i]!)
              return pv._buf![0]!;
            src.push(rel / (interior + 1));
          }
          return at(x, src);
        });
        expectArray(y, outShape, want);
        const params = { paddingConfig: cfg };
        checkTranspose(pad_p, [x, pv], [0, 1], params, r);
        checkTranspose(pad_p, [x, pv], [0], params, r, [0, 1]);
        checkTranspose(pad_p, [x, pv], [1], params, r, [0, 1]);
        const b = Math.floor(r() * (shape.length + 1));
        const xb = randn(withBatch(shape, b, n), r);
        checkBatch(pad_p, [xb, pv], [b, null], params, n);
        checkBatch(pad_p, [xb, randn([n], r)], [b, 0], params, n);
        checkBatch(pad_p, [x, randn([n], r)], [null, 0], params, n);
      }),
      { numRuns: 80 },
    );
  });

  it("rejects bad configs and padding values", () => {
    const x = randn([2], rng(2));
    expect(() => pad(x, randn([1], rng(3)), [[0, 0, 0]])).toThrow(/pad: padding value must be a scalar/);
    expect(() => pad(x, int(0), [[0, 0, 0]])).toThrow(DTypeError);
    expect(() => pad(x, randn([], rng(3)), [])).toThrow(ShapeError);
    expect(() => pad(x, randn([], rng(3)), [[0, 0, -1]])).toThrow(/pad: .*interior/);
    expect(() => pad(x, randn([], rng(3)), [[-2, -1, 0]])).toThrow(/pad: .*crops/);
  });
});

describe("concatenate", () => {
  it("matches an oracle, transposes to slices, batches", () => {
    fc.assert(
      fc.property(
        shapeArb(1, 3),
        fc.array(dimArb, { minLength: 1, maxLength: 3 }),
        seedArb,
        fc.integer({ min: 1, max: 3 }),
        (shape, sizes, seed, n) => {
          const r = rng(seed);
          const dim = Math.floor(r() * shape.length);
          const xs = sizes.map((s) =>
            randn(
              shape.map((d, i) => (i === dim ? s : d)),
              r,
            ),
          );
          const params = { dimension: dim };
          const [y] = bind(concatenate_p, xs, params);
          const outShape = shape.map((d, i) => (i === dim ? sizes.reduce((a, b) => a + b, 0) : d));
          const want = fromFn(outShape, (o) => {
            let k = 0;
            let j = o[dim]!;
            while (j >= sizes[k]!) j -= sizes[k++]!;
            return at(
              xs[k]!,
              o.map((v, i) => (i === dim ? j : v)),
            );
          });
          expectArray(y!, outShape, want);
          checkTranspose(
            concatenate_p,
            xs,
            xs.map((_, k) => k),
            params,
            r,
          );
          if (xs.length > 1)
            checkTranspose(
              concatenate_p,
              xs,
              [xs.length - 1],
              params,
              r,
              xs.map((_, k) => k),
            );
          const dims = xs.map(() => (r() < 0.3 ? null : Math.floor(r() * (shape.length + 1))));
          const bxs = xs.map((x, k) =>
            dims[k] === null ? x : randn(withBatch([...x.shape], dims[k]!, n), r),
          );
          checkBatch(concatenate_p, bxs, dims, params, n);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("rejects mismatched shapes and dtypes", () => {
    const r = rng(4);
    expect(() => concatenate([randn([2, 3], r), randn([2, 4], r)], 0)).toThrow(
      /concatenate: shapes \[2,3\] and \[2,4\]/,
    );
    expect(() => concatenate([randn([2], r), randn([2], r, "float32")], 0)).toThrow(DTypeError);
    expect(() => concatenate([randn([2], r), randn([2], r)], 1)).toThrow(ShapeError);
  });
});

describe("iota", () => {
  it("counts along the dimension, in every numeric dtype", () => {
    for (const dtype of ["int32", "float32", "float64", "uint32"] as DType[]) {
      expectArray(iota(dtype, [2, 3], 1), [2, 3], [0, 1, 2, 0, 1, 2]);
      expectArray(iota(dtype, [2, 3], 0), [2, 3], [0, 0, 0, 1, 1, 1]);
    }
    expectArray(iota("int32", [0, 3], 1), [0, 3], []);
    const [[y], [d]] = iota_p.batch([], [], { dtype: "int32", shape: [2], dimension: 0 }, 5);
    expect(d).toBeNull();
    expectArray(y!, [2], [0, 1]);
    expect(() => iota("int32", [2], 1)).toThrow(/iota: dimension 1/);
  });
});

describe("gather / scatterAdd", () => {
  /** Shapes: B (shared), pre, N, post, idx. */
  const geomArb = fc.record({
    B: shapeArb(0, 2),
    pre: shapeArb(0, 1),
    N: fc.integer({ min: 1, max: 4 }),
    post: shapeArb(0, 1),
    idx: shapeArb(0, 2),
    seed: seedArb,
    n: fc.integer({ min: 1, max: 3 }),
  });

  function oracleGather(x: Tensor, ind: Tensor, k: number, axis: number, outShape: number[]): Float64Array {
    const nIdx = ind.ndim - k;
    const N = x.shape[axis]!;
    return fromFn(outShape, (o) => {
      const b = o.slice(0, k);
      const pre = o.slice(k, axis);
      const j = o.slice(axis, axis + nIdx);
      const post = o.slice(axis + nIdx);
      const i = Math.min(Math.max(at(ind, [...b, ...j]), 0), N - 1);
      return at(x, [...b, ...pre, i, ...post]);
    });
  }

  it("gather matches a clamping oracle, transposes to scatterAdd, batches in every combination", () => {
    fc.assert(
      fc.property(geomArb, ({ B, pre, N, post, idx, seed, n }) => {
        const r = rng(seed);
        const k = B.length;
        const axis = k + pre.length;
        const xShape = [...B, ...pre, N, ...post];
        const iShape = [...B, ...idx];
        const x = randn(xShape, r);
        const ind = randInt(iShape, r, -2, N + 1);
        const params = { axis, batchDims: k };
        const outShape = [...B, ...pre, ...idx, ...post];
        expectArray(gather(x, ind, params), outShape, oracleGather(x, ind, k, axis, outShape));
        checkTranspose(gather_p, [x, ind], [0], params, r);
        const bx = Math.floor(r() * (xShape.length + 1));
        const bi = Math.floor(r() * (iShape.length + 1));
        const xb = randn(withBatch(xShape, bx, n), r);
        const ib = randInt(withBatch(iShape, bi, n), r, -1, N);
        checkBatch(gather_p, [xb, ind], [bx, null], params, n);
        checkBatch(gather_p, [x, ib], [null, bi], params, n);
        checkBatch(gather_p, [xb, ib], [bx, bi], params, n);
      }),
      { numRuns: 80 },
    );
  });

  it("scatterAdd accumulates duplicates, drops out-of-range indices, transposes, batches", () => {
    fc.assert(
      fc.property(geomArb, ({ B, pre, N, post, idx, seed, n }) => {
        const r = rng(seed);
        const k = B.length;
        const axis = k + pre.length;
        const xShape = [...B, ...pre, N, ...post];
        const iShape = [...B, ...idx];
        const uShape = [...B, ...pre, ...idx, ...post];
        const x = randn(xShape, r);
        const ind = randInt(iShape, r, -2, N + 1);
        const u = randn(uShape, r);
        const params = { axis, batchDims: k };
        const want = Float64Array.from(x._buf!);
        const xStrides = stridesOf(xShape);
        const nIdx = idx.length;
        fromFn(uShape, (o) => {
          const b = o.slice(0, k);
          const p = o.slice(k, axis);
          const i = at(ind, [...b, ...o.slice(axis, axis + nIdx)]);
          if (i >= 0 && i < N) {
            const dst = [...b, ...p, i, ...o.slice(axis + nIdx)];
            want[dst.reduce((acc, v, d) => acc + v * xStrides[d]!, 0)] += at(u, o);
          }
          return 0;
        });
        expectArray(scatterAdd(x, ind, u, params), xShape, want, 1e-12);
        checkTranspose(scatterAdd_p, [x, ind, u], [0, 2], params, r);
        checkTranspose(scatterAdd_p, [x, ind, u], [2], params, r, [0, 2]);
        const bx = Math.floor(r() * (xShape.length + 1));
        const bi = Math.floor(r() * (iShape.length + 1));
        const bu = Math.floor(r() * (uShape.length + 1));
        const xb = randn(withBatch(xShape, bx, n), r);
        const ib = randInt(withBatch(iShape, bi, n), r, -1, N);
        const ub = randn(withBatch(uShape, bu, n), r);
        checkBatch(scatterAdd_p, [xb, ind, u], [bx, null, null], params, n);
        checkBatch(scatterAdd_p, [x, ind, ub], [null, null, bu], params, n);
        checkBatch(scatterAdd_p, [xb, ind, ub], [bx, null, bu], params, n);
        checkBatch(scatterAdd_p, [x, ib, u], [null, bi, null], params, n);
        checkBatch(scatterAdd_p, [xb, ib, ub], [bx, bi, bu], params, n);
      }),
      { numRuns: 80 },
    );
  });

  it("scatterAdd works on int32 (wrapping) and bool (or)", () => {
    const y = scatterAdd(
      tensor([2], [2147483647, 0], "int32"),
      tensor([2], [0, 0], "int32"),
      tensor([2], [1, 1], "int32"),
      { axis: 0 },
    );
    expect(y.toArray()).toEqual([-2147483647, 0]);
    const z = scatterAdd(
      tensor([2], [0, 1], "bool"),
      tensor([2], [0, 0], "int32"),
      tensor([2], [1, 1], "bool"),
      { axis: 0 },
    );
    expect(z.toArray()).toEqual([true, true]);
  });

  it("keeps float32, int32 and bool values (and pad/concatenate too)", () => {
    const idx = tensor([3], [2, 0, 5], "int32");
    expect(gather(tensor([3], [1.5, -2, 7], "float32"), idx, { axis: 0 }).toArray()).toEqual([7, 1.5, 7]);
    expect(gather(tensor([3], [1, 0, 1], "bool"), idx, { axis: 0 }).toArray()).toEqual([true, true, true]);
    expect(
      gather(tensor([3], [-3, 4, 2147483647], "int32"), tensor([2], [2, 0], "uint32"), { axis: 0 }).toArray(),
    ).toEqual([2147483647, -3]);
    expect(pad(tensor([2], [1, 1], "bool"), tensor([], [0], "bool"), [[1, 0, 1]]).toArray()).toEqual([
      false,
      true,
      false,
      true,
    ]);
    expect(concatenate([tensor([1], [-5], "int32"), tensor([2], [6, 7], "int32")], 0).toArray()).toEqual([
      -5, 6, 7,
    ]);
  });

  it("rejects bad indices with typed errors naming the primitive", () => {
    const r = rng(5);
    const x = randn([2, 3], r);
    expect(() => gather(x, randn([2], r), { axis: 0 })).toThrow(/gather: indices must be int32 or uint32/);
    expect(() => gather(x, randInt([4], r, 0, 1), { axis: 2 })).toThrow(ShapeError);
    expect(() => gather(x, randInt([3, 1], r, 0, 1), { axis: 1, batchDims: 1 })).toThrow(
      /gather: .*batch dimension 0/,
    );
    expect(() => gather(x, randInt([2], r, 0, 1), { axis: 0, batchDims: 1 })).toThrow(/gather: axis 0/);
    expect(() => gather(randn([2, 0], r), randInt([1], r, 0, 1), { axis: 1 })).toThrow(
      /gather: cannot take from the empty axis/,
    );
    expect(() => scatterAdd(x, randInt([4], r, 0, 1), randn([2, 3], r), { axis: 0 })).toThrow(
      /scatter_add: updates \[2,3\] must have shape \[4,3\]/,
    );
    expect(() => scatterAdd(x, randInt([4], r, 0, 1), randn([4, 3], r, "float32"), { axis: 0 })).toThrow(
      DTypeError,
    );
  });
});

describe("dynamicSlice / dynamicUpdateSlice", () => {
  const caseArb = fc
    .tuple(shapeArb(0, 3), seedArb, fc.integer({ min: 1, max: 3 }))
    .chain(([shape, seed, n]) =>
      fc.tuple(
        fc.constant(shape),
        fc.tuple(...shape.map((d) => fc.integer({ min: 0, max: d }))),
        fc.constant(seed),
        fc.constant(n),
      ),
    );
  const clamp = (s: number, d: number, size: number) => Math.min(Math.max(s, 0), d - size);

  it("match a clamping oracle, transpose into each other, batch with shared and per-example starts", () => {
    fc.assert(
      fc.property(caseArb, ([shape, sizes, seed, n]) => {
        const r = rng(seed);
        const x = randn(shape, r);
        const startVals = shape.map((d) => Math.floor(r() * (d + 4)) - 2);
        const starts = startVals.map(int);
        const st = shape.map((d, i) => clamp(startVals[i]!, d, sizes[i]!));
        const y = dynamicSlice(x, starts, sizes);
        expectArray(
          y,
          sizes,
          fromFn(sizes, (o) =>
            at(
              x,
              o.map((v, i) => v + st[i]!),
            ),
          ),
        );
        const u = randn(sizes, r);
        const z = dynamicUpdateSlice(x, u, starts);
        const wantZ = fromFn(shape, (o) => {
          const rel = o.map((v, i) => v - st[i]!);
          return rel.every((v, i) => v >= 0 && v < sizes[i]!) ? at(u, rel) : at(x, o);
        });
        expectArray(z, shape, wantZ);

        const dsParams = { sliceSizes: sizes };
        checkTranspose(dynamicSlice_p, [x, ...starts], [0], dsParams, r);
        checkTranspose(dynamicUpdateSlice_p, [x, u, ...starts], [0, 1], {}, r);
        checkTranspose(dynamicUpdateSlice_p, [x, u, ...starts], [1], {}, r, [0, 1]);
        checkTranspose(dynamicUpdateSlice_p, [x, u, ...starts], [0], {}, r, [0, 1]);

        const bx = Math.floor(r() * (shape.length + 1));
        const xb = randn(withBatch(shape, bx, n), r);
        const ub = randn([n, ...sizes], r);
        const startsB = shape.map((d) => randInt([n], r, -2, d + 1));
        const nullStarts = starts.map(() => null);
        checkBatch(dynamicSlice_p, [xb, ...starts], [bx, ...nullStarts], dsParams, n);
        checkBatch(dynamicSlice_p, [xb, ...startsB], [bx, ...startsB.map(() => 0)], dsParams, n);
        checkBatch(dynamicSlice_p, [x, ...startsB], [null, ...startsB.map(() => 0)], dsParams, n);
        const mixed = startsB.map((s, i) => (i % 2 === 0 ? s : starts[i]!));
        const mixedDims = startsB.map((_, i) => (i % 2 === 0 ? 0 : null));
        checkBatch(dynamicSlice_p, [xb, ...mixed], [bx, ...mixedDims], dsParams, n);
        checkBatch(dynamicUpdateSlice_p, [xb, u, ...starts], [bx, null, ...nullStarts], {}, n);
        checkBatch(dynamicUpdateSlice_p, [x, ub, ...starts], [null, 0, ...nullStarts], {}, n);
        checkBatch(dynamicUpdateSlice_p, [xb, ub, ...startsB], [bx, 0, ...startsB.map(() => 0)], {}, n);
        checkBatch(dynamicUpdateSlice_p, [x, u, ...mixed], [null, null, ...mixedDims], {}, n);
      }),
      { numRuns: 80 },
    );
  });

  it("rejects bad start indices and sizes", () => {
    const r = rng(6);
    const x = randn([3, 4], r);
    expect(() => dynamicSlice(x, [int(0)], [1, 1])).toThrow(/dynamic_slice: needs 2 start indices/);
    expect(() => dynamicSlice(x, [int(0), randn([], r)], [1, 1])).toThrow(
      /dynamic_slice: start index 1 must be int32/,
    );
    expect(() => dynamicSlice(x, [int(0), randInt([1], r, 0, 0)], [1, 1])).toThrow(
      /dynamic_slice: start index 1 must be a scalar/,
    );
    expect(() => dynamicSlice(x, [int(0), int(0)], [1, 5])).toThrow(ShapeError);
    expect(() => dynamicUpdateSlice(x, randn([4, 1], r), [int(0), int(0)])).toThrow(
      /dynamic_update_slice: update \[4,1\]/,
    );
    expect(() => dynamicUpdateSlice(x, randn([1, 1], r, "float32"), [int(0), int(0)])).toThrow(DTypeError);
  });
});

describe("cumsum", () => {
  it("matches a running-sum oracle, transposes to the reversed sum, batches", () => {
    fc.assert(
      fc.property(
        shapeArb(1, 3),
        seedArb,
        fc.boolean(),
        fc.integer({ min: 1, max: 3 }),
        (shape, seed, reverse, n) => {
          const r = rng(seed);
          const axis = Math.floor(r() * shape.length);
          const x = randn(shape, r);
          const want = fromFn(shape, (o) => {
            let s = 0;
            const lo = reverse ? o[axis]! : 0;
            const hi = reverse ? shape[axis]! - 1 : o[axis]!;
            for (let j = lo; j <= hi; j++)
              s += at(
                x,
                o.map((v, i) => (i === axis ? j : v)),
              );
            return s;
          });
          expectArray(cumsum(x, axis, reverse), shape, want, 4 * shape[axis]! * 2 ** -52 * shape[axis]!);
          const params = { axis, reverse };
          checkTranspose(cumsum_p, [x], [0], params, r);
          const b = Math.floor(r() * (shape.length + 1));
          checkBatch(cumsum_p, [randn(withBatch(shape, b, n), r)], [b], params, n);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("wraps int32, accepts negative axes, rejects bool and bad axes", () => {
    expect(cumsum(tensor([2], [2147483647, 1], "int32"), -1).toArray()).toEqual([2147483647, -2147483648]);
    expect(() => cumsum(tensor([2], [1, 0], "bool"), 0)).toThrow(/cumsum: does not accept bool/);
    expect(() => cumsum(randn([2], rng(7)), 1)).toThrow(/cumsum: axis 1/);
  });
});

// ---------------------------------------------------------------------------------------------
// Through the transforms: jvp vs central differences, jvp vs vjp, vmap vs a loop.

describe("through jvp, vjp and vmap", () => {
  type F = (...xs: Tensor[]) => Tensor;
  const sq = (x: Tensor) => mul(x, x);

  function maxAbs(t: Tensor): number {
    let m = 0;
    for (const v of t._buf!) m = Math.max(m, Math.abs(v));
    return m;
  }

  /**
   * `f` is evaluated on squared inputs, so it is quadratic in them: a central difference is then exact
   * up to rounding, about eps·|f| / h per element.
   */
  function checkTransforms(f: F, xs: Tensor[], r: () => number): void {
    const g = (...ys: Tensor[]) => [f(...ys.map(sq))];
    const us = xs.map((x) => randn([...x.shape], r));
    const [[y], [ty]] = jvpFlat(g, xs, us);
    const tyT = ty instanceof Tensor ? ty : Tensor._zeros(y!.shape, y!.dtype);
    const h = 1e-4;
    const shifted = (sgn: number) =>
      xs.map((x, k) =>
        tensor(
          [...x.shape],
          x._buf!.map((v, i) => v + sgn * h * us[k]!._buf![i]!),
        ),
      );
    const [yp] = g(...shifted(1));
    const [ym] = g(...shifted(-1));
    const scale = Math.max(1, maxAbs(yp!), maxAbs(ym!));
    const fd = yp!._buf!.map((v, i) => (v - ym!._buf![i]!) / (2 * h));
    expectArray(tyT, [...y!.shape], fd, (8 * 2 ** -52 * scale) / h + 1e-9 * maxAbs(tyT));

    const lin = linearizeFlat(g, xs);
    const v = randn([...y!.shape], r);
    const cts = lin
      .vjpFn([v])
      .map((c, k) => (c instanceof Tensor ? c : Tensor._zeros(xs[k]!.shape, "float64")));
    const [lhs, lm] = dot(v, tyT);
    let rhs = 0;
    let rm = 0;
    cts.forEach((c, k) => {
      const [s, m] = dot(c, us[k]!);
      rhs += s;
      rm += m;
    });
    const len = y!.size + xs.reduce((a, x) => a + x.size, 0);
    expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(8 * (len + 1) * 2 ** -52 * (lm + rm) + 1e-300);
  }

  /** vmap over axis `dims[k]` of each argument (null = shared) against a loop. */
  function checkVmap(f: F, args: Tensor[], dims: BDim[], n: number): void {
    const [out] = vmapFlat((...xs) => [f(...xs)], args, dims, [0], n);
    for (let i = 0; i < n; i++) {
      const want = f(...args.map((a, k) => (dims[k] === null ? a : take(a, dims[k]!, i))));
      expectArray(take(out!, 0, i), [...want.shape], want._buf!);
    }
  }

  it("slice, pad, concatenate, cumsum", () => {
    fc.assert(
      fc.property(shapeArb(1, 3), seedArb, fc.integer({ min: 1, max: 3 }), (shape, seed, n) => {
        const r = rng(seed);
        const x = randn(shape, r);
        const start = shape.map((d) => Math.floor(r() * (d + 1)));
        const limit = shape.map((d, i) => start[i]! + Math.floor(r() * (d - start[i]! + 1)));
        const strides = shape.map(() => 1 + Math.floor(r() * 2));
        const cfg = shape
          .map((): PadConfig => [Math.floor(r() * 3) - 1, Math.floor(r() * 3), Math.floor(r() * 2)])
          .map(
            (c, i): PadConfig =>
              c[0] + c[1] + shape[i]! + Math.max(0, shape[i]! - 1) * c[2] < 0 ? [0, 0, c[2]] : c,
          );
        const axis = Math.floor(r() * shape.length);
        const reverse = r() < 0.5;
        const fs: [F, Tensor[]][] = [
          [(a) => slice(a, start, limit, strides), [x]],
          [(a, p) => pad(a, p, cfg), [x, randn([], r)]],
          [(a, b) => concatenate([a, b, a], axis), [x, randn([...shape], r)]],
          [(a) => cumsum(a, axis, reverse), [x]],
        ];
        for (const [f, args] of fs) {
          checkTransforms(f, args, r);
          const b = Math.floor(r() * (shape.length + 1));
          checkVmap(
            f,
            args.map((a) => randn(withBatch([...a.shape], Math.min(b, a.ndim), n), r)),
            args.map((a) => Math.min(b, a.ndim)),
            n,
          );
          if (args.length > 1) checkVmap(f, [args[0]!, randn([n, ...args[1]!.shape], r)], [null, 0], n);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("gather, scatterAdd, dynamicSlice, dynamicUpdateSlice (indices as constants and vmapped)", () => {
    fc.assert(
      fc.property(shapeArb(1, 3), seedArb, fc.integer({ min: 1, max: 3 }), (shape0, seed, n) => {
        const r = rng(seed);
        const shape = shape0.map((d) => Math.max(d, 1));
        const axis = Math.floor(r() * shape.length);
        const N = shape[axis]!;
        const x = randn(shape, r);
        const ind = randInt([3], r, -1, N);
        const uShape = [...shape.slice(0, axis), 3, ...shape.slice(axis + 1)];
        const sizes = shape.map((d) => Math.floor(r() * (d + 1)));
        const starts = shape.map((d) => int(Math.floor(r() * (d + 2)) - 1));
        const fs: [F, Tensor[]][] = [
          [(a) => gather(a, ind, { axis }), [x]],
          [(a, u) => scatterAdd(a, ind, u, { axis }), [x, randn(uShape, r)]],
          [(a) => dynamicSlice(a, starts, sizes), [x]],
          [(a, u) => dynamicUpdateSlice(a, u, starts), [x, randn(sizes, r)]],
        ];
        for (const [f, args] of fs) {
          checkTransforms(f, args, r);
          checkVmap(
            f,
            args.map((a) => randn([n, ...a.shape], r)),
            args.map(() => 0),
            n,
          );
        }
        // Per-example indices and starts, with the operand shared or batched.
        const inds = randInt([n, 3], r, -1, N);
        const xb = randn([n, ...shape], r);
        checkVmap((a, i) => gather(a, i, { axis }), [x, inds], [null, 0], n);
        checkVmap((a, i) => gather(a, i, { axis }), [xb, inds], [0, 0], n);
        checkVmap(
          (a, i, u) => scatterAdd(a, i, u, { axis }),
          [x, inds, randn(uShape, r)],
          [null, 0, null],
          n,
        );
        const startsB = shape.map((d) => randInt([n], r, -1, d));
        checkVmap((a, ...s) => dynamicSlice(a, s, sizes), [xb, ...startsB], [0, ...startsB.map(() => 0)], n);
        checkVmap(
          (a, u, ...s) => dynamicUpdateSlice(a, u, s),
          [x, randn([n, ...sizes], r), ...startsB],
          [null, 0, ...startsB.map(() => 0)],
          n,
        );
        // Gradients of per-example gathers: vmap of a vjp, so the batched transpose (scatterAdd) runs.
        const ones = (shp: number[]) => tensor(shp, new Float64Array(sizeOf(shp)).fill(1));
        const gradGather = (a: Tensor, i: Tensor) =>
          linearizeFlat((b) => [gather(sq(b), i, { axis })], [a]).vjpFn([ones(uShape)])[0] as Tensor;
        checkVmap(gradGather, [xb, inds], [0, 0], n);
      }),
      { numRuns: 40 },
    );
  });
});
