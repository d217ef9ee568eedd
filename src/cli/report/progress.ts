/**
 * Training progress: a redrawn one-line bar on a terminal (epoch, step, loss, accuracy, steps/s,
 * time left), one plain line per epoch otherwise (CI logs, pipes).
 */
import type { TextOut } from "../io.js";
import { duration, pct, sig4 } from "./format.js";

/** What the loop reports after each step. */
export interface StepReport {
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  loss: number;
  acc: number;
  stepsPerSecond: number;
  /** Seconds left in the whole run. */
  eta: number;
}

/** Receives step and epoch events. */
export interface Progress {
  step(r: StepReport): void;
  epoch(line: string): void;
}

/**
 * A progress reporter for `out`: a bar when it is a TTY (`mode: "auto"`), plain lines otherwise;
 * `"none"` prints nothing.
 *
 * @example
 * ```ts
 * const p = progress(process.stdout, "auto");
 * ```
 */
export function progress(out: TextOut, mode: "auto" | "none"): Progress {
  if (mode === "none") return { step() {}, epoch() {} };
  if (!out.isTTY) return { step() {}, epoch: (line) => void out.write(`${line}\n`) };
  let last = 0;
  let drawn = false;
  return {
    step(r) {
      const now = Date.now();
      // Redraw at most 10 times a second, and always at the epoch's last step.
      if (now - last < 100 && r.step !== r.stepsPerEpoch) return;
      last = now;
      const width = Math.max(10, Math.min(30, (out.columns ?? 100) - 90));
      const filled = Math.round((width * r.step) / r.stepsPerEpoch);
      const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
      const text = `epoch ${r.epoch}/${r.epochs} ${bar} ${r.step}/${r.stepsPerEpoch}  loss ${sig4(r.loss)}  acc ${pct(r.acc)}  ${r.stepsPerSecond.toFixed(1)} steps/s  ETA ${duration(r.eta)}`;
      out.write(`\r\x1b[2K${text}`);
      drawn = true;
    },
    epoch(line) {
      out.write(`${drawn ? "\r\x1b[2K" : ""}${line}\n`);
      drawn = false;
    },
  };
}
