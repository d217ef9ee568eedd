/** The loss curve as SVG markup: pure string building, so Node tests can check it. */

/** Plot area in SVG user units. */
export interface CurveBox {
  width: number;
  height: number;
  /** Margin for the axis labels. */
  pad: number;
}

const BOX: CurveBox = { width: 640, height: 300, pad: 44 };

/** Rounds for an axis label. */
function label(v: number): string {
  return Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(2);
}

/**
 * An SVG of `losses` against step (1-based), y from 0 to the largest loss, with axes and labels;
 * the x axis spans `totalSteps` (at least the steps so far), so a run in progress grows rightwards.
 *
 * @example document.querySelector("#curve")!.innerHTML = curveSvg([2.3, 1.9, 1.2], 100);
 */
export function curveSvg(losses: readonly number[], totalSteps = losses.length, box: CurveBox = BOX): string {
  const { width: w, height: h, pad } = box;
  const top = Math.max(1e-6, ...losses.filter(Number.isFinite));
  const steps = Math.max(2, losses.length, totalSteps);
  const x = (i: number) => pad + ((w - 2 * pad) * i) / (steps - 1);
  const y = (v: number) => h - pad - ((h - 2 * pad) * v) / top;
  const points = losses.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const axes = `<path d="M${pad},${pad} V${h - pad} H${w - pad}" fill="none" stroke="#888"/>`;
  const labels = [
    `<text x="${pad - 6}" y="${y(top) + 4}" text-anchor="end">${label(top)}</text>`,
    `<text x="${pad - 6}" y="${y(0) + 4}" text-anchor="end">0</text>`,
    `<text x="${pad}" y="${h - pad + 18}" text-anchor="middle">1</text>`,
    `<text x="${w - pad}" y="${h - pad + 18}" text-anchor="middle">${steps}</text>`,
    `<text x="${w / 2}" y="${h - 8}" text-anchor="middle">step</text>`,
    `<text x="14" y="${h / 2}" text-anchor="middle" transform="rotate(-90 14 ${h / 2})">training loss</text>`,
  ].join("");
  const line =
    losses.length > 0 ? `<polyline points="${points}" fill="none" stroke="#1f6feb" stroke-width="2"/>` : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="100%" font-family="sans-serif" font-size="12">${axes}${labels}${line}</svg>`;
}
