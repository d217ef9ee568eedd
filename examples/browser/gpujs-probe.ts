/**
 * Which runtime gpu.js picks in this browser, found by running one tiny kernel. The page loads
 * gpu.js's browser build as a classic script (a global `GPU`), as the library's jit expects in a
 * browser; the library's own compute still reports its backend separately (see backend.ts).
 */

/** gpu.js kernel class names → the runtime they mean. */
const KERNEL_CLASS: Record<string, string> = {
  CPUKernel: "cpu",
  WebAssemblyKernel: "webasm",
  WebGLKernel: "webgl",
  WebGL2Kernel: "webgl2",
  WebGPUKernel: "webgpu",
};

/** What the probe found. */
export interface GpuJsProbe {
  /** `webgl2`, `webgl`, `webgpu`, `webasm` or `cpu`; the class name when it is none of those. */
  runtime: string;
  /** The kernel doubled `[1, 2, 3, 4]` correctly. */
  correct: boolean;
}

interface GpuJsKernel {
  (...args: unknown[]): ArrayLike<number>;
  setOutput(out: number[]): GpuJsKernel;
  kernel?: { constructor: { name: string; mode?: unknown } };
  constructor: { name: string; mode?: unknown };
}

interface GpuJs {
  createKernel(fn: (this: { thread: { x: number } }, a: number[]) => number): GpuJsKernel;
  destroy?(): void;
}

/**
 * Runs `a[i] * 2` through gpu.js and reports the runtime it chose, or `null` when gpu.js is not
 * loaded (no global `GPU`).
 *
 * @example probeGpuJs(); // { runtime: "webgl2", correct: true } in headless chromium
 */
export function probeGpuJs(): GpuJsProbe | null {
  const GPU = (globalThis as { GPU?: new () => GpuJs }).GPU;
  if (typeof GPU !== "function") return null;
  const gpu = new GPU();
  try {
    const kernel = gpu
      .createKernel(function (this: { thread: { x: number } }, a: number[]) {
        return a[this.thread.x]! * 2;
      })
      .setOutput([4]);
    const out = Array.from(kernel([1, 2, 3, 4]));
    // gpu.js wraps the kernel it built; the inner object's class names the runtime. The minified
    // build mangles some class names (WebAssemblyKernel becomes `e`): then the class's static
    // `mode` says it ("gpu" for every GL kernel, whose names survive).
    const cls = (kernel.kernel ?? kernel).constructor;
    const mode = typeof cls.mode === "string" && cls.mode !== "gpu" ? cls.mode : undefined;
    return { runtime: KERNEL_CLASS[cls.name] ?? mode ?? cls.name, correct: out.join(",") === "2,4,6,8" };
  } finally {
    gpu.destroy?.();
  }
}
