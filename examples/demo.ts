/**
 * The README's first command: SGD against SAM on real MNIST, through the `tsjax train` command
 * line. 1,000 training images (pooled to 14×14) with 40 % of their labels replaced by a wrong
 * class, a 196-32-10 MLP, 12 epochs each; prints both runs side by side and writes
 * runs/demo/comparison.svg (plus each run's own metrics, curves and checkpoint).
 *
 *   npm run demo
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { main } from "../src/cli/main.js";
import { markdownTable, pct, sig4 } from "../src/cli/report/format.js";
import { lineChart } from "../src/cli/report/svg.js";
import type { EpochRecord } from "../src/cli/train/run.js";

const OUT = "runs/demo";
const COMMON = [
  "--dataset",
  "mnist",
  "--train-size",
  "1000",
  "--test-size",
  "1000",
  "--image-size",
  "14",
  "--hidden",
  "32",
];
const RUN = [
  ...COMMON,
  "--label-noise",
  "0.4",
  "--epochs",
  "12",
  "--batch-size",
  "50",
  "--lr",
  "0.05",
  "--seed",
  "0",
];
const RUNS: [string, string[]][] = [
  ["SGD (momentum 0.9)", ["--optimizer", "momentum"]],
  ["SAM ρ=0.1 (momentum 0.9)", ["--optimizer", "sam", "--rho", "0.1"]],
];

const io = { stdout: process.stdout, stderr: process.stderr };
// The demo owns runs/demo: start clean so it can be run again.
rmSync(OUT, { recursive: true, force: true });
const histories: EpochRecord[][] = [];
for (const [name, flags] of RUNS) {
  const out = join(OUT, flags[1]!);
  const args = ["train", ...RUN, ...flags, "--out", out];
  console.log(`\n== ${name}: tsjax ${args.join(" ")}`);
  const code = await main(args, io);
  if (code !== 0) process.exit(code);
  histories.push(
    readFileSync(join(out, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as EpochRecord),
  );
}

const rows = RUNS.map(([name], i) => {
  const h = histories[i]!;
  const last = h[h.length - 1]!;
  const best = Math.max(...h.map((r) => r.testAcc ?? 0));
  const seconds = h.reduce((s, r) => s + r.epochSeconds, 0);
  return [
    name,
    sig4(last.trainLoss),
    pct(last.trainAcc),
    pct(last.testAcc ?? Number.NaN),
    pct(best),
    `${(h.reduce((s, r) => s + r.stepsPerSecond, 0) / h.length).toFixed(1)}`,
    `${seconds.toFixed(1)}s`,
  ];
});
const chart = lineChart(
  RUNS.flatMap(([name], i) => [
    {
      name: `${name.split(" (")[0]} test`,
      points: histories[i]!.map((r) => [r.epoch, 100 * (r.testAcc ?? Number.NaN)] as [number, number]),
    },
    {
      name: `${name.split(" (")[0]} train (noisy)`,
      points: histories[i]!.map((r) => [r.epoch, 100 * r.trainAcc] as [number, number]),
      dashed: true,
    },
  ]),
  { title: "MNIST, 40 % label noise: SGD vs SAM", xLabel: "epoch", yLabel: "accuracy (%)" },
);
writeFileSync(join(OUT, "comparison.svg"), chart);
console.log("\nMNIST, 1000 training images with 40 % wrong labels, 1000 clean test images, MLP 196-32-10:\n");
console.log(
  markdownTable(
    [
      "optimizer",
      "train loss",
      "train acc (noisy labels)",
      "clean test acc",
      "best test acc",
      "steps/s",
      "time",
    ],
    rows,
  ),
);
const [sgd, sam] = histories.map((h) => h[h.length - 1]!);
const gain = 100 * ((sam!.testAcc ?? 0) - (sgd!.testAcc ?? 0));
const fit = 100 * (sam!.trainAcc - sgd!.trainAcc);
console.log(
  `SAM's clean test accuracy is ${Math.abs(gain).toFixed(1)} points ${gain >= 0 ? "above" : "below"} SGD's; ` +
    `on the noisy training labels it is ${Math.abs(fit).toFixed(1)} points ${fit >= 0 ? "above" : "below"}.`,
);
console.log(
  `Plot: ${join(OUT, "comparison.svg")}; each run's metrics.jsonl, curves and checkpoint are under ${OUT}/.`,
);
