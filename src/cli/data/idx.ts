/**
 * The IDX file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
 *
 *     [0x00 0x00][type code][number of dimensions n][n × u32 big-endian sizes][data, row-major]
 *
 * Only the unsigned-byte type (0x08) is used by these datasets, so it is the only one accepted.
 * Files may be gzip-compressed (Debian ships Fashion-MNIST as `.gz`); they are inflated first.
 * Every check names the file, so a truncated download reads as one clear line.
 */
import { gunzipSync } from "node:zlib";
import { TsjaxError } from "../../core/errors.js";

/** A dataset file that is missing, truncated or not what it claims to be. */
export class DatasetError extends TsjaxError {}

/** A decoded IDX array of unsigned bytes. */
export interface IdxArray {
  /** Sizes of the dimensions, outermost first (`[60000, 28, 28]` for MNIST's training images). */
  shape: number[];
  /** The values, row-major; a view into the (inflated) file. */
  data: Uint8Array;
}

const UBYTE = 0x08;
const MAX_DIMS = 8;
// IDX element type codes: 0x08 ubyte, 0x09 byte, 0x0b short, 0x0c int, 0x0d float, 0x0e double.
const TYPE_NAMES = new Map<number, string>([
  [0x08, "ubyte"],
  [0x09, "byte"],
  [0x0b, "short"],
  [0x0c, "int"],
  [0x0d, "float"],
  [0x0e, "double"],
]);

/**
 * Decodes an IDX file (gzip-compressed or not) and checks its header against its length and,
 * when given, the expected number of dimensions.
 *
 * @example
 * ```ts
 * const labels = parseIdx(readFileSync("train-labels-idx1-ubyte"), "train-labels", 1);
 * labels.shape; // [60000]
 * ```
 */
export function parseIdx(bytes: Uint8Array, name: string, expectDims?: number): IdxArray {
  const op = `idx(${name})`;
  let buf = bytes;
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      const inflated = gunzipSync(buf);
      buf = new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength);
    } catch (e) {
      throw new DatasetError(`corrupt gzip data (${(e as Error).message})`, op);
    }
  }
  if (buf.length < 4) throw new DatasetError(`file is ${buf.length} bytes, too short for an IDX header`, op);
  if (buf[0] !== 0 || buf[1] !== 0)
    throw new DatasetError(`bad magic number 0x${hex(buf, 0, 4)}: not an IDX file`, op);
  const type = buf[2]!;
  const dims = buf[3]!;
  if (type !== UBYTE)
    throw new DatasetError(
      `element type 0x${type.toString(16).padStart(2, "0")} (${TYPE_NAMES.get(type) ?? "unknown"}) is not ubyte`,
      op,
    );
  if (dims === 0 || dims > MAX_DIMS)
    throw new DatasetError(`${dims} dimensions in the header (1..${MAX_DIMS} expected)`, op);
  if (expectDims !== undefined && dims !== expectDims)
    throw new DatasetError(`${dims} dimensions, expected ${expectDims}`, op);
  const headerLen = 4 + 4 * dims;
  if (buf.length < headerLen)
    throw new DatasetError(`truncated header: ${buf.length} of ${headerLen} bytes`, op);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const shape: number[] = [];
  let size = 1;
  for (let i = 0; i < dims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    size *= d;
  }
  const have = buf.length - headerLen;
  if (have < size)
    throw new DatasetError(
      `truncated: the header says [${shape.join(",")}] = ${size} bytes of data, the file has ${have}`,
      op,
    );
  if (have > size)
    throw new DatasetError(`${have - size} trailing bytes after the [${shape.join(",")}] array`, op);
  return { shape, data: buf.subarray(headerLen) };
}

/**
 * Encodes unsigned bytes as an IDX file (the inverse of {@link parseIdx}); used to make fixtures.
 *
 * @example
 * ```ts
 * parseIdx(encodeIdx([2], new Uint8Array([3, 4])), "x").data; // Uint8Array [3, 4]
 * ```
 */
export function encodeIdx(shape: readonly number[], data: Uint8Array): Uint8Array {
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== data.length)
    throw new DatasetError(`shape [${shape.join(",")}] needs ${size} bytes, got ${data.length}`, "encodeIdx");
  const out = new Uint8Array(4 + 4 * shape.length + size);
  const view = new DataView(out.buffer);
  out[2] = UBYTE;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * shape.length);
  return out;
}

function hex(b: Uint8Array, from: number, to: number): string {
  return Array.from(b.subarray(from, to), (x) => x.toString(16).padStart(2, "0")).join("");
}
