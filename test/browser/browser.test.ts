/**
 * The browser example in a real browser: Debian's chromium, driven by playwright-core, loads the
 * page from the tsup build, trains N SAM steps on the MNIST slice (jitted on gpu.js, and once more
 * eagerly with `?backend=reference`), and must show the loss falling, the backend that ran, and the
 * same losses as the same computation run in Node.
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
import { classifyBackend, isCpuRuntime } from "../../examples/browser/backend.js";
import type { DemoProgress } from "../../examples/browser/main.js";
import { decodeSlice } from "../../examples/browser/mnist-slice.js";
import { type StaticServer, serveStatic } from "../../examples/browser/serve.js";
import { createTrainer, defaultConfig } from "../../examples/browser/train.js";

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
/** Steps whose losses are compared with Node's. */
const COMPARED = 8;
/** float32's unit roundoff, and the longest reduction in the model (a 784-pixel dot product). */
const EPS32 = 2 ** -24;
const REDUCTION = 784;
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

  /** A second browser with WebGL and WebGPU switched off: where gpu.js must fall back to its CPU path. */
  let noGpuContext: BrowserContext | undefined;
  let noGpuDataDir: string | undefined;
  async function launchWithoutGpuApis(): Promise<BrowserContext> {
    noGpuDataDir = mkdtempSync(join(tmpdir(), "tsjax-chromium-nogl-"));
    noGpuContext = await chromium.launchPersistentContext(noGpuDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...ARGS, "--disable-3d-apis", "--disable-webgl", "--disable-features=WebGPU"],
      viewport: { width: 820, height: 760 },
    });
    return noGpuContext;
  }

  afterAll(async () => {
    await context?.close();
    await noGpuContext?.close();
    await server?.close();
    for (const dir of [userDataDir, noGpuDataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Node's eager run of the same steps: the oracle for both page runs. */
  let nodeLosses: number[] | undefined;
  const nodeRun = (): number[] => {
    if (!nodeLosses) {
      const trainer = createTrainer(decodeSlice(mnistSliceBytes(512, 256)), defaultConfig);
      nodeLosses = Array.from({ length: COMPARED }, () => trainer.step());
    }
    return nodeLosses;
  };

  /** Loads the page with `query`, waits for it to finish, and returns its progress and errors. */
  async function runPage(query: string, shot?: string, ctx = context!): Promise<DemoProgress> {
    const page = await ctx.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
    page.on("response", (r) => {
      if (r.status() >= 400) pageErrors.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    await page.goto(`${server!.url}?steps=${STEPS}${query}`);
    await page.waitForFunction(() => ["done", "error"].includes(window.tsjaxDemo?.state), undefined, {
      timeout: 150_000,
    });
    const progress = (await page.evaluate(() => window.tsjaxDemo)) as DemoProgress;
    if (shot) await page.screenshot({ path: shot, fullPage: true });

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
    expect(await page.textContent("#backend")).toBe(progress.backend);
    expect(await page.textContent("#step")).toBe(`${STEPS} / ${STEPS}`);
    expect(await page.locator("#curve polyline").count()).toBe(1);
    const points = (await page.getAttribute("#curve polyline", "points"))!.trim().split(/\s+/);
    expect(points).toHaveLength(STEPS);
    expect(progress.msPerStep).toBeGreaterThan(0);
    console.info(
      `browser page${query || " (default)"}: backend ${progress.backend}, ${progress.msPerStep!.toFixed(1)} ms/step after a first step of ${progress.firstStepMs!.toFixed(0)} ms`,
    );
    await page.close();
    return progress;
  }

  /**
   * The backend is the jit's own report: kernels ran through gpu.js, on the runtime gpu.js chose.
   * Where the browser has no usable GPU API gpu.js falls back to its CPU path, and the report must
   * say so (CPU runtimes only), never claim a GPU.
   */
  function expectGpuJsReport(progress: DemoProgress): ReturnType<typeof classifyBackend> {
    const kind = classifyBackend(progress.backend);
    expect(kind.engine, progress.backend).toBe("gpu.js");
    expect(kind.runtimes.length).toBeGreaterThan(0);
    for (const r of kind.runtimes) expect(["webgl2", "webgl", "webgpu", "cpu", "webasm"]).toContain(r);
    // The probe kernel (plain gpu.js, no tsjax) runs where the jit's kernels ran.
    expect(progress.gpujs).not.toBeNull();
    expect(progress.gpujs!.correct).toBe(true);
    expect(kind.runtimes).toContain(progress.gpujs!.runtime);
    if (!kind.onGpu) expect(kind.runtimes.every(isCpuRuntime)).toBe(true);
    return kind;
  }

  /** The jitted float32 program computes what Node's eager float32 run computes, up to rounding:
   * gpu.js sums in another order and uses its own exp/log, so each step's loss may differ by a few
   * float32 roundings per term of the longest reduction (784 pixels), growing with the steps whose
   * parameters already differ. */
  function expectNodeLosses(progress: DemoProgress): void {
    const diffs = nodeRun().map((l, i) => Math.abs(progress.losses[i]! - l));
    console.info(
      `${progress.backend}: largest |loss - Node's| over ${COMPARED} steps ${Math.max(...diffs).toExponential(2)}`,
    );
    nodeRun().forEach((l, i) => {
      const tol = (i + 1) * REDUCTION * EPS32 * Math.max(1, Math.abs(l));
      expect(Math.abs(progress.losses[i]! - l), `step ${i + 1}`).toBeLessThan(tol);
    });
  }

  it(`trains ${STEPS} SAM steps jitted on gpu.js, the loss falls, and the page says which runtime ran`, async () => {
    expect(haveChromium, `${CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run)`).toBe(
      true,
    );
    await setUp();
    const progress = await runPage("", screenshot);
    expect(statSync(screenshot).size).toBeGreaterThan(0);

    const kind = expectGpuJsReport(progress);
    // A GPU runtime in the report must be one this browser offers (headless chromium has
    // SwiftShader's software WebGL2 even with --disable-gpu; a browser without it gets gpu.js:cpu).
    for (const api of ["webgl2", "webgpu"])
      if (kind.runtimes.includes(api)) expect(progress.gpuApis).toContain(api);
    // What the browser offers a GPU backend is reported whatever ran (headless chromium has a
    // software WebGL2 even with --disable-gpu); it is only checked to be a list of known names.
    expect(progress.gpuApis.every((a) => a === "webgpu" || a === "webgl2")).toBe(true);

    expectNodeLosses(progress);
  }, 300_000);

  it("runs the same training eagerly on the reference CPU implementations with ?backend=reference", async () => {
    if (!context) await setUp();
    const progress = await runPage("&backend=reference");
    expect(progress.backend).toBe("eager");
    expect(classifyBackend(progress.backend).engine).toBe("eager");
    // Same code, same float32 operations in the same order as in Node: equal but for the few
    // ulps the bundle's and Node's Math.exp/log may differ by.
    nodeRun().forEach((l, i) => {
      expect(Math.abs(progress.losses[i]! - l), `step ${i + 1}`).toBeLessThan(
        64 * EPS32 * Math.max(1, Math.abs(l)),
      );
    });
  }, 300_000);

  it("falls back to gpu.js's CPU path, and says so, in a browser without WebGL or WebGPU", async () => {
    if (!context) await setUp();
    const progress = await runPage("", undefined, await launchWithoutGpuApis());
    expect(progress.gpuApis).toEqual([]);
    const kind = expectGpuJsReport(progress);
    expect(kind.onGpu, progress.backend).toBe(false);
    expectNodeLosses(progress);
  }, 300_000);

  it("passes ?mode= on to gpu.js: mode=cpu runs every kernel on gpu.js's CPU path", async () => {
    if (!context) await setUp();
    const progress = await runPage("&mode=cpu");
    expect(classifyBackend(progress.backend)).toMatchObject({
      engine: "gpu.js",
      runtimes: ["cpu"],
      onGpu: false,
    });
    expectNodeLosses(progress);
  }, 300_000);

  it("stops with the library's typed error on a bad query parameter", async () => {
    if (!context) await setUp();
    // A bad query parameter stops the page with the library's typed error, shown to the reader.
    const bad = await context!.newPage();
    await bad.goto(`${server!.url}?batch=0`);
    await bad.waitForFunction(() => window.tsjaxDemo?.state === "error", undefined, { timeout: 60_000 });
    const shown = await bad.textContent("#status");
    expect(shown).toBe("ConfigError: createTrainer: batchSize must be an integer in [1, 512], got 0");
    expect(await bad.evaluate(() => window.tsjaxDemo.error)).toBe(shown);
    const badBackend = await context!.newPage();
    await badBackend.goto(`${server!.url}?backend=cuda`);
    await badBackend.waitForFunction(() => window.tsjaxDemo?.state === "error", undefined, {
      timeout: 60_000,
    });
    expect(await badBackend.textContent("#status")).toBe(
      'ConfigError: page: backend must be one of gpu.js, reference, got "cuda"',
    );
  }, 120_000);
});
