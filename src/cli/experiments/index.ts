/**
 * `tsjax experiment label-noise|hessian|m-sharpness [--quick]`: the SAM paper's claims at small
 * scale on real MNIST. Each experiment is a grid of training runs (see `pool.ts`), summarised as a
 * Markdown table (`results.md`), the raw numbers (`results.json`) and an SVG chart in `--out`.
 */
import { join } from "node:path";
import { ConfigError } from "../../core/errors.js";
import { choiceFlag, type FlagSpecs, type Flags, helpText, numberFlag, parseFlags } from "../args.js";
import { DATASETS } from "../data/datasets.js";
import { type CliIO, ensureDir, writeFileAtomic } from "../io.js";
import { duration, markdownTable, meanStd, pct } from "../report/format.js";
import { pngCopies } from "../report/png.js";
import { barChart, lineChart } from "../report/svg.js";
import { resolveTrainConfig, type TrainConfig } from "../train/config.js";
import { Interrupted, runTasks, type Task, type TaskResult } from "./pool.js";

export const EXPERIMENTS = ["label-noise", "hessian", "m-sharpness"] as const;
type Experiment = (typeof EXPERIMENTS)[number];

/** Flags of every experiment; each overrides the experiment's preset (quick or full). */
export const EXPERIMENT_FLAGS: FlagSpecs = {
  quick: { type: "boolean", help: "the small preset (about two minutes on two cores)" },
  seeds: { type: "string", help: "number of seeds (0, 1, ...)" },
  epochs: { type: "string", help: "epochs per run" },
  "train-size": { type: "string", help: "training examples per run" },
  "test-size": { type: "string", help: "test examples" },
  "batch-size": { type: "string", help: "examples per step" },
  lr: { type: "string", help: "learning rate (SGD with momentum 0.9 underneath every optimizer)" },
  rho: { type: "string", help: "SAM radius" },
  "asam-rho": { type: "string", help: "ASAM radius (label-noise)" },
  noise: { type: "string", help: "label-noise fractions, comma-separated (label-noise)" },
  m: { type: "string", help: "m values, comma-separated; 0 = the whole batch (m-sharpness)" },
  hidden: { type: "string", help: "MLP hidden widths, comma-separated" },
  "image-size": { type: "string", help: "average-pool the images to this side" },
  dataset: { type: "string", help: `dataset: ${DATASETS.join("|")}` },
  "data-dir": { type: "string", help: "folder with the IDX files" },
  jobs: { type: "string", help: "parallel worker processes", default: "2" },
  png: { type: "boolean", help: "also write a PNG of the chart (needs chromium installed)" },
  out: { type: "string", help: "output folder", default: "runs/experiment-<name>[-quick]" },
  help: { type: "boolean", help: "show this help" },
};

/** An experiment's sizes. */
interface Preset {
  seeds: number;
  epochs: number;
  trainSize: number;
  testSize: number;
  batchSize: number;
  lr: number;
  rho: number;
  asamRho: number;
  noise: number[];
  m: number[];
  hidden: string;
  imageSize: number;
}

// Quick: sized to about two minutes on this project's shared two-core machine (docs/results.md);
// full: the same grids larger (image 28×28, 10k examples), tens of minutes to hours on the CPU path.
const base = {
  testSize: 1000,
  lr: 0.05,
  rho: 0.1,
  asamRho: 1,
  m: [] as number[],
  imageSize: 14,
  hidden: "32",
};
const fullBase = {
  ...base,
  testSize: 10000,
  trainSize: 10000,
  batchSize: 128,
  seeds: 5,
  epochs: 40,
  imageSize: 28,
  hidden: "256",
};
const PRESETS: Record<Experiment, { quick: Preset; full: Preset }> = {
  "label-noise": {
    quick: { ...base, seeds: 3, epochs: 10, trainSize: 1000, batchSize: 50, noise: [0, 0.2, 0.4, 0.6] },
    full: { ...fullBase, noise: [0, 0.2, 0.4, 0.6] },
  },
  hessian: {
    quick: { ...base, seeds: 3, epochs: 12, trainSize: 1000, batchSize: 50, noise: [0] },
    full: { ...fullBase, hidden: "128", noise: [0] },
  },
  "m-sharpness": {
    quick: { ...base, seeds: 2, epochs: 12, trainSize: 1000, batchSize: 50, noise: [0.4], m: [0, 25, 10] },
    full: { ...fullBase, noise: [0.4], m: [0, 32, 8] },
  },
};

function listFlag(
  cmd: string,
  name: string,
  text: string | boolean | undefined,
  fallback: number[],
  opts: { min: number; max?: number; integer?: boolean },
): number[] {
  if (text === undefined) return fallback;
  const parts = String(text).split(",");
  return parts.map((p) => numberFlag(cmd, name, p.trim(), 0, { ...opts, maxExclusive: false }));
}

function resolvePreset(cmd: string, name: Experiment, f: Flags): Preset {
  const p = PRESETS[name][f.quick ? "quick" : "full"];
  const int = (flag: string, v: number, min: number) =>
    numberFlag(cmd, flag, f[flag], v, { integer: true, min });
  return {
    seeds: int("seeds", p.seeds, 1),
    epochs: int("epochs", p.epochs, 1),
    trainSize: int("train-size", p.trainSize, 1),
    testSize: int("test-size", p.testSize, 1),
    batchSize: int("batch-size", p.batchSize, 1),
    lr: numberFlag(cmd, "lr", f.lr, p.lr, { min: 0, minExclusive: true }),
    rho: numberFlag(cmd, "rho", f.rho, p.rho, { min: 0 }),
    asamRho: numberFlag(cmd, "asam-rho", f["asam-rho"], p.asamRho, { min: 0 }),
    noise: listFlag(cmd, "noise", f.noise, p.noise, { min: 0, max: 0.95 }),
    m: listFlag(cmd, "m", f.m, p.m, { min: 0, integer: true }),
    hidden: typeof f.hidden === "string" ? f.hidden : p.hidden,
    imageSize: int("image-size", p.imageSize, 1),
  };
}

/** A training config for one grid point, checked by the same rules as `tsjax train`. */
function configFor(p: Preset, f: Flags, optimizer: string, seed: number, extra: Flags = {}): TrainConfig {
  const flags: Flags = {
    dataset: choiceFlag("tsjax experiment", "dataset", f.dataset, DATASETS, "mnist"),
    model: "mlp",
    hidden: p.hidden,
    "image-size": String(p.imageSize),
    optimizer,
    base: "momentum",
    epochs: String(p.epochs),
    "batch-size": String(p.batchSize),
    lr: String(p.lr),
    seed: String(seed),
    "train-size": String(p.trainSize),
    "test-size": String(p.testSize),
    ...extra,
  };
  if (typeof f["data-dir"] === "string") flags["data-dir"] = f["data-dir"];
  return resolveTrainConfig(flags);
}

const LABELS: Record<string, string> = { momentum: "SGD", sam: "SAM", asam: "ASAM" };

function label(cfg: TrainConfig): string {
  const name = LABELS[cfg.optimizer] ?? cfg.optimizer;
  return cfg.optimizer === "momentum" ? name : `${name} ρ=${cfg.rho}`;
}

const final = (r: TaskResult) => {
  const h = r.history[r.history.length - 1]!;
  return { ...h, testAcc: h.testAcc ?? Number.NaN };
};
const cell = (xs: number[]) => {
  const { mean, std } = meanStd(xs.map((v) => 100 * v));
  return `${mean.toFixed(1)} ± ${std.toFixed(1)}`;
};

interface Report {
  markdown: string;
  charts: Record<string, string>;
  json: unknown;
}

function labelNoise(
  p: Preset,
  f: Flags,
): { tasks: Task[]; report: (r: TaskResult[], seconds: number) => Report } {
  const opts: [string, Flags][] = [
    ["momentum", {}],
    ["sam", { rho: String(p.rho) }],
    ["asam", { rho: String(p.asamRho) }],
  ];
  const tasks: Task[] = [];
  for (const noise of p.noise)
    for (const [o, extra] of opts)
      for (let s = 0; s < p.seeds; s++)
        tasks.push({ config: configFor(p, f, o, s, { ...extra, "label-noise": String(noise) }) });
  return {
    tasks,
    report(results, seconds) {
      const names = opts.map(([o, e]) => label(configFor(p, f, o, 0, e)));
      const acc = (oi: number, noise: number) =>
        results
          .filter(
            (_, i) => tasks[i]!.config.labelNoise === noise && tasks[i]!.config.optimizer === opts[oi]![0],
          )
          .map((r) => final(r).testAcc);
      const header = ["optimizer", ...p.noise.map((n) => `${Math.round(100 * n)} % noise`)];
      const rows = names.map((n, oi) => [n, ...p.noise.map((noise) => cell(acc(oi, noise)))]);
      // Paired by seed: does SAM beat SGD on the same data, noise and init?
      const wins = p.noise.map((noise) => {
        const sgd = acc(0, noise);
        const sam = acc(1, noise);
        return `${sam.filter((v, i) => v > sgd[i]!).length}/${sgd.length}`;
      });
      rows.push(["SAM > SGD (seeds)", ...wins]);
      const groups = p.noise.map((noise) => {
        const stats = names.map((_, oi) => meanStd(acc(oi, noise).map((v) => 100 * v)));
        return {
          label: `${Math.round(100 * noise)} %`,
          values: stats.map((s) => s.mean),
          errors: stats.map((s) => s.std),
        };
      });
      const md = `Clean-test accuracy (%) after ${p.epochs} epochs, mean ± sample std over ${p.seeds} seeds; MLP ${p.imageSize * p.imageSize}-${p.hidden}-10 on ${p.trainSize} MNIST training images (${p.imageSize}×${p.imageSize}) with symmetric label noise, ${p.testSize} test images, batch ${p.batchSize}, lr ${p.lr}, SGD with momentum 0.9 as the base of every optimizer. ${tasks.length} runs in ${duration(seconds)}.\n\n${markdownTable(header, rows)}`;
      return {
        markdown: md,
        charts: {
          "label-noise.svg": barChart(names, groups, {
            title: `Clean-test accuracy under label noise (MNIST, ${p.seeds} seeds)`,
            xLabel: "training label noise",
            yLabel: "test accuracy (%)",
          }),
        },
        json: tasks.map((t, i) => ({
          optimizer: t.config.optimizer,
          rho: t.config.rho,
          noise: t.config.labelNoise,
          seed: t.config.seed,
          testAcc: final(results[i]!).testAcc,
          trainAcc: final(results[i]!).trainAcc,
          seconds: results[i]!.seconds,
          history: results[i]!.history,
        })),
      };
    },
  };
}

function hessian(
  p: Preset,
  f: Flags,
): { tasks: Task[]; report: (r: TaskResult[], seconds: number) => Report } {
  const opts: [string, Flags][] = [
    ["momentum", {}],
    ["sam", { rho: String(p.rho) }],
  ];
  const tasks: Task[] = [];
  const h = { examples: Math.min(500, p.trainSize), k: 5, iterations: 20 };
  for (const [o, extra] of opts)
    for (let s = 0; s < p.seeds; s++) tasks.push({ config: configFor(p, f, o, s, extra), hessian: h });
  return {
    tasks,
    report(results, seconds) {
      const rows: string[][] = [];
      const summary: string[][] = [];
      opts.forEach(([o, e], oi) => {
        const name = label(configFor(p, f, o, 0, e));
        const mine = results.filter((_, i) => tasks[i]!.config.optimizer === opts[oi]![0]);
        mine.forEach((r, s) => {
          const ev = r.hessian!.eigenvalues;
          rows.push([
            name,
            String(s),
            ...ev.map((v) => v.toFixed(3)),
            r.hessian!.ratio.toFixed(2),
            pct(final(r).testAcc),
          ]);
        });
        const lmax = meanStd(mine.map((r) => r.hessian!.eigenvalues[0]!));
        const ratio = meanStd(mine.map((r) => r.hessian!.ratio));
        summary.push([
          name,
          `${lmax.mean.toFixed(3)} ± ${lmax.std.toFixed(3)}`,
          `${ratio.mean.toFixed(2)} ± ${ratio.std.toFixed(2)}`,
          cell(mine.map((r) => final(r).testAcc)),
        ]);
      });
      const md = `Top-5 Hessian eigenvalues of the training loss (eval mode, on the first ${h.examples} training examples) at the end of training, by Lanczos (${h.iterations} iterations); MLP ${p.imageSize * p.imageSize}-${p.hidden}-10, ${p.trainSize} MNIST images (${p.imageSize}×${p.imageSize}), ${p.epochs} epochs, batch ${p.batchSize}, lr ${p.lr}, momentum 0.9. ${tasks.length} runs in ${duration(seconds)}.\n\n${markdownTable(["optimizer", "λmax (mean ± std)", "λmax/λ5", "test acc (%)"], summary)}\nPer seed:\n\n${markdownTable(["optimizer", "seed", "λ1", "λ2", "λ3", "λ4", "λ5", "λ1/λ5", "test acc"], rows)}`;
      // One line per optimizer: the seed mean of each of the top five eigenvalues.
      const series = opts.map(([o, e], oi) => {
        const mine = results.filter((_, i) => tasks[i]!.config.optimizer === opts[oi]![0]);
        return {
          name: `${label(configFor(p, f, o, 0, e))} (mean of ${mine.length})`,
          points: [0, 1, 2, 3, 4].map(
            (j) => [j + 1, meanStd(mine.map((r) => r.hessian!.eigenvalues[j]!)).mean] as [number, number],
          ),
        };
      });
      return {
        markdown: md,
        charts: {
          "hessian.svg": lineChart(series, {
            title: "Top-5 Hessian eigenvalues after training (MNIST)",
            xLabel: "eigenvalue index",
            yLabel: "eigenvalue",
          }),
        },
        json: tasks.map((t, i) => ({
          optimizer: t.config.optimizer,
          rho: t.config.rho,
          seed: t.config.seed,
          ...results[i]!.hessian,
          testAcc: final(results[i]!).testAcc,
          history: results[i]!.history,
        })),
      };
    },
  };
}

function mSharpness(
  p: Preset,
  f: Flags,
): { tasks: Task[]; report: (r: TaskResult[], seconds: number) => Report } {
  const noise = p.noise[0] ?? 0;
  for (const m of p.m)
    if (m > 0 && p.batchSize % m !== 0)
      throw new ConfigError(
        `--m ${m} does not divide --batch-size ${p.batchSize}`,
        "tsjax experiment m-sharpness",
      );
  const tasks: Task[] = [];
  for (const m of p.m)
    for (let s = 0; s < p.seeds; s++)
      tasks.push({
        config: configFor(p, f, "sam", s, { rho: String(p.rho), m: String(m), "label-noise": String(noise) }),
      });
  for (let s = 0; s < p.seeds; s++)
    tasks.push({ config: configFor(p, f, "momentum", s, { "label-noise": String(noise) }) });
  return {
    tasks,
    report(results, seconds) {
      const mOf = (m: number) => (m === 0 ? p.batchSize : m);
      const accOf = (pred: (c: TrainConfig) => boolean) =>
        results.filter((_, i) => pred(tasks[i]!.config)).map((r) => final(r).testAcc);
      const rows = p.m.map((m) => [String(mOf(m)), cell(accOf((c) => c.optimizer === "sam" && c.m === m))]);
      rows.push(["SGD (no SAM)", cell(accOf((c) => c.optimizer === "momentum"))]);
      const md = `Clean-test accuracy (%) of SAM (ρ=${p.rho}) against m, the examples per perturbation (m = ${p.batchSize} is the whole batch), mean ± std over ${p.seeds} seeds; MLP ${p.imageSize * p.imageSize}-${p.hidden}-10, ${p.trainSize} MNIST images (${p.imageSize}×${p.imageSize}) with ${Math.round(100 * noise)} % label noise, ${p.epochs} epochs, batch ${p.batchSize}, lr ${p.lr}, momentum 0.9. ${tasks.length} runs in ${duration(seconds)}.\n\n${markdownTable(["m", "test acc (%)"], rows)}`;
      const points = p.m.map(
        (m) =>
          [mOf(m), meanStd(accOf((c) => c.optimizer === "sam" && c.m === m).map((v) => 100 * v)).mean] as [
            number,
            number,
          ],
      );
      const sgd = meanStd(accOf((c) => c.optimizer === "momentum").map((v) => 100 * v)).mean;
      const ms = points.map((q) => q[0]);
      return {
        markdown: md,
        charts: {
          "m-sharpness.svg": lineChart(
            [
              { name: `SAM ρ=${p.rho}`, points: [...points].sort((a, b) => a[0] - b[0]) },
              {
                name: "SGD",
                points: [Math.min(...ms), Math.max(...ms)].map((m) => [m, sgd] as [number, number]),
                dashed: true,
              },
            ],
            {
              title: "m-sharpness: test accuracy against m (MNIST)",
              xLabel: "m (examples per perturbation, log scale)",
              yLabel: "test accuracy (%)",
              logX: true,
            },
          ),
        },
        json: tasks.map((t, i) => ({
          optimizer: t.config.optimizer,
          m: t.config.m,
          seed: t.config.seed,
          testAcc: final(results[i]!).testAcc,
          history: results[i]!.history,
        })),
      };
    },
  };
}

/**
 * Runs the named experiment with `argv`'s flags; writes `results.md`, `results.json` and the
 * chart into `--out`, prints the table. `io.entry` (the executable's path) enables `--jobs`.
 *
 * @example
 * ```ts
 * await runExperiment("label-noise", ["--quick"], io);
 * ```
 */
export async function runExperiment(
  name: string,
  argv: string[],
  io: CliIO & { entry?: string },
): Promise<number> {
  if (!(EXPERIMENTS as readonly string[]).includes(name))
    throw new ConfigError(
      `unknown experiment '${name}' (experiments: ${EXPERIMENTS.join(", ")})`,
      "tsjax experiment",
    );
  const exp = name as Experiment;
  const cmd = `tsjax experiment ${exp}`;
  const f = parseFlags(cmd, argv, EXPERIMENT_FLAGS);
  if (f.help) {
    io.stdout.write(helpText(`usage: ${cmd} [flags]`, EXPERIMENT_FLAGS));
    return 0;
  }
  const p = resolvePreset(cmd, exp, f);
  const jobs = numberFlag(cmd, "jobs", f.jobs, 2, { integer: true, min: 1, max: 64 });
  const out = typeof f.out === "string" ? f.out : `runs/experiment-${exp}${f.quick ? "-quick" : ""}`;
  const plan =
    exp === "label-noise" ? labelNoise(p, f) : exp === "hessian" ? hessian(p, f) : mSharpness(p, f);
  ensureDir(out);
  io.stdout.write(
    `tsjax experiment ${exp}${f.quick ? " --quick" : ""}: ${plan.tasks.length} runs, ${jobs} job(s) → ${out}\n`,
  );
  const t0 = performance.now();
  let done = 0;
  let results: TaskResult[];
  try {
    results = await runTasks(
      plan.tasks,
      jobs,
      io.entry,
      (i, r) => {
        done++;
        const c = plan.tasks[i]!.config;
        const extra = `${c.labelNoise > 0 ? ` noise ${pct(c.labelNoise)}` : ""}${c.m > 0 ? ` m=${c.m}` : ""}`;
        const h = r.hessian
          ? `  λmax ${r.hessian.eigenvalues[0]!.toFixed(3)} λmax/λ5 ${r.hessian.ratio.toFixed(2)}`
          : "";
        io.stdout.write(
          `[${done}/${plan.tasks.length}] ${label(c)}${extra} seed ${c.seed}: test acc ${pct(final(r).testAcc)}${h}  (${duration(r.seconds)})\n`,
        );
      },
      io.signal,
    );
  } catch (e) {
    if (!(e instanceof Interrupted)) throw e;
    io.stderr.write(`interrupted after ${done} of ${plan.tasks.length} runs; no results written to ${out}\n`);
    return 130;
  }
  const seconds = (performance.now() - t0) / 1000;
  const report = plan.report(results, seconds);
  const command = `tsjax experiment ${[exp, ...argv].join(" ")}`;
  writeFileAtomic(join(out, "results.md"), `# ${exp}\n\n\`${command}\`\n\n${report.markdown}`);
  writeFileAtomic(
    join(out, "results.json"),
    `${JSON.stringify({ experiment: exp, command, seconds, preset: p, runs: report.json }, null, 1)}\n`,
  );
  for (const [file, svg] of Object.entries(report.charts)) writeFileAtomic(join(out, file), svg);
  if (f.png) {
    const pngs = pngCopies(Object.keys(report.charts).map((c) => join(out, c)));
    if (pngs === null)
      io.stderr.write("--png: no renderer found (install chromium); the SVG chart is written\n");
  }
  io.stdout.write(
    `\n${report.markdown}\nwrote ${join(out, "results.md")}, ${join(out, "results.json")}, ${Object.keys(
      report.charts,
    )
      .map((c) => join(out, c))
      .join(", ")} in ${duration(seconds)}\n`,
  );
  return 0;
}
