/**
 * `jit`: stages a function to a closed jaxpr once per input signature (tree structure, shapes,
 * dtypes, weak types, and the static arguments by value) and binds it as one `pjit` equation, whose
 * evaluation runs the compiled program (see executable.ts). Under another jit it is one more
 * equation, inlined by the outer compile.
 */
import { ConfigError } from "../../core/errors.js";
import type { ClosedJaxpr } from "../../core/jaxpr.js";
import { Tensor, avalToString } from "../../core/tensor.js";
import { bind } from "../../core/trace.js";
import { type TreeDef, flatten, treedefEqual, unflatten } from "../../core/tree.js";
import { stage } from "../custom.js";
import { asTensor, normalizeArgnums } from "../util.js";
import { type BackendOption, getDefaultBackend } from "./backend.js";
import { type LoweredReport, executableFor } from "./executable.js";
import { pjit_p } from "./pjit.js";

export interface JitOptions {
  /** Arguments treated as compile-time constants: any value, keyed by value (JSON-like) or identity. */
  staticArgnums?: number | readonly number[];
  /**
   * Where kernels run: `"wasm"` (the own WebAssembly SIMD backend; the default without a GPU),
   * `{ name: "wasm", threads }`, `"gpu.js"` (gpu.js picks its runtime; the default in a browser with
   * a GPU), `{ name: "gpu.js", mode, require }`, `"ts"` (the kernel-IR evaluator), `"reference"` (the jaxpr interpreter on the CPU
   * implementations), or a `KernelBackend` value. float64 equations always run on the CPU
   * implementations, whatever the backend (gpu.js is float32-only).
   */
  backend?: BackendOption;
}

/** A jitted function: call it like `f`; inspect its compiled form with `lower`. */
export interface Jitted<F extends (...args: any[]) => any> {
  (...args: Parameters<F>): ReturnType<F>;
  /** Compiles (and runs once, so the runtimes are known) at these arguments and reports the program. */
  lower(...args: Parameters<F>): LoweredReport;
  /** How many times `f` has been traced (one per new signature). */
  readonly traceCount: number;
}

interface Entry {
  inTree: TreeDef;
  closed: ClosedJaxpr;
  outTree: TreeDef;
}

const objectIds = new WeakMap<object, number>();
let nextId = 0;

/** A text key of a static argument: by value for JSON-like data, by identity otherwise. */
function staticKey(v: unknown): string {
  if (v instanceof Tensor)
    throw new ConfigError(
      "a static argument must be hashable data, not an array (pass it as a dynamic argument)",
      "jit",
    );
  if (
    v === null ||
    v === undefined ||
    typeof v === "number" ||
    typeof v === "string" ||
    typeof v === "boolean" ||
    typeof v === "bigint"
  )
    return `${typeof v}:${String(v)}`;
  if (Array.isArray(v)) return `[${v.map(staticKey).join(",")}]`;
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${staticKey((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  const o = v as object;
  let id = objectIds.get(o);
  if (id === undefined) {
    id = nextId++;
    objectIds.set(o, id);
  }
  return `#${id}`;
}

/**
 * `jax.jit`: compiles `f` into fused kernels, once per input signature. Composes with every
 * transform in both orders (`jit(grad(f))`, `grad(jit(f))`, `vmap(jit(f))`); a jit inside a jit is
 * inlined.
 *
 * @example
 * ```ts
 * const step = jit((w: Tensor, x: Tensor) => np.tanh(x.mul(w).add(1)).sum());
 * step(w, x);                        // traces, compiles, runs
 * step(w, x);                        // cached: no retrace
 * step.lower(w, x).kernels[0].source; // the gpu.js kernel text
 * ```
 */
export function jit<F extends (...args: any[]) => any>(f: F, opts: JitOptions = {}): Jitted<F> {
  const cache = new Map<string, Entry>();
  let traceCount = 0;
  const name = f.name || "jitted";
  const backend = () => opts.backend ?? getDefaultBackend();

  const prepare = (args: unknown[]) => {
    const statics = normalizeArgnums(opts.staticArgnums ?? [], args.length, "jit");
    const dyn = args.filter((_, i) => !statics.includes(i));
    const [leaves, inTree] = flatten(dyn);
    const tensors = leaves.map((l) => asTensor(l, "jit"));
    const key = `${inTree.toString()}|${tensors.map((t) => `${avalToString(t.aval)}${t.weakType ? "w" : ""}`).join(",")}|${statics.map((i) => `${i}=${staticKey(args[i])}`).join(",")}`;
    const hit = cache.get(key);
    if (hit && treedefEqual(hit.inTree, inTree)) return { entry: hit, tensors, hoisted: [] as Tensor[] };
    traceCount++;
    let outTree: TreeDef | null = null;
    const { call, hoisted } = stage(
      (...xs) => {
        const dynArgs = unflatten(inTree, xs) as unknown[];
        let k = 0;
        const full = args.map((a, i) => (statics.includes(i) ? a : dynArgs[k++]));
        const [outLeaves, tree] = flatten(f(...full));
        outTree = tree;
        return outLeaves.map((l) => asTensor(l, "jit"));
      },
      tensors.map((t) => t.aval),
    );
    const entry: Entry = { inTree, closed: call, outTree: outTree! };
    // A function closing over tracers of an enclosing transform is staged per call, not cached.
    if (hoisted.length === 0) cache.set(key, entry);
    return { entry, tensors, hoisted };
  };

  const jitted = ((...args: unknown[]) => {
    const { entry, tensors, hoisted } = prepare(args);
    const outs = bind(pjit_p, [...hoisted, ...tensors], { jaxpr: entry.closed, name, backend: backend() });
    return unflatten(entry.outTree, outs);
  }) as unknown as Jitted<F>;
  Object.defineProperty(jitted, "traceCount", { get: () => traceCount });
  jitted.lower = (...args: unknown[]) => {
    const { entry, tensors, hoisted } = prepare(args);
    if (hoisted.length || tensors.some((t) => t._buf === null))
      throw new ConfigError("lower needs concrete arguments (call it outside other transforms)", "jit");
    const exe = executableFor(entry.closed, backend());
    return exe.report(() => {
      exe.run(tensors);
    });
  };
  return jitted;
}
