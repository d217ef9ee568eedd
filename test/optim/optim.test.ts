import fc from "fast-check";
import { pipe } from "fp-ts/function";
import { concatAll } from "fp-ts/Monoid";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import { evalJaxpr } from "../../src/core/jaxpr.js";
import * as np from "../../src/core/numpy/index.js";
import type { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import * as optim from "../../src/optim/index.js";
import type { GradientTransformation } from "../../src/optim/index.js";
import { makeJaxpr } from "../../src/transforms/index.js";

// ------------------------------------------------------------------------------------------------
// Random problems: a few leaves of small shapes (size-0 and size-1 axes included), float64 values,
// and a gradient for each of several steps. Oracles work on flat Float64Arrays, one per leaf.

interface Case {
  shapes: number[][];
  params: number[][];
  grads: number[][][]; // [step][leaf][element]
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const val = fc.double({ min: -3, max: 3, noNaN: true, noDefaultInfinity: true });

function arbCase(steps = 4): fc.Arbitrary<Case> {
  return fc
    .array(fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }), { minLength: 1, maxLength: 3 })
    .chain((shapes) => {
      const leafVals = shapes.map((s) => fc.array(val, { minLength: size(s), maxLength: size(s) }));
      return fc.record({
        shapes: fc.constant(shapes),
        params: fc.tuple(...leafVals),
        grads: fc.array(fc.tuple(...leafVals), { minLength: steps, maxLength: steps }),
      });
    }) as fc.Arbitrary<Case>;
}

/** The tree the optimizers see: nested, with an empty (null) node. */
function toTree(shapes: number[][], flat: number[][]): unknown {
  const ts = flat.map((v, i) => np.reshape(np.array(v, "float64"), shapes[i]!));
  return { layers: ts.slice(0, -1), out: { kernel: ts[ts.length - 1]! }, empty: null };
}
function fromTree(t: unknown): Float64Array[] {
  return tree.leaves<Tensor>(t).map((x) => Float64Array.from(np.ravel(x).toArray() as number[]));
}
// tree.leaves order: sorted keys: empty(none), layers[...], out.kernel; same order as `flat`.

/** Runs `opt` for every step of the case and returns the final parameters, flat per leaf. */
function runOpt(opt: GradientTransformation<any>, c: Case): Float64Array[] {
  let p = toTree(c.shapes, c.params);
  let s = opt.init(p);
  for (const g of c.grads) {
    const [u, s1] = opt.update(toTree(c.shapes, g), s, p);
    p = optim.applyUpdates(p, u);
    s = s1;
  }
  return fromTree(p);
}

type Oracle = (p: Float64Array[], g: Float64Array[], step: number) => void; // mutates p

function runOracle(make: () => Oracle, c: Case): Float64Array[] {
  const p = c.params.map((v) => Float64Array.from(v));
  const step = make();
  c.grads.forEach((g, t) => step(p, g.map((v) => Float64Array.from(v)), t));
  return p;
}

function expectClose(got: Float64Array[], want: Float64Array[], rtol = 1e-10): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    const w = want[i]!;
    expect(g.length).toBe(w.length);
    for (let k = 0; k < g.length; k++) {
      if (Math.abs(g[k]! - w[k]!) > rtol * (1 + Math.abs(w[k]!)))
        throw new Error(`leaf ${i} element ${k}: got ${g[k]}, want ${w[k]}`);
    }
  });
}

const zerosLikeFlat = (p: Float64Array[]) => p.map((x) => new Float64Array(x.length));
const NUM_RUNS = 40;

function checkAgainst(opt: () => GradientTransformation<any>, oracle: () => Oracle, rtol = 1e-10): void {
  fc.assert(
    fc.property(arbCase(), (c) => {
      expectClose(runOpt(opt(), c), runOracle(oracle, c), rtol);
    }),
    { numRuns: NUM_RUNS },
  );
}

// ------------------------------------------------------------------------------------------------

describe("optimizers against textbook updates (float64, several steps)", () => {
  it("sgd", () => {
    const lr = 0.1;
    checkAgainst(
      () => optim.sgd(lr),
      () => (p, g) => p.forEach((x, i) => x.forEach((_, k) => (x[k]! -= lr * g[i]![k]!))),
    );
  });

  for (const nesterov of [false, true]) {
    it(`sgd momentum (nesterov=${nesterov})`, () => {
      const lr = 0.05;
      const b = 0.9;
      checkAgainst(
        () => optim.sgd(lr, { momentum: b, nesterov }),
        () => {
          let v: Float64Array[] | null = null;
          return (p, g) => {
            v ??= zerosLikeFlat(p);
            p.forEach((x, i) =>
              x.forEach((_, k) => {
                v![i]![k] = b * v![i]![k]! + g[i]![k]!;
                // Sutskever / PyTorch Nesterov: g + b·v_new.
                x[k]! -= lr * (nesterov ? g[i]![k]! + b * v![i]![k]! : v![i]![k]!);
              }),
            );
          };
        },
      );
    });
  }

  it("sgd flaxNesterov is flax.optim.Momentum's Nesterov (SAM.md 1.3 step 9)", () => {
    const lr = 0.1;
    const beta = 0.9;
    checkAgainst(
      () => optim.sgd(lr, { momentum: beta, flaxNesterov: true }),
      () => {
        let v: Float64Array[] | null = null;
        return (p, g) => {
          v ??= zerosLikeFlat(p);
          p.forEach((w, i) =>
            w.forEach((_, k) => {
              const G = g[i]![k]!;
              v![i]![k] = beta * v![i]![k]! + G; // v ← βv + G
              const d = G + beta * v![i]![k]!; // d = G + βv
              w[k] = w[k]! - lr * d; // w ← w − lr·d
            }),
          );
        };
      },
    );
  });

  const adamOracle =
    (lr: number, b1: number, b2: number, eps: number, wd = 0) =>
    (): Oracle => {
      let m: Float64Array[] | null = null;
      let v: Float64Array[] | null = null;
      return (p, g, t) => {
        m ??= zerosLikeFlat(p);
        v ??= zerosLikeFlat(p);
        p.forEach((x, i) =>
          x.forEach((_, k) => {
            const gk = g[i]![k]!;
            m![i]![k] = b1 * m![i]![k]! + (1 - b1) * gk;
            v![i]![k] = b2 * v![i]![k]! + (1 - b2) * gk * gk;
            const mh = m![i]![k]! / (1 - b1 ** (t + 1));
            const vh = v![i]![k]! / (1 - b2 ** (t + 1));
            x[k] = x[k]! - lr * (mh / (Math.sqrt(vh) + eps) + wd * x[k]!);
          }),
        );
      };
    };

  it("adam", () => checkAgainst(() => optim.adam(0.01, { b1: 0.8, b2: 0.95 }), adamOracle(0.01, 0.8, 0.95, 1e-8), 1e-9));
  it("adamw (decoupled decay on the current params)", () =>
    checkAgainst(() => optim.adamw(0.01, { weightDecay: 0.1 }), adamOracle(0.01, 0.9, 0.999, 1e-8, 0.1), 1e-9));

  it("rmsprop", () => {
    const lr = 0.01;
    const d = 0.9;
    const eps = 1e-8;
    checkAgainst(
      () => optim.rmsprop(lr, { decay: d, eps }),
      () => {
        let nu: Float64Array[] | null = null;
        return (p, g) => {
          nu ??= zerosLikeFlat(p);
          p.forEach((x, i) =>
            x.forEach((_, k) => {
              const gk = g[i]![k]!;
              nu![i]![k] = d * nu![i]![k]! + (1 - d) * gk * gk;
              x[k] = x[k]! - (lr * gk) / (Math.sqrt(nu![i]![k]!) + eps);
            }),
          );
        };
      },
      1e-9,
    );
  });

  it("adagrad", () => {
    const lr = 0.1;
    const init = 0.1;
    const eps = 1e-7;
    checkAgainst(
      () => optim.adagrad(lr, { initialAccumulatorValue: init, eps }),
      () => {
        let s: Float64Array[] | null = null;
        return (p, g) => {
          s ??= p.map((x) => new Float64Array(x.length).fill(init));
          p.forEach((x, i) =>
            x.forEach((_, k) => {
              const gk = g[i]![k]!;
              s![i]![k] = s![i]![k]! + gk * gk;
              x[k] = x[k]! - (lr * gk) / Math.sqrt(s![i]![k]! + eps);
            }),
          );
        };
      },
      1e-9,
    );
  });

  it("lion", () => {
    const lr = 0.01;
    const [b1, b2, wd] = [0.9, 0.99, 0.01];
    checkAgainst(
      () => optim.lion(lr, { b1, b2, weightDecay: wd }),
      () => {
        let m: Float64Array[] | null = null;
        return (p, g) => {
          m ??= zerosLikeFlat(p);
          p.forEach((x, i) =>
            x.forEach((_, k) => {
              const gk = g[i]![k]!;
              const c = (1 - b1) * gk + b1 * m![i]![k]!;
              x[k] = x[k]! - lr * (Math.sign(c) + wd * x[k]!);
              m![i]![k] = b2 * m![i]![k]! + (1 - b2) * gk;
            }),
          );
        };
      },
    );
  });

  it("lamb (per-leaf trust ratio ‖p‖/‖u‖)", () => {
    const lr = 0.01;
    const [b1, b2, eps, wd] = [0.9, 0.999, 1e-6, 0.01];
    checkAgainst(
      () => optim.lamb(lr, { weightDecay: wd }),
      () => {
        let m: Float64Array[] | null = null;
        let v: Float64Array[] | null = null;
        return (p, g, t) => {
          m ??= zerosLikeFlat(p);
          v ??= zerosLikeFlat(p);
          p.forEach((x, i) => {
            const u = new Float64Array(x.length);
            x.forEach((_, k) => {
              const gk = g[i]![k]!;
              m![i]![k] = b1 * m![i]![k]! + (1 - b1) * gk;
              v![i]![k] = b2 * v![i]![k]! + (1 - b2) * gk * gk;
              const mh = m![i]![k]! / (1 - b1 ** (t + 1));
              const vh = v![i]![k]! / (1 - b2 ** (t + 1));
              u[k] = mh / (Math.sqrt(vh) + eps) + wd * x[k]!;
            });
            // Textbook sqrt(Σx²), as optax computes it (Math.hypot would not underflow on denormals).
            const pn = Math.sqrt(x.reduce((a, y) => a + y * y, 0));
            const un = Math.sqrt(u.reduce((a, y) => a + y * y, 0));
            const r = pn === 0 || un === 0 ? 1 : pn / un;
            x.forEach((_, k) => (x[k] = x[k]! - lr * r * u[k]!));
          });
        };
      },
      1e-8,
    );
  });

  it("clipByGlobalNorm then sgd: one global norm over every leaf, strict < test", () => {
    const c = 1.5;
    checkAgainst(
      () => optim.chain(optim.clipByGlobalNorm(c), optim.sgd(1)),
      () => (p, g) => {
        const n = Math.sqrt(g.reduce((a, x) => a + x.reduce((b, y) => b + y * y, 0), 0));
        const f = n < c ? 1 : c / n;
        p.forEach((x, i) => x.forEach((_, k) => (x[k] = x[k]! - f * g[i]![k]!)));
      },
    );
  });

  it("sgd with a cosine schedule uses lr(t) with t the step count before the update", () => {
    const lr0 = 0.5;
    const T = 3;
    checkAgainst(
      () => optim.sgd(optim.cosineDecaySchedule(lr0, T)),
      () => (p, g, t) => {
        const lr = lr0 * (0.5 * Math.cos((Math.PI * Math.min(t, T)) / T) + 0.5);
        p.forEach((x, i) => x.forEach((_, k) => (x[k] = x[k]! - lr * g[i]![k]!)));
      },
      1e-6, // the schedule is float32
    );
  });
});

// ------------------------------------------------------------------------------------------------

const pool: (() => GradientTransformation<any>)[] = [
  () => optim.clip(0.5),
  () => optim.scaleByAdam(),
  () => optim.traceMomentum({ decay: 0.9 }),
  () => optim.scale(-0.3),
  () => optim.clipByGlobalNorm(1),
  () => optim.scaleByRms(),
  () => optim.identity(),
];
const arbT = fc.integer({ min: 0, max: pool.length - 1 }).map((i) => pool[i]!);

function updatesOver(opt: GradientTransformation<any>, c: Case): Float64Array[][] {
  const p = toTree(c.shapes, c.params);
  let s = opt.init(p);
  return c.grads.map((g) => {
    const [u, s1] = opt.update(toTree(c.shapes, g), s, p);
    s = s1;
    return fromTree(u);
  });
}
function expectSameUpdates(a: Float64Array[][], b: Float64Array[][]): void {
  a.forEach((u, t) => expectClose(u, b[t]!, 0));
}

describe("the monoid of transformations", () => {
  const M = optim.gradientTransformationMonoid;
  it("left and right identity", () => {
    fc.assert(
      fc.property(arbT, arbCase(3), (mk, c) => {
        expectSameUpdates(updatesOver(M.concat(M.empty, mk()), c), updatesOver(mk(), c));
        expectSameUpdates(updatesOver(M.concat(mk(), M.empty), c), updatesOver(mk(), c));
      }),
      { numRuns: 30 },
    );
  });
  it("associativity of the produced updates", () => {
    fc.assert(
      fc.property(arbT, arbT, arbT, arbCase(3), (a, b, d, c) => {
        expectSameUpdates(
          updatesOver(M.concat(M.concat(a(), b()), d()), c),
          updatesOver(M.concat(a(), M.concat(b(), d())), c),
        );
      }),
      { numRuns: 30 },
    );
  });
  it("concatAll reads as a chain", () => {
    const c: Case = { shapes: [[2]], params: [[1, 2]], grads: [[[3, -4]]] };
    const u = updatesOver(pipe([optim.clip(1), optim.scale(-2)], concatAll(M)), c);
    expect(Array.from(u[0]![0]!)).toEqual([-2, 2]);
  });
  it("chain order matters: clip then scale differs from scale then clip", () => {
    const c: Case = { shapes: [[2]], params: [[0, 0]], grads: [[[0.5, -0.25]]] };
    const a = updatesOver(optim.chain(optim.clip(1), optim.scale(10)), c)[0]![0]!;
    const b = updatesOver(optim.chain(optim.scale(10), optim.clip(1)), c)[0]![0]!;
    expect(Array.from(a)).toEqual([5, -2.5]);
    expect(Array.from(b)).toEqual([1, -1]);
  });
});

describe("applyUpdates, masks, wrappers", () => {
  it("applyUpdates adds leaf-wise and keeps each parameter's dtype", () => {
    const p = { a: np.array([1, 2], "float32"), b: [np.array(3, "float64")] };
    const u = { a: np.array([0.5, 0.5], "float64"), b: [np.array(-1, "float64")] };
    const q = optim.applyUpdates(p, u) as typeof p;
    expect(q.a.dtype).toBe("float32");
    expect(q.a.toArray()).toEqual([1.5, 2.5]);
    expect(q.b[0]!.dtype).toBe("float64");
    expect(q.b[0]!.item()).toBe(2);
  });

  const params = () => ({
    dense: { kernel: np.array([1, 2], "float64"), bias: np.array([3], "float64") },
    norm: { scale: np.array([4], "float64") },
  });
  const zeroGrads = () => tree.map((x: Tensor) => np.zerosLike(x), params());

  it("addDecayedWeights with a path predicate decays only the selected leaves", () => {
    const t = optim.addDecayedWeights(0.5, optim.byPath((path) => path.endsWith("kernel")));
    const p = params();
    const [u] = t.update(zeroGrads(), t.init(p), p);
    const uu = u as ReturnType<typeof params>;
    expect(uu.dense.kernel.toArray()).toEqual([0.5, 1]);
    expect(uu.dense.bias.toArray()).toEqual([0]);
    expect(uu.norm.scale.toArray()).toEqual([0]);
  });

  it("addDecayedWeights with a tree of booleans, and adamw's mask", () => {
    const t = optim.addDecayedWeights(1, { dense: { kernel: false, bias: true }, norm: { scale: true } });
    const p = params();
    const [u] = t.update(zeroGrads(), t.init(p), p);
    const uu = u as ReturnType<typeof params>;
    expect(uu.dense.kernel.toArray()).toEqual([0, 0]);
    expect(uu.dense.bias.toArray()).toEqual([3]);
    const opt = optim.adamw(1, { weightDecay: 1, mask: optim.byPath((s) => s === "norm.scale") });
    const [u2] = opt.update(zeroGrads(), opt.init(p), p);
    expect((u2 as ReturnType<typeof params>).norm.scale.toArray()).toEqual([-4]);
    expect(((u2 as ReturnType<typeof params>).dense.kernel.toArray() as number[]).map((v) => v + 0)).toEqual([0, 0]);
  });

  it("a bare key-path predicate, maskFromParams, and a bad predicate", () => {
    const p = params();
    const g = zeroGrads();
    const t1 = optim.addDecayedWeights(1, (path: string, leaf: Tensor) => path.startsWith("dense") && leaf.shape[0] === 1);
    const [u1] = t1.update(g, t1.init(p), p);
    expect((u1 as ReturnType<typeof params>).dense.bias.toArray()).toEqual([3]);
    expect((u1 as ReturnType<typeof params>).dense.kernel.toArray()).toEqual([0, 0]);
    const t2 = optim.addDecayedWeights(1, optim.maskFromParams((q) => tree.map((x: Tensor) => x.shape[0] === 2, q)));
    const [u2] = t2.update(g, t2.init(p), p);
    expect((u2 as ReturnType<typeof params>).dense.kernel.toArray()).toEqual([1, 2]);
    expect((u2 as ReturnType<typeof params>).norm.scale.toArray()).toEqual([0]);
    const bad = optim.addDecayedWeights(1, (() => 1) as unknown as optim.PathTest);
    expect(() => bad.init(p)).toThrow(ConfigError);
  });

  it("scaleByTrustRatio: ‖p‖/‖u‖ per leaf, 1 where a norm is zero", () => {
    const t = optim.scaleByTrustRatio();
    const p = { a: np.array([3, 4], "float64"), b: np.array([0, 0], "float64"), c: np.array([1], "float64") };
    const u = { a: np.array([0, 0.5], "float64"), b: np.array([2, 0], "float64"), c: np.array([0], "float64") };
    const [r] = t.update(u, t.init(p), p);
    const rr = r as typeof p;
    expect(rr.a.toArray()).toEqual([0, 5]);
    expect(rr.b.toArray()).toEqual([2, 0]);
    expect(rr.c.toArray()).toEqual([0]);
  });

  it("masked leaves the other updates untouched; multiTransform routes by label", () => {
    const p = params();
    const g = tree.map((x: Tensor) => np.onesLike(x), p);
    const mt = optim.multiTransform(
      { a: optim.sgd(0.1), b: optim.scale(7) },
      { dense: { kernel: "a", bias: "b" }, norm: { scale: "a" } },
    );
    const [u] = mt.update(g, mt.init(p), p);
    const uu = u as ReturnType<typeof params>;
    expect(uu.dense.kernel.toArray()).toEqual([-0.1, -0.1]);
    expect(uu.dense.bias.toArray()).toEqual([7]);
    expect(uu.norm.scale.toArray()).toEqual([-0.1]);
    expect(() => optim.multiTransform({ a: optim.sgd(0.1) }, { dense: { kernel: "a", bias: "zzz" }, norm: { scale: "a" } }).init(p)).toThrow(ConfigError);
  });

  it("applyIfFinite skips non-finite steps (state kept) until maxConsecutiveErrors is exceeded", () => {
    const opt = optim.applyIfFinite(optim.sgd(1, { momentum: 0.5 }), 1);
    const p = { w: np.array([0, 0], "float64") };
    let s = opt.init(p);
    let u: unknown;
    [u, s] = opt.update({ w: np.array([1, 1], "float64") }, s, p);
    expect((u as typeof p).w.toArray()).toEqual([-1, -1]);
    [u, s] = opt.update({ w: np.array([NaN, 1], "float64") }, s, p);
    expect((u as typeof p).w.toArray()).toEqual([0, 0]);
    expect(s.notFiniteCount.item()).toBe(1);
    expect(s.lastFinite.item()).toBe(0);
    [u, s] = opt.update({ w: np.array([1, 1], "float64") }, s, p);
    expect((u as typeof p).w.toArray()).toEqual([-1.5, -1.5]); // the momentum from step 1 survived
    [u, s] = opt.update({ w: np.array([Infinity, 1], "float64") }, s, p);
    [u, s] = opt.update({ w: np.array([Infinity, 1], "float64") }, s, p);
    expect(s.notFiniteCount.item()).toBe(2);
    expect(((u as typeof p).w.toArray() as number[])[1]).not.toBe(0); // applied: 2 > maxConsecutiveErrors
    expect(s.totalNotFinite.item()).toBe(3);
  });
});

describe("schedules", () => {
  const at = (s: optim.Schedule, t: number) => s(np.array(t, "int32")).item();
  const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(b)));

  it("values at known steps", () => {
    close(at(optim.constantSchedule(0.3), 100), 0.3);
    const lin = optim.linearSchedule(1, 0, 10, 5);
    [
      [0, 1],
      [5, 1],
      [10, 0.5],
      [15, 0],
      [100, 0],
    ].forEach(([t, v]) => close(at(lin, t!), v!));
    const cos = optim.cosineDecaySchedule(2, 100, 0.1);
    close(at(cos, 0), 2);
    close(at(cos, 50), 2 * (0.9 * 0.5 + 0.1));
    close(at(cos, 100), 0.2);
    close(at(cos, 1000), 0.2);
    const w = optim.warmupCosineDecaySchedule({ initValue: 0, peakValue: 1, warmupSteps: 10, decaySteps: 110, endValue: 0.1 });
    close(at(w, 0), 0);
    close(at(w, 5), 0.5);
    close(at(w, 10), 1);
    close(at(w, 60), 0.9 * 0.5 + 0.1);
    close(at(w, 110), 0.1);
    const pc = optim.piecewiseConstantSchedule(1, { 10: 0.5, 20: 0.1 });
    close(at(pc, 9), 1);
    close(at(pc, 10), 0.5);
    close(at(pc, 19), 0.5);
    close(at(pc, 20), 0.05);
    const ex = optim.exponentialDecay({ initValue: 1, transitionSteps: 10, decayRate: 0.5 });
    close(at(ex, 0), 1);
    close(at(ex, 10), 0.5);
    close(at(ex, 15), 0.5 ** 1.5);
    const exs = optim.exponentialDecay({ initValue: 1, transitionSteps: 10, decayRate: 0.5, staircase: true, endValue: 0.2 });
    close(at(exs, 15), 0.5);
    close(at(exs, 100), 0.2);
    const j = optim.joinSchedules([optim.constantSchedule(1), optim.linearSchedule(2, 0, 4)], [3]);
    close(at(j, 2), 1);
    close(at(j, 3), 2);
    close(at(j, 5), 1);
  });
});

describe("ConfigError at construction, naming the parameter", () => {
  const cases: [string, () => unknown, string][] = [
    ["negative lr", () => optim.sgd(-0.1), "learningRate"],
    ["NaN lr", () => optim.adam(NaN), "learningRate"],
    ["momentum 1", () => optim.sgd(0.1, { momentum: 1 }), "momentum"],
    ["momentum < 0", () => optim.sgd(0.1, { momentum: -0.1 }), "momentum"],
    ["b1 out of range", () => optim.adam(0.1, { b1: 1.5 }), "b1"],
    ["eps < 0", () => optim.adam(0.1, { eps: -1 }), "eps"],
    ["infinite weight decay", () => optim.adamw(0.1, { weightDecay: Infinity }), "weightDecay"],
    ["schedule NaN at 0", () => optim.sgd(() => np.array(NaN)), "learningRate"],
    ["schedule negative at 0", () => optim.sgd(() => np.array(-1)), "learningRate"],
    ["maxNorm 0", () => optim.clipByGlobalNorm(0), "maxNorm"],
    ["decaySteps 0", () => optim.cosineDecaySchedule(1, 0), "decaySteps"],
    ["warmup ≥ decay", () => optim.warmupCosineDecaySchedule({ initValue: 0, peakValue: 1, warmupSteps: 10, decaySteps: 5 }), "decaySteps"],
    ["join lengths", () => optim.joinSchedules([optim.constantSchedule(1)], [3]), "schedule"],
  ];
  for (const [name, f, param] of cases) {
    it(name, () => {
      expect(f).toThrow(ConfigError);
      expect(f).toThrow(param);
    });
  }
  it("addDecayedWeights without params", () => {
    const t = optim.addDecayedWeights(0.1);
    expect(() => t.update({ w: np.array(1) }, t.init({ w: np.array(1) }))).toThrow(ConfigError);
  });
});

describe("staging: the whole state is tensors", () => {
  const opts: [string, () => GradientTransformation<any>][] = [
    ["sgd nesterov + cosine", () => optim.sgd(optim.cosineDecaySchedule(0.1, 10), { momentum: 0.9, nesterov: true })],
    ["adamw masked", () => optim.adamw(0.01, { mask: optim.byPath((p) => !p.startsWith("layers")) })],
    ["clip + adam in applyIfFinite", () => optim.applyIfFinite(optim.chain(optim.clipByGlobalNorm(1), optim.adam(0.1)), 3)],
    ["lamb", () => optim.lamb(0.01)],
    ["lion", () => optim.lion(0.01)],
    ["rmsprop momentum", () => optim.rmsprop(0.01, { momentum: 0.9 })],
    ["adagrad", () => optim.adagrad(0.1)],
    ["warmup cosine", () => optim.adam(optim.warmupCosineDecaySchedule({ initValue: 0, peakValue: 1, warmupSteps: 2, decaySteps: 5 }))],
  ];
  for (const [name, mk] of opts) {
    it(`makeJaxpr of update runs and evalJaxpr equals the eager update: ${name}`, () => {
      fc.assert(
        fc.property(arbCase(2), (c) => {
          const opt = mk();
          const p = toTree(c.shapes, c.params);
          const g0 = toTree(c.shapes, c.grads[0]!);
          const g1 = toTree(c.shapes, c.grads[1]!);
          const [, s1] = opt.update(g0, opt.init(p), p);
          for (const leaf of tree.leaves(s1)) expect(typeof (leaf as Tensor).shape).toBe("object");
          const eager = opt.update(g1, s1, p);
          const closed = makeJaxpr((g: unknown, s: unknown, q: unknown) => opt.update(g, s, q))(g1, s1, p);
          const outs = evalJaxpr(closed.jaxpr, closed.consts, tree.leaves<Tensor>([g1, s1, p]));
          const staged = tree.unflatten(closed.outTree, outs);
          const a = tree.leaves<Tensor>(eager);
          const b = tree.leaves<Tensor>(staged);
          expect(b.length).toBe(a.length);
          a.forEach((x, i) => {
            expect(b[i]!.dtype).toBe(x.dtype);
            expect(b[i]!.toArray()).toEqual(x.toArray());
          });
        }),
        { numRuns: 10 },
      );
    });
  }
});

describe("dtypes", () => {
  it("float32 parameters keep float32 updates and moments; counts are int32 scalars", () => {
    const p = { w: np.array([1, -2], "float32"), b: np.array(0.5, "float32") };
    const g = { w: np.array([0.1, 0.2], "float32"), b: np.array(-1, "float32") };
    for (const opt of [optim.adamw(optim.cosineDecaySchedule(0.1, 5)), optim.sgd(0.1, { momentum: 0.9 }), optim.lamb(0.1), optim.adagrad(0.1)]) {
      const [u, s] = opt.update(g, opt.init(p), p);
      for (const x of tree.leaves<Tensor>(u)) expect(x.dtype).toBe("float32");
      for (const x of tree.leaves<Tensor>(s)) {
        expect(["float32", "int32"]).toContain(x.dtype);
        if (x.dtype === "int32") expect(x.shape).toEqual([]);
      }
    }
  });
});

describe("tree math", () => {
  it("treeNorm, treeVdot, treeAdd, treeScale, treeZerosLike", () => {
    const a = { x: np.array([3, 0], "float64"), y: [np.array([4], "float64")] };
    expect(optim.treeNorm(a).item()).toBe(5);
    expect(optim.treeVdot(a, a).item()).toBe(25);
    expect((optim.treeAdd(a, a) as typeof a).x.toArray()).toEqual([6, 0]);
    expect((optim.treeScale(0.5, a) as typeof a).y[0]!.toArray()).toEqual([2]);
    expect((optim.treeZerosLike(a) as typeof a).x.toArray()).toEqual([0, 0]);
    expect(optim.treeNorm({}).item()).toBe(0);
  });
});
