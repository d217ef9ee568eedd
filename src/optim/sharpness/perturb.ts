/**
 * The machinery the sharpness measures and the corruption estimates share: a loss seen as a
 * function of a perturbation `u` of the selected leaves (`h(u) = L(w + u) − L(w)`), its value and
 * gradient, a Monte-Carlo mean over many perturbations at once (a `vmap` over samples), and
 * projected gradient ascent over an L2 ball or a per-coordinate box.
 */
import { ConfigError } from "../../core/errors.js";
import * as np from "../../core/numpy/index.js";
import * as random from "../../core/random.js";
import { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { valueAndGrad, vmap } from "../../transforms/index.js";
import { type ParamPredicate, selectLeaves } from "../select.js";

/** A scalar loss of a parameter tree and batch arguments. */
export type PerturbLoss = (params: any, ...batch: any[]) => Tensor;

/** The loss as a function of a perturbation of the selected leaves (`u` lists only those leaves). */
export interface Perturbed {
  /** `L(w)`. */
  base: number;
  /** The selected leaves of `w`, in flatten order. */
  selected: Tensor[];
  /** `[h(u), ∇h(u)]` with `h(u) = L(w + u) − L(w)`. */
  valueAndGrad(u: Tensor[]): [number, Tensor[]];
  /** `h(u_k)` for a stack of perturbations (leading axis `k` on every leaf), by one `vmap`. */
  many(us: Tensor[]): number[];
  /** The full tree of `u` (zeros on unselected leaves), to report. */
  toTree(u: Tensor[]): unknown;
}

/** Builds {@link Perturbed}; `op` names the caller in errors. */
export function perturbed(
  loss: PerturbLoss,
  params: unknown,
  batch: readonly unknown[],
  where: ParamPredicate | undefined,
  op: string,
): Perturbed {
  if (typeof loss !== "function") throw new ConfigError("loss must be a function", op);
  if (!Array.isArray(batch))
    throw new ConfigError("the batch (data) must be an array of the arguments after params", op);
  const mask = selectLeaves(params, where, op);
  const [ws, def] = tree.flatten<Tensor>(params);
  const idx = mask.flatMap((m, i) => (m ? [i] : []));
  const shifted = (u: Tensor[]): unknown => {
    const out = ws.slice() as Tensor[];
    idx.forEach((i, j) => {
      out[i] = np.add(ws[i]!, np.astype(u[j]!, ws[i]!.dtype));
    });
    return tree.unflatten(def, out);
  };
  const scalar = (v: unknown): Tensor => {
    if (!(v instanceof Tensor) || v.size !== 1) throw new ConfigError("loss must return a scalar tensor", op);
    return np.reshape(v, []);
  };
  const at = (u: Tensor[]) => scalar(loss(shifted(u), ...batch));
  const base = at(idx.map((i) => np.zerosLike(ws[i]!))).item();
  const vg = valueAndGrad(at);
  const batched = vmap(at);
  return {
    base,
    selected: idx.map((i) => ws[i]!),
    valueAndGrad(u) {
      const [v, g] = vg(u) as [Tensor, Tensor[]];
      return [v.item() - base, g];
    },
    many(us) {
      const vs = (batched(us) as Tensor).data();
      return Array.from(vs, (v) => Number(v) - base);
    },
    toTree(u) {
      const out = ws.map((w) => np.zerosLike(w));
      idx.forEach((i, j) => {
        out[i] = np.astype(u[j]!, ws[i]!.dtype);
      });
      return tree.unflatten(def, out);
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Norms over a list of leaves, in float64 (the measures are reported as JS numbers).

/** `‖u‖_p` over every entry of every leaf, `p ∈ {1, 2, ∞}`. */
export function leavesNorm(u: readonly Tensor[], p: 1 | 2 | typeof Infinity): number {
  let acc = 0;
  for (const t of u) {
    for (const x of t.data() as Float32Array | Float64Array) {
      const a = Math.abs(x);
      if (p === Infinity) acc = Math.max(acc, a);
      else acc += p === 1 ? a : a * a;
    }
  }
  return p === 2 ? Math.sqrt(acc) : acc;
}

const scale = (u: readonly Tensor[], s: number): Tensor[] => u.map((t) => np.multiply(t, s));

// ------------------------------------------------------------------------------------------------
// Regions and projected gradient ascent.

/** An L2 ball `‖u‖₂ ≤ radius` or a box `|u_i| ≤ r_i` (one radius tensor per selected leaf). */
export type Region = { kind: "l2"; radius: number } | { kind: "box"; radii: Tensor[] };

/** The Euclidean projection onto the region. */
export function project(u: Tensor[], region: Region): Tensor[] {
  if (region.kind === "box")
    return u.map((t, i) => np.clip(t, np.negative(region.radii[i]!), region.radii[i]!));
  const n = leavesNorm(u, 2);
  return n <= region.radius ? u : scale(u, region.radius / n);
}

/**
 * The maximiser of the linearisation `⟨g, u⟩` over the region (SAM's first-order point):
 * `radius · g/‖g‖₂` for the ball, `r ⊙ sign(g)` for the box. `null` when `g = 0` (no direction).
 */
export function firstOrderPoint(g: Tensor[], region: Region): Tensor[] | null {
  if (region.kind === "box") {
    if (leavesNorm(g, Infinity) === 0) return null;
    return g.map((t, i) => np.multiply(np.sign(t), region.radii[i]!));
  }
  const n = leavesNorm(g, 2);
  if (!(n > 0)) return null;
  return scale(g, region.radius / n);
}

/** `max_u ⟨g, u⟩` over the region: `radius ‖g‖₂` for the ball, `Σ r_i |g_i|` for the box. */
export function linearMaximum(g: Tensor[], region: Region): number {
  if (region.kind === "l2") return region.radius * leavesNorm(g, 2);
  return leavesNorm(
    g.map((t, i) => np.multiply(np.abs(t), region.radii[i]!)),
    1,
  );
}

/** A random point of the region's boundary: `radius z/‖z‖` for the ball, a uniform point of the box. */
export function randomPoint(key: Tensor, like: Tensor[], region: Region): Tensor[] {
  if (region.kind === "box") {
    return like.map((t, i) =>
      np.multiply(random.uniform(random.foldIn(key, i), [...t.shape], t.dtype, -1, 1), region.radii[i]!),
    );
  }
  const z = like.map((t, i) => random.normal(random.foldIn(key, i), [...t.shape], t.dtype));
  const n = leavesNorm(z, 2);
  return scale(z, region.radius / n);
}

/** Options of {@link projectedAscent}. */
export interface AscentOptions {
  /** Ascent steps after the start point (integer >= 0). */
  steps: number;
  /** Length of each step as a fraction of the region's size (`> 0`). */
  stepSize: number;
}

/** What {@link projectedAscent} returns: the best point seen (the start counts). */
export interface AscentResult {
  /** `h(u)` at the start. */
  startValue: number;
  /** The largest `h(u)` over the start and every iterate. */
  best: number;
  bestPoint: Tensor[];
  /** Loss evaluations made (value and gradient). */
  evaluations: number;
  /** Set when some evaluation gave NaN (the result is then undefined). */
  nan: boolean;
}

/**
 * Projected gradient ascent on `h` over the region from `start` (assumed feasible): for the ball
 * `u ← P(u + s·radius·∇h/‖∇h‖₂)`, for the box `u ← P(u + s·r ⊙ sign(∇h))` (the steepest-ascent
 * step for each norm). Returns the best iterate, so the reported value is never below the start's.
 */
export function projectedAscent(
  p: Perturbed,
  start: Tensor[],
  region: Region,
  opts: AscentOptions,
): AscentResult {
  let u = start;
  let [v, g] = p.valueAndGrad(u);
  const out: AscentResult = { startValue: v, best: v, bestPoint: u, evaluations: 1, nan: Number.isNaN(v) };
  for (let t = 0; t < opts.steps && !out.nan; t++) {
    let step: Tensor[];
    if (region.kind === "box")
      step = g.map((gi, i) => np.multiply(np.sign(gi), np.multiply(region.radii[i]!, opts.stepSize)));
    else {
      const n = leavesNorm(g, 2);
      if (!(n > 0)) break; // a stationary point: no ascent direction
      step = scale(g, (opts.stepSize * region.radius) / n);
    }
    u = project(
      u.map((ui, i) => np.add(ui, step[i]!)),
      region,
    );
    [v, g] = p.valueAndGrad(u);
    out.evaluations++;
    if (Number.isNaN(v)) out.nan = true;
    else if (v > out.best) {
      out.best = v;
      out.bestPoint = u;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Keys and Monte-Carlo summaries.

/** `[use, next]` from one key, so a result can hand back a fresh key. */
export function splitKey(key: Tensor, op: string): [Tensor, Tensor] {
  if (!(key instanceof Tensor) || key.dtype !== "uint32" || key.size !== 2)
    throw new ConfigError("key must be a PRNG key (random.key(seed))", op);
  const ks = random.split(key, 2).data();
  return [
    Tensor._fromBuffer([2], "uint32", ks.slice(0, 2)),
    Tensor._fromBuffer([2], "uint32", ks.slice(2, 4)),
  ];
}

/** Mean, standard error (sample std/√n; NaN for n = 1) and max of a sample. */
export interface SampleSummary {
  mean: number;
  stderr: number;
  max: number;
  values: number[];
}

/** Summarises Monte-Carlo values. @example summarise([1, 2, 3]).mean // 2 */
export function summarise(values: number[]): SampleSummary {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : NaN;
  return { mean, stderr: Math.sqrt(variance / n), max: Math.max(...values), values };
}

/** Validates a positive-integer count. */
export function checkCount(v: unknown, name: string, op: string, min = 1): number {
  if (!Number.isInteger(v) || (v as number) < min)
    throw new ConfigError(`${name} must be an integer >= ${min}, got ${String(v)}`, op);
  return v as number;
}

/** Validates a finite, strictly positive number. */
export function checkPositive(v: unknown, name: string, op: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || !(v > 0))
    throw new ConfigError(`${name} must be a finite number > 0, got ${String(v)}`, op);
  return v;
}
