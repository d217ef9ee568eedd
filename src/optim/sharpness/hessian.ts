/**
 * Hessian diagnostics over parameter trees (the sharpness measures of the SAM paper, Figure 3):
 * Hessian-vector products, the top eigenvalues by Lanczos, and the trace by Hutchinson.
 */
import { allocate, type DType } from "../../core/dtype.js";
import { ConfigError } from "../../core/errors.js";
import * as random from "../../core/random.js";
import { Tensor } from "../../core/tensor.js";
import * as tree from "../../core/tree.js";
import { grad, jvp } from "../../transforms/index.js";

/** A scalar loss of a parameter tree and optional batch arguments. */
export type LossFn<P> = (params: P, ...batch: any[]) => Tensor;

/**
 * `H v` where `H` is the Hessian of `loss` at `params` (batch arguments held fixed), computed
 * forward-over-reverse as `jvp(grad(loss), params, v)`. `v` has the structure of `params`.
 *
 * @example
 * ```ts
 * hessianVectorProduct((p) => np.sum(np.square(p.w)), { w }, { w: v }); // { w: 2v }
 * ```
 */
export function hessianVectorProduct<P>(loss: LossFn<P>, params: P, v: P, ...batch: unknown[]): P {
  const g = grad((p: P) => loss(p, ...batch));
  return jvp(g, [params], [v])[1] as P;
}

// ------------------------------------------------------------------------------------------------
// Flattening a parameter tree to a single float64 vector and back. The Krylov basis lives in JS
// float64 so that reorthogonalisation is not limited by the parameters' dtype.

interface Flat {
  size: number;
  toTree(x: Float64Array): unknown;
  fromTree(t: unknown): Float64Array;
}

function flatSpace(params: unknown, op: string): Flat {
  const [leaves, def] = tree.flatten<unknown>(params);
  const specs = leaves.map((l, i) => {
    if (!(l instanceof Tensor)) throw new ConfigError(`parameter leaf ${i} is not a tensor`, op);
    if (l.dtype !== "float32" && l.dtype !== "float64")
      throw new ConfigError(`parameter leaf ${i} has dtype ${l.dtype}; a floating dtype is needed`, op);
    return { shape: [...l.shape], dtype: l.dtype as DType, size: l.size };
  });
  const size = specs.reduce((a, s) => a + s.size, 0);
  return {
    size,
    toTree(x) {
      let off = 0;
      const parts = specs.map((s) => {
        const buf = allocate(s.dtype, s.size);
        for (let i = 0; i < s.size; i++) buf[i] = x[off + i]!;
        off += s.size;
        return Tensor._fromBuffer(s.shape, s.dtype, buf);
      });
      return tree.unflatten(def, parts);
    },
    fromTree(t) {
      const ls = tree.leaves<Tensor>(t);
      const out = new Float64Array(size);
      let off = 0;
      ls.forEach((l) => {
        out.set(l.data(), off);
        off += l.size;
      });
      return out;
    },
  };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function axpy(alpha: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i]! += alpha * x[i]!;
}

/** Removes from `w` its components along every basis vector; twice, since once is not enough in floating point ("twice is enough"). */
function orthogonalise(w: Float64Array, basis: readonly Float64Array[]): void {
  for (let pass = 0; pass < 2; pass++) for (const q of basis) axpy(-dot(q, w), q, w);
}

function randomUnit(key: Tensor, n: number, basis: readonly Float64Array[]): Float64Array | null {
  const w = Float64Array.from(random.normal(key, [n], "float64").data());
  orthogonalise(w, basis);
  const nrm = Math.sqrt(dot(w, w));
  if (!(nrm > 1e-8)) return null;
  for (let i = 0; i < n; i++) w[i]! /= nrm;
  return w;
}

/**
 * Eigenvalues of the symmetric tridiagonal matrix with diagonal `d` and off-diagonal `e`
 * (`e[i]` couples rows i and i+1), by the implicit QL algorithm with Wilkinson shifts.
 */
export function tridiagonalEigenvalues(diag: readonly number[], offDiag: readonly number[]): number[] {
  const n = diag.length;
  const d = [...diag];
  const e = [...offDiag, 0];
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        if (Math.abs(e[m]!) <= Number.EPSILON * dd) break;
      }
      if (m === l) break;
      if (++iter > 60) throw new ConfigError("tridiagonal QL did not converge", "topEigenvalues");
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
      let r = Math.hypot(g, 1);
      g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        let f = s * e[i]!;
        const b = c * e[i]!;
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1]! -= p;
          e[m] = 0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1]! - p;
        r = (d[i]! - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        f = 0;
      }
      if (underflow && i >= l) continue;
      d[l]! -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return d;
}

/** Options of {@link topEigenvalues}. */
export interface TopEigenvaluesOptions {
  /** Lanczos steps (capped at the number of parameters); default `max(2k + 10, 30)`. */
  iterations?: number;
  /** Seeds the start vector (and any restart); default `random.key(0)`. */
  key?: Tensor;
  /** Extra arguments passed to `loss` after the parameters. */
  batch?: readonly unknown[];
}

/** Result of {@link topEigenvalues}. */
export interface TopEigenvaluesResult {
  /** The `k` largest Ritz values, descending. */
  eigenvalues: number[];
  /** `λmax / λk` (the SAM paper's `λmax/λ5` when `k = 5`); `undefined` when `k = 1`. */
  ratio: number | undefined;
  /** Lanczos steps taken (Hessian-vector products evaluated). */
  iterations: number;
  /** A fresh key for the caller's next random use. */
  key: Tensor;
}

/**
 * The `k` largest eigenvalues of the Hessian of `loss` at `params`, by Lanczos with full
 * reorthogonalisation on the flattened tree. When the Krylov space closes early (an invariant
 * subspace, e.g. a repeated eigenvalue) it restarts with a fresh random vector orthogonal to the
 * basis, so with `iterations ≥ #params` the result is the exact spectrum up to float64 rounding.
 *
 * @example
 * ```ts
 * const { eigenvalues, ratio } = topEigenvalues(loss, params, 5, { key: random.key(1), batch: [x, y] });
 * ```
 */
export function topEigenvalues<P>(loss: LossFn<P>, params: P, k: number, opts: TopEigenvaluesOptions = {}): TopEigenvaluesResult {
  const op = "topEigenvalues";
  const space = flatSpace(params, op);
  const n = space.size;
  if (!Number.isInteger(k) || k < 1) throw new ConfigError(`k must be an integer ≥ 1, got ${k}`, op);
  if (k > n) throw new ConfigError(`k = ${k} exceeds the number of parameters (${n})`, op);
  const requested = opts.iterations ?? Math.max(2 * k + 10, 30);
  if (!Number.isInteger(requested) || requested < k)
    throw new ConfigError(`iterations must be an integer ≥ k = ${k}, got ${requested}`, op);
  const m = Math.min(requested, n);
  const batch = opts.batch ?? [];
  const [useKey, nextKey] = splitTwo(opts.key ?? random.key(0));
  const startKeys = random.split(useKey, m);

  const hv = (q: Float64Array): Float64Array =>
    space.fromTree(hessianVectorProduct(loss, params, space.toTree(q) as P, ...batch));

  const basis: Float64Array[] = [];
  const alpha: number[] = [];
  const beta: number[] = []; // beta[j] couples steps j and j+1
  let q: Float64Array | null = null;
  let restart = 0;
  for (let j = 0; j < m; j++) {
    if (q === null) {
      // A start or a restart: decouple the tridiagonal block (beta = 0) and draw a new direction.
      while (q === null && restart < m) q = randomUnit(keyAt(startKeys, restart++), n, basis);
      if (q === null) break;
      if (j > 0) beta.push(0);
    }
    basis.push(q);
    const w = hv(q);
    const a = dot(q, w);
    alpha.push(a);
    orthogonalise(w, basis);
    const b = Math.sqrt(dot(w, w));
    if (j === m - 1) break;
    // Relative to the scale of the operator seen so far, so breakdown is judged in float64 terms.
    const scale = Math.max(...alpha.map(Math.abs), ...beta.map(Math.abs), Number.MIN_VALUE);
    if (b <= 1e-10 * scale) {
      q = null;
      continue;
    }
    beta.push(b);
    for (let i = 0; i < n; i++) w[i]! /= b;
    q = w;
  }
  const ritz = tridiagonalEigenvalues(alpha, beta.slice(0, alpha.length - 1)).sort((x, y) => y - x);
  const eigenvalues = ritz.slice(0, k);
  return {
    eigenvalues,
    ratio: k >= 2 ? eigenvalues[0]! / eigenvalues[k - 1]! : undefined,
    iterations: alpha.length,
    key: nextKey,
  };
}

function splitTwo(key: Tensor): [Tensor, Tensor] {
  const ks = random.split(key, 2);
  return [keyAt(ks, 0), keyAt(ks, 1)];
}

function keyAt(keys: Tensor, i: number): Tensor {
  const buf = keys.data();
  return Tensor._fromBuffer([2], "uint32", buf.slice(2 * i, 2 * i + 2));
}

/** Options of {@link trace}. */
export interface TraceOptions {
  /** Number of Rademacher probe vectors (≥ 1); default 100. */
  samples?: number;
  /** Seeds the probes; default `random.key(0)`. */
  key?: Tensor;
  /** Extra arguments passed to `loss` after the parameters. */
  batch?: readonly unknown[];
}

/** Result of {@link trace}. */
export interface TraceResult {
  /** Mean of `vᵀHv` over the probes. */
  estimate: number;
  /** Standard error of that mean (sample std / √samples); `NaN` with one sample. */
  stderr: number;
  samples: number;
  /** A fresh key for the caller's next random use. */
  key: Tensor;
}

/**
 * Hutchinson's estimate of `tr(H)`: the mean of `vᵀHv` over Rademacher vectors `v` (entries ±1).
 * Exact for a diagonal Hessian, since then `vᵀHv = Σ h_ii` for every sign pattern.
 *
 * @example
 * ```ts
 * const { estimate, stderr } = trace(loss, params, { samples: 50, key: random.key(0), batch: [x, y] });
 * ```
 */
export function trace<P>(loss: LossFn<P>, params: P, opts: TraceOptions = {}): TraceResult {
  const op = "trace";
  const samples = opts.samples ?? 100;
  if (!Number.isInteger(samples) || samples < 1) throw new ConfigError(`samples must be an integer ≥ 1, got ${samples}`, op);
  const space = flatSpace(params, op);
  const n = space.size;
  const batch = opts.batch ?? [];
  const [useKey, nextKey] = splitTwo(opts.key ?? random.key(0));
  const signs = random.bernoulli(useKey, 0.5, [samples, n]).data();
  const values: number[] = [];
  for (let s = 0; s < samples; s++) {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = signs[s * n + i] ? 1 : -1;
    const hv = space.fromTree(hessianVectorProduct(loss, params, space.toTree(v) as P, ...batch));
    values.push(dot(v, hv));
  }
  const mean = values.reduce((a, b) => a + b, 0) / samples;
  const variance = samples > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (samples - 1) : NaN;
  return { estimate: mean, stderr: Math.sqrt(variance / samples), samples, key: nextKey };
}
