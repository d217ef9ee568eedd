/**
 * The example page: fetches the MNIST slice, trains the MLP with SAM step by step, and redraws the
 * loss curve after each step. Query parameters override the defaults:
 * `?steps=300&batch=64&hidden=64,32&lr=0.05&momentum=0.9&rho=0.05&seed=0`.
 *
 * Its progress is also published as `window.tsjaxDemo` for the real-browser test.
 */
import * as tsjax from "../../src/index.js";
import { computeBackend } from "./backend.js";
import { curveSvg } from "./curve.js";
import { decodeSlice } from "./mnist-slice.js";
import { type TrainConfig, createTrainer, defaultConfig } from "./train.js";

/** What the page has done so far. */
export interface DemoProgress {
  state: "loading" | "training" | "done" | "error";
  backend: string;
  /** Steps the run will take. */
  totalSteps: number;
  /** One loss per step taken. */
  losses: number[];
  /** Test accuracy, refreshed every 50 steps and at the end. */
  testAccuracy: number | null;
  msPerStep: number | null;
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
  };
  const totalSteps = num("steps", 300);
  if (!Number.isInteger(totalSteps) || totalSteps < 1)
    throw new tsjax.ConfigError(`steps must be a positive integer, got ${q.get("steps")}`, "page");
  return { config, totalSteps };
}

/** Lets the browser paint between steps. */
const nextFrame = () => new Promise<void>((done) => setTimeout(done, 0));

async function run(progress: DemoProgress): Promise<void> {
  const { config, totalSteps } = readConfig(new URLSearchParams(location.search));
  progress.totalSteps = totalSteps;
  const response = await fetch("./mnist-slice.bin");
  if (!response.ok) throw new Error(`mnist-slice.bin: HTTP ${response.status} (run npm run build:browser)`);
  const slice = decodeSlice(new Uint8Array(await response.arrayBuffer()));
  const trainer = createTrainer(slice, config);
  const widths = [slice.rows * slice.cols, ...config.hidden, 10].join("-");
  $("model").textContent =
    `MLP ${widths}, ${trainer.parameterCount.toLocaleString("en")} parameters; batch ${config.batchSize}, SGD lr ${config.learningRate} momentum ${config.momentum}, SAM rho ${config.rho}; ${slice.train.labels.length} training / ${slice.test.labels.length} test images`;
  progress.state = "training";
  document.body.dataset.state = "training";
  $("status").textContent = "training…";
  const started = performance.now();
  for (let s = 1; s <= totalSteps; s++) {
    const loss = trainer.step();
    progress.losses.push(loss);
    progress.msPerStep = (performance.now() - started) / s;
    if (s % 50 === 0 || s === totalSteps) {
      progress.testAccuracy = trainer.testAccuracy();
      $("accuracy").textContent = `${(100 * progress.testAccuracy).toFixed(1)} % (after step ${s})`;
    }
    $("step").textContent = `${s} / ${totalSteps}`;
    $("loss").textContent = loss.toFixed(4);
    $("speed").textContent = `${progress.msPerStep.toFixed(1)} ms`;
    $("curve").innerHTML = curveSvg(progress.losses, totalSteps);
    await nextFrame();
  }
  progress.state = "done";
  document.body.dataset.state = "done";
  $("status").textContent = "done";
}

const progress: DemoProgress = {
  state: "loading",
  backend: computeBackend(tsjax),
  totalSteps: 0,
  losses: [],
  testAccuracy: null,
  msPerStep: null,
  error: null,
};
window.tsjaxDemo = progress;
$("backend").textContent = progress.backend;
run(progress).catch((e: unknown) => {
  progress.state = "error";
  progress.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  document.body.dataset.state = "error";
  $("status").textContent = progress.error;
});
