/** Tree flatten/unflatten overhead (reported, never asserted: timings flake on shared machines). */
import { flatten, unflatten } from "../src/core/tree.js";

export function benchTree(): { name: string; us: number }[] {
  const t = Object.fromEntries(
    Array.from({ length: 10 }, (_, i) => [
      `layer${i}`,
      { w: [1, 2, 3, 4, 5], b: { x: 1, y: [2, 3] }, s: 4, e: null },
    ]),
  );
  const n = 20000;
  for (let i = 0; i < 2000; i++) unflatten(flatten(t)[1], flatten(t)[0]);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const [ls, def] = flatten(t);
    unflatten(def, ls);
  }
  return [{ name: "tree flatten+unflatten, 90 leaves", us: ((performance.now() - t0) * 1000) / n }];
}
