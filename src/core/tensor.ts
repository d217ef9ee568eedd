import { type DType, type TypedArray, SHORT_NAME, allocate } from "./dtype.js";
import { TraceError } from "./errors.js";
import { type Shape, sizeOf } from "./shape.js";

/** The abstract value of an array: what a tracer knows without data. */
export interface ShapedArray {
  readonly shape: Shape;
  readonly dtype: DType;
  /** True for values that came from JS numbers: they do not widen strongly typed operands. */
  readonly weakType: boolean;
}

export function shapedArray(shape: Shape, dtype: DType, weakType = false): ShapedArray {
  return { shape, dtype, weakType };
}

/** Prints an aval as JAX does: `f32[3,4]`. */
export function avalToString(aval: ShapedArray): string {
  return `${SHORT_NAME[aval.dtype]}[${aval.shape.join(",")}]`;
}

/** Nested JS arrays of numbers (booleans for `bool`), as `toArray()` returns them. */
export type NestedArray = number | boolean | NestedArray[];

/**
 * The method sugar's implementation, installed by the numpy module so that `tensor.ts` stays free
 * of imports from the operations (which import `Tensor`).
 */
export interface TensorMethods {
  [name: string]: (...args: any[]) => any;
}
let methods: TensorMethods | null = null;
/** @internal */
export function installTensorMethods(m: TensorMethods): void {
  methods = m;
}
/**
 * What a memory that lends buffers to tensors (the jit's wasm heap) hears about them: `wrap` when
 * a tensor is built over a buffer, `release` when such a tensor is deleted. Installed by that
 * memory's module so that `tensor.ts` imports nothing from the transforms.
 */
export interface BufferHooks {
  wrap(buf: TypedArray): void;
  release(buf: TypedArray): void;
}
let bufferHooks: BufferHooks | null = null;
/** @internal */
export function installBufferHooks(h: BufferHooks): void {
  bufferHooks = h;
}

function call(name: string, ...args: unknown[]): any {
  if (methods === null) throw new Error(`Tensor.${name}: numpy module not loaded`);
  return methods[name]!(...args);
}

type Operand = Tensor | number;

/**
 * An immutable n-dimensional array. Concrete tensors hold a typed array; tracers (subclasses made by
 * transforms) hold only an abstract value. Values are garbage-collected: there is no `dispose()` to
 * call and no reference count.
 *
 * @example
 * ```ts
 * const x = np.array([[1, 2], [3, 4]]);
 * x.add(1).sum(0).toArray(); // [6, 8]
 * ```
 */
export class Tensor {
  /** @internal */ protected readonly _aval: ShapedArray | null;
  /** @internal */ private _store: TypedArray | null;
  /** @internal */ private _deleted = false;

  /** @internal Use `np.array` or `np.asarray` to build tensors. */
  constructor(aval: ShapedArray | null, buf: TypedArray | null) {
    this._aval = aval;
    this._store = buf;
    if (buf !== null && bufferHooks !== null) bufferHooks.wrap(buf);
  }

  /** @internal The backing store, row-major and contiguous. Never mutate it. */
  get _buf(): TypedArray | null {
    if (this._deleted) throw new TraceError(`this ${avalToString(this.aval)} array has been deleted`, "Tensor");
    return this._store;
  }

  /**
   * Deletes the array's data, as `jax.Array.delete()`: any later use raises a TraceError. A `jit`
   * result that lives in the wasm backend's memory hands that memory back at once (once every
   * tensor sharing it is deleted) instead of when the garbage collector finds it, which lets a
   * tight synchronous loop reuse it; for other arrays this only marks them deleted. Deleting twice
   * is allowed.
   *
   * @example
   * ```ts
   * const y = f(x); // f = jit(...)
   * use(y.data());
   * y.delete();     // its memory is reused by the next call
   * ```
   */
  delete(): void {
    if (this._deleted) return;
    const buf = this._store;
    if (buf === null) throw new TraceError("a traced value cannot be deleted", "Tensor.delete");
    this._deleted = true;
    this._store = null;
    bufferHooks?.release(buf);
  }

  /** Whether {@link Tensor.delete} was called, as `jax.Array.is_deleted()`. */
  isDeleted(): boolean {
    return this._deleted;
  }

  /** @internal Wraps a typed array without copying; the caller gives up the array. */
  static _fromBuffer(shape: Shape, dtype: DType, buf: TypedArray, weakType = false): Tensor {
    return new Tensor({ shape, dtype, weakType }, buf);
  }

  /** @internal A zero-filled tensor. */
  static _zeros(shape: Shape, dtype: DType, weakType = false): Tensor {
    return new Tensor({ shape, dtype, weakType }, allocate(dtype, sizeOf(shape)));
  }

  get aval(): ShapedArray {
    return this._aval!;
  }
  get shape(): Shape {
    return this.aval.shape;
  }
  get dtype(): DType {
    return this.aval.dtype;
  }
  get weakType(): boolean {
    return this.aval.weakType;
  }
  get size(): number {
    return sizeOf(this.aval.shape);
  }
  get ndim(): number {
    return this.aval.shape.length;
  }

  /** @internal The concrete buffer; tracers raise a TraceError that says why a value is needed. */
  _concrete(op: string): TypedArray {
    if (this._buf === null) throw concretizationError(op, this.aval);
    return this._buf;
  }

  /** A copy of the elements as a typed array (row-major). */
  data(): TypedArray {
    return this._concrete("data").slice();
  }

  /** The elements as nested JS arrays (booleans for `bool`). */
  toArray(): NestedArray {
    const buf = this._concrete("toArray");
    const shape = this.shape;
    const isBool = this.dtype === "bool";
    const build = (dim: number, offset: number): NestedArray => {
      if (dim === shape.length) return isBool ? buf[offset] !== 0 : buf[offset]!;
      const n = shape[dim]!;
      const stride = sizeOf(shape.slice(dim + 1));
      const out: NestedArray[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = build(dim + 1, offset + i * stride);
      return out;
    };
    return build(0, 0);
  }

  /** The single element of a size-1 tensor, as a JS number (or boolean for `bool`). */
  item(): number {
    const buf = this._concrete("item");
    if (buf.length !== 1) throw new TraceError(`can only convert a tensor of size 1, got shape [${this.shape}]`, "item");
    return buf[0]!;
  }

  toString(): string {
    if (this._buf === null) return `Tracer<${avalToString(this.aval)}>`;
    return `Tensor(${JSON.stringify(this.toArray())}, dtype=${this.dtype})`;
  }

  /** Iterates over the first axis, as NumPy arrays do: `const [k1, k2] = random.split(key)`. */
  *[Symbol.iterator](): Iterator<Tensor> {
    if (this.ndim === 0) throw new TraceError("cannot iterate over a rank-0 tensor", "iterate");
    const n = this.shape[0]!;
    for (let i = 0; i < n; i++) yield call("take", this, i, 0);
  }

  // Method sugar: each delegates to the numpy function of the same name.
  add(y: Operand): Tensor {
    return call("add", this, y);
  }
  sub(y: Operand): Tensor {
    return call("subtract", this, y);
  }
  mul(y: Operand): Tensor {
    return call("multiply", this, y);
  }
  div(y: Operand): Tensor {
    return call("divide", this, y);
  }
  pow(y: Operand): Tensor {
    return call("power", this, y);
  }
  neg(): Tensor {
    return call("negative", this);
  }
  maximum(y: Operand): Tensor {
    return call("maximum", this, y);
  }
  minimum(y: Operand): Tensor {
    return call("minimum", this, y);
  }
  exp(): Tensor {
    return call("exp", this);
  }
  log(): Tensor {
    return call("log", this);
  }
  sqrt(): Tensor {
    return call("sqrt", this);
  }
  square(): Tensor {
    return call("square", this);
  }
  abs(): Tensor {
    return call("abs", this);
  }
  tanh(): Tensor {
    return call("tanh", this);
  }
  sin(): Tensor {
    return call("sin", this);
  }
  cos(): Tensor {
    return call("cos", this);
  }
  greater(y: Operand): Tensor {
    return call("greater", this, y);
  }
  less(y: Operand): Tensor {
    return call("less", this, y);
  }
  equal(y: Operand): Tensor {
    return call("equal", this, y);
  }
  sum(axis?: number | number[] | null, opts?: { keepdims?: boolean }): Tensor {
    return call("sum", this, axis, opts);
  }
  mean(axis?: number | number[] | null, opts?: { keepdims?: boolean }): Tensor {
    return call("mean", this, axis, opts);
  }
  max(axis?: number | number[] | null, opts?: { keepdims?: boolean }): Tensor {
    return call("max", this, axis, opts);
  }
  min(axis?: number | number[] | null, opts?: { keepdims?: boolean }): Tensor {
    return call("min", this, axis, opts);
  }
  prod(axis?: number | number[] | null, opts?: { keepdims?: boolean }): Tensor {
    return call("prod", this, axis, opts);
  }
  argmax(axis?: number): Tensor {
    return call("argmax", this, axis);
  }
  argmin(axis?: number): Tensor {
    return call("argmin", this, axis);
  }
  reshape(...shape: (number | number[])[]): Tensor {
    const s = shape.length === 1 && Array.isArray(shape[0]) ? shape[0] : (shape as number[]);
    return call("reshape", this, s);
  }
  transpose(axes?: number[]): Tensor {
    return call("transpose", this, axes);
  }
  /** The transpose (all axes reversed), as NumPy's `x.T`. */
  get T(): Tensor {
    return call("transpose", this);
  }
  flatten(): Tensor {
    return call("ravel", this);
  }
  astype(dtype: DType): Tensor {
    return call("astype", this, dtype);
  }
  matmul(y: Tensor): Tensor {
    return call("matmul", this, y);
  }
  dot(y: Tensor): Tensor {
    return call("dot", this, y);
  }
}

function concretizationError(op: string, aval: ShapedArray): TraceError {
  return new TraceError(
    `a concrete value is needed, but this is an abstract tracer ${avalToString(aval)} inside a transform. ` +
      "Branch on traced values with lax.cond / lax.select / np.where, or mark the argument static " +
      "(jit's staticArgnums).",
    op,
  );
}
