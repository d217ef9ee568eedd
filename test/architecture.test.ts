/** Imports point one way: core ← transforms ← (nn, optim) ← (testing, cli); nn and optim never meet. */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = join(__dirname, "..", "src");
const LAYER: Record<string, number> = { core: 0, transforms: 1, nn: 2, optim: 2, testing: 3, cli: 3 };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

function area(path: string): string | null {
  const top = relative(SRC, path).split(/[\\/]/)[0]!;
  return top in LAYER ? top : null;
}

describe("architecture", () => {
  it("no upward or sideways imports between src/ folders", () => {
    const bad: string[] = [];
    for (const file of files(SRC)) {
      const from = area(file);
      if (from === null) continue;
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+["']([^"']+)["']/g)) {
        const spec = m[1]!;
        if (!spec.startsWith(".")) continue;
        const to = area(join(file, "..", spec));
        if (to === null || to === from) continue;
        const sideways = (from === "nn" && to === "optim") || (from === "optim" && to === "nn");
        if (LAYER[to]! > LAYER[from]! || sideways) bad.push(`${relative(SRC, file)} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
