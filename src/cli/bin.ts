#!/usr/bin/env node
/**
 * The `tsjax` executable: runs {@link main} on the process's arguments. The first Ctrl-C stops
 * training after the current step (the last complete checkpoint stays); a second one exits at once.
 */
import { fileURLToPath } from "node:url";
import { main } from "./main.js";

const controller = new AbortController();
// An experiment's worker child keeps the default: Ctrl-C ends it, and its parent reports it.
if (process.argv[2] !== "__worker")
  process.on("SIGINT", () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write("\nstopping after the current step (Ctrl-C again to quit now)\n");
    controller.abort();
  });

main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
  entry: fileURLToPath(import.meta.url),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    // Not a user mistake: a bug, so the stack trace is worth showing.
    process.stderr.write(`tsjax: internal error: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
