/**
 * Strict flag parsing on node's `util.parseArgs`, with every failure turned into a one-line
 * {@link ConfigError} that names the command and the flag (the command line exits 2 on it).
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../core/errors.js";

/** A flag: a string value, or a boolean switch. */
export interface FlagSpec {
  type: "string" | "boolean";
  /** One-line help text. */
  help: string;
  /** Shown in the help as the default. */
  default?: string;
}

/** The flags a command accepts, by long name. */
export type FlagSpecs = Record<string, FlagSpec>;

/** Parsed flags: only the ones given on the command line are present. */
export type Flags = Record<string, string | boolean | undefined>;

/**
 * Parses `argv` against `specs` (no positionals, no unknown flags, a value for every string flag).
 *
 * @example
 * ```ts
 * parseFlags("tsjax train", ["--lr", "0.1"], { lr: { type: "string", help: "learning rate" } }); // { lr: "0.1" }
 * ```
 */
export function parseFlags(command: string, argv: readonly string[], specs: FlagSpecs): Flags {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const [name, s] of Object.entries(specs)) options[name] = { type: s.type };
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
    return values as Flags;
  } catch (e) {
    throw new ConfigError(parseArgsMessage(e as Error & { code?: string }), command);
  }
}

/** node's messages are long and mention `--foo <value>` forms; keep their first sentence. */
function parseArgsMessage(e: Error & { code?: string }): string {
  const first = e.message.split(/\n/)[0]!.replace(/\. To specify.*$/, "");
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `${first.replace(/^Unknown option/, "unknown flag")} (see --help)`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `${first.replace(/^Unexpected argument/, "unexpected argument")} (flags take the form --name value)`;
    default:
      // "argument is ambiguous": a value that starts with '-', such as --lr -1.
      return /ambiguous/.test(first)
        ? `${first.replace(/\.$/, "")} (write --name=value for a value starting with '-')`
        : first;
  }
}

/**
 * A positive or non-negative finite number from a flag's text.
 *
 * @example
 * ```ts
 * numberFlag("tsjax train", "lr", "0.1", 0.1, { min: 0 }); // 0.1
 * ```
 */
export function numberFlag(
  command: string,
  name: string,
  text: string | boolean | undefined,
  fallback: number,
  opts: {
    min?: number;
    max?: number;
    minExclusive?: boolean;
    maxExclusive?: boolean;
    integer?: boolean;
  } = {},
): number {
  if (text === undefined) return fallback;
  const v = typeof text === "string" && text.trim() !== "" ? Number(text) : Number.NaN;
  const what = opts.integer ? "an integer" : "a number";
  if (!Number.isFinite(v) || (opts.integer && !Number.isInteger(v)))
    throw new ConfigError(`--${name} must be ${what}, got '${String(text)}'`, command);
  const { min, max, minExclusive = false, maxExclusive = false } = opts;
  if (min !== undefined && (minExclusive ? !(v > min) : !(v >= min)))
    throw new ConfigError(`--${name} must be ${minExclusive ? ">" : ">="} ${min}, got ${v}`, command);
  if (max !== undefined && (maxExclusive ? !(v < max) : !(v <= max)))
    throw new ConfigError(`--${name} must be ${maxExclusive ? "<" : "<="} ${max}, got ${v}`, command);
  return v;
}

/**
 * One of a fixed set of words.
 *
 * @example
 * ```ts
 * choiceFlag("tsjax train", "model", "cnn", ["mlp", "cnn"], "mlp"); // "cnn"
 * ```
 */
export function choiceFlag<T extends string>(
  command: string,
  name: string,
  text: string | boolean | undefined,
  choices: readonly T[],
  fallback: T,
): T {
  if (text === undefined) return fallback;
  if (typeof text !== "string" || !(choices as readonly string[]).includes(text))
    throw new ConfigError(`--${name} must be one of ${choices.join("|")}, got '${String(text)}'`, command);
  return text as T;
}

/**
 * The help text of a command: usage line and one line per flag.
 *
 * @example
 * ```ts
 * helpText("usage: tsjax train [flags]", TRAIN_FLAGS);
 * ```
 */
export function helpText(usage: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const left = `  --${name}${s.type === "string" ? " <value>" : ""}`;
    const def = s.default !== undefined ? ` (default ${s.default})` : "";
    return `${left.padEnd(28)} ${s.help}${def}`;
  });
  return `${usage}\n\n${rows.join("\n")}\n`;
}
