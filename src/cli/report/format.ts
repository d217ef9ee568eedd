/** Text formatting for the terminal: numbers with 4 significant digits, durations, tables. */

/**
 * A loss or accuracy with 4 significant digits (never "0.00" for a small loss).
 *
 * @example
 * ```ts
 * sig4(0.000123456); // "1.235e-4"
 * ```
 */
export function sig4(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e5 ? String(Number(v.toPrecision(4))) : v.toExponential(3);
}

/**
 * A percentage with one decimal.
 *
 * @example
 * ```ts
 * pct(0.7291); // "72.9%"
 * ```
 */
export function pct(v: number): string {
  return `${(100 * v).toFixed(1)}%`;
}

/**
 * Seconds as `1m05s` / `12.3s`.
 *
 * @example
 * ```ts
 * duration(75); // "1m15s"
 * ```
 */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - 60 * m);
  return m >= 60
    ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`
    : `${m}m${String(s).padStart(2, "0")}s`;
}

/**
 * A Markdown table (which also reads well as plain text), columns padded to equal width.
 *
 * @example
 * ```ts
 * markdownTable(["a", "b"], [["1", "2"]]); // "| a | b |\n|---|---|\n| 1 | 2 |\n"
 * ```
 */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length), 3));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  const sep = `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`;
  return `${[line(header), sep, ...rows.map(line)].join("\n")}\n`;
}

/**
 * Mean and sample standard deviation (0 for a single value).
 *
 * @example
 * ```ts
 * meanStd([1, 2, 3]); // { mean: 2, std: 1 }
 * ```
 */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const n = xs.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: 0 };
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(v) };
}
