/**
 * A small SVG chart writer: line charts (training curves, accuracy against m) and grouped bar
 * charts with error bars (the label-noise table). Plain strings, no dependencies, fixed palette;
 * the output is deterministic for equal input.
 */

/** One line of a line chart. */
export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
}

/** Options shared by the charts. */
export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Use a log-2 x axis (for m). */
  logX?: boolean;
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const MARGIN = { left: 64, right: 150, top: 40, bottom: 48 };
/** Room for the legend: about 7 px per character of the longest name, plus the swatch. */
const legendWidth = (names: readonly string[]) =>
  Math.max(110, 50 + 7 * Math.max(0, ...names.map((n) => n.length)));

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * About five round tick values covering `[lo, hi]`.
 *
 * @example
 * ```ts
 * niceTicks(0.13, 0.87); // [0, 0.2, 0.4, 0.6, 0.8, 1]
 * ```
 */
export function niceTicks(lo: number, hi: number, count = 5, integer = false): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = ([1, 2, 2.5, 5, 10].find((s) => s * mag >= raw) ?? 10) * mag;
  // Whole-number axes (epochs) get whole-number ticks.
  if (integer) step = Math.max(1, Math.ceil(step));
  const ticks: number[] = [];
  for (let t = Math.floor(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push(Number(t.toPrecision(12)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1000 || a < 0.01) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

interface Frame {
  w: number;
  right: number;
  h: number;
  x(v: number): number;
  y(v: number): number;
  parts: string[];
}

function frame(
  opts: ChartOptions,
  xTicks: number[],
  yTicks: number[],
  names: readonly string[],
  xLabels?: string[],
): Frame {
  const right = legendWidth(names);
  const w = opts.width ?? 490 + right;
  const h = opts.height ?? 400;
  const pw = w - MARGIN.left - right;
  const ph = h - MARGIN.top - MARGIN.bottom;
  const tx = (v: number) => (opts.logX ? Math.log2(v) : v);
  const [x0, x1] = [tx(xTicks[0]!), tx(xTicks[xTicks.length - 1]!)];
  const [y0, y1] = [yTicks[0]!, yTicks[yTicks.length - 1]!];
  const x = (v: number) => MARGIN.left + (x1 === x0 ? pw / 2 : ((tx(v) - x0) / (x1 - x0)) * pw);
  const y = (v: number) => MARGIN.top + ph - (y1 === y0 ? ph / 2 : ((v - y0) / (y1 - y0)) * ph);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${MARGIN.left + pw / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`,
  ];
  yTicks.forEach((t) => {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + pw}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e5e5e5"/>`,
    );
    parts.push(
      `<text x="${MARGIN.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${fmt(t)}</text>`,
    );
  });
  xTicks.forEach((t, i) => {
    const label = xLabels?.[i] ?? fmt(t);
    parts.push(
      `<text x="${x(t).toFixed(1)}" y="${MARGIN.top + ph + 18}" text-anchor="middle">${esc(label)}</text>`,
    );
  });
  parts.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
    `<text x="${MARGIN.left + pw / 2}" y="${h - 10}" text-anchor="middle">${esc(opts.xLabel)}</text>`,
    `<text transform="translate(16 ${MARGIN.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  );
  return { w, h, right, x, y, parts };
}

function legend(f: Frame, names: string[], dashed: boolean[] = []): void {
  names.forEach((n, i) => {
    const yy = MARGIN.top + 10 + i * 18;
    const xx = f.w - f.right + 12;
    const dash = dashed[i] ? ' stroke-dasharray="5 3"' : "";
    f.parts.push(
      `<line x1="${xx}" x2="${xx + 22}" y1="${yy}" y2="${yy}" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="2.5"${dash}/>`,
    );
    f.parts.push(`<text x="${xx + 28}" y="${yy + 4}">${esc(n)}</text>`);
  });
}

/**
 * A line chart of one or more series, with markers at the points.
 *
 * @example
 * ```ts
 * lineChart([{ name: "SGD", points: [[1, 0.5], [2, 0.3]] }], { title: "loss", xLabel: "epoch", yLabel: "loss" });
 * ```
 */
export function lineChart(series: readonly Series[], opts: ChartOptions): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  let xTicks: number[];
  if (opts.logX) {
    const uniq = [...new Set(xs)].sort((a, b) => a - b);
    xTicks = uniq.length > 0 ? uniq : [1];
  } else
    xTicks = niceTicks(
      Math.min(...xs, Number.POSITIVE_INFINITY),
      Math.max(...xs, Number.NEGATIVE_INFINITY),
      5,
      xs.every(Number.isInteger),
    );
  if (!opts.logX && xs.length === 0) xTicks = [0, 1];
  const yTicks = ys.length > 0 ? niceTicks(Math.min(...ys), Math.max(...ys)) : [0, 1];
  const f = frame(
    opts,
    xTicks,
    yTicks,
    series.map((s) => s.name),
  );
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    const d = pts
      .map((p, j) => `${j === 0 ? "M" : "L"}${f.x(p[0]).toFixed(1)} ${f.y(p[1]).toFixed(1)}`)
      .join(" ");
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : "";
    if (pts.length > 1)
      f.parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    pts.forEach((p) =>
      f.parts.push(
        `<circle cx="${f.x(p[0]).toFixed(1)}" cy="${f.y(p[1]).toFixed(1)}" r="3" fill="${color}"/>`,
      ),
    );
  });
  legend(
    f,
    series.map((s) => s.name),
    series.map((s) => s.dashed ?? false),
  );
  f.parts.push("</svg>");
  return `${f.parts.join("\n")}\n`;
}

/** One group of bars (one x category) and its values per series, with optional spreads. */
export interface BarGroup {
  label: string;
  values: readonly number[];
  errors?: readonly number[];
}

/**
 * A grouped bar chart with error bars (±`errors[i]`), one colour per series.
 *
 * @example
 * ```ts
 * barChart(["SGD", "SAM"], [{ label: "40 %", values: [80, 85], errors: [1, 0.5] }], { title: "t", xLabel: "noise", yLabel: "acc" });
 * ```
 */
export function barChart(
  seriesNames: readonly string[],
  groups: readonly BarGroup[],
  opts: ChartOptions,
): string {
  const tops = groups
    .flatMap((g) => g.values.map((v, i) => v + (g.errors?.[i] ?? 0)))
    .filter(Number.isFinite);
  const lows = groups
    .flatMap((g) => g.values.map((v, i) => v - (g.errors?.[i] ?? 0)))
    .filter(Number.isFinite);
  const yTicks = niceTicks(Math.min(0, ...lows), Math.max(...tops, 1));
  const xTicks = groups.map((_, i) => i);
  const padded = { ...opts, logX: false };
  // Pad the x range by half a group on each side.
  const xr = [-0.5, ...xTicks, groups.length - 0.5];
  const f = frame(padded, xr, yTicks, seriesNames, ["", ...groups.map((g) => g.label), ""]);
  const groupW = (f.x(1) - f.x(0)) * 0.8;
  const barW = groupW / Math.max(1, seriesNames.length);
  groups.forEach((g, gi) => {
    g.values.forEach((v, si) => {
      if (!Number.isFinite(v)) return;
      const color = PALETTE[si % PALETTE.length];
      const x = f.x(gi) - groupW / 2 + si * barW;
      const top = f.y(v);
      const base = f.y(Math.max(0, yTicks[0]!));
      f.parts.push(
        `<rect x="${x.toFixed(1)}" y="${Math.min(top, base).toFixed(1)}" width="${(barW * 0.9).toFixed(1)}" height="${Math.abs(base - top).toFixed(1)}" fill="${color}"/>`,
      );
      const e = g.errors?.[si];
      if (e !== undefined && Number.isFinite(e) && e > 0) {
        const cx = x + barW * 0.45;
        f.parts.push(
          `<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${f.y(v - e).toFixed(1)}" y2="${f.y(v + e).toFixed(1)}" stroke="#222" stroke-width="1.5"/>`,
        );
      }
    });
  });
  legend(f, [...seriesNames]);
  f.parts.push("</svg>");
  return `${f.parts.join("\n")}\n`;
}
