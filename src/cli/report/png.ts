/**
 * Optional PNG copies of the SVG charts, rendered by a headless Chromium when one is installed
 * (Debian's `chromium`). Nothing is required: without a renderer the SVGs are the output.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const BROWSERS = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

/**
 * The first headless-capable browser on `PATH`, or null.
 *
 * @example
 * ```ts
 * findRenderer(); // "/usr/bin/chromium" or null
 * ```
 */
export function findRenderer(): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    for (const b of BROWSERS) {
      const p = join(dir, b);
      if (existsSync(p)) return p;
    }
  }
  return null;
}

/** The `width`/`height` attributes of an SVG document (640×400 when absent). */
function svgSize(svg: string): [number, number] {
  const w = /<svg[^>]*\bwidth="(\d+)"/.exec(svg)?.[1];
  const h = /<svg[^>]*\bheight="(\d+)"/.exec(svg)?.[1];
  return [w ? Number(w) : 640, h ? Number(h) : 400];
}

/**
 * Renders `svgPath` (whose text is `svg`) to `pngPath` with `browser`; returns whether it worked.
 * The PNG appears atomically (rendered to a temporary name, then renamed).
 *
 * @example
 * ```ts
 * const b = findRenderer();
 * if (b) renderPng(b, "runs/a/loss.svg", svgText, "runs/a/loss.png");
 * ```
 */
export function renderPng(browser: string, svgPath: string, svg: string, pngPath: string): boolean {
  const [w, h] = svgSize(svg);
  const profile = mkdtempSync(join(tmpdir(), "tsjax-png-"));
  const tmp = `${pngPath}.tmp-${process.pid}.png`;
  try {
    const r = spawnSync(
      browser,
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        `--user-data-dir=${profile}`,
        `--screenshot=${resolve(tmp)}`,
        `--window-size=${w},${h}`,
        pathToFileURL(resolve(svgPath)).href,
      ],
      { stdio: "ignore", timeout: 60_000 },
    );
    if (r.status !== 0 || !existsSync(tmp)) return false;
    renameSync(tmp, pngPath);
    return true;
  } finally {
    rmSync(profile, { recursive: true, force: true });
    rmSync(tmp, { force: true });
  }
}

/**
 * PNG copies of the given SVG files next to them, when a renderer is installed. Returns the PNGs
 * written, or null when there is no renderer.
 *
 * @example
 * ```ts
 * pngCopies(["runs/a/loss.svg"]); // ["runs/a/loss.png"]
 * ```
 */
export function pngCopies(svgPaths: readonly string[]): string[] | null {
  const browser = findRenderer();
  if (browser === null) return null;
  const out: string[] = [];
  for (const p of svgPaths) {
    const png = p.replace(/\.svg$/, ".png");
    if (renderPng(browser, p, readFileSync(p, "utf8"), png)) out.push(png);
  }
  return out;
}
