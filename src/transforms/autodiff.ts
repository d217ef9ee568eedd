/**
 * Reverse mode, derived as JAX derives it: JVP, then partial evaluation (the primal computation runs
 * now, the linear tangent computation is staged), then transposition of the linear jaxpr.
 */
import { isFloat } from "../core/dtype.js";
import { DTypeError, ShapeError, TraceError, fmtShape } from "../core/errors.js";
import { evalJaxpr } from "../core/jaxpr.js";
import { type Tangent, UndefPrimal, Zero } from "../core/primitive.js";
import { instantiate, scalar } from "../core/primitives/util.js";
import { reshape, transpose as transposeLax } from "../core/primitives/structural.js";
import { allocate } from "../core/dtype.js";
import { Tensor, avalToString } from "../core/tensor.js";
import { type TreeDef, flatten, unflatten } from "../core/tree.js";
import { jvpFlat, jvp } from "./jvp.js";
import { partialEvalJaxpr } from "./partial-eval.js";
import { makeJaxprFlat } from "./staging.js";
import { backwardPass } from "./transpose.js";
import { asTensor, normalizeArgnums } from "./util.js";
import { vmap } from "./vmap.js";

interface Linearized {
  primalsOut: Tensor[];
  /** Linear map from input tangents to output tangents. */
  jvpFn: (tangents: Tensor[]) => Tangent[];
  /** Its transpose: output cotangents to input cotangents. */
  vjpFn: (cts: Tangent[]) => Tangent[];
}

/** Linearizes a function of flat arrays at `primals`. */
export function linearizeFlat(f: (...xs: Tensor[]) => Tensor[], primals: readonly Tensor[]): Linearized {
  const n = primals.length;
  const avals = primals.map((p) => p.aval);
  let numOuts = 0;
  const closed = makeJaxprFlat(
    (...args) => {
      const [outs, touts] = jvpFlat(f, args.slice(0, n), args.slice(n));
      numOuts = outs.length;
      return [...outs, ...touts.map(instantiate)];
    },
    [...avals, ...avals],
  );
  const unknownIns = [...avals.map(() => false), ...avals.map(() => true)];
  const instantiateOuts = [...Array(numOuts).fill(false), ...Array(numOuts).fill(true)];
  const { known, unknown, outUnknowns } = partialEvalJaxpr(closed.jaxpr, unknownIns, instantiateOuts);
  if (outUnknowns.slice(0, numOuts).some((u) => u)) {
    throw new TraceError("a primal output depends on a tangent input; this is a bug in a JVP rule", "linearize");
  }
  const knownOuts = evalJaxpr(known, closed.consts, primals);
  const primalsOut = knownOuts.slice(0, numOuts);
  const residuals = knownOuts.slice(numOuts);
  return {
    primalsOut,
    jvpFn: (tangents) => evalJaxpr(unknown, [], [...residuals, ...tangents]),
    vjpFn: (cts) =>
      backwardPass(
        unknown,
        [],
        [...residuals, ...avals.map((a) => new UndefPrimal(a))],
        cts,
      ),
  };
}

function flatFn(f: (...args: any[]) => unknown, inTree: TreeDef, op: string, onOut: (tree: TreeDef) => void) {
  return (...xs: Tensor[]): Tensor[] => {
    const [leaves, tree] = flatten(f(...(unflatten(inTree, xs) as unknown[])));
    onOut(tree);
    return leaves.map((l) => asTensor(l, op));
  };
}

function checkCotangent(ct: Tensor, like: Tensor, i: number, op: string): void {
  if (ct.shape.length !== like.shape.length || ct.shape.some((d, k) => d !== like.shape[k])) {
    throw new ShapeError(`cotangent ${i} has shape ${fmtShape(ct.shape)}, expected ${fmtShape(like.shape)}`, op);
  }
}

/**
 * `jax.linearize`: returns `[out, fJvp]` where `fJvp(...tangents)` is the linear map at `primals`.
 *
 * @example
 * ```ts
 * const [y, fJvp] = linearize((x) => np.sin(x), np.array([0, 1]));
 * fJvp(np.array([1, 1])); // cos(x)
 * ```
 */
export function linearize<Out = any>(f: (...args: any[]) => Out, ...primals: unknown[]): [Out, (...tangents: unknown[]) => Out] {
  const [leaves, inTree] = flatten(primals);
  const ps = leaves.map((l) => asTensor(l, "linearize"));
  let outTree: TreeDef | null = null;
  const lin = linearizeFlat(
    flatFn(f, inTree, "linearize", (t) => (outTree = t)),
    ps,
  );
  const fJvp = (...tangents: unknown[]) => {
    const ts = flatten(tangents)[0].map((l) => asTensor(l, "linearize"));
    return unflatten(outTree!, lin.jvpFn(ts).map(instantiate)) as Out;
  };
  return [unflatten(outTree!, lin.primalsOut) as Out, fJvp];
}

/**
 * `jax.vjp`: returns `[out, vjpFn]`; `vjpFn(cotangent)` gives one cotangent per primal argument.
 *
 * @example
 * ```ts
 * const [y, vjpFn] = vjp((x) => np.sum(np.square(x)), np.array([1, 2]));
 * vjpFn(np.array(1)); // [[2, 4]]
 * ```
 */
export function vjp<Out = any>(f: (...args: any[]) => Out, ...primals: unknown[]): [Out, (ct: Out) => any[]] {
  const [leaves, inTree] = flatten(primals);
  const ps = leaves.map((l) => asTensor(l, "vjp"));
  let outTree: TreeDef | null = null;
  const lin = linearizeFlat(
    flatFn(f, inTree, "vjp", (t) => (outTree = t)),
    ps,
  );
  const vjpFn = (ct: Out): any[] => {
    const cts = flatten(ct)[0].map((l, i) => {
      const c = asTensor(l, "vjp");
      checkCotangent(c, lin.primalsOut[i]!, i, "vjp");
      return c;
    });
    const grads = lin.vjpFn(cts).map(instantiate);
    return unflatten(inTree, grads) as any[];
  };
  return [unflatten(outTree!, lin.primalsOut) as Out, vjpFn];
}

export interface GradOptions {
  /** Which positional arguments to differentiate (default 0). A list gives a tuple of gradients. */
  argnums?: number | number[];
  /** `f` returns `[value, aux]`; aux is returned beside the gradient, not differentiated. */
  hasAux?: boolean;
}

/**
 * `jax.value_and_grad`: returns `[value, grads]`, or `[[value, aux], grads]` with `hasAux`.
 *
 * @example
 * ```ts
 * const [loss, g] = valueAndGrad((w) => np.sum(np.square(w)))(np.array([1, 2])); // 5, [2, 4]
 * ```
 */
export function valueAndGrad(f: (...args: any[]) => any, opts: GradOptions = {}): (...args: any[]) => [any, any] {
  const argnumsOpt = opts.argnums ?? 0;
  return (...args: any[]) => {
    const argnums = normalizeArgnums(argnumsOpt, args.length, "grad");
    const [leaves, diffTree] = flatten(argnums.map((i) => args[i]));
    const ps = leaves.map((l) => asTensor(l, "grad"));
    ps.forEach((p, i) => {
      if (!isFloat(p.dtype)) {
        throw new DTypeError(`grad requires float inputs; differentiated leaf ${i} is ${avalToString(p.aval)}`, "grad");
      }
    });
    let auxTree: TreeDef | null = null;
    let value: Tensor | null = null;
    const fFlat = (...xs: Tensor[]): Tensor[] => {
      const diffArgs = unflatten(diffTree, xs) as unknown[];
      const full = args.slice();
      argnums.forEach((a, k) => {
        full[a] = diffArgs[k];
      });
      let out = f(...full);
      let auxLeaves: Tensor[] = [];
      if (opts.hasAux) {
        if (!Array.isArray(out) || out.length !== 2) throw new TraceError("with hasAux, f must return [value, aux]", "grad");
        const [aux, tree] = flatten(out[1]);
        auxTree = tree;
        auxLeaves = aux.map((l) => asTensor(l, "grad"));
        out = out[0];
      }
      const y = asTensor(out, "grad");
      if (y.ndim !== 0 || !isFloat(y.dtype)) {
        throw new TraceError(`grad requires a scalar float output, got ${avalToString(y.aval)}; use vjp or jacrev for non-scalar outputs`, "grad");
      }
      return [y, ...auxLeaves];
    };
    const lin = linearizeFlat(fFlat, ps);
    value = lin.primalsOut[0]!;
    const ones = scalar(1, value.dtype);
    const cts: Tangent[] = [ones, ...lin.primalsOut.slice(1).map((o) => new Zero(o.aval))];
    const grads = lin.vjpFn(cts).map(instantiate);
    const gradTree = unflatten(diffTree, grads) as unknown[];
    const g = typeof argnumsOpt === "number" ? gradTree[0] : gradTree;
    const v = opts.hasAux ? [value, unflatten(auxTree!, lin.primalsOut.slice(1))] : value;
    return [v, g];
  };
}

/**
 * `jax.grad`: the gradient of a scalar function with respect to argument(s) `argnums`.
 *
 * @example
 * ```ts
 * grad((x) => np.sum(np.sin(x)))(np.array([0, 1])); // cos(x)
 * ```
 */
export function grad(f: (...args: any[]) => any, opts: GradOptions = {}): (...args: any[]) => any {
  const vg = valueAndGrad(f, opts);
  return (...args: any[]) => {
    const [v, g] = vg(...args);
    return opts.hasAux ? [g, (v as [unknown, unknown])[1]] : g;
  };
}

/** The rows of the n×n identity, shaped `[n, ...like.shape]`, in `like`'s dtype. */
function basis(n: number, like: Tensor): Tensor {
  const eye = allocate(like.dtype, n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  return Tensor._fromBuffer([n, ...like.shape], like.dtype, eye);
}

/**
 * `jax.jacfwd` for a function of one array: the Jacobian by forward mode (a vmap of jvp over the
 * input basis). The result has shape `out.shape ++ in.shape`.
 */
export function jacfwd(f: (x: Tensor) => Tensor): (x: Tensor) => Tensor {
  return (x: Tensor) => {
    const n = x.size;
    const pushfwd = (t: Tensor) => jvp(f, [x], [t])[1];
    const cols = vmap(pushfwd)(basis(n, x)) as Tensor; // [n, ...out]
    const out = cols.shape.slice(1);
    const moved = moveFirstToLast(cols);
    return reshape(moved, [...out, ...x.shape]);
  };
}

/**
 * `jax.jacrev` for a function of one array: the Jacobian by reverse mode (a vmap of vjp over the
 * output basis). The result has shape `out.shape ++ in.shape`.
 */
export function jacrev(f: (x: Tensor) => Tensor): (x: Tensor) => Tensor {
  return (x: Tensor) => {
    const [y, pullback] = vjp(f, x);
    const m = y.size;
    const rows = vmap((ct: Tensor) => pullback(ct)[0])(basis(m, y)) as Tensor; // [m, ...in]
    return reshape(rows, [...y.shape, ...x.shape]);
  };
}

/** `jax.hessian`: `jacfwd(jacrev(f))`. */
export function hessian(f: (x: Tensor) => Tensor): (x: Tensor) => Tensor {
  return jacfwd(jacrev(f));
}

/**
 * Hessian-vector product by forward-over-reverse: `jvp(grad(f), primals, tangents)[1]`.
 *
 * @example
 * ```ts
 * hvp((x) => np.sum(x.pow(3)), [np.array([1])], [np.array([1])]); // [6]
 * ```
 */
export function hvp(f: (...args: any[]) => any, primals: readonly unknown[], tangents: readonly unknown[]): any {
  const argnums = primals.length === 1 ? 0 : primals.map((_, i) => i);
  return jvp(grad(f, { argnums }), primals, tangents)[1];
}

function moveFirstToLast(x: Tensor): Tensor {
  const perm = [...x.shape.keys()].slice(1);
  perm.push(0);
  return transposeLax(x, perm);
}

