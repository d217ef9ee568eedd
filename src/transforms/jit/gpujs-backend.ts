/**
 * The gpu.js backend: each kernel is rendered to gpu.js source text, built once with
 * `createKernel` and cached on (kernel hash, mode). After the first run it reads which kernel class
 * gpu.js actually built (`kernel.kernel.constructor.name`, `fallbackReason`), reports it, and with
 * `require` raises a ConfigError instead of accepting a silent fallback. Kernels gpu.js cannot run
 * exactly (see `renderGpuJs`) run on the kernel-IR evaluator, and the report says why.
 *
 * The runtime gpu.js picks (probed once per backend) decides the text's flavour: `webasm` gets the
 * inline polynomial transcendentals, GL (headless-gl in Node, WebGL in a browser) gets GLSL-safe
 * text and a thread grid within the context's `maxTextureSize`, everything else plain `Math.*`.
 * In Node, headless-gl needs gpu.js's optional `gl` module built and an X display: under
 * `xvfb-run -a` (Mesa's llvmpipe) `mode: "gpu"` or `"headlessgl"` runs there, at about 0.13-0.2 ms
 * per kernel call (texture upload and read-back), so GL is a correctness and portability target
 * here, not the CPU fast path. Float64 programs never come here (they run on the reference).
 */
import { ConfigError } from "../../core/errors.js";
import type { CompiledKernel, KernelBackend } from "./backend.js";
import { tsBackend } from "./kernel-eval.js";
import { type Kernel, coalesce, kernelHash, sizeOfShape } from "./kernel-ir.js";
import { type GpuJsFlavour, RenderDeclined, renderGpuJs } from "./gpujs-render.js";

// gpu.js is CommonJS; load it lazily so programs that never use it do not pay for it.
type GpuJsKernel = ((...args: unknown[]) => unknown) & {
  kernel?: { constructor: { name: string }; fallbackReason?: string | null };
};
interface GpuJsInstance {
  createKernel(src: string, settings: Record<string, unknown>): GpuJsKernel;
  mode?: string;
}
let gpuModule: { GPU: new (opts: Record<string, unknown>) => GpuJsInstance } | null = null;
function loadGpuJs(): NonNullable<typeof gpuModule> {
  if (gpuModule === null) {
    // In a browser, gpu-browser.js defines a global GPU; in Node, require it (no static import, so a
    // browser bundle of tsjax does not need node:module).
    const g = globalThis as { GPU?: unknown; process?: { getBuiltinModule?: (m: string) => unknown } };
    if (typeof g.GPU === "function") gpuModule = { GPU: g.GPU as NonNullable<typeof gpuModule>["GPU"] };
    else {
      const mod = g.process?.getBuiltinModule?.("module") as
        | { createRequire(url: string): (id: string) => unknown }
        | undefined;
      if (!mod)
        throw new ConfigError(
          "gpu.js is not loaded: include gpu-browser.js (global GPU) or run on Node >= 20.16",
          "jit",
        );
      // The CommonJS build has a module-scoped `require` (and no import.meta.url); in ESM `require`
      // is missing, or a bundler's shim that throws on dynamic requires.
      const load = (r: (id: string) => unknown) => r("gpu.js") as NonNullable<typeof gpuModule>;
      try {
        gpuModule = load(typeof require === "function" ? require : mod.createRequire(import.meta.url));
      } catch {
        gpuModule = load(mod.createRequire(import.meta.url));
      }
    }
  }
  return gpuModule;
}

/** gpu.js kernel class names → the runtime they mean. */
const KERNEL_CLASS: Record<string, string> = {
  CPUKernel: "cpu",
  WebAssemblyKernel: "webasm",
  HeadlessGLKernel: "headlessgl",
  WebGLKernel: "webgl",
  WebGL2Kernel: "webgl2",
  WebGPUKernel: "webgpu",
};

/**
 * The runtime of a kernel gpu.js built. Minified builds (gpu-browser.min.js) mangle some class
 * names (WebAssemblyKernel becomes `e`), so an unknown name falls back to the class's static `mode`
 * ("cpu", "webasm", "webgpu"; "gpu" for the GL kernels, whose names survive minification).
 */
function runtimeOf(k: { constructor: { name: string; mode?: unknown } } | undefined): string | undefined {
  if (!k) return undefined;
  const mode = k.constructor.mode;
  return KERNEL_CLASS[k.constructor.name] ?? (typeof mode === "string" && mode !== "gpu" ? mode : undefined);
}

/** Built kernels kept per backend (programs hold their own; this bounds what retracing accumulates). */
const MAX_CACHED_KERNELS = 512;

const GL_RUNTIMES = new Set(["headlessgl", "webgl", "webgl2"]);
const GPU_RUNTIMES = new Set([...GL_RUNTIMES, "webgpu"]);

/** Stands in for an empty input (gpu.js cannot upload one; a kernel never reads it, see below). */
const PLACEHOLDER = new Float32Array(1);

/** Whether the runtime gpu.js chose satisfies `require` (`"gpu"` = any GL or WebGPU runtime). */
export function satisfies(ranOn: string, require: string | undefined): boolean {
  if (require === undefined) return true;
  if (require === "gpu") return GPU_RUNTIMES.has(ranOn);
  return ranOn === require;
}

export interface GpuJsBackendOptions {
  mode?: string;
  require?: string;
}

/** Flattens gpu.js's result (a Float32Array, or arrays of rows for 2D/3D outputs) into one array. */
function flattenResult(res: unknown, n: number): Float32Array {
  if (res instanceof Float32Array) return res.length === n ? res : res.slice(0, n);
  const rows: Float32Array[] = [];
  const collect = (v: unknown) => {
    if (v instanceof Float32Array) rows.push(v);
    else for (const w of v as unknown[]) collect(w);
  };
  collect(res);
  // webasm hands back views of one buffer: reuse it when the rows are contiguous.
  const first = rows[0];
  if (
    first &&
    rows.every(
      (r, i) =>
        r.buffer === first.buffer &&
        r.byteOffset === first.byteOffset + i * first.length * 4 &&
        r.length === first.length,
    )
  ) {
    return new Float32Array(first.buffer, first.byteOffset, n);
  }
  const out = new Float32Array(n);
  let k = 0;
  for (const r of rows) {
    out.set(r, k);
    k += r.length;
  }
  return out;
}

/** Creates a gpu.js backend (`jit(f, { backend: { name: "gpu.js", mode, require } })`). */
export function gpuJsBackend(opts: GpuJsBackendOptions = {}): KernelBackend {
  let gpu: GpuJsInstance | null = null;
  let flavour: GpuJsFlavour | null = null;
  let maxTextureSize: number | undefined;
  const cache = new Map<string, CompiledKernel>();
  const getGpu = (): GpuJsInstance => {
    if (gpu === null) {
      const { GPU } = loadGpuJs();
      try {
        gpu = new GPU(opts.mode ? { mode: opts.mode } : {});
      } catch (e) {
        // gpu.js refuses a mode it cannot run here (e.g. headlessgl without the gl module).
        throw new ConfigError(
          `gpu.js cannot run mode ${JSON.stringify(opts.mode)} here: ${(e as Error).message}`,
          "jit",
        );
      }
    }
    return gpu;
  };
  /** What gpu.js picks decides whether transcendentals need the inline polynomials; probe it once. */
  const getFlavour = (): GpuJsFlavour => {
    if (flavour === null) {
      const probe = getGpu().createKernel("function k_probe(a0) { return a0[this.thread.x] + 1.0; }", {
        output: [1],
        argumentTypes: { a0: "Array" },
        precision: "single",
      });
      probe(new Float32Array([1]));
      const ran = runtimeOf(probe.kernel) ?? "unknown";
      flavour = ran === "webasm" ? "webasm" : GL_RUNTIMES.has(ran) ? "gl" : "native";
      // The kernel classes report their GL limits as a static `features` object.
      const features = (probe.kernel?.constructor as { features?: { maxTextureSize?: number } } | undefined)
        ?.features;
      if (flavour === "gl") maxTextureSize = features?.maxTextureSize ?? 4096;
    }
    return flavour;
  };
  const label = `gpu.js${opts.mode ? `:${opts.mode}` : ""}`;
  return {
    name: "gpu.js",
    compile(raw: Kernel): CompiledKernel {
      const kernel = coalesce(raw);
      const key = kernelHash(kernel);
      const hit = cache.get(key);
      if (hit) {
        // Least recently used first in the Map's order: refresh on a hit, evict from the front.
        cache.delete(key);
        cache.set(key, hit);
        return hit;
      }
      if (cache.size >= MAX_CACHED_KERNELS) cache.delete(cache.keys().next().value!);
      const n = sizeOfShape(kernel.outShape);
      // An empty input of a non-empty kernel can only be read inside an empty reduction loop (a sum
      // over a size-0 axis), so it is never read: pass a one-element placeholder instead.
      const empty = kernel.argSizes.map((s) => s === 0);
      const padded = empty.some(Boolean)
        ? { ...kernel, argSizes: kernel.argSizes.map((s) => s || 1) }
        : kernel;
      let rendered: ReturnType<typeof renderGpuJs>;
      try {
        const fl = getFlavour();
        rendered = renderGpuJs(padded, fl, maxTextureSize === undefined ? {} : { maxTextureSize });
      } catch (e) {
        if (!(e instanceof RenderDeclined)) throw e;
        if (opts.require !== undefined)
          throw new ConfigError(
            `a kernel cannot run on gpu.js (${e.message}) and require is ${JSON.stringify(opts.require)}`,
            "jit",
          );
        const fallback = tsBackend.compile(kernel);
        const c: CompiledKernel = { ...fallback, ranOn: "ts", fallbackReason: e.message };
        cache.set(key, c);
        return c;
      }
      const argumentTypes: Record<string, string> = {};
      for (const a of rendered.argNames) argumentTypes[a] = "Array";
      const built = getGpu().createKernel(rendered.source, {
        output: rendered.output,
        argumentTypes,
        precision: "single",
        tactic: "precision",
        dynamicOutput: false,
        dynamicArguments: false,
        loopMaxIterations: rendered.loopMaxIterations,
      });
      let ranOn = label;
      let fallbackReason: string | undefined;
      let checked = false;
      const compiled: CompiledKernel = {
        get ranOn() {
          return ranOn;
        },
        get fallbackReason() {
          return fallbackReason;
        },
        reusesOutput: false,
        source: rendered.source,
        run(inputs) {
          if (n === 0) return new Float32Array(0);
          const res = built(...inputs.map((a, i) => (empty[i] ? PLACEHOLDER : a)));
          if (!checked) {
            checked = true;
            const runtime = runtimeOf(built.kernel) ?? (built.kernel?.constructor.name || "unknown");
            ranOn = `gpu.js:${runtime}`;
            const reason = built.kernel?.fallbackReason;
            if (reason) fallbackReason = String(reason);
            if (opts.mode && opts.mode !== runtime && !(opts.mode === "gpu" && GPU_RUNTIMES.has(runtime))) {
              fallbackReason ??= `gpu.js ran ${runtime} instead of the requested ${opts.mode}`;
            }
            if (!satisfies(runtime, opts.require)) {
              throw new ConfigError(
                `gpu.js ran kernel ${rendered.name} on ${runtime}, but ${JSON.stringify(opts.require)} is required${fallbackReason ? ` (${fallbackReason})` : ""}`,
                "jit",
              );
            }
          }
          return flattenResult(res, n);
        },
      };
      cache.set(key, compiled);
      return compiled;
    },
  };
}
