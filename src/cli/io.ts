/**
 * What the command line touches outside itself: the output streams (injectable, so tests run the
 * CLI in-process) and atomic file writes (a file is either its old or its new content, never half).
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ConfigError } from "../core/errors.js";

/** A writable text stream (process.stdout or a test's buffer). */
export interface TextOut {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** The streams the CLI writes to, and an abort signal that SIGINT raises. */
export interface CliIO {
  stdout: TextOut;
  stderr: TextOut;
  /** Set when the user interrupts; training stops after the current step. */
  signal?: AbortSignal;
  /** Path of the `tsjax` executable, so experiments can start worker copies of it (`--jobs`). */
  entry?: string;
}

/**
 * Writes `data` to `path` through a temporary file in the same folder and a rename, so a reader
 * (or a Ctrl-C) never sees a partial file.
 *
 * @example
 * ```ts
 * writeFileAtomic("runs/a/metrics.jsonl", lines.join("\n"));
 * ```
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, "wx", 0o644);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw new ConfigError(`cannot write ${path}: ${(e as Error).message}`, "output");
  }
}

/**
 * Creates the output folder (and parents), or raises a one-line ConfigError naming it.
 *
 * @example
 * ```ts
 * ensureDir("runs/sam"); // or a ConfigError naming the folder
 * ```
 */
export function ensureDir(dir: string, flag = "--out"): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError(`cannot create ${flag} folder ${dir}: ${err.code ?? err.message}`, "output");
  }
  // Probe writability now rather than after the first epoch.
  const probe = join(dir, `.write-test-${process.pid}`);
  try {
    closeSync(openSync(probe, "w"));
    unlinkSync(probe);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError(`${flag} folder ${dir} is not writable: ${err.code ?? err.message}`, "output");
  }
}
