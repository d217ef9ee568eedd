/**
 * The command line end to end on tiny seeded subsets of the real MNIST files: arguments, outputs,
 * the metrics schema, bit-identical resume (also after an interrupt), and each bad input's
 * one-line message and exit status. `main` runs in-process with captured streams; one test
 * spawns the real executable.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { encodeIdx } from "../../src/cli/data/idx.js";
import type { CliIO } from "../../src/cli/io.js";
import { parseFlags } from "../../src/cli/args.js";
import { EXPERIMENT_FLAGS } from "../../src/cli/experiments/index.js";
import { main } from "../../src/cli/main.js";
import { findRenderer, pngCopies } from "../../src/cli/report/png.js";
import { lineChart } from "../../src/cli/report/svg.js";
import { resolveTrainConfig, TRAIN_FLAGS } from "../../src/cli/train/config.js";
import { METRICS_SCHEMA } from "../../src/cli/train/run.js";

const root = join(__dirname, "..", "..");
const tmp = () => mkdtempSync(join(tmpdir(), "tsjax-cli-"));

/** Runs the CLI in-process; `onLine` sees each stdout write (to interrupt on cue). */
async function run(
  argv: string[],
  opts: { signal?: AbortSignal; onWrite?: (s: string) => void; entry?: string } = {},
) {
  let stdout = "";
  let stderr = "";
  const io: CliIO = {
    stdout: {
      write: (s: string) => {
        stdout += s;
        opts.onWrite?.(s);
        return true;
      },
    },
    stderr: {
      write: (s: string) => {
        stderr += s;
        return true;
      },
    },
  };
  if (opts.signal) io.signal = opts.signal;
  if (opts.entry) io.entry = opts.entry;
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

// 200 training images pooled to 7×7, a 49-16-10 MLP, 4 steps per epoch: a few milliseconds a step.
const TINY = [
  "--train-size",
  "200",
  "--test-size",
  "100",
  "--image-size",
  "7",
  "--hidden",
  "16",
  "--batch-size",
  "50",
  "--eval-batch-size",
  "100",
  "--quiet",
];

function expectUserError(r: { code: number; stderr: string }, pattern: RegExp) {
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(pattern);
  // One line, no stack trace.
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe("tsjax train", () => {
  it("trains, writes metrics.jsonl with the documented schema, plots, a checkpoint and a summary", async () => {
    const out = join(tmp(), "run");
    const r = await run([
      "train",
      ...TINY,
      "--optimizer",
      "sam",
      "--rho",
      "0.05",
      "--epochs",
      "2",
      "--label-noise",
      "0.2",
      "--out",
      out,
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    for (const f of ["metrics.jsonl", "checkpoint.safetensors", "loss.svg", "accuracy.svg", "config.json"])
      expect(existsSync(join(out, f))).toBe(true);
    const lines = readFileSync(join(out, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.epoch)).toEqual([1, 2]);
    for (const l of lines) {
      expect(l.schema).toBe(METRICS_SCHEMA);
      expect(l.step).toBe(4 * l.epoch);
      for (const k of [
        "trainLoss",
        "trainAcc",
        "testLoss",
        "testAcc",
        "epochSeconds",
        "wallSeconds",
        "stepsPerSecond",
      ])
        expect(Number.isFinite(l[k])).toBe(true);
      for (const k of ["trainAcc", "testAcc"]) {
        expect(l[k]).toBeGreaterThanOrEqual(0);
        expect(l[k]).toBeLessThanOrEqual(1);
      }
      // SAM's diagnostics: a perturbation of radius rho raises the loss a little; g and g_sam nearly agree.
      expect(l.sam.gradNorm).toBeGreaterThan(0);
      expect(l.sam.cosine).toBeGreaterThan(0.5);
      expect(l.sam.cosine).toBeLessThanOrEqual(1 + 1e-6);
      expect(Number.isFinite(l.sam.lossIncrease)).toBe(true);
    }
    expect(lines[1].wallSeconds).toBeGreaterThan(lines[0].wallSeconds);
    // On 200 noisy examples two epochs of SAM already beat chance (10 %) on the clean test set.
    expect(lines[1].testAcc).toBeGreaterThan(0.2);
    expect(readFileSync(join(out, "loss.svg"), "utf8")).toMatch(/^<svg[\s\S]*<path [\s\S]*<\/svg>\n$/);
    expect(r.stdout).toMatch(
      /\| epoch \| train loss \| train acc \| test loss \| test acc \| cos\(g, g_sam\) \|/,
    );
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(cfg).toMatchObject({
      optimizer: "sam",
      rho: 0.05,
      trainSize: 200,
      labelNoise: 0.2,
      hidden: [16],
      imageSize: 7,
    });
  });

  it("train 2 epochs = train 1 + --resume 1, byte for byte; an interrupt keeps the last epoch and resumes exactly", async () => {
    const dir = tmp();
    const args = [...TINY, "--optimizer", "momentum", "--label-noise", "0.4", "--seed", "3"];
    expect((await run(["train", ...args, "--epochs", "2", "--out", join(dir, "straight")])).code).toBe(0);
    expect((await run(["train", ...args, "--epochs", "1", "--out", join(dir, "split")])).code).toBe(0);
    const resumed = await run(["train", ...args, "--epochs", "2", "--out", join(dir, "split"), "--resume"]);
    expect(resumed.code).toBe(0);
    const bytes = (d: string) => readFileSync(join(dir, d, "checkpoint.safetensors"));
    expect(bytes("split").equals(bytes("straight"))).toBe(true);
    const metrics = (d: string) =>
      readFileSync(join(dir, d, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => {
          const { epochSeconds, wallSeconds, stepsPerSecond, ...rest } = JSON.parse(l);
          return rest;
        });
    expect(metrics("split")).toEqual(metrics("straight"));

    // Interrupt (as SIGINT does) as soon as epoch 1 is reported: epoch 2 is abandoned mid-way.
    const ac = new AbortController();
    const cut = await run(
      [
        "train",
        ...TINY.filter((a) => a !== "--quiet"),
        "--optimizer",
        "momentum",
        "--label-noise",
        "0.4",
        "--seed",
        "3",
        "--epochs",
        "2",
        "--out",
        join(dir, "cut"),
      ],
      {
        signal: ac.signal,
        onWrite: (s) => s.startsWith("epoch 1/2") && ac.abort(),
      },
    );
    expect(cut.code).toBe(130);
    expect(cut.stderr).toMatch(/interrupted: epoch 1's checkpoint and metrics are intact/);
    expect(
      readFileSync(join(dir, "cut", "metrics.jsonl"), "utf8")
        .trim()
        .split("\n"),
    ).toHaveLength(1);
    expect((await run(["train", ...args, "--epochs", "2", "--out", join(dir, "cut"), "--resume"])).code).toBe(
      0,
    );
    expect(bytes("cut").equals(bytes("straight"))).toBe(true);
  });

  it("every optimizer and model trains: finite metrics, SAM diagnostics only for sam/asam", async () => {
    const dir = tmp();
    const cases: [string, string[]][] = [
      ["sgd", []],
      ["adam", []],
      ["asam", ["--weight-decay", "1e-4"]],
      ["gsam", ["--schedule", "cosine"]],
      ["usam", ["--base", "sgd"]],
      ["looksam", ["--k", "2", "--base", "adam"]],
      ["sam", ["--m", "10"]],
      // The reference convolution is slow: a smaller subset for the CNN (later flags win).
      ["momentum", ["--model", "cnn", "--train-size", "50", "--batch-size", "25", "--test-size", "25"]],
    ];
    for (const [opt, extra] of cases) {
      const out = join(dir, `${opt}-${extra.join("")}`);
      const r = await run(["train", ...TINY, "--epochs", "2", "--optimizer", opt, ...extra, "--out", out]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const lines = readFileSync(join(out, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      for (const l of lines)
        for (const k of ["trainLoss", "testLoss", "testAcc"]) expect(Number.isFinite(l[k])).toBe(true);
      expect(lines[1].sam === null).toBe(!(opt === "sam" || opt === "asam"));
    }
    // A cosine schedule spans the stored --epochs, so resuming cannot stretch it.
    const cos = join(dir, "gsam---schedulecosine");
    expectUserError(
      await run([
        "train",
        ...TINY,
        "--epochs",
        "3",
        "--optimizer",
        "gsam",
        "--schedule",
        "cosine",
        "--out",
        cos,
        "--resume",
      ]),
      /the cosine schedule spans the stored --epochs 2/,
    );
  });

  it("trains through jit by default and matches --eager within float32 rounding", async () => {
    const dir = tmp();
    const metrics = async (extra: string[]) => {
      const out = join(dir, extra.join("") || "jit");
      const r = await run(["train", ...TINY, "--epochs", "2", "--optimizer", "sam", ...extra, "--out", out]);
      expect(r.code).toBe(0);
      return readFileSync(join(out, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
    };
    const jitted = await metrics([]);
    const eager = await metrics(["--eager"]);
    // Same operations, kernels may sum in another order: 8 steps of a 16-wide MLP drift by a few
    // float32 ulps per step, far below 1e-4 relative on losses of order 1.
    jitted.forEach((l, i) => {
      for (const k of ["trainLoss", "testLoss"])
        expect(Math.abs(l[k] - eager[i][k])).toBeLessThan(1e-4 * Math.abs(eager[i][k]));
    });
    // --eager changes the arithmetic, so a resumed run may not switch it.
    expectUserError(
      await run([
        "train",
        ...TINY,
        "--epochs",
        "3",
        "--optimizer",
        "sam",
        "--eager",
        "--out",
        join(dir, "jit"),
        "--resume",
      ]),
      /--eager/,
    );
  });

  it("refuses every bad input with one line and exit status 2", async () => {
    const dir = tmp();
    expectUserError(await run(["train", "--bogus"]), /unknown flag '--bogus'/);
    expectUserError(
      await run(["train", "--optimizer", "rmsprop"]),
      /--optimizer must be one of sgd\|momentum\|adam\|sam/,
    );
    expectUserError(await run(["train", "--lr", "fast"]), /--lr must be a number, got 'fast'/);
    expectUserError(await run(["train", "--lr=-1"]), /--lr must be > 0, got -1/);
    expectUserError(
      await run(["train", "--lr", "-1"]),
      /Option '--lr' argument is ambiguous \(write --name=value/,
    );
    expectUserError(await run(["train", "--label-noise", "1"]), /--label-noise must be < 1/);
    expectUserError(await run(["train", "--epochs"]), /--epochs/);
    expectUserError(await run(["train", "extra"]), /unexpected argument 'extra'/);
    expectUserError(
      await run(["train", "--train-size", "70000", "--out", join(dir, "big")]),
      /--train-size 70000 is larger than the 60000 training examples of mnist/,
    );
    expect(existsSync(join(dir, "big"))).toBe(false);
    expectUserError(
      await run(["train", "--train-size", "100", "--batch-size", "200"]),
      /--batch-size 200 is larger than --train-size 100/,
    );
    expectUserError(
      await run(["train", "--optimizer", "sam", "--m", "7", "--batch-size", "64"]),
      /not divisible by --m 7/,
    );
    expectUserError(await run(["frobnicate"]), /unknown command 'frobnicate'/);
    expectUserError(await run(["experiment", "sharpness"]), /unknown experiment 'sharpness'/);

    // Missing and corrupt datasets.
    expectUserError(
      await run(["train", ...TINY, "--data-dir", join(dir, "nowhere")]),
      /data folder .*nowhere does not exist/,
    );
    const bad = join(dir, "bad");
    mkdirSync(bad);
    writeFileSync(
      join(bad, "train-images-idx3-ubyte"),
      encodeIdx([300, 28, 28], new Uint8Array(300 * 784)).subarray(0, 5000),
    );
    writeFileSync(join(bad, "train-labels-idx1-ubyte"), encodeIdx([300], new Uint8Array(300)));
    expectUserError(
      await run(["train", ...TINY, "--data-dir", bad]),
      /idx\(train-images-idx3-ubyte\): truncated/,
    );
    writeFileSync(join(bad, "train-images-idx3-ubyte"), encodeIdx([300, 28, 28], new Uint8Array(300 * 784)));
    writeFileSync(join(bad, "train-labels-idx1-ubyte"), encodeIdx([299], new Uint8Array(299)));
    expectUserError(
      await run(["train", ...TINY, "--data-dir", bad]),
      /has 300 images but train-labels-idx1-ubyte has 299 labels/,
    );
    writeFileSync(join(bad, "train-labels-idx1-ubyte"), encodeIdx([300], new Uint8Array(300)));
    expectUserError(
      await run(["train", ...TINY, "--data-dir", bad]),
      /t10k-images-idx3-ubyte\[\.gz\] not found/,
    );
    process.env.TSJAX_FASHION_MNIST_DIR = join(dir, "no-fashion");
    try {
      expectUserError(
        await run(["train", ...TINY, "--dataset", "fashion-mnist"]),
        /install Debian's dataset-fashion-mnist package/,
      );
    } finally {
      delete process.env.TSJAX_FASHION_MNIST_DIR;
    }

    // Unwritable output: a folder cannot be made under a regular file.
    writeFileSync(join(dir, "file"), "x");
    expectUserError(
      await run(["train", ...TINY, "--epochs", "1", "--out", join(dir, "file", "run")]),
      /cannot create --out folder .*ENOTDIR/,
    );

    // Resume: nothing there, a run in the way, a changed flag, a corrupt checkpoint.
    const out = join(dir, "run");
    expectUserError(
      await run(["train", ...TINY, "--out", out, "--resume"]),
      /no checkpoint\.safetensors in .* to resume from/,
    );
    expect((await run(["train", ...TINY, "--epochs", "1", "--out", out])).code).toBe(0);
    expectUserError(
      await run(["train", ...TINY, "--epochs", "1", "--out", out]),
      /already holds a run; pass --resume/,
    );
    expectUserError(
      await run(["train", ...TINY, "--epochs", "2", "--lr", "0.3", "--out", out, "--resume"]),
      /--resume: --lr 0\.3 differs from the stored run's 0\.1/,
    );
    const ckpt = join(out, "checkpoint.safetensors");
    const good = readFileSync(ckpt);
    writeFileSync(ckpt, good.subarray(0, good.length - 100));
    expectUserError(
      await run(["train", ...TINY, "--epochs", "2", "--out", out, "--resume"]),
      /checkpoint\.load: /,
    );
    writeFileSync(ckpt, Buffer.from("not a checkpoint at all"));
    expectUserError(
      await run(["train", ...TINY, "--epochs", "2", "--out", out, "--resume"]),
      /checkpoint\.load: /,
    );
  });

  it("prints help and the real executable exits 2 on a bad flag, without a stack trace", async () => {
    const help = await run(["train", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--label-noise <value> +fraction of training labels/);
    const eh = await run(["experiment", "hessian", "--help"]);
    expect(eh.code).toBe(0);
    expect(eh.stdout).toMatch(/^usage: tsjax experiment hessian \[flags\]\n[\s\S]*--quick +the small preset/);
    const p = spawnSync(
      process.execPath,
      ["--import", "tsx", join(root, "src/cli/bin.ts"), "train", "--rho", "big"],
      { cwd: root, encoding: "utf8" },
    );
    expect(p.status).toBe(2);
    expect(p.stderr).toBe("error: tsjax train: --rho must be a number, got 'big'\n");
  });
});

describe("--png", () => {
  it.skipIf(findRenderer() === null)("renders a PNG copy of a chart where chromium is installed", () => {
    const dir = tmp();
    const svg = join(dir, "chart.svg");
    writeFileSync(
      svg,
      lineChart(
        [
          {
            name: "a",
            points: [
              [1, 1],
              [2, 3],
            ],
          },
        ],
        { title: "t", xLabel: "x", yLabel: "y" },
      ),
    );
    expect(pngCopies([svg])).toEqual([join(dir, "chart.png")]);
    const b = readFileSync(join(dir, "chart.png"));
    expect(b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  });

  it("without a renderer, --png is a note, not an error", async () => {
    const path = process.env.PATH;
    process.env.PATH = "";
    try {
      const r = await run(["train", ...TINY, "--epochs", "1", "--out", join(tmp(), "nopng"), "--png"]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("--png: no renderer found (install chromium); the SVG plots are written\n");
    } finally {
      process.env.PATH = path;
    }
  });
});

describe("the executable under SIGINT", () => {
  it("stops after the current step, keeps the last complete epoch and exits 130", async () => {
    const out = join(tmp(), "sigint");
    const args = [...TINY.filter((a) => a !== "--quiet"), "--epochs", "50", "--out", out];
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(root, "src/cli/bin.ts"), "train", ...args],
      { cwd: root },
    );
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on("data", (d) => {
        stdout += d;
        if (/epoch 2\/50/.test(stdout) && !child.killed) child.kill("SIGINT");
      });
      child.on("exit", (c) => resolve(c));
    });
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted: epoch \d+'s checkpoint and metrics are intact/);
    const lines = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n");
    const epoch = Number(/interrupted: epoch (\d+)'s/.exec(stderr)![1]);
    expect(lines).toHaveLength(epoch);
    expect(epoch).toBeGreaterThanOrEqual(2);
    expect(epoch).toBeLessThan(50);
    // The checkpoint is whole and resumable.
    expect(
      (await run(["train", ...TINY, "--epochs", String(epoch + 1), "--out", out, "--resume"])).code,
    ).toBe(0);
  });
});

describe("documented commands", () => {
  it("every tsjax command in README.md and docs/results.md parses with the current flags", () => {
    const text = ["README.md", "docs/results.md"].map((f) => readFileSync(join(root, f), "utf8")).join("\n");
    // Join shell continuation lines, then take each `npm run tsjax -- ...` command up to a comment.
    const commands = text
      .replace(/\\\n\s*/g, " ")
      .split("\n")
      .flatMap((l) => [...l.matchAll(/npm run tsjax -- ([^#`\n]+)/g)].map((m) => m[1]!.trim().split(/\s+/)));
    expect(commands.length).toBeGreaterThanOrEqual(8);
    for (const [cmd, ...rest] of commands) {
      if (cmd === "train") resolveTrainConfig(parseFlags("tsjax train", rest, TRAIN_FLAGS));
      else {
        expect(cmd).toBe("experiment");
        expect(["label-noise", "hessian", "m-sharpness"]).toContain(rest[0]);
        parseFlags("tsjax experiment", rest.slice(1), EXPERIMENT_FLAGS);
      }
    }
  });
});

describe("tsjax experiment", () => {
  const EXP = [
    "--seeds",
    "1",
    "--epochs",
    "1",
    "--train-size",
    "100",
    "--test-size",
    "50",
    "--image-size",
    "7",
    "--hidden",
    "8",
    "--batch-size",
    "50",
    "--jobs",
    "1",
  ];

  it("label-noise writes the Markdown table, the raw results and the chart", async () => {
    const out = join(tmp(), "ln");
    const r = await run(["experiment", "label-noise", ...EXP, "--noise", "0,0.4", "--out", out]);
    expect(r.code).toBe(0);
    const md = readFileSync(join(out, "results.md"), "utf8");
    expect(md).toMatch(/\| optimizer +\| 0 % noise +\| 40 % noise +\|/);
    expect(md).toMatch(/\| SAM ρ=0\.1 +\| \d+\.\d ± 0\.0/);
    expect(md).toMatch(/\| ASAM ρ=1 +\|/);
    const json = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    expect(json.runs).toHaveLength(6);
    expect(readFileSync(join(out, "label-noise.svg"), "utf8")).toMatch(/^<svg[\s\S]*<rect [\s\S]*<\/svg>\n$/);
    // Two worker processes compute the same numbers as this process.
    const out2 = join(tmp(), "ln2");
    const entry = join(root, "src/cli/bin.ts");
    expect(
      (
        await run(
          [
            "experiment",
            "label-noise",
            ...EXP.slice(0, -2),
            "--jobs",
            "2",
            "--noise",
            "0,0.4",
            "--out",
            out2,
          ],
          { entry },
        )
      ).code,
    ).toBe(0);
    const strip = (j: any) =>
      j.runs.map((x: any) => ({
        ...x,
        seconds: 0,
        history: x.history.map((h: any) => ({ ...h, epochSeconds: 0, wallSeconds: 0, stepsPerSecond: 0 })),
      }));
    expect(strip(JSON.parse(readFileSync(join(out2, "results.json"), "utf8")))).toEqual(strip(json));
  });

  it("an interrupted experiment writes no results and exits 130", async () => {
    const out = join(tmp(), "cut");
    const ac = new AbortController();
    const r = await run(["experiment", "label-noise", ...EXP, "--noise", "0", "--out", out], {
      signal: ac.signal,
      onWrite: (s) => s.startsWith("[1/") && ac.abort(),
    });
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^interrupted after 1 of 3 runs; no results written/);
    expect(existsSync(join(out, "results.md"))).toBe(false);
  });

  it("hessian reports five eigenvalues per run, descending, and m-sharpness one accuracy per m", async () => {
    const dir = tmp();
    const h = await run(["experiment", "hessian", ...EXP, "--out", join(dir, "h")]);
    expect(h.code).toBe(0);
    const runs = JSON.parse(readFileSync(join(dir, "h", "results.json"), "utf8")).runs;
    expect(runs.map((x: any) => x.optimizer)).toEqual(["momentum", "sam"]);
    for (const x of runs) {
      expect(x.eigenvalues).toHaveLength(5);
      for (let i = 1; i < 5; i++) expect(x.eigenvalues[i]).toBeLessThanOrEqual(x.eigenvalues[i - 1]);
      expect(x.ratio).toBeCloseTo(x.eigenvalues[0] / x.eigenvalues[4], 9);
    }
    const m = await run(["experiment", "m-sharpness", ...EXP, "--m", "0,10", "--out", join(dir, "m")]);
    expect(m.code).toBe(0);
    expect(readFileSync(join(dir, "m", "results.md"), "utf8")).toMatch(
      /\| 50 +\| [\d.]+ ± 0\.0 +\|\n\| 10 +\|/,
    );
    expectUserError(
      await run(["experiment", "m-sharpness", ...EXP, "--m", "7", "--out", join(dir, "m2")]),
      /--m 7 does not divide --batch-size 50/,
    );
  });
});
