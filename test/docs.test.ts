/**
 * docs/porting-from-jax.md cannot rot: every name in the tsjax column of its tables is a real export,
 * the SAM port it shows is the file examples/porting/sam-train-step.ts as it is, and the two ports
 * in that file (written out, and optim.samTrainStep) take the same steps.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type Batch,
  type OfficialFlags,
  libraryTrainStep,
  officialTrainStep,
} from "../examples/porting/sam-train-step.js";
import * as tsjax from "../src/index.js";
import { type Tensor, nn, numpy as np, optim, random, tree } from "../src/index.js";
import * as testing from "../src/testing/index.js";

const root = join(__dirname, "..");
const doc = readFileSync(join(root, "docs/porting-from-jax.md"), "utf8");

/** The rows of every Markdown table between the names markers, as arrays of cells. */
function nameTables(text: string): { header: string[]; rows: string[][] }[] {
  const body = text.split("<!-- names:start -->")[1]?.split("<!-- names:end -->")[0];
  if (body === undefined)
    throw new Error("docs/porting-from-jax.md lacks the <!-- names:start/end --> markers");
  const tables: { header: string[]; rows: string[][] }[] = [];
  let current: { header: string[]; rows: string[][] } | null = null;
  for (const line of body.split("\n")) {
    if (!line.startsWith("|")) {
      current = null;
      continue;
    }
    const cells = line
      .slice(1, line.trimEnd().length - 1)
      .split("|")
      .map((c) => c.trim());
    if (current === null) tables.push((current = { header: cells, rows: [] }));
    else if (!/^-+$/.test(cells[0]!)) current.rows.push(cells);
  }
  return tables;
}

const codeSpans = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

/** Resolves `np.sum`, `lax.dotGeneral`, `x.astype`, `testing.x`, `grad(f, { ... })` to a value, or undefined. */
function resolve(span: string): unknown {
  const path = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*/.exec(span)?.[0];
  if (!path) return undefined;
  const [head, ...rest] = path.split(".");
  let obj: unknown =
    head === "np"
      ? tsjax.numpy
      : head === "x"
        ? tsjax.Tensor.prototype
        : head === "testing"
          ? testing
          : (tsjax as Record<string, unknown>)[head!];
  for (const seg of rest) {
    if (obj === null || obj === undefined || !(seg in Object(obj))) return undefined;
    // On Tensor.prototype, read a getter (`x.T`) without calling it on the prototype itself.
    const d = obj === tsjax.Tensor.prototype ? Object.getOwnPropertyDescriptor(obj, seg) : undefined;
    obj = d?.get ?? (obj as Record<string, unknown>)[seg];
  }
  return obj;
}

describe("docs/porting-from-jax.md", () => {
  const tables = nameTables(doc);

  it("has a name table for each JAX module it promises", () => {
    const sections = [...doc.split("<!-- names:start -->")[1]!.matchAll(/^### (.+)$/gm)].map((m) => m[1]);
    expect(sections).toEqual([
      "jax",
      "jax.numpy",
      "jax.lax",
      "jax.random",
      "jax.tree_util",
      "jax.nn",
      "flax.linen",
      "optax",
    ]);
    expect(tables).toHaveLength(sections.length);
    for (const t of tables) expect(t.header.slice(0, 2)).toEqual(["JAX", "tsjax"]);
  });

  it("names only real exports in its tsjax column", () => {
    const missing: string[] = [];
    let checked = 0;
    for (const { rows } of tables) {
      for (const row of rows) {
        const [jax, ts] = row;
        expect(jax, `row ${row.join(" | ")} has no JAX side`).toMatch(/`[^`]+`|^—$|\S/);
        if (ts === "—") continue;
        const spans = codeSpans(ts!);
        expect(spans.length, `row "${row.join(" | ")}" names nothing in the tsjax column`).toBeGreaterThan(0);
        for (const s of spans) {
          checked++;
          if (resolve(s) === undefined) missing.push(s);
        }
      }
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThan(250);
  });

  it("the resolver itself rejects names that do not exist", () => {
    for (const bad of ["np.nope", "lax.dot_general", "optim.tree.norm", "nn.Linear", "x.at", "pmap"])
      expect(resolve(bad), bad).toBeUndefined();
    for (const good of ["np.sum", "lax.switch", "x.T", "grad(f, { argnums })", "nn.initializers.heNormal"])
      expect(resolve(good), good).toBeDefined();
  });

  it("shows examples/porting/sam-train-step.ts as it is", () => {
    const marker = "<!-- include: examples/porting/sam-train-step.ts#port -->";
    const after = doc.split(marker)[1];
    expect(after, `missing ${marker}`).toBeDefined();
    const shown = /^\s*```ts\n([\s\S]*?)```/.exec(after!)?.[1];
    const file = readFileSync(join(root, "examples/porting/sam-train-step.ts"), "utf8");
    const region = file.split("// --8<-- [start:port]\n")[1]!.split("// --8<-- [end:port]")[0];
    expect(shown).toBe(region);
  });
});

describe("the SAM train_step port", () => {
  const flags: OfficialFlags = {
    rho: 0.05,
    weightDecay: 5e-3,
    labelSmoothing: 0.1,
    gradClipNorm: 0.5, // low enough that the clip acts in this small problem
    learningRate: optim.cosineDecaySchedule(0.1, 10),
    numClasses: 3,
  };
  const model = nn.Sequential([nn.Dense(8), nn.BatchNorm(), nn.relu, nn.Dense(3)]);
  const key = random.key(7);
  const init = model.init(random.foldIn(key, 0), [16, 5]);
  const batches: Batch[] = [1, 2, 3].map((i) => ({
    image: random.normal(random.foldIn(key, 10 + i), [16, 5]),
    label: random.randint(random.foldIn(key, 20 + i), [16], 0, 3),
  }));

  it("written out, it takes the same steps as optim.samTrainStep", () => {
    const a = officialTrainStep(model, flags);
    const b = libraryTrainStep(model, flags);
    let pa: unknown = init.params;
    let pb: unknown = init.params;
    let [oa, ob] = [a.init(pa), b.init(pb)];
    let [sa, sb]: unknown[] = [init.state, init.state];
    batches.forEach((batch, i) => {
      const rng = random.foldIn(key, 100 + i);
      const ra = a.step(pa, oa, sa, batch, rng);
      const rb = b.step(pb, ob, sb, batch, rng);
      expect(ra.loss.item()).toBeCloseTo(rb.metrics.loss.item(), 5);
      const la = tree.leaves<Tensor>(ra.params);
      const lb = tree.leaves<Tensor>(rb.params);
      la.forEach((x, j) => expect(np.allclose(x, lb[j]!, { rtol: 1e-5, atol: 1e-6 })).toBe(true));
      tree
        .leaves<Tensor>(ra.modelState)
        .forEach((x, j) => expect(np.allclose(x, tree.leaves<Tensor>(rb.modelState)[j]!)).toBe(true));
      // The step moved the weights.
      expect(tree.leaves<Tensor>(pa).some((x, j) => !np.allclose(x, la[j]!))).toBe(true);
      [pa, oa, sa, pb, ob, sb] = [
        ra.params,
        ra.optState,
        ra.modelState,
        rb.params,
        rb.optState,
        rb.modelState,
      ];
    });
    // The clip acts in this problem (so the test covers it): without it the first step differs.
    const loose = officialTrainStep(model, { ...flags, gradClipNorm: 1e9 });
    const rng = random.foldIn(key, 100);
    const tight = a.step(init.params, a.init(init.params), init.state, batches[0]!, rng).params;
    const free = loose.step(init.params, loose.init(init.params), init.state, batches[0]!, rng).params;
    expect(tree.leaves<Tensor>(tight).some((x, j) => !np.allclose(x, tree.leaves<Tensor>(free)[j]!))).toBe(
      true,
    );
  });
});
