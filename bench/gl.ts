/**
 * jit on gpu.js's headless-gl runtime (Mesa llvmpipe, software GL): the per-call overhead of a
 * one-kernel program on 10 elements, and the fused `(x*a+b)*c` and `tanh(x*a+b)*c` chains on 2^20
 * elements, next to gpu.js webasm in the same run. Report only (GL here is a correctness target).
 *
 * Run: `xvfb-run -a npx tsx bench/gl.ts` (without a display it says so and exits).
 */
import { type Tensor, jit, numpy as np } from "../src/index.js";
import type { BackendOption } from "../src/transforms/index.js";
import { time as timeRuns } from "./timing.js";

/** Milliseconds of `reps` calls after 3 warm-up calls (median). */
const time = (fn: () => unknown, reps: number, warmup = 3) => timeRuns(fn, reps, warmup);

const GL: BackendOption = { name: "gpu.js", mode: "headlessgl", require: "gpu" };
const WEBASM: BackendOption = { name: "gpu.js", mode: "webasm", require: "webasm" };

function rows(): [string, string][] {
  const out: [string, string][] = [];
  const small = [np.arange(10).astype("float32"), np.ones([10])];
  const n = 2 ** 20;
  const x = np
    .arange(n)
    .astype("float32")
    .mul(1 / n);
  const a = np.full([n], 1.5);
  const b = np.full([n], -0.25);
  const c = np.full([n], 2);
  for (const [tag, backend] of [
    ["headless-gl", GL],
    ["gpu.js webasm", WEBASM],
  ] as const) {
    const add = jit((p: Tensor, q: Tensor) => p.add(q), { backend });
    const t0 = performance.now();
    add(small[0]!, small[1]!);
    out.push([`${tag}: first call (trace + build) add 10`, `${(performance.now() - t0).toFixed(1)} ms`]);
    out.push([
      `${tag}: per-call, jitted add of 10 elements`,
      `${(time(() => add(small[0]!, small[1]!), 200) * 1000).toFixed(0)} µs`,
    ]);
    const fused = jit((v: Tensor, p: Tensor, q: Tensor, r: Tensor) => v.mul(p).add(q).mul(r), { backend });
    out.push([`${tag}: fused (x*a+b)*c, 2^20`, `${time(() => fused(x, a, b, c), 15).toFixed(2)} ms`]);
    const tanh = jit((v: Tensor, p: Tensor, q: Tensor, r: Tensor) => np.tanh(v.mul(p).add(q)).mul(r), {
      backend,
    });
    out.push([`${tag}: fused tanh(x*a+b)*c, 2^20`, `${time(() => tanh(x, a, b, c), 15).toFixed(2)} ms`]);
  }
  return out;
}

try {
  for (const [k, v] of rows()) console.log(`${k.padEnd(48)} ${v}`);
} catch (e) {
  console.log(`headless-gl unavailable (${(e as Error).message}); run under xvfb-run -a`);
}
