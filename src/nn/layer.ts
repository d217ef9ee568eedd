/**
 * The layer contract: a layer is a pure `(init, apply)` pair over trees, as in stax and Haiku's
 * `transform_with_state`. A plain function `(x) => Tensor` (such as `nn.relu`) is a layer without
 * parameters wherever a layer is accepted.
 */
import { ShapeError } from "../core/errors.js";
import type { Tensor } from "../core/tensor.js";
import { makeJaxprFlat } from "../transforms/staging.js";

/** A tree of parameter or state tensors (nested plain objects). */
// biome-ignore lint/suspicious/noExplicitAny: trees are heterogeneous.
export type Params = any;

/** What `init` returns. */
export interface InitResult {
  params: Params;
  state: Params;
  outputShape: number[];
}

/** Per-call options: `train` switches dropout and batch statistics on; `rng` feeds dropout. */
export interface ApplyContext {
  train?: boolean;
  rng?: Tensor;
}

/**
 * A layer: `init(key, inputShape)` checks the input shape and creates parameters and state;
 * `apply(params, state, x, ctx)` returns `[y, newState]` and changes nothing.
 *
 * @example
 * ```ts
 * const { params, state } = layer.init(random.key(0), [8, 4]);
 * const [y, newState] = layer.apply(params, state, x);
 * ```
 */
export interface Layer {
  readonly name: string;
  init(key: Tensor, inputShape: readonly number[]): InitResult;
  apply(params: Params, state: Params, x: Tensor, ctx?: ApplyContext): [Tensor, Params];
}

/** A layer or a parameter-free function of one tensor. */
export type LayerLike = Layer | ((x: Tensor) => Tensor);

/**
 * A shape error raised by a layer's `init`; `path` names the layer within its container
 * (`Sequential[2].Dense`), and the message starts with it.
 */
export class LayerShapeError extends ShapeError {
  readonly path: string;
  readonly detail: string;
  constructor(detail: string, path: string) {
    super(detail, path);
    this.path = path;
    this.detail = detail;
  }
}

/** Re-raises an error from a child's `init` with the container's path prefix. */
export function rethrowWithPath(e: unknown, prefix: string, childName: string): never {
  if (e instanceof LayerShapeError) throw new LayerShapeError(e.detail, `${prefix}.${e.path}`);
  if (e instanceof ShapeError) throw new LayerShapeError(e.message, `${prefix}.${childName}`);
  throw e;
}

/**
 * Turns a plain function into a parameter-free layer; its output shape is found by tracing it
 * abstractly, so nothing is computed at init.
 *
 * @example
 * ```ts
 * const act = asLayer(nn.relu);
 * ```
 */
export function asLayer(l: LayerLike): Layer {
  if (typeof l !== "function") return l;
  const fn = l;
  return {
    name: fn.name || "function",
    init(_key, inputShape) {
      const closed = makeJaxprFlat((x) => [fn(x)], [{ shape: [...inputShape], dtype: "float32", weakType: false }]);
      return { params: {}, state: {}, outputShape: [...closed.outAvals[0]!.shape] };
    },
    apply(_params, state, x) {
      return [fn(x), state];
    },
  };
}
