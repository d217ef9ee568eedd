import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DTypeError, ShapeError } from "../../src/core/errors.js";
import { erf, mul } from "../../src/core/primitives/elementwise.js";
import {
  bitcastConvertType,
  bitcastConvertType_p,
  threefry2x32 as hashPrim,
  threefry2x32_p,
} from "../../src/core/primitives/random.js";
import { broadcastInDim } from "../../src/core/primitives/structural.js";
import * as random from "../../src/core/random.js";
import { Tensor } from "../../src/core/tensor.js";
import { jvp, makeJaxpr, vmap } from "../../src/transforms/index.js";

const u32 = (shape: number[], v: number[]) => Tensor._fromBuffer(shape, "uint32", Uint32Array.from(v));
const f32 = (shape: number[], v: number[]) => Tensor._fromBuffer(shape, "float32", Float32Array.from(v));
const vals = (x: Tensor) => Array.from(x.data());
const keyOf = (pair: number[]) => u32([2], pair);
const rows = (x: Tensor) => x.toArray() as number[][];

// Threefry-2x32 known-answer vectors (Random123's kat_vectors, as in JAX's random_test.py).
const KATS: [number[], number[], number[]][] = [
  [
    [0, 0],
    [0, 0],
    [0x6b200159, 0x99ba4efe],
  ],
  [
    [0xffffffff, 0xffffffff],
    [0xffffffff, 0xffffffff],
    [0x1cb996fc, 0xbb002be7],
  ],
  [
    [0x13198a2e, 0x03707344],
    [0x243f6a88, 0x85a308d3],
    [0xc4923a9c, 0x483df7a0],
  ],
];

describe("threefry2x32 primitive", () => {
  it("reproduces the known-answer vectors, elementwise over arrays", () => {
    const k1 = u32(
      [3],
      KATS.map((k) => k[0][0]!),
    );
    const k2 = u32(
      [3],
      KATS.map((k) => k[0][1]!),
    );
    const x1 = u32(
      [3],
      KATS.map((k) => k[1][0]!),
    );
    const x2 = u32(
      [3],
      KATS.map((k) => k[1][1]!),
    );
    const [y1, y2] = hashPrim(k1, k2, x1, x2);
    expect(vals(y1)).toEqual(KATS.map((k) => k[2][0]));
    expect(vals(y2)).toEqual(KATS.map((k) => k[2][1]));
  });

  it("random.threefry2x32(key, count) hashes the two halves of count (odd sizes padded)", () => {
    for (const [key, count, out] of KATS)
      expect(vals(random.threefry2x32(keyOf(key), u32([2], count)))).toEqual(out);
    // Odd size: [c0, c1, c2] is hashed as ([c0, c1], [c2, 0]) and the last word dropped.
    const odd = vals(random.threefry2x32(keyOf([0, 0]), u32([3], [0, 0, 0])));
    const [a] = hashPrim(u32([2], [0, 0]), u32([2], [0, 0]), u32([2], [0, 0]), u32([2], [0, 0]));
    expect(odd.length).toBe(3);
    expect(odd[0]).toBe(vals(a)[0]);
  });

  it("random.threefry2x32 on a traced count (vmap) equals the eager result", () => {
    const counts = u32([3, 4], [0, 1, 2, 3, 4, 5, 6, 7, 0xffffffff, 0, 9, 10]);
    const k = keyOf([0x13198a2e, 0x03707344]);
    const batched = vmap((c: Tensor) => random.threefry2x32(k, c))(counts);
    for (let b = 0; b < 3; b++) {
      const eager = random.threefry2x32(k, u32([4], vals(counts).slice(4 * b, 4 * b + 4)));
      expect(vals(batched).slice(4 * b, 4 * b + 4)).toEqual(vals(eager));
    }
    const odd = u32([2, 3], [1, 2, 3, 4, 5, 6]);
    const batchedOdd = vmap((c: Tensor) => random.threefry2x32(k, c))(odd);
    expect(vals(batchedOdd).slice(3)).toEqual(vals(random.threefry2x32(k, u32([3], [4, 5, 6]))));
  });

  it("rejects bad operands with typed errors", () => {
    const a = u32([2], [1, 2]);
    expect(() => hashPrim(a, a, a, u32([3], [1, 2, 3]))).toThrow(ShapeError);
    expect(() => hashPrim(a, a, a, f32([2], [1, 2]))).toThrow(DTypeError);
    expect(() => random.uniform(f32([2], [0, 0]))).toThrow(DTypeError);
    expect(() => random.uniform(u32([3], [0, 0, 0]))).toThrow(DTypeError);
  });

  it("batch rule equals a per-example loop; jvp gives zero tangents", () => {
    const k1 = u32([3, 2], [1, 2, 3, 4, 5, 6]);
    const k2 = u32([2], [7, 8]);
    const x1 = u32([2, 3], [9, 10, 11, 12, 13, 14]);
    const x2 = u32([2], [15, 16]);
    // k1 batched on axis 0, x1 on axis 1, k2 and x2 unmapped.
    const [outs, dims] = threefry2x32_p.batch([k1, k2, x1, x2], [0, null, 1, null], {}, 3);
    for (let b = 0; b < 3; b++) {
      const want = hashPrim(
        u32([2], vals(k1).slice(2 * b, 2 * b + 2)),
        k2,
        u32([2], [vals(x1)[b]!, vals(x1)[3 + b]!]),
        x2,
      );
      const pick = (o: Tensor, d: number) =>
        d === 0 ? vals(o).slice(2 * b, 2 * b + 2) : [vals(o)[b]!, vals(o)[3 + b]!];
      expect(pick(outs[0]!, dims[0]!)).toEqual(vals(want[0]));
      expect(pick(outs[1]!, dims[1]!)).toEqual(vals(want[1]));
    }
    const [, tangents] = threefry2x32_p.jvp([k2, k2, x2, x2], [k2, k2, x2, x2], {});
    expect(tangents.every((tn) => !(tn instanceof Tensor))).toBe(true);
  });

  it("bitcast_convert_type reinterprets 32-bit patterns both ways", () => {
    const f = bitcastConvertType(u32([3], [0x3f800000, 0xbf800000, 0x7fc00000]), "float32");
    expect(vals(f).slice(0, 2)).toEqual([1, -1]);
    expect(Number.isNaN(vals(f)[2])).toBe(true);
    expect(
      vals(bitcastConvertType(Tensor._fromBuffer([2], "int32", Int32Array.from([-1, 5])), "uint32")),
    ).toEqual([4294967295, 5]);
    expect(() =>
      bitcastConvertType(Tensor._fromBuffer([1], "float64", Float64Array.from([1])), "uint32"),
    ).toThrow(DTypeError);
    const [o, d] = bitcastConvertType_p.batch([u32([2], [0, 0])], [0], { newDtype: "int32" }, 2);
    expect([o[0]!.dtype, d[0]]).toEqual(["int32", 0]);
  });
});

describe("keys match JAX (jax_threefry_partitionable=True, x64 off)", () => {
  it("key(seed) is [0, seed mod 2^32], as PRNGKey with x64 disabled", () => {
    expect(vals(random.key(0))).toEqual([0, 0]);
    expect(vals(random.PRNGKey(42))).toEqual([0, 42]);
    // From JAX's test_prng_seeds_and_keys (x64 disabled).
    expect(vals(random.key(-1))).toEqual([0, 4294967295]);
    expect(vals(random.key(-2))).toEqual([0, 4294967294]);
    expect(vals(random.key(2147483647 + 100))).toEqual([0, 2147483747]);
    expect(random.key(3).dtype).toBe("uint32");
    expect(() => random.key(1.5)).toThrow(DTypeError);
  });

  it("split(key(0)) and the documented uniform draws", () => {
    // jax.random.split(jax.random.PRNGKey(0)) under the partitionable default.
    expect(rows(random.split(random.key(0)))).toEqual([
      [1797259609, 2579123966],
      [928981903, 3453687069],
    ]);
    // docs.jax.dev, jax.random module: random.uniform(key(0)) = 0.947667; after
    // `key, subkey = split(key)`, random.uniform(subkey) = 0.00729382 (printed to 6 digits).
    expect(random.uniform(random.key(0)).item()).toBeCloseTo(0.947667, 6);
    const sub = keyOf(rows(random.split(random.key(0)))[1]!);
    expect(random.uniform(sub).item()).toBeCloseTo(0.00729382, 8);
  });

  it("split(key, n)[i] equals foldIn(key, i), and split takes a shape", () => {
    const k = random.key(7);
    const s = rows(random.split(k, 5));
    for (let i = 0; i < 5; i++) expect(vals(random.foldIn(k, i))).toEqual(s[i]);
    expect(vals(random.foldIn(k, Tensor._fromBuffer([], "int32", Int32Array.from([3]))))).toEqual(s[3]);
    const shaped = random.split(k, [2, 3]);
    expect(shaped.shape).toEqual([2, 3, 2]);
    expect(vals(shaped)).toEqual(
      s
        .slice(0, 5)
        .flat()
        .concat(vals(random.foldIn(k, 5))),
    );
  });

  it("normal's erf_inv pipeline reproduces JAX's legacy-bits docstring values to float32 accuracy", () => {
    // jax.nn.initializers.normal(5.0)(key(42), (2, 3)) printed in JAX's docs, generated with the
    // older non-partitionable bits (threefry_2x32(key, iota(6))). Rebuild those bits with the
    // primitive, then run our uniform -> erf_inv transform on them.
    const y = hashPrim(u32([3], [0, 0, 0]), u32([3], [42, 42, 42]), u32([3], [0, 1, 2]), u32([3], [3, 4, 5]));
    const b = [...vals(y[0]), ...vals(y[1])];
    const unit = b.map((x) => new Float32Array(new Uint32Array([(x >>> 9) | 0x3f800000]).buffer)[0]! - 1);
    const lo = Math.fround(-(1 - 2 ** -24));
    const u = f32(
      [6],
      unit.map((v) => Math.fround(Math.fround(v * 2) + lo)),
    );
    const z = vals(random.erfInv(u)).map((v) => Math.fround(v * Math.SQRT2) * 5);
    const want = [3.0613258, 5.6129413, 5.6866574, -4.063663, -4.4520254, 0.63115686];
    // XLA may round log1p / fused multiply-adds differently: allow 1e-6 relative (a few float32 ulps).
    z.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-6 * Math.abs(want[i]!) + 1e-6));
  });

  it("is deterministic per key and differs across keys", () => {
    const a = vals(random.normal(random.key(1), [16]));
    expect(vals(random.normal(random.key(1), [16]))).toEqual(a);
    expect(vals(random.normal(random.key(2), [16]))).not.toEqual(a);
    // A prefix of a bigger draw is the smaller draw (counters are the flat indices).
    expect(vals(random.bits(random.key(3), [8])).slice(0, 4)).toEqual(vals(random.bits(random.key(3), [4])));
  });
});

/** Kolmogorov–Smirnov statistic of samples against a continuous CDF. */
function ksStatistic(xs: number[], cdf: (x: number) => number): number {
  const s = xs.slice().sort((a, b) => a - b);
  const n = s.length;
  let d = 0;
  s.forEach((x, i) => {
    const f = cdf(x);
    d = Math.max(d, f - i / n, (i + 1) / n - f);
  });
  return d;
}
/** The asymptotic KS critical value: P(D > c/√n) = alpha for c = sqrt(-ln(alpha/2)/2). */
const ksCritical = (n: number, alpha: number) => Math.sqrt(-Math.log(alpha / 2) / 2) / Math.sqrt(n);

/** erf by its Taylor series (|x| < 3) and continued fraction otherwise; float64 accurate. */
function erfRef(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  let sum = 0;
  let term = ax;
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-ax * ax) / (n + 1);
    if (Math.abs(term) < 1e-17) break;
  }
  return Math.sign(x) * Math.min(1, (2 / Math.sqrt(Math.PI)) * sum);
}
const normalCdf = (x: number) => 0.5 * (1 + erfRef(x / Math.SQRT2));

describe("distributions", () => {
  const N = 10000;
  const crit = ksCritical(N, 0.001);

  it("uniform passes a KS test at alpha = 0.001 and respects [minval, maxval)", () => {
    for (const seed of [0, 1, 2]) {
      const xs = vals(random.uniform(random.key(seed), [N]));
      expect(ksStatistic(xs, (x) => Math.min(1, Math.max(0, x)))).toBeLessThan(crit);
      expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...xs)).toBeLessThan(1);
    }
    const ys = vals(random.uniform(random.key(5), [1000], "float64", -2, 3));
    expect(Math.min(...ys)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...ys)).toBeLessThan(3);
    expect(ksStatistic(ys, (x) => (x + 2) / 5)).toBeLessThan(ksCritical(1000, 0.001));
  });

  it("normal passes a KS test at alpha = 0.001 (float32 and float64)", () => {
    for (const seed of [0, 1]) {
      const xs = vals(random.normal(random.key(seed), [N]));
      expect(ksStatistic(xs, normalCdf)).toBeLessThan(crit);
    }
    const zs = vals(random.normal(random.key(9), [2000], "float64"));
    expect(ksStatistic(zs, normalCdf)).toBeLessThan(ksCritical(2000, 0.001));
  });

  it("float64 erfInv inverts erf to float64 accuracy", () => {
    const xs = [-0.999, -0.5, -1e-3, 0, 0.25, 0.9, 0.999999];
    const y = random.erfInv(Tensor._fromBuffer([xs.length], "float64", Float64Array.from(xs)));
    // Backward error: erf(erfInv(x)) is x to a few ulps (erf's own float64 rounding dominates).
    vals(erf(y)).forEach((v, i) =>
      expect(Math.abs(v - xs[i]!)).toBeLessThanOrEqual(
        8 * Number.EPSILON * Math.max(Math.abs(xs[i]!), 2 ** -52),
      ),
    );
    const inf = vals(random.erfInv(f32([2], [1, -1])));
    expect(inf).toEqual([Infinity, -Infinity]);
  });

  it("split children give uncorrelated streams", () => {
    const s = rows(random.split(random.key(0), 3));
    const a = vals(random.uniform(keyOf(s[0]!), [N]));
    const b = vals(random.uniform(keyOf(s[1]!), [N]));
    const c = vals(random.uniform(keyOf(s[2]!), [N]));
    const corr = (x: number[], y: number[]) => {
      const mx = x.reduce((p, q) => p + q, 0) / x.length;
      const my = y.reduce((p, q) => p + q, 0) / y.length;
      let sxy = 0;
      let sxx = 0;
      let syy = 0;
      for (let i = 0; i < x.length; i++) {
        sxy += (x[i]! - mx) * (y[i]! - my);
        sxx += (x[i]! - mx) ** 2;
        syy += (y[i]! - my) ** 2;
      }
      return sxy / Math.sqrt(sxx * syy);
    };
    // Under independence r ~ N(0, 1/N): 4.5 standard deviations.
    for (const [x, y] of [
      [a, b],
      [a, c],
      [b, c],
    ] as const)
      expect(Math.abs(corr(x, y))).toBeLessThan(4.5 / Math.sqrt(N));
  });

  it("bernoulli has mean p", () => {
    for (const p of [0.1, 0.5, 0.83]) {
      const xs = random.bernoulli(random.key(3), p, [N]);
      expect(xs.dtype).toBe("bool");
      const mean = vals(xs).reduce((s, v) => s + v, 0) / N;
      expect(Math.abs(mean - p)).toBeLessThan(4.5 * Math.sqrt((p * (1 - p)) / N));
    }
    const pt = f32([2], [0, 1]);
    expect(vals(random.bernoulli(random.key(0), pt))).toEqual([0, 1]);
  });

  it("categorical samples with the softmax frequencies, along any axis", () => {
    const probs = [0.1, 0.2, 0.7];
    const logits = f32([3], probs.map(Math.log));
    const xs = random.categorical(random.key(4), logits, -1, [N]);
    expect(xs.shape).toEqual([N]);
    expect(xs.dtype).toBe("int32");
    const counts = [0, 0, 0];
    for (const v of vals(xs)) counts[v]!++;
    probs.forEach((p, i) =>
      expect(Math.abs(counts[i]! / N - p)).toBeLessThan(4.5 * Math.sqrt((p * (1 - p)) / N)),
    );
    // Batched logits [3 categories, 2 rows] along axis 0: a huge logit always wins.
    const l2 = f32([3, 2], [0, 50, 50, 0, 0, 0]);
    expect(vals(random.categorical(random.key(0), l2, 0))).toEqual([1, 0]);
  });

  it("permutation is a permutation; arrays shuffle whole slices; tiny sizes work", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), fc.nat(1000), (n, seed) => {
        const p = vals(random.permutation(random.key(seed), n));
        expect(p.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      }),
      { numRuns: 50 },
    );
    const x = f32([4, 2], [0, 1, 10, 11, 20, 21, 30, 31]);
    const y = rows(random.permutation(random.key(1), x));
    // JAX: take(x, permutation(key, n), axis) with the same key.
    const perm = vals(random.permutation(random.key(1), 4));
    expect(y).toEqual(perm.map((i) => [10 * i, 10 * i + 1]));
    const xt = f32([2, 4], [0, 1, 2, 3, 10, 11, 12, 13]);
    expect(rows(random.permutation(random.key(1), xt, 1))).toEqual([perm, perm.map((i) => 10 + i)]);
    expect(y.map((r) => r[1]! - r[0]!)).toEqual([1, 1, 1, 1]);
    expect(y.map((r) => r[0]).sort((a, b) => a! - b!)).toEqual([0, 10, 20, 30]);
    const ind = rows(random.permutation(random.key(1), x, 1, true));
    ind.forEach((r, i) => expect(r.slice().sort((a, b) => a - b)).toEqual([10 * i, 10 * i + 1]));
    // A permutation of 50 is rarely the identity.
    expect(vals(random.permutation(random.key(0), 50))).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("randint draws uniformly in [minval, maxval), including negative ranges and empty spans", () => {
    const xs = vals(random.randint(random.key(0), [N], -3, 4));
    const counts = new Map<number, number>();
    for (const v of xs) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
    for (const c of counts.values())
      expect(Math.abs(c / N - 1 / 7)).toBeLessThan(4.5 * Math.sqrt(((1 / 7) * (6 / 7)) / N));
    expect(vals(random.randint(random.key(0), [3], 5, 5))).toEqual([5, 5, 5]);
    const big = vals(random.randint(random.key(1), [1000], -2147483648, 2147483647));
    expect(big.every((v) => v >= -2147483648 && v < 2147483647)).toBe(true);
    expect(new Set(big).size).toBeGreaterThan(990);
  });

  it("truncatedNormal stays inside (lower, upper) and matches the truncated CDF", () => {
    const xs = vals(random.truncatedNormal(random.key(0), -1, 2, [4000]));
    expect(xs.every((v) => v > -1 && v < 2)).toBe(true);
    const z = normalCdf(2) - normalCdf(-1);
    expect(ksStatistic(xs, (x) => (normalCdf(x) - normalCdf(-1)) / z)).toBeLessThan(ksCritical(4000, 0.001));
  });

  it("choice with and without replacement, uniform and weighted", () => {
    const distinct = vals(random.choice(random.key(0), 10, [10], false));
    expect(distinct.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    const a = f32([4], [5, 6, 7, 8]);
    const drawn = vals(random.choice(random.key(1), a, [200]));
    expect(drawn.every((v) => [5, 6, 7, 8].includes(v))).toBe(true);
    const weighted = vals(random.choice(random.key(2), 4, [2000], true, [0.5, 0, 0.5, 0]));
    expect(weighted.every((v) => v === 0 || v === 2)).toBe(true);
    const noRep = vals(random.choice(random.key(3), 4, [2], false, [0.5, 0, 0.5, 0]));
    expect(noRep.slice().sort()).toEqual([0, 2]);
    expect(() => random.choice(random.key(0), 3, [4], false)).toThrow(ShapeError);
    expect(random.choice(random.key(0), 3, [0]).shape).toEqual([0]);
  });
});

describe("composition with transforms", () => {
  it("vmap over a batch of keys equals per-key draws", () => {
    const keys = random.split(random.key(0), 4);
    const batched = vmap((k: Tensor) => random.uniform(k, [3]))(keys);
    expect(batched.shape).toEqual([4, 3]);
    rows(keys).forEach((k, i) =>
      expect(vals(batched).slice(3 * i, 3 * i + 3)).toEqual(vals(random.uniform(keyOf(k), [3]))),
    );
    const perms = vmap((k: Tensor) => random.permutation(k, 6))(keys);
    rows(keys).forEach((k, i) =>
      expect(vals(perms).slice(6 * i, 6 * i + 6)).toEqual(vals(random.permutation(keyOf(k), 6))),
    );
    const splits = vmap((k: Tensor) => random.split(k))(keys);
    rows(keys).forEach((k, i) =>
      expect(vals(splits).slice(4 * i, 4 * i + 4)).toEqual(vals(random.split(keyOf(k)))),
    );
  });

  it("staging records threefry2x32, and jvp through a scaled normal is the normal", () => {
    const jaxpr = makeJaxpr((k: Tensor) => random.normal(k, [2]))(random.key(0));
    expect(String(jaxpr)).toContain("threefry2x32");
    const k = random.key(3);
    const z = random.normal(k, [4]);
    const [, dy] = jvp(
      (s: Tensor) => mul(random.normal(k, [4]), broadcastInDim(s, [4], [])),
      [f32([], [2])],
      [f32([], [1])],
    );
    expect(vals(dy)).toEqual(vals(z));
    // Reparameterised uniform: d/dmaxval of uniform(k, 0, maxval) is the unit draw.
    const [, du] = jvp(
      (m: Tensor) => random.uniform(k, [4], "float32", 0, m),
      [f32([], [2])],
      [f32([], [1])],
    );
    expect(vals(du)).toEqual(vals(random.uniform(k, [4])));
  });
});

describe("debug key reuse", () => {
  it("is off by default; when on, a second use of a concrete key raises KeyReuseError", () => {
    const k = random.key(0);
    random.uniform(k);
    expect(() => random.uniform(k)).not.toThrow();
    random.setDebugKeyReuse(true);
    try {
      const k2 = random.key(1);
      const [a, b] = [0, 1].map((i) => random.foldIn(random.key(2), i));
      random.normal(k2, [2]);
      expect(() => random.split(k2)).toThrow(random.KeyReuseError);
      random.bits(a!);
      random.uniform(b!);
      expect(() => random.bits(a!)).toThrow(/already consumed/);
    } finally {
      random.setDebugKeyReuse(false);
    }
    const k3 = random.key(5);
    random.bits(k3);
    expect(() => random.bits(k3)).not.toThrow();
  });
});
