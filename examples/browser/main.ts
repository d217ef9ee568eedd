/**
 * The example page: fetches the MNIST slice, trains the MLP with SAM step by step, and redraws the
 * loss curve after each step. Query parameters override the defaults:
 * `?steps=300&batch=64&hidden=64,32&lr=0.05&momentum=0.9&rho=0.05&seed=0`.
 *
 * By default the whole SAM + SGD step is one `jit` program on gpu.js (gpu.js picks its runtime:
 * WebGL2, WebGL, WebGPU, or its CPU path where the browser has no GPU API); `?mode=webgl2` (any
 * gpu.js mode) asks gpu.js for one, and `?backend=reference` runs the step eagerly on the reference
 * CPU implementations instead.
 *
 * Its progress is also published as `window.tsjaxDemo` for the real-browser test.
 */
import * as tsjax from "../../src/index.js";
import { gpuApis, stepBackend } from "./backend.js";
import { type GpuJsProbe, probeGpuJs } from "./gpujs-probe.js";
import { curveSvg } from "./curve.js";
import { type MnistSlice, decodeSlice } from "./mnist-slice.js";
import { type TrainConfig, createTrainer, defaultConfig } from "./train.js";

/** What the page has done so far. */
export interface DemoProgress {
  state: "loading" | "training" | "done" | "error";
  backend: string;
  /** GPU APIs the browser offers (what gpu.js could use), whatever ran. */
  gpuApis: string[];
  /** The runtime gpu.js picks here for a probe kernel (`null`: gpu.js not loaded). */
  gpujs: GpuJsProbe | null;
  /** Steps the run will take. */
  totalSteps: number;
  /** One loss per step taken. */
  losses: number[];
  /** Test accuracy, refreshed every 50 steps and at the end. */
  testAccuracy: number | null;
  /** Mean time of the steps after the first (the first one also traces and compiles the jit). */
  msPerStep: number | null;
  /** Time of the first step, compilation included. */
  firstStepMs: number | null;
  /** The trained model's digits for the first test images (drawn when training ends). */
  predictions: number[];
  error: string | null;
}

declare global {
  interface Window {
    tsjaxDemo: DemoProgress;
  }
}

const $ = (id: string) => document.getElementById(id)!;

function readConfig(q: URLSearchParams): { config: TrainConfig; totalSteps: number } {
  const num = (name: string, fallback: number) => (q.has(name) ? Number(q.get(name)) : fallback);
  const config: TrainConfig = {
    hidden: q.has("hidden") ? q.get("hidden")!.split(",").map(Number) : defaultConfig.hidden,
    batchSize: num("batch", defaultConfig.batchSize),
    learningRate: num("lr", defaultConfig.learningRate),
    momentum: num("momentum", defaultConfig.momentum),
    rho: num("rho", defaultConfig.rho),
    seed: num("seed", defaultConfig.seed),
    backend: stepBackend(q.get("backend"), q.get("mode")),
  };
  const totalSteps = num("steps", 300);
  if (!Number.isInteger(totalSteps) || totalSteps < 1)
    throw new tsjax.ConfigError(`steps must be a positive integer, got ${q.get("steps")}`, "page");
  return { config, totalSteps };
}

/** Test digits shown with the trained model's predictions. */
const DIGITS = 16;

/** Draws the first test images, each captioned with its prediction (green when right, red when wrong). */
function drawDigits(slice: MnistSlice, predicted: number[]): void {
  const canvas = $("digits") as HTMLCanvasElement;
  const { rows, cols } = slice;
  const scale = 2;
  const perRow = 8;
  const cellW = cols * scale + 12;
  const cellH = rows * scale + 24;
  canvas.width = perRow * cellW;
  canvas.height = Math.ceil(predicted.length / perRow) * cellH;
  const ctx = canvas.getContext("2d")!;
  ctx.font = "14px sans-serif";
  ctx.textAlign = "center";
  predicted.forEach((p, i) => {
    const img = ctx.createImageData(cols, rows);
    for (let k = 0; k < rows * cols; k++) {
      const v = 255 - slice.test.images[i * rows * cols + k]!;
      img.data.set([v, v, v, 255], 4 * k);
    }
    // Scale the 28x28 image up by drawing it through a temporary canvas.
    const tmp = document.createElement("canvas");
    [tmp.width, tmp.height] = [cols, rows];
    tmp.getContext("2d")!.putImageData(img, 0, 0);
    const [x, y] = [(i % perRow) * cellW + 6, Math.floor(i / perRow) * cellH];
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tmp, x, y, cols * scale, rows * scale);
    ctx.fillStyle = p === slice.test.labels[i] ? "#1a7f37" : "#cf222e";
    ctx.fillText(String(p), x + (cols * scale) / 2, y + rows * scale + 17);
  });
}

/** Lets the browser paint between steps. */
const nextFrame = () => new Promise<void>((done) => setTimeout(done, 0));

async function run(progress: DemoProgress): Promise<void> {
  const { config, totalSteps } = readConfig(new URLSearchParams(location.search));
  progress.gpuApis = await gpuApis();
  $("gpu").textContent = progress.gpuApis.length > 0 ? progress.gpuApis.join(", ") : "none";
  progress.gpujs = probeGpuJs();
  const probe = progress.gpujs;
  $("gpujs").textContent =
    probe === null
      ? "not loaded"
      : `${probe.runtime} (a probe kernel, ${probe.correct ? "correct" : "WRONG"})`;
  progress.totalSteps = totalSteps;
  const response = await fetch("./mnist-slice.bin");
  if (!response.ok) throw new Error(`mnist-slice.bin: HTTP ${response.status} (run npm run build:browser)`);
  const slice = decodeSlice(new Uint8Array(await response.arrayBuffer()));
  const trainer = createTrainer(slice, config);
  progress.backend = trainer.backend;
  $("backend").textContent = progress.backend;
  const widths = [slice.rows * slice.cols, ...config.hidden, 10].join("-");
  $("model").textContent =
    `MLP ${widths}, ${trainer.parameterCount.toLocaleString("en")} parameters; batch ${config.batchSize}, SGD lr ${config.learningRate} momentum ${config.momentum}, SAM rho ${config.rho}; ${slice.train.labels.length} training / ${slice.test.labels.length} test images`;
  progress.state = "training";
  document.body.dataset.state = "training";
  $("status").textContent = "training…";
  let steadySteps = 0;
  let stepTime = 0;
  for (let s = 1; s <= totalSteps; s++) {
    const t0 = performance.now();
    const loss = trainer.step();
    const dt = performance.now() - t0;
    if (s === 1) {
      // Known once the first step has run: the jit's own report of where its kernels ran.
      progress.backend = trainer.backend;
      $("backend").textContent = progress.backend;
    }
    progress.losses.push(loss);
    if (s === 1) progress.firstStepMs = dt;
    else {
      stepTime += dt;
      steadySteps += 1;
      progress.msPerStep = stepTime / steadySteps;
    }
    if (s % 50 === 0 || s === totalSteps) {
      progress.testAccuracy = trainer.testAccuracy();
      $("accuracy").textContent = `${(100 * progress.testAccuracy).toFixed(1)} % (after step ${s})`;
    }
    $("step").textContent = `${s} / ${totalSteps}`;
    $("loss").textContent = loss.toFixed(4);
    $("speed").textContent =
      `${progress.msPerStep === null ? "…" : `${progress.msPerStep.toFixed(1)} ms`} (first step ${progress.firstStepMs!.toFixed(0)} ms, with compilation)`;
    $("curve").innerHTML = curveSvg(progress.losses, totalSteps);
    await nextFrame();
  }
  progress.predictions = trainer.predict(DIGITS);
  drawDigits(slice, progress.predictions);
  progress.state = "done";
  document.body.dataset.state = "done";
  $("status").textContent = "done";
}

const progress: DemoProgress = {
  state: "loading",
  backend: "not run yet",
  gpuApis: [],
  gpujs: null,
  totalSteps: 0,
  losses: [],
  testAccuracy: null,
  msPerStep: null,
  firstStepMs: null,
  predictions: [],
  error: null,
};
window.tsjaxDemo = progress;
$("backend").textContent = progress.backend;
run(progress).catch((e: unknown) => {
  progress.state = "error";
  progress.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  // The jit failing to compile or run its first step (gpu.js, a driver) leaves the eager path.
  if (progress.backend.startsWith("jit"))
    progress.error += " (the eager step may still work: add ?backend=reference)";
  document.body.dataset.state = "error";
  $("status").textContent = progress.error;
});
