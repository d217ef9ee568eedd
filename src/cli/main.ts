/**
 * The `tsjax` command line: `tsjax train ...` and `tsjax experiment label-noise|hessian|m-sharpness`.
 * `main` takes argv and the output streams and returns the exit status, so tests run it in-process:
 * 0 done, 2 a user mistake (one line on stderr, no stack trace), 130 interrupted, 1 a bug.
 */
import { join } from "node:path";
import { TsjaxError } from "../core/errors.js";
import { helpText, parseFlags } from "./args.js";
import { EXPERIMENTS, EXPERIMENT_FLAGS, runExperiment } from "./experiments/index.js";
import { workerLoop } from "./experiments/pool.js";
import type { CliIO } from "./io.js";
import { pngCopies } from "./report/png.js";
import { defaultOut, resolveTrainConfig, TRAIN_FLAGS } from "./train/config.js";
import { runTraining, summaryTable } from "./train/run.js";

const USAGE = `usage: tsjax <command> [flags]

commands:
  train                      train a model on MNIST or Fashion-MNIST (tsjax train --help)
  experiment <name>          ${EXPERIMENTS.join(" | ")} (tsjax experiment --help)
  help                       show this text
`;

async function train(argv: string[], io: CliIO): Promise<number> {
  const flags = parseFlags("tsjax train", argv, TRAIN_FLAGS);
  if (flags.help) {
    io.stdout.write(helpText("usage: tsjax train [flags]", TRAIN_FLAGS));
    return 0;
  }
  const cfg = resolveTrainConfig(flags);
  const out = typeof flags.out === "string" ? flags.out : defaultOut(cfg);
  const resume = flags.resume === true;
  if (!flags.quiet) io.stdout.write(`tsjax train → ${out}${resume ? " (resuming)" : ""}\n`);
  const r = await runTraining(cfg, {
    io,
    out,
    resume,
    resumeFlags: flags,
    progress: flags.quiet ? "none" : "auto",
  });
  const last = r.history[r.history.length - 1];
  if (r.history.length > 0) io.stdout.write(`\n${summaryTable(r.history)}`);
  if (r.interrupted) {
    const where = last ? `epoch ${last.epoch}'s checkpoint and metrics are intact` : "no epoch was completed";
    io.stderr.write(`interrupted: ${where} in ${out} (continue with --resume --out ${out})\n`);
    return 130;
  }
  if (flags.png && r.history.length > 0) {
    const pngs = pngCopies([join(out, "loss.svg"), join(out, "accuracy.svg")]);
    if (pngs === null)
      io.stderr.write("--png: no renderer found (install chromium); the SVG plots are written\n");
    else io.stdout.write(`\nwrote ${pngs.join(", ")}\n`);
  }
  io.stdout.write(
    `\nwrote ${join(out, "metrics.jsonl")}, ${join(out, "checkpoint.safetensors")}, ${join(out, "loss.svg")}, ${join(out, "accuracy.svg")}\n`,
  );
  return 0;
}

/**
 * Runs the command line on `argv` (without the node and script paths) and returns the exit status.
 *
 * @example
 * ```ts
 * process.exitCode = await main(["train", "--train-size", "1000", "--epochs", "1"], { stdout: process.stdout, stderr: process.stderr });
 * ```
 */
export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "train":
        return await train(rest, io);
      case "experiment": {
        const [name, ...flagsArgv] = rest;
        if (name === undefined || name === "--help" || name === "help") {
          io.stdout.write(
            helpText(`usage: tsjax experiment ${EXPERIMENTS.join("|")} [flags]`, EXPERIMENT_FLAGS),
          );
          return name === undefined ? 2 : 0;
        }
        return await runExperiment(name, flagsArgv, io);
      }
      case "__worker":
        // Internal: a child process of `experiment --jobs N`.
        return await workerLoop();
      case undefined:
      case "help":
      case "--help":
      case "-h":
        io.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        io.stderr.write(`tsjax: unknown command '${command}' (commands: train, experiment, help)\n`);
        return 2;
    }
  } catch (e) {
    if (e instanceof TsjaxError) {
      // A user mistake (bad flag, missing data, unwritable folder, corrupt checkpoint): one line.
      io.stderr.write(`error: ${e.message.split("\n")[0]}\n`);
      return 2;
    }
    throw e;
  }
}
