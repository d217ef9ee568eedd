/**
 * Which backend runs the page's training step: read from the URL (`?backend=`, `?mode=`), and
 * classified from the jit's own report (`jitted.lower(...).backend`) for the page and its test.
 */
import { ConfigError, type JitOptions } from "../../src/index.js";

/** The page's `?backend=` values: `gpu.js` (default, jitted) and `reference` (eager, CPU). */
export const PAGE_BACKENDS = ["gpu.js", "reference"] as const;

/** gpu.js modes the page passes through from `?mode=` (see gpu.js's `new GPU({ mode })`). */
const GPUJS_MODES = ["gpu", "webgl", "webgl2", "webgpu", "cpu", "webasm"] as const;

/**
 * The trainer's `backend` for the page's query parameters: `"eager"` for `?backend=reference`, else
 * the jit on gpu.js, with gpu.js's `mode` when `?mode=` names one (gpu.js chooses otherwise).
 *
 * @example stepBackend(null, null); // { name: "gpu.js" }
 * @example stepBackend("reference", null); // "eager"
 */
export function stepBackend(
  backend: string | null,
  mode: string | null,
): "eager" | NonNullable<JitOptions["backend"]> {
  const b = backend ?? "gpu.js";
  if (!(PAGE_BACKENDS as readonly string[]).includes(b))
    throw new ConfigError(
      `backend must be one of ${PAGE_BACKENDS.join(", ")}, got ${JSON.stringify(b)}`,
      "page",
    );
  if (mode !== null && !(GPUJS_MODES as readonly string[]).includes(mode))
    throw new ConfigError(
      `mode must be one of ${GPUJS_MODES.join(", ")}, got ${JSON.stringify(mode)}`,
      "page",
    );
  if (b === "reference") {
    if (mode !== null)
      throw new ConfigError("mode is a gpu.js setting: drop it or drop backend=reference", "page");
    return "eager";
  }
  return mode === null ? { name: "gpu.js" } : { name: "gpu.js", mode: mode as (typeof GPUJS_MODES)[number] };
}

/** The runtimes a jit report can name, split into GPU APIs and CPU paths. */
const GPU_RUNTIMES = new Set(["webgl2", "webgl", "webgpu", "headlessgl"]);
const CPU_RUNTIMES = new Set(["cpu", "webasm", "ts"]);

/** What a backend report says ran. */
export interface BackendKind {
  /** `"gpu.js"` when some kernel ran through gpu.js, `"eager"`, `"reference"`, else `"other"`. */
  engine: "gpu.js" | "eager" | "reference" | "other";
  /** gpu.js runtimes named in the report (e.g. `["webgl2"]`, or `["cpu"]` where gpu.js fell back). */
  runtimes: string[];
  /** Whether any kernel ran on a GPU API. */
  onGpu: boolean;
  /** Whether some equations escaped to the reference CPU implementations. */
  escapes: boolean;
}

/**
 * Parses the jit's backend report, e.g. `"gpu.js:webgl2+reference escapes"` or
 * `"gpu.js:cpu+ts+reference escapes"` (runtimes joined by `+`), or the trainer's `"eager"`.
 *
 * @example classifyBackend("gpu.js:webgl2+reference escapes"); // { engine: "gpu.js", runtimes: ["webgl2"], onGpu: true, escapes: true }
 */
export function classifyBackend(report: string): BackendKind {
  const parts = report.split("+");
  const escapes = parts.includes("reference escapes");
  const runtimes = parts.filter((p) => p.startsWith("gpu.js:")).map((p) => p.slice("gpu.js:".length));
  const engine =
    runtimes.length > 0
      ? "gpu.js"
      : report === "eager"
        ? "eager"
        : report === "reference"
          ? "reference"
          : "other";
  return {
    engine,
    runtimes,
    onGpu: runtimes.some((r) => GPU_RUNTIMES.has(r)),
    escapes,
  };
}

/** Whether a runtime name is one of gpu.js's CPU paths (or the kernel-IR evaluator it falls back to). */
export function isCpuRuntime(runtime: string): boolean {
  return CPU_RUNTIMES.has(runtime);
}

/**
 * The GPU APIs this browser can actually use (`"webgpu"` when it hands out an adapter, `"webgl2"`
 * when a canvas gives a WebGL2 context), whatever the library runs on: what a gpu.js backend could
 * use here.
 *
 * @example await gpuApis(); // ["webgpu", "webgl2"] in a desktop Chrome, [] where neither works
 */
export async function gpuApis(): Promise<string[]> {
  const apis: string[] = [];
  const gpu =
    typeof navigator === "undefined"
      ? undefined
      : (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  try {
    if (gpu && (await gpu.requestAdapter())) apis.push("webgpu");
  } catch {
    // No adapter: WebGPU is not usable here.
  }
  if (typeof document !== "undefined" && document.createElement("canvas").getContext("webgl2"))
    apis.push("webgl2");
  return apis;
}
