/**
 * The browser example in a real browser: Debian's chromium, driven by playwright-core, loads the
 * page from the tsup build, trains N SAM steps on the MNIST slice, and must show the loss falling,
 * the backend that ran, and the same losses as the same code run in Node.
 *
 * Skips only when /usr/bin/chromium is absent and CI is not set; under CI a missing browser fails.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { buildBrowserExample, libraryBuild, mnistSliceBytes } from "../../examples/browser/build.js";
import { computeBackend } from "../../examples/browser/backend.js";
import type { DemoProgress } from "../../examples/browser/main.js";
import { decodeSlice } from "../../examples/browser/mnist-slice.js";
import { type StaticServer, serveStatic } from "../../examples/browser/serve.js";
import { createTrainer, defaultConfig } from "../../examples/browser/train.js";
import * as tsjax from "../../src/index.js";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];
const STEPS = 30;
const root = join(__dirname, "../..");
const outDir = join(root, "examples/browser/dist");
const screenshot = join(outDir, "screenshot.png");

const haveChromium = existsSync(CHROMIUM);
const skip = !haveChromium && !process.env.CI;
if (skip)
  console.warn(
    `browser test skipped: ${CHROMIUM} not found (apt-get install chromium); under CI this fails instead`,
  );

/** Newest modification time of the files under `dir`. */
function newest(dir: string): number {
  return Math.max(
    ...readdirSync(dir, { withFileTypes: true }).map((e) => {
      const p = join(dir, e.name);
      return e.isDirectory() ? newest(p) : statSync(p).mtimeMs;
    }),
  );
}

/** Runs tsup when dist/ is missing or older than src/, so the page never tests a stale build. */
function ensureLibraryBuild(): void {
  if (existsSync(libraryBuild) && statSync(libraryBuild).mtimeMs >= newest(join(root, "src"))) return;
  execFileSync(process.execPath, [join(root, "node_modules/tsup/dist/cli-default.js")], {
    cwd: root,
    stdio: "pipe",
  });
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe.skipIf(skip)(`the browser example in ${CHROMIUM} (headless)`, () => {
  let server: StaticServer | undefined;
  let context: BrowserContext | undefined;
  let userDataDir: string | undefined;

  /** Builds the page from the tsup build, serves it and starts chromium (inside the test, so that any
   * failure here counts as a failed test rather than a skipped one). */
  async function setUp(): Promise<void> {
    ensureLibraryBuild();
    const built = await buildBrowserExample({ library: "dist", outDir });
    // The page runs the tsup build, not a private compile of the sources.
    expect(built.bundledModules).toContain("dist/index.js");
    expect(built.bundledModules.filter((m) => m.startsWith("src/"))).toEqual([]);
    server = await serveStatic(outDir);
    userDataDir = mkdtempSync(join(tmpdir(), "tsjax-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 820, height: 760 },
    });
  }

  afterAll(async () => {
    await context?.close();
    await server?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it(`trains ${STEPS} SAM steps, the loss falls, and the page says which backend ran`, async () => {
    expect(haveChromium, `${CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run)`).toBe(
      true,
    );
    await setUp();
    const page = await context!.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
    page.on("response", (r) => {
      if (r.status() >= 400) pageErrors.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    await page.goto(`${server!.url}?steps=${STEPS}`);
    await page.waitForFunction(() => ["done", "error"].includes(window.tsjaxDemo?.state), undefined, {
      timeout: 150_000,
    });
    const progress = (await page.evaluate(() => window.tsjaxDemo)) as DemoProgress;
    await page.screenshot({ path: screenshot, fullPage: true });

    expect(progress.error).toBeNull();
    expect(pageErrors).toEqual([]);
    expect(progress.state).toBe("done");
    expect(progress.losses).toHaveLength(STEPS);

    // Untrained, a 10-class softmax loss is about ln 10; SAM + SGD must bring it well down.
    const first = mean(progress.losses.slice(0, 5));
    const last = mean(progress.losses.slice(-5));
    expect(Math.abs(first - Math.log(10))).toBeLessThan(0.5);
    expect(last).toBeLessThan(0.6 * first);
    expect(progress.testAccuracy).toBeGreaterThan(0.5);
    // The digits drawn at the end: one prediction per image, most of them right.
    const labels = decodeSlice(mnistSliceBytes(512, 256)).test.labels;
    expect(progress.predictions).toHaveLength(16);
    expect(progress.predictions.filter((p, i) => p === labels[i]).length).toBeGreaterThan(8);

    // The backend is the library's own report (today: none, so the reference CPU implementations).
    const backend = computeBackend(tsjax);
    expect(progress.backend).toBe(backend);
    expect(await page.textContent("#backend")).toBe(backend);
    // What the browser offers a GPU backend is reported whatever ran (headless chromium has a
    // software WebGL2 even with --disable-gpu); it is only checked to be a list of known names.
    expect(progress.gpuApis.every((a) => a === "webgpu" || a === "webgl2")).toBe(true);
    // gpu.js's browser build loads and computes, on a GPU runtime or its CPU fallback alike.
    expect(progress.gpujs).not.toBeNull();
    expect(["webgl2", "webgl", "webgpu", "webasm", "cpu"]).toContain(progress.gpujs!.runtime);
    expect(progress.gpujs!.correct).toBe(true);
    expect(await page.textContent("#step")).toBe(`${STEPS} / ${STEPS}`);
    expect(await page.locator("#curve polyline").count()).toBe(1);
    const points = (await page.getAttribute("#curve polyline", "points"))!.trim().split(/\s+/);
    expect(points).toHaveLength(STEPS);

    // The bundle computes what the sources compute: the first steps agree with a Node run.
    const trainer = createTrainer(decodeSlice(mnistSliceBytes(512, 256)), defaultConfig);
    const nodeLosses = Array.from({ length: 8 }, () => trainer.step());
    nodeLosses.forEach((l, i) => {
      expect(Math.abs(progress.losses[i]! - l)).toBeLessThan(1e-4 * Math.max(1, Math.abs(l)));
    });
    expect(statSync(screenshot).size).toBeGreaterThan(0);

    // A bad query parameter stops the page with the library's typed error, shown to the reader.
    const bad = await context!.newPage();
    await bad.goto(`${server!.url}?batch=0`);
    await bad.waitForFunction(() => window.tsjaxDemo?.state === "error", undefined, { timeout: 60_000 });
    const shown = await bad.textContent("#status");
    expect(shown).toBe("ConfigError: createTrainer: batchSize must be an integer in [1, 512], got 0");
    expect(await bad.evaluate(() => window.tsjaxDemo.error)).toBe(shown);
  }, 300_000);
});
