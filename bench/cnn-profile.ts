/**
 * `npx tsx bench/cnn-profile.ts`: where the time of bench/peers.ts's jitted CNN step goes on the
 * `"wasm"` backend (B = 64, 28×28×1, conv3×3 1→32, ReLU, conv3×3 32→64, ReLU, 2×2 max-pool, dense
 * 9216→10, softmax cross-entropy, grad + SGD). Every compiled kernel and native escape is wrapped
 * in a timer; the step total minus their sum is the executor plus the escapes left to the reference
 * implementations. Prints per-step milliseconds of each step above 0.5 ms (the median, or with
 * `BENCH_STAT=min` the fastest of `BENCH_REPS` steps, default 5), then the plan.
 */
import { jit } from "../src/index.js";
import type { CompiledEscape, CompiledKernel, KernelBackend } from "../src/transforms/jit/backend.js";
import type { Kernel } from "../src/transforms/jit/kernel-ir.js";
import { wasmJitBackend } from "../src/transforms/jit/wasm-backend.js";
import type { JaxprEqn } from "../src/core/jaxpr.js";
import { cnnProblem, cnnStep } from "./cnn.js";
import { median } from "./timing.js";

const { params, x: xs, y: ys } = cnnProblem();

const inner = wasmJitBackend({ threads: 2 });
/** Per step name, the milliseconds of the current step. */
const current = new Map<string, number>();
const add = (key: string, ms: number) => current.set(key, (current.get(key) ?? 0) + ms);
const timed = <A extends unknown[], R>(key: string, f: (...a: A) => R) => {
  current.set(key, 0);
  return (...a: A): R => {
    const t0 = performance.now();
    const r = f(...a);
    add(key, performance.now() - t0);
    return r;
  };
};
const profiler: KernelBackend = {
  name: "profile",
  compile(k: Kernel): CompiledKernel {
    const c = inner.compile(k);
    const what = k.reduction ? `red ${k.reduction.shape.join("x")}` : "ew";
    const key = `#${current.size} kernel ${k.outShape.join("x")} ${what}`;
    const run = timed(key, c.run.bind(c));
    return {
      get ranOn() {
        return c.ranOn;
      },
      reusesOutput: c.reusesOutput,
      run,
      // The resident plan calls runPtr: time that path (the one the jit takes), not the copies.
      ...(c.runPtr ? { runPtr: timed(key, c.runPtr.bind(c)) } : {}),
    };
  },
  compileEscape(e: JaxprEqn): CompiledEscape | null {
    const c = inner.compileEscape!(e);
    if (!c) return null;
    const key = `#${current.size} escape ${e.prim.name} on ${c.ranOn}`;
    return {
      ranOn: c.ranOn,
      run: timed(key, c.run.bind(c)),
      ...(c.runPtr ? { runPtr: timed(key, c.runPtr.bind(c)) } : {}),
    };
  },
  ...(inner.memory ? { memory: inner.memory } : {}),
};
const step = jit(cnnStep, { backend: profiler });
for (let i = 0; i < 2; i++) step(params, xs, ys);
const reps = Number(process.env.BENCH_REPS ?? 5);
const totals: number[] = [];
const per = new Map<string, number[]>();
for (let i = 0; i < reps; i++) {
  for (const k of current.keys()) current.set(k, 0);
  const t0 = performance.now();
  step(params, xs, ys);
  totals.push(performance.now() - t0);
  for (const [k, v] of current) per.set(k, [...(per.get(k) ?? []), v]);
}
let sum = 0;
for (const [k, v] of per) {
  const ms = median(v);
  sum += ms;
  if (ms > 0.5) console.log(ms.toFixed(2).padStart(8), k);
}
console.log(`step ${median(totals).toFixed(1)} ms, kernels + native escapes ${sum.toFixed(1)} ms`);
console.log(step.lower(params, xs, ys).plan.join("\n"));
inner.dispose();
