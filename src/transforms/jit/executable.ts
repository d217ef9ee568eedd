/**
 * A compiled program: the optimised jaxpr, its plan of kernel and escape steps with their compiled
 * kernels, and a buffer plan. `backend: "reference"` skips all of it and interprets the jaxpr.
 *
 * On a backend with a {@link DeviceMemory} (the wasm heap) the plan runs resident: program inputs
 * are placed in the memory once (cached per typed array, or used in place when they are result
 * views of that memory), intermediates are blocks allocated at their producer and freed at their
 * last reader, kernels run on offsets (`runPtr`), and results come back as views into a shared
 * memory (see resident.ts for their lifetime and the cap). Kernels without `runPtr` (fallbacks)
 * and escapes the backend does not run on offsets get copies; non-float32 values are float32 in
 * the memory and converted where they leave it (escape inputs, program outputs).
 *
 * Elsewhere buffers are Tensors, released at their last use; float32 buffers that only kernels
 * read and write are recycled for later kernels of the same size on backends that write into a
 * given output.
 */
import { allocate } from "../../core/dtype.js";
import { type Atom, type ClosedJaxpr, type JaxprEqn, Lit, type Var, evalJaxpr } from "../../core/jaxpr.js";
import { Tensor, avalToString } from "../../core/tensor.js";
import {
  type BackendOption,
  type CompiledEscape,
  type CompiledKernel,
  type DeviceMemory,
  type KernelBackend,
  backendKey,
  resolveBackend,
} from "./backend.js";
import { type PlanStep, groupKernels } from "./fusion.js";
import { RenderDeclined, renderGpuJs } from "./gpujs-render.js";
import { coalesce } from "./kernel-ir.js";
import { optimize } from "./passes.js";
import { type ResidentMemory, residentMemory } from "./resident.js";

/** What `jitted.lower(...)` reports about one kernel. */
export interface KernelReport {
  name: string;
  outShape: readonly number[];
  /** The primitives fused into it. */
  fused: readonly string[];
  /** Its gpu.js kernel source text (also for other backends, to read what would be emitted). */
  source: string;
  /** Where it ran (`"gpu.js:webasm"`, `"ts"`, ...); `"not run"` before its first call. */
  ranOn: string;
  fallbackReason?: string;
}

export interface LoweredReport {
  /** The optimised jaxpr, in JAX's text form. */
  jaxpr: string;
  /** The staged jaxpr before the passes. */
  stagedJaxpr: string;
  kernels: KernelReport[];
  /** Primitives run through their CPU reference implementation (not those the backend ran natively). */
  escapes: string[];
  /** The plan, one line per step: `kernel k_… f32[128,512] ← 2 inputs (fused …)` or `escape argmax`. */
  plan: string[];
  /**
   * Where the program ran: `"reference"`, or the runtimes its kernels ran on (e.g. `"gpu.js:webasm"`),
   * plus `"+reference escapes"` when some equations ran on the CPU implementations.
   */
  backend: string;
}

interface Compiled {
  readonly optimized: ClosedJaxpr;
  readonly steps: readonly PlanStep[];
  readonly kernels: readonly (CompiledKernel | null)[];
  /** Per escape step, the backend's own implementation when it took the equation. */
  readonly escapes: readonly (CompiledEscape | null)[];
  /** Per step, the variables whose last read is that step. */
  readonly releaseAfter: readonly Var[][];
  /** Buffers safe to recycle (written by a kernel, read only by kernels, not outputs). */
  readonly recyclable: ReadonlySet<Var>;
  /** The program's input binders (their heap copies may be cached across calls)... */
  readonly programInputs: ReadonlySet<Var>;
  /** ... and its constant binders (cached at once). */
  readonly constInputs: ReadonlySet<Var>;
  /** The backend's memory the kernels were compiled against (resident plans), if any. */
  readonly memory: DeviceMemory | undefined;
}

export class Executable {
  private compiledPlan: Compiled | null = null;
  private readonly backend: KernelBackend | null;
  private hasRun = false;
  constructor(
    readonly closed: ClosedJaxpr,
    readonly backendOption: BackendOption,
  ) {
    this.backend = resolveBackend(backendOption);
  }

  get key(): string {
    return backendKey(this.backendOption);
  }

  private compile(): Compiled {
    // A backend's memory is replaced when it is disposed: kernels compiled for the old one go too.
    const memory = this.backend!.memory;
    if (this.compiledPlan && this.compiledPlan.memory === memory) return this.compiledPlan;
    const optimized = optimize(this.closed);
    const steps = groupKernels(optimized.jaxpr);
    // Backends receive simplified kernels (size-1 axes dropped, mergeable axes merged).
    const kernels = steps.map((s) =>
      s.kind === "kernel" ? this.backend!.compile(coalesce(s.kernel)) : null,
    );
    const escapes = steps.map((s) =>
      s.kind === "escape" ? (this.backend!.compileEscape?.(s.eqn) ?? null) : null,
    );
    const lastUse = new Map<Var, number>();
    const readers = new Map<Var, boolean>();
    steps.forEach((s, k) => {
      const ins = s.kind === "kernel" ? s.inputs : s.eqn.inputs.filter((a): a is Var => !(a instanceof Lit));
      for (const v of ins) {
        lastUse.set(v, k);
        if (s.kind !== "kernel") readers.set(v, false);
        else if (!readers.has(v)) readers.set(v, true);
      }
    });
    const outs = new Set(optimized.jaxpr.outs.filter((a): a is Var => !(a instanceof Lit)));
    const releaseAfter: Var[][] = steps.map(() => []);
    for (const [v, k] of lastUse) if (!outs.has(v)) releaseAfter[k]!.push(v);
    const recyclable = new Set<Var>();
    steps.forEach((s, k) => {
      if (
        s.kind === "kernel" &&
        kernels[k]!.reusesOutput &&
        s.output.aval.dtype === "float32" &&
        !outs.has(s.output) &&
        readers.get(s.output) === true
      )
        recyclable.add(s.output);
    });
    const programInputs = new Set(optimized.jaxpr.inBinders);
    const constInputs = new Set(optimized.jaxpr.constBinders);
    this.compiledPlan = {
      optimized,
      steps,
      kernels,
      escapes,
      releaseAfter,
      recyclable,
      programInputs,
      constInputs,
      memory,
    };
    return this.compiledPlan;
  }

  /** Runs the program on concrete arguments (constants are bound from the closed jaxpr). */
  run(args: readonly Tensor[]): Tensor[] {
    if (this.backend === null) return evalJaxpr(this.closed.jaxpr, this.closed.consts, args);
    const plan = this.compile();
    this.hasRun = true;
    if (plan.memory) return runResident(plan, plan.memory, args);
    const env = new Map<Var, Tensor>();
    const j = plan.optimized.jaxpr;
    j.constBinders.forEach((v, i) => env.set(v, plan.optimized.consts[i]!));
    j.inBinders.forEach((v, i) => env.set(v, args[i]!));
    const read = (a: Atom): Tensor => (a instanceof Lit ? a.value : env.get(a)!);
    const pool = new Map<number, Float32Array[]>();
    const f32Cache = new Map<Var, Float32Array>();
    const asF32 = (v: Var): Float32Array => {
      const buf = env.get(v)!._buf!;
      if (buf instanceof Float32Array) return buf;
      let c = f32Cache.get(v);
      if (c === undefined) {
        c = Float32Array.from(buf);
        f32Cache.set(v, c);
      }
      return c;
    };
    plan.steps.forEach((step, k) => {
      const native = plan.escapes[k];
      if (step.kind === "escape" && native) {
        native.run(step.eqn.inputs.map(read)).forEach((t, i) => env.set(step.eqn.outBinders[i]!, t));
      } else if (step.kind === "escape") {
        const { prim, params } = step.eqn;
        const ins = step.eqn.inputs.map(read);
        const outAvals = prim.abstractEval(
          ins.map((t) => t.aval),
          params,
        );
        const outs = prim.impl(ins, params, outAvals);
        step.eqn.outBinders.forEach((v, i) => env.set(v, outs[i]!));
      } else {
        const compiled = plan.kernels[k]!;
        const aval = step.output.aval;
        const n = aval.shape.reduce((p, d) => p * d, 1);
        const recycled = plan.recyclable.has(step.output) ? pool.get(n)?.pop() : undefined;
        const result = compiled.run(step.inputs.map(asF32), recycled);
        const buf = aval.dtype === "float32" ? result : allocate(aval.dtype, n);
        if (buf !== result) for (let i = 0; i < n; i++) buf[i] = result[i]!;
        env.set(step.output, Tensor._fromBuffer(aval.shape, aval.dtype, buf, aval.weakType));
      }
      releaseAfterStep(k);
    });
    function releaseAfterStep(k: number): void {
      for (const v of plan.releaseAfter[k]!) {
        if (plan.recyclable.has(v)) {
          const b = env.get(v)!._buf as Float32Array;
          const list = pool.get(b.length) ?? [];
          list.push(b);
          pool.set(b.length, list);
        }
        env.delete(v);
        f32Cache.delete(v);
      }
    }
    return j.outs.map(read);
  }

  /** The report `jitted.lower(...)` returns; `runOnce` runs the program first so runtimes are known. */
  report(runOnce: () => void): LoweredReport {
    if (this.backend === null) {
      return {
        jaxpr: this.closed.toString(),
        stagedJaxpr: this.closed.toString(),
        kernels: [],
        escapes: [],
        plan: ["interpret the staged jaxpr"],
        backend: "reference",
      };
    }
    const plan = this.compile();
    if (!this.hasRun) runOnce();
    const kernels: KernelReport[] = [];
    const escapes: string[] = [];
    const nativeEscapes: string[] = [];
    const lines: string[] = [];
    plan.steps.forEach((s, k) => {
      if (s.kind === "escape") {
        const native = plan.escapes[k];
        if (native) nativeEscapes.push(native.ranOn);
        else escapes.push(s.eqn.prim.name);
        lines.push(`escape ${s.eqn.prim.name}${native ? ` on ${native.ranOn}` : ""}`);
        return;
      }
      const c = plan.kernels[k]!;
      let source = c.source;
      if (source === undefined) {
        try {
          source = renderGpuJs(coalesce(s.kernel), "webasm").source;
        } catch (e) {
          if (!(e instanceof RenderDeclined)) throw e;
          source = `// gpu.js declined: ${e.message}`;
        }
      }
      const name = /^function (k_[0-9a-f]+)/.exec(source)?.[1] ?? "k_?";
      lines.push(
        `kernel ${name} ${avalToString(s.output.aval)} <- ${s.inputs.length} inputs on ${c.ranOn} (fused ${[...new Set(s.fused)].join(", ") || "copy"})`,
      );
      kernels.push({
        name,
        outShape: s.kernel.outShape,
        fused: s.fused,
        source,
        ranOn: c.ranOn,
        ...(c.fallbackReason ? { fallbackReason: c.fallbackReason } : {}),
      });
    });
    const runtimes = [...new Set([...kernels.map((k) => k.ranOn), ...nativeEscapes])];
    let backend = runtimes.length ? runtimes.join("+") : "reference";
    if (escapes.length && runtimes.length) backend += "+reference escapes";
    return {
      jaxpr: plan.optimized.toString(),
      stagedJaxpr: this.closed.toString(),
      kernels,
      escapes,
      plan: lines,
      backend,
    };
  }
}

const sizeOf = (v: Var): number => v.aval.shape.reduce((p, d) => p * d, 1);

/** Runs a plan resident in `mem` (see the module comment). */
function runResident(plan: Compiled, mem: DeviceMemory, args: readonly Tensor[]): Tensor[] {
  return new ResidentRun(plan, mem).run(args);
}

/**
 * One resident call. A class rather than closures: a call creates no functions (closure creation
 * is measurable at this call rate, notably under tsx, which wraps each one).
 */
class ResidentRun {
  private readonly res: ResidentMemory;
  /** JS-side values: program inputs, escape results, heap values an escape needed as Tensors. */
  private readonly values = new Map<Var, Tensor>();
  /** Heap offsets of float32 copies of values. */
  private readonly ptrs = new Map<Var, number>();
  /** Values whose block this call allocated (freed at the last use, or at the end). */
  private readonly owned = new Set<Var>();
  /** Blocks of literals copied for one escape step. */
  private readonly temps: number[] = [];

  constructor(
    private readonly plan: Compiled,
    private readonly mem: DeviceMemory,
  ) {
    this.res = residentMemory(mem);
  }

  run(args: readonly Tensor[]): Tensor[] {
    const { plan, mem, res, values, ptrs, owned } = this;
    const j = plan.optimized.jaxpr;
    for (let i = 0; i < j.constBinders.length; i++) values.set(j.constBinders[i]!, plan.optimized.consts[i]!);
    for (let i = 0; i < j.inBinders.length; i++) values.set(j.inBinders[i]!, args[i]!);
    res.enter();
    try {
      for (let k = 0; k < plan.steps.length; k++) {
        const step = plan.steps[k]!;
        if (step.kind === "kernel") this.kernel(plan.kernels[k]!, step.inputs, step.output);
        else this.escape(plan.escapes[k] ?? null, step.eqn);
        for (const v of plan.releaseAfter[k]!) {
          if (owned.delete(v)) mem.free(ptrs.get(v)!);
          ptrs.delete(v);
          values.delete(v);
        }
      }
      const results = new Map<Var, Tensor>();
      const outs: Tensor[] = [];
      for (const a of j.outs) {
        if (a instanceof Lit) {
          outs.push(a.value);
          continue;
        }
        let t = results.get(a) ?? values.get(a);
        if (t === undefined) {
          const { shape, dtype, weakType } = a.aval;
          // A float32 block of this call becomes the result's own buffer where the memory allows.
          const view = dtype === "float32" && owned.has(a) ? res.view(ptrs.get(a)!, sizeOf(a)) : null;
          if (view) owned.delete(a);
          t = view ? Tensor._fromBuffer(shape, dtype, view, weakType) : this.asTensor(a);
        }
        results.set(a, t);
        outs.push(t);
      }
      return outs;
    } finally {
      // Blocks not handed to result views (outputs copied out, values nobody read, or everything
      // after an error).
      for (const v of owned) mem.free(ptrs.get(v)!);
      for (const p of this.temps) mem.free(p);
      res.exit();
    }
  }

  private alloc(v: Var): number {
    const p = this.mem.alloc(4 * sizeOf(v));
    this.ptrs.set(v, p);
    this.owned.add(v);
    return p;
  }

  /** The heap offset of a value, copying it in (once per call, or cached for program inputs). */
  private inHeap(v: Var): number {
    const have = this.ptrs.get(v);
    if (have !== undefined) return have;
    const buf = this.values.get(v)!._buf!;
    const constant = this.plan.constInputs.has(v);
    if (constant || this.plan.programInputs.has(v)) {
      const p = this.res.placeInput(buf, constant);
      if (p >= 0) {
        this.ptrs.set(v, p);
        return p;
      }
    }
    const p = this.alloc(v);
    this.res.write(p, buf);
    return p;
  }

  /** An escape input's offset; a literal goes through the input cache (it lives with the jaxpr). */
  private atomInHeap(a: Atom): number {
    if (!(a instanceof Lit)) return this.inHeap(a);
    const buf = a.value._buf!;
    let p = this.res.placeInput(buf, true);
    if (p < 0) {
      p = this.mem.alloc(4 * buf.length);
      this.temps.push(p);
      this.res.write(p, buf);
    }
    return p;
  }

  /** A JS-side Tensor of a value (a copy out of the heap, converted to its dtype). */
  private asTensor(a: Atom): Tensor {
    if (a instanceof Lit) return a.value;
    let t = this.values.get(a);
    if (t === undefined) {
      const { shape, dtype, weakType } = a.aval;
      t = Tensor._fromBuffer(shape, dtype, this.res.read(this.ptrs.get(a)!, sizeOf(a), dtype), weakType);
      this.values.set(a, t);
    }
    return t;
  }

  private kernel(compiled: CompiledKernel, inputs: readonly Var[], output: Var): void {
    const ins: number[] = [];
    for (const v of inputs) ins.push(this.inHeap(v));
    const o = this.alloc(output);
    if (compiled.runPtr) {
      compiled.runPtr(ins, o);
      return;
    }
    // A fallback kernel works on JS arrays: copies in and out.
    const f32 = this.mem.f32();
    const arrays = inputs.map((v, i) => f32.slice(ins[i]! / 4, ins[i]! / 4 + sizeOf(v)));
    this.mem.f32().set(compiled.run(arrays), o / 4);
  }

  private escape(native: CompiledEscape | null, eqn: JaxprEqn): void {
    if (native?.runPtr) {
      const ins: number[] = [];
      for (const a of eqn.inputs) ins.push(this.atomInHeap(a));
      const outs: number[] = [];
      for (const v of eqn.outBinders) outs.push(this.alloc(v));
      native.runPtr(ins, outs);
      for (const p of this.temps.splice(0)) this.mem.free(p);
      return;
    }
    const ins: Tensor[] = [];
    for (const a of eqn.inputs) ins.push(this.asTensor(a));
    const outs = native
      ? native.run(ins)
      : eqn.prim.impl(
          ins,
          eqn.params,
          eqn.prim.abstractEval(
            ins.map((t) => t.aval),
            eqn.params,
          ),
        );
    for (let i = 0; i < eqn.outBinders.length; i++) this.values.set(eqn.outBinders[i]!, outs[i]!);
  }
}

const executables = new WeakMap<ClosedJaxpr, Map<string, Executable>>();

/** The executable of a closed jaxpr on a backend, built once per (jaxpr, backend). */
export function executableFor(closed: ClosedJaxpr, backend: BackendOption): Executable {
  let m = executables.get(closed);
  if (m === undefined) {
    m = new Map();
    executables.set(closed, m);
  }
  const key = backendKey(backend);
  let e = m.get(key);
  if (e === undefined) {
    e = new Executable(closed, backend);
    m.set(key, e);
  }
  return e;
}
