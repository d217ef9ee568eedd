/** The IDX parser against its own encoder, and every way a file can be broken. */
import { gzipSync } from "node:zlib";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { DatasetError, encodeIdx, parseIdx } from "../../src/cli/data/idx.js";

const arbIdx = fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }).chain((shape) => {
  const size = shape.reduce((a, b) => a * b, 1);
  return fc.tuple(fc.constant(shape), fc.uint8Array({ minLength: size, maxLength: size }));
});

const fuzz = { numRuns: 150, seed: 7 };

describe("parseIdx", () => {
  test.prop([arbIdx], fuzz)("decodes what encodeIdx wrote, plain or gzipped", ([shape, data]) => {
    const file = encodeIdx(shape, data);
    for (const bytes of [file, new Uint8Array(gzipSync(file))]) {
      const back = parseIdx(bytes, "x", shape.length);
      expect(back.shape).toEqual(shape);
      expect(Array.from(back.data)).toEqual(Array.from(data));
    }
  });

  test.prop([arbIdx, fc.nat()], fuzz)(
    "a truncated file is refused with a clear message",
    ([shape, data], cut) => {
      const file = encodeIdx(shape, data);
      const len = cut % file.length; // strictly shorter than the file
      expect(() => parseIdx(file.subarray(0, len), "train-images")).toThrow(DatasetError);
      expect(() => parseIdx(file.subarray(0, len), "train-images")).toThrow(
        /idx\(train-images\): .*(truncated|too short)/,
      );
    },
  );

  test.prop([arbIdx, fc.integer({ min: 1, max: 16 })], fuzz)(
    "trailing bytes are refused",
    ([shape, data], extra) => {
      const file = encodeIdx(shape, data);
      const longer = new Uint8Array(file.length + extra);
      longer.set(file);
      expect(() => parseIdx(longer, "x")).toThrow(/trailing bytes/);
    },
  );

  test.prop([arbIdx, fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 255 })], fuzz)(
    "a bad magic number is refused",
    ([shape, data], at, value) => {
      const file = encodeIdx(shape, data).slice();
      file[at] = value;
      expect(() => parseIdx(file, "x")).toThrow(/bad magic number/);
    },
  );

  test.prop([fc.uint8Array({ maxLength: 64 })], { numRuns: 300, seed: 11 })(
    "arbitrary bytes parse or raise DatasetError, nothing else",
    (bytes) => {
      try {
        const r = parseIdx(bytes, "x");
        expect(r.data.length).toBe(r.shape.reduce((a, b) => a * b, 1));
      } catch (e) {
        expect(e).toBeInstanceOf(DatasetError);
        expect((e as Error).message).not.toContain("\n");
      }
    },
  );

  it("names the element type and the dimension count it expected", () => {
    const file = encodeIdx([2, 2], new Uint8Array(4)).slice();
    file[2] = 0x0d;
    expect(() => parseIdx(file, "x")).toThrow("element type 0x0d (float) is not ubyte");
    expect(() => parseIdx(encodeIdx([4], new Uint8Array(4)), "labels", 3)).toThrow(
      "1 dimensions, expected 3",
    );
    const gz = new Uint8Array(gzipSync(encodeIdx([4], new Uint8Array(4))));
    expect(() => parseIdx(gz.subarray(0, gz.length - 6), "x")).toThrow(/corrupt gzip data/);
  });
});
