/**
 * Which compute backend ran, as the library reports it. The planned report is
 * `tsjax.debug.report()` (shared/GPUJS.md); until the library exposes one, every operation runs on
 * the primitives' reference CPU implementations, and the page says so.
 */

/** What the page shows when the library reports no backend. */
export const REFERENCE_BACKEND = "reference (cpu)";

/**
 * The backend name from the library's own report when it has one (a string, or an object with a
 * string `backend`), else {@link REFERENCE_BACKEND}.
 *
 * @example computeBackend(await import("tsjax")); // "reference (cpu)"
 */
export function computeBackend(library: object): string {
  const report = (library as { debug?: { report?: () => unknown } }).debug?.report;
  if (typeof report !== "function") return REFERENCE_BACKEND;
  const r = report();
  if (typeof r === "string" && r.length > 0) return r;
  const named = (r as { backend?: unknown } | null)?.backend;
  return typeof named === "string" && named.length > 0 ? named : REFERENCE_BACKEND;
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
