/** Vectorising map: the batch trace carries a batch axis beside each value (`jax.vmap`). */
import { ConfigError, ShapeError } from "../core/errors.js";
import type { BDim, Primitive } from "../core/primitive.js";
import { moveBatchAxis } from "../core/primitives/structural.js";
import { normalizeAxis } from "../core/shape.js";
import type { ShapedArray, Tensor } from "../core/tensor.js";
import { type MainTrace, Trace, Tracer, bind, withMainTrace } from "../core/trace.js";
import { broadcastPrefix as treeBroadcastPrefix, flatten, unflatten } from "../core/tree.js";
import { asTensor } from "./util.js";

class BatchTracer extends Tracer {
  constructor(
    trace: Trace,
    readonly val: Tensor,
    readonly bdim: BDim,
  ) {
    super(trace);
  }
  override get aval(): ShapedArray {
    const a = this.val.aval;
    if (this.bdim === null) return a;
    return { shape: a.shape.filter((_, i) => i !== this.bdim), dtype: a.dtype, weakType: a.weakType };
  }
  override fullLower(): Tensor {
    return this.bdim === null ? this.val : this;
  }
}

class BatchTrace extends Trace {
  pure(x: Tensor): Tensor {
    return new BatchTracer(this, x, null);
  }
  processPrimitive(prim: Primitive, tracers: Tensor[], params: unknown): Tensor[] {
    const ts = tracers as BatchTracer[];
    const vals = ts.map((t) => t.val);
    const dims = ts.map((t) => t.bdim);
    if (dims.every((d) => d === null)) return bind(prim, vals, params).map((v) => new BatchTracer(this, v, null));
    const [outs, outDims] = prim.batch(vals, dims, params, this.main.globalData as number);
    return outs.map((o, i) => new BatchTracer(this, o, outDims[i]!));
  }
}

/** vmap of a function of flat arrays, with one batch axis (or null) per input and per output. */
export function vmapFlat(f: (...xs: Tensor[]) => Tensor[], args: readonly Tensor[], inDims: readonly BDim[], outDims: readonly BDim[] | ((n: number) => BDim[]), axisSize: number): Tensor[] {
  return withMainTrace(BatchTrace, axisSize, (main: MainTrace) => {
    const trace = new BatchTrace(main);
    const outs = f(...args.map((a, i) => new BatchTracer(trace, a, inDims[i]!)));
    const wanted = typeof outDims === "function" ? outDims(outs.length) : outDims;
    return outs.map((o, i) => {
      const [val, bdim] = o instanceof BatchTracer && o._trace.main === main ? [o.val, o.bdim] : [o, null];
      const target = wanted[i] ?? null;
      if (target === null) {
        if (bdim !== null) throw new ShapeError(`output ${i} is batched but outAxes gives null for it`, "vmap");
        return val;
      }
      return moveBatchAxis(val, bdim, normalizeAxis(target, val.ndim + (bdim === null ? 1 : 0), "vmap"), axisSize);
    });
  });
}

type Axes = number | null | undefined | readonly Axes[] | { readonly [k: string]: Axes };

/** Expands a pytree prefix of axes (numbers / null) to one entry per leaf of `tree`. */
function broadcastAxes(prefix: Axes, full: unknown, what: string): BDim[] {
  try {
    return treeBroadcastPrefix(prefix, full).map((d) => (d === undefined ? null : (d as BDim)));
  } catch (e) {
    throw new ConfigError(`${what} ${JSON.stringify(prefix)} is not a tree prefix of the ${what === "inAxes" ? "arguments" : "outputs"}: ${(e as Error).message}`, "vmap");
  }
}

export interface VmapOptions {
  /** Batch axis per argument (a pytree prefix of the arguments); `null` = not mapped. Default 0. */
  inAxes?: Axes;
  /** Batch axis per output (a pytree prefix of the output). Default 0. */
  outAxes?: Axes;
  /** The batch size, needed when no input is mapped. */
  axisSize?: number;
}

/**
 * `jax.vmap`: maps `f` over a batch axis of its arguments without a loop: every primitive is
 * rewritten by its batching rule.
 *
 * @example
 * ```ts
 * const dots = vmap((a, b) => np.dot(a, b))(np.ones([8, 3]), np.ones([8, 3])); // shape [8]
 * ```
 */
export function vmap<F extends (...args: any[]) => any>(f: F, opts: VmapOptions = {}): F {
  return ((...args: unknown[]) => {
    const inAxes: Axes = opts.inAxes === undefined ? 0 : opts.inAxes;
    const prefix = typeof inAxes === "number" || inAxes === null ? args.map(() => inAxes) : inAxes;
    const [leaves, inTree] = flatten(args);
    const tensors = leaves.map((l) => asTensor(l, "vmap"));
    const dims = broadcastAxes(prefix, args, "inAxes").map((d, i) => (d === null ? null : normalizeAxis(d, tensors[i]!.ndim, "vmap")));
    const sizes = new Map<number, number[]>();
    dims.forEach((d, i) => {
      if (d !== null) {
        const n = tensors[i]!.shape[d]!;
        sizes.set(n, [...(sizes.get(n) ?? []), i]);
      }
    });
    if (sizes.size > 1) {
      const detail = [...sizes].map(([n, idx]) => `size ${n} for leaves ${idx.join(", ")}`).join("; ");
      throw new ShapeError(`inconsistent sizes along the mapped axes: ${detail}`, "vmap");
    }
    const axisSize = sizes.size === 1 ? [...sizes.keys()][0]! : opts.axisSize;
    if (axisSize === undefined) throw new ConfigError("no argument is mapped: pass axisSize", "vmap");
    if (opts.axisSize !== undefined && opts.axisSize !== axisSize) {
      throw new ShapeError(`axisSize ${opts.axisSize} does not match the mapped size ${axisSize}`, "vmap");
    }
    let outTree: ReturnType<typeof flatten>[1] | null = null;
    let outValue: unknown;
    const outs = vmapFlat(
      (...xs) => {
        outValue = f(...(unflatten(inTree, xs) as unknown[]));
        const [ls, tree] = flatten(outValue);
        outTree = tree;
        return ls.map((l) => asTensor(l, "vmap"));
      },
      tensors,
      dims,
      () => {
        const outAxes: Axes = opts.outAxes === undefined ? 0 : opts.outAxes;
        return broadcastAxes(outAxes, outValue, "outAxes");
      },
      axisSize,
    );
    return unflatten(outTree!, outs);
  }) as F;
}
