/**
 * optim.contrib.sam against optax's semantics (SAM.md §3, T18): the two-phase transparent form
 * equals one-shot SAM + the outer optimizer, opaque mode equals transparent, syncPeriod = 1 is the
 * outer optimizer (not optax's `w_{t+1} = w_{t−1} + u_t`, PR #1788), and the branch not taken
 * cannot poison the update with NaN.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import type { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import { adam, sgd } from "../../src/optim/alias.js";
import { applyUpdates, chain } from "../../src/optim/base.js";
import { normalize, sam as contribSam } from "../../src/optim/contrib/sam.js";
import { sam } from "../../src/optim/sam/gradient.js";
import { evalJaxpr } from "../../src/core/jaxpr.js";
import { grad, makeJaxpr } from "../../src/transforms/index.js";

const f64 = (xs: number[] | number[][]) => np.array(xs, "float64");
const vals = (t: unknown) => tree.leaves<Tensor>(t).flatMap((x) => Array.from(x.data() as Float64Array));
const norm = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0));
const sameBits = (a: number[], b: number[]) => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(Object.is(x, b[i])).toBe(true));
};
const close = (a: number[], b: number[], tol: number) => {
  expect(a.length).toBe(b.length);
  const s = Math.max(1, norm(b));
  a.forEach((x, i) => expect(Math.abs(x - b[i]!)).toBeLessThanOrEqual(tol * s));
};
const val = fc.double({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true });
const vec = (n: number) => fc.array(val, { minLength: n, maxLength: n });
const X = f64([
  [0.5, -1, 2],
  [1.5, 0.25, -0.5],
  [-0.75, 1, 0.5],
]);
const Y = f64([1, -0.5, 0.25]);
/** A smooth non-quadratic loss over a two-leaf tree. */
const loss = (p: { w: Tensor; b: Tensor }) =>
  np.mean(np.square(np.subtract(np.tanh(np.add(np.matmul(X, p.w), p.b)), Y)));
const params = (w: number[]) => ({ w: f64(w), b: f64([0.1]) });
const nonDegenerate = (w: number[]) => norm(vals(grad(loss)(params(w)))) > 1e-3;

/** Runs `calls` transparent-mode updates, each fed the gradient at the current params. */
function runTransparent(opt: ReturnType<typeof contribSam>, p0: unknown, calls: number) {
  let p = p0;
  let s = opt.init(p);
  const trail: unknown[] = [];
  for (let i = 0; i < calls; i++) {
    const [u, ns] = opt.update(grad(loss)(p), s, p);
    p = applyUpdates(p, u);
    s = ns;
    trail.push(p);
  }
  return { p, s, trail };
}

describe("contrib.sam, transparent mode (T18)", () => {
  it("syncPeriod = 2: every second call lands on w − lr·S(w), the one-shot mirror SAM + SGD step", () => {
    fc.assert(
      fc.property(vec(3), fc.double({ min: 0.01, max: 0.5, noNaN: true }), (w, rho) => {
        fc.pre(nonDegenerate(w));
        const opt = contribSam(sgd(0.1), chain(normalize(), sgd(rho)));
        const { trail } = runTransparent(opt, params(w), 6);
        const base = sgd(0.1);
        const sg = sam(loss, { rho, mode: "mirror" });
        let q: unknown = params(w);
        let bs = base.init(q);
        for (let k = 0; k < 3; k++) {
          const [u, ns] = base.update(sg(q), bs, q);
          q = applyUpdates(q, u);
          bs = ns;
          // (w + ε) + ((w − (w + ε)) + u) rounds differently from w + u: a few ulps of |w| + ρ.
          close(vals(trail[2 * k + 1]), vals(q), 16 * 2 ** -52 * (norm(w) + rho + 1));
        }
        // The odd calls sit at the perturbed point w + ρ g/‖g‖.
        const g = vals(grad(loss)(params(w)));
        close(
          vals(trail[0]),
          vals(params(w)).map((x, i) => x + (rho * g[i]!) / norm(g)),
          8 * 2 ** -52 * (norm(w) + 1),
        );
      }),
      { numRuns: 15 },
    );
  });

  it("syncPeriod = 1 is the outer optimizer bit for bit (optax's transparent code gives w_{t+1} = w_{t−1} + u_t)", () => {
    const w = [0.3, -0.8, 1.1];
    const outer = () => sgd(0.05, { momentum: 0.9 });
    const { trail } = runTransparent(
      contribSam(outer(), chain(normalize(), sgd(0.1)), { syncPeriod: 1 }),
      params(w),
      4,
    );
    let q: unknown = params(w);
    let s = outer().init(q);
    const us: unknown[] = [];
    for (let t = 0; t < 4; t++) {
      const [u, ns] = outer().update(grad(loss)(q), s, q);
      us.push(u);
      q = applyUpdates(q, u);
      s = ns;
      sameBits(vals(trail[t]), vals(q));
    }
    // optax's formula on the same updates would jump back two steps: w_2 = w_0 + u_1 ≠ w_1 + u_1.
    const optaxW2 = vals(applyUpdates(params(w), us[1]));
    expect(norm(optaxW2.map((x, i) => x - vals(trail[1])[i]!))).toBeGreaterThan(1e-3);
  });

  it("syncPeriod = 3 takes two unprojected ascent steps (‖ε‖ = 2ρ on a linear loss), then lands on w − lr·c", () => {
    const c = f64([1, -2, 0.5]);
    const lin = (w: Tensor) => np.sum(np.multiply(c, w));
    const opt = contribSam(sgd(0.1), chain(normalize(), sgd(0.25)), { syncPeriod: 3 });
    let p: Tensor = f64([0, 0, 0]);
    let s = opt.init(p);
    const seen: number[][] = [];
    for (let i = 0; i < 3; i++) {
      const [u, ns] = opt.update(grad(lin)(p), s, p);
      p = applyUpdates(p, u) as Tensor;
      s = ns;
      seen.push(vals(p));
    }
    expect(norm(seen[1]!)).toBeCloseTo(0.5, 12);
    close(seen[2]!, [-0.1, 0.2, -0.05], 1e-15);
  });

  it("the outer state advances only on sync steps; resetState re-initialises the adversarial state", () => {
    const w = [0.3, -0.8, 1.1];
    const advMom = () => chain(normalize(), sgd(0.1, { momentum: 0.5 }));
    const r = runTransparent(contribSam(adam(0.01), advMom(), { syncPeriod: 2 }), params(w), 4);
    const adamCount = (r.s.optState as [{ count: Tensor }, unknown])[0].count;
    expect(adamCount.item()).toBe(2);
    expect(r.s.stepsSinceSync.item()).toBe(0);
    expect(vals(r.s.advState).every((x) => x === 0)).toBe(true);
    const k = runTransparent(
      contribSam(adam(0.01), advMom(), { syncPeriod: 2, resetState: false }),
      params(w),
      4,
    );
    // Kept: the momentum of the last ascent step survives the sync.
    expect(vals(k.s.advState).some((x) => x !== 0)).toBe(true);
  });

  it("a NaN in the branch not taken does not leak (optax's arithmetic pick_one would give NaN)", () => {
    // L = −½‖w‖² with ‖w‖ = ρ: the ascent lands on 0, where the gradient is 0 and normalize gives NaN.
    const neg = (w: Tensor) => np.multiply(-0.5, np.sum(np.square(w)));
    const opt = contribSam(sgd(0.1), chain(normalize(), sgd(0.5)));
    let p: Tensor = f64([0.5, 0]);
    let s = opt.init(p);
    for (let i = 0; i < 2; i++) {
      const g = grad(neg)(p) as Tensor;
      if (i === 1) expect(vals(normalize().update(g, null)[0]).every(Number.isNaN)).toBe(true);
      const [u, ns] = opt.update(g, s, p);
      p = applyUpdates(p, u) as Tensor;
      s = ns;
    }
    expect(vals(p)).toEqual([0.5, 0]);
  });
});

describe("contrib.sam, opaque mode", () => {
  it("equals the transparent form's sync steps; syncPeriod = 1 is the outer optimizer", () => {
    fc.assert(
      fc.property(vec(3), (w) => {
        fc.pre(nonDegenerate(w));
        const mk = (opaqueMode: boolean, syncPeriod: number) =>
          contribSam(sgd(0.1, { momentum: 0.9 }), chain(normalize(), sgd(0.2)), { opaqueMode, syncPeriod });
        const { trail } = runTransparent(mk(false, 2), params(w), 4);
        const op = mk(true, 2);
        let p: unknown = params(w);
        let s = op.init(p);
        for (let k = 0; k < 2; k++) {
          const [u, ns] = op.update(grad(loss)(p), s, p, { gradFn: (q) => grad(loss)(q) });
          p = applyUpdates(p, u);
          s = ns;
          close(vals(p), vals(trail[2 * k + 1]), 16 * 2 ** -52 * (norm(w) + 1));
        }
        const one = mk(true, 1);
        const base = sgd(0.1, { momentum: 0.9 });
        const q = params(w);
        const [u1] = one.update(grad(loss)(q), one.init(q), q, {
          gradFn: () => {
            throw new Error("not called");
          },
        });
        sameBits(vals(u1), vals(base.update(grad(loss)(q), base.init(q), q)[0]));
      }),
      { numRuns: 10 },
    );
  });

  it("passes the ascent index to gradFn and needs it", () => {
    const op = contribSam(sgd(0.1), chain(normalize(), sgd(0.1)), { opaqueMode: true, syncPeriod: 4 });
    const p = params([0.3, -0.8, 1.1]);
    const seen: number[] = [];
    op.update(grad(loss)(p), op.init(p), p, {
      gradFn: (q, i) => {
        seen.push(i);
        return grad(loss)(q);
      },
    });
    expect(seen).toEqual([0, 1, 2]);
    expect(() => op.update(grad(loss)(p), op.init(p), p)).toThrow(/gradFn/);
  });
});

describe("contrib.sam and normalize: validation", () => {
  it("raises ConfigError naming the parameter", () => {
    expect(() => contribSam(sgd(0.1), sgd(0.1), { syncPeriod: 0 })).toThrow(/syncPeriod/);
    expect(() => contribSam(sgd(0.1), sgd(0.1), { syncPeriod: 1.5 })).toThrow(ConfigError);
    expect(() => contribSam(null as never, sgd(0.1))).toThrow(/optimizer/);
    const t = contribSam(sgd(0.1), sgd(0.1));
    expect(() => t.update(f64([1]), t.init(f64([1])))).toThrow(/params/);
    expect(() => normalize({ eps: -1 })).toThrow(/eps/);
    expect(vals(normalize({ eps: 1e-12 }).update(f64([0, 0]), null)[0])).toEqual([0, 0]);
  });
});

describe("staging: contrib.sam's update is a pure function of tensors", () => {
  it("makeJaxpr of both phases evaluates to the eager update (the selection is a staged cond)", () => {
    const opt = contribSam(sgd(0.1, { momentum: 0.9 }), chain(normalize(), sgd(0.05)));
    const p = params([0.3, -0.8, 1.1]);
    let s = opt.init(p);
    for (let phase = 0; phase < 2; phase++) {
      const g = grad(loss)(p);
      const eager = opt.update(g, s, p);
      const closed = makeJaxpr((gg: unknown, ss: unknown, pp: unknown) => opt.update(gg, ss as typeof s, pp))(
        g,
        s,
        p,
      );
      const outs = evalJaxpr(closed.jaxpr, closed.consts, tree.leaves<Tensor>([g, s, p]));
      const staged = tree.unflatten(closed.outTree, outs);
      expect(tree.structure(staged).toString()).toBe(tree.structure(eager).toString());
      sameBits(vals(staged), vals(eager));
      expect(closed.jaxpr.toString()).toMatch(/cond|switch/);
      s = eager[1];
    }
  });
});
