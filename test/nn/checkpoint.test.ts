import fc from "fast-check";
import * as fs from "node:fs";
import * as os from "node:os";
import * as nodePath from "node:path";
import { describe, expect, it } from "vitest";
import { allocate, type DType } from "../../src/core/dtype.js";
import { CheckpointError } from "../../src/core/errors.js";
import { Tensor } from "../../src/core/tensor.js";
import { register, unregister } from "../../src/core/tree.js";
import { deserialize, load, parseKeyPath, save, serialize } from "../../src/nn/checkpoint.js";

const DTYPES: DType[] = ["float32", "float64", "int32", "uint32", "bool"];

function tensor(shape: number[], dtype: DType, values: number[]): Tensor {
  const buf = allocate(dtype, values.length);
  buf.set(values);
  return Tensor._fromBuffer(shape, dtype, buf);
}

/** Plain-data view of a tree, for equality that sees dtype, shape and exact bits. */
function view(x: unknown): unknown {
  if (x instanceof Tensor) return { dtype: x.dtype, shape: [...x.shape], data: Array.from(x._buf!, (v) => (Object.is(v, -0) ? "-0" : Number.isNaN(v) ? "NaN" : v)) };
  if (Array.isArray(x)) return x.map(view);
  if (typeof x === "number") return Object.is(x, -0) ? "-0" : Number.isNaN(x) ? "NaN" : x;
  if (x !== null && typeof x === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(x).sort()) Object.defineProperty(out, k, { value: view((x as any)[k]), enumerable: true });
    return out;
  }
  return x;
}

const arbShape = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 });
const arbTensor = fc.tuple(arbShape, fc.constantFrom(...DTYPES)).chain(([shape, dtype]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const el =
    dtype === "bool"
      ? fc.integer({ min: 0, max: 1 })
      : dtype === "int32"
        ? fc.integer()
        : dtype === "uint32"
          ? fc.integer({ min: 0, max: 2 ** 32 - 1 })
          : dtype === "float32"
            ? fc.float({ noDefaultInfinity: false })
            : fc.double();
  return fc.array(el, { minLength: n, maxLength: n }).map((vals) => tensor(shape, dtype, vals));
});
const arbKey = fc.oneof(fc.constantFrom("w", "b", "kernel", "a.b", "", "0", "__proto__", "constructor", "prototype", 'q"x'), fc.string({ maxLength: 4 }));
const arbTree = fc.letrec((tie) => ({
  leaf: fc.oneof(arbTensor, fc.double(), fc.boolean(), fc.string({ maxLength: 5 }), fc.constant(null)),
  node: fc.oneof({ depthSize: "small" }, tie("leaf"), fc.array(tie("node"), { maxLength: 3 }), fc.dictionary(arbKey, tie("node"), { maxKeys: 3 })),
})).node;

function readHeader(bytes: Uint8Array): { n: number; header: any } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const n = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  return { n, header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) };
}

function expectCheckpointError(f: () => unknown, pattern?: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CheckpointError);
  if (pattern) expect((err as Error).message).toMatch(pattern);
}

/** Builds a safetensors file by hand from the spec. */
function handMade(header: unknown, data: Uint8Array, pad = true): Uint8Array {
  let json = new TextEncoder().encode(JSON.stringify(header));
  if (pad && json.length % 8 !== 0) {
    const p = new Uint8Array(json.length + (8 - (json.length % 8))).fill(32);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function tmpDir(): string {
  return fs.mkdtempSync(nodePath.join(os.tmpdir(), "tsjax-ckpt-"));
}

describe("serialize/deserialize round trip", () => {
  it("random trees of every dtype, empty tensors, nested paths, numbers", () => {
    fc.assert(
      fc.property(arbTree, fc.dictionary(fc.string({ maxLength: 4 }).filter((k) => !k.startsWith("tsjax.")), fc.string()), (tree, meta) => {
        const { tree: back, metadata } = deserialize(serialize(tree, meta));
        expect(view(back)).toEqual(view(tree));
        expect({ ...metadata }).toEqual({ ...meta });
        // `like` with the same tree must accept it and keep the structure.
        expect(view(deserialize(serialize(tree), tree).tree)).toEqual(view(tree));
      }),
      { numRuns: 100 },
    );
  });

  it("keeps undefined, root tensors and numbers as JS values", () => {
    const t = tensor([2], "float32", [1, 2]);
    expect(view(deserialize(serialize(t)).tree)).toEqual(view(t));
    expect(deserialize(serialize(3.5)).tree).toBe(3.5);
    expect(deserialize(serialize({ a: undefined, b: [null, true] })).tree).toEqual({ a: undefined, b: [null, true] });
  });

  it("parses into null-prototype objects, so __proto__ keys cannot pollute", () => {
    const tree = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": 2}');
    const back = deserialize(serialize(tree)).tree as any;
    expect(Object.getPrototypeOf(back)).toBe(null);
    expect(Object.keys(back).sort()).toEqual(["__proto__", "constructor"]);
    expect(({} as any).polluted).toBeUndefined();
  });

  it("rejects unsavable leaves and reserved metadata", () => {
    expectCheckpointError(() => serialize({ f: () => 1 }), /f is a function/);
    expectCheckpointError(() => serialize({ d: new Date() }), /cannot be saved/);
    expectCheckpointError(() => serialize({}, { "tsjax.tree": "x" }), /reserved/);
  });
});

describe("byte-level compatibility", () => {
  it("reads a hand-written file (no tsjax metadata) as nested containers", () => {
    const f32 = new Float32Array([1.5, -2, 3, 4]);
    const i32 = new Int32Array([-7, 9]);
    const data = new Uint8Array(16 + 8 + 1);
    data.set(new Uint8Array(f32.buffer), 0);
    data.set(new Uint8Array(i32.buffer), 16);
    data[24] = 1;
    const header = {
      "layers[0].kernel": { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] },
      "layers[1].bias": { dtype: "I32", shape: [2], data_offsets: [16, 24] },
      flag: { dtype: "BOOL", shape: [], data_offsets: [24, 25] },
      "empty": { dtype: "F64", shape: [0, 3], data_offsets: [25, 25] },
      __metadata__: { format: "pt" },
    };
    const { tree, metadata } = deserialize(handMade(header, data));
    expect(view(tree)).toEqual({
      empty: { dtype: "float64", shape: [0, 3], data: [] },
      flag: { dtype: "bool", shape: [], data: [1] },
      layers: [{ kernel: { dtype: "float32", shape: [2, 2], data: [1.5, -2, 3, 4] } }, { bias: { dtype: "int32", shape: [2], data: [-7, 9] } }],
    });
    expect({ ...metadata }).toEqual({ format: "pt" });
  });

  it("accepts unpadded headers too", () => {
    const data = new Uint8Array(new Float64Array([2.25]).buffer);
    const tree = deserialize(handMade({ x: { dtype: "F64", shape: [1], data_offsets: [0, 8] } }, data, false)).tree as any;
    expect(Array.from(tree.x._buf)).toEqual([2.25]);
  });

  it("writes the header fields the spec describes", () => {
    const w = tensor([2, 3], "float32", [1, 2, 3, 4, 5, 6]);
    const k = tensor([2], "uint32", [0xffffffff, 7]);
    const bytes = serialize({ params: { dense: { w } }, key: k, step: 12 }, { note: "hi" });
    const { n, header } = readHeader(bytes);
    expect(n % 8).toBe(0);
    expect(new TextDecoder().decode(bytes.subarray(8, 8 + n)).trimEnd()).toBe(JSON.stringify(header));
    expect(header["params.dense.w"]).toEqual({ dtype: "F32", shape: [2, 3], data_offsets: expect.any(Array) });
    expect(header["key"].dtype).toBe("U32");
    expect(header["step"]).toMatchObject({ dtype: "F64", shape: [] });
    expect(header.__metadata__.note).toBe("hi");
    expect(typeof header.__metadata__["tsjax.tree"]).toBe("string");
    const data = bytes.subarray(8 + n);
    const [b, e] = header["params.dense.w"].data_offsets;
    expect(Array.from(new Float32Array(data.slice(b, e).buffer))).toEqual([1, 2, 3, 4, 5, 6]);
    const [kb, ke] = header["key"].data_offsets;
    expect(Array.from(new Uint32Array(data.slice(kb, ke).buffer))).toEqual([0xffffffff, 7]);
    const [sb, se] = header["step"].data_offsets;
    expect(new DataView(data.buffer, data.byteOffset + sb, se - sb).getFloat64(0, true)).toBe(12);
  });

  it("key-path names parse back only in canonical form", () => {
    expect(parseKeyPath("layers[0].kernel")).toEqual([
      { kind: "key", key: "layers" },
      { kind: "index", index: 0 },
      { kind: "key", key: "kernel" },
    ]);
    expect(parseKeyPath('a["x.y"]')).toEqual([{ kind: "key", key: "a" }, { kind: "key", key: "x.y" }]);
    for (const bad of ["a..b", ".a", "a[01]", "a[", '["a"]', "a b", "[-1]", "a.", '[" x"'])
      expect(parseKeyPath(bad)).toBeNull();
  });
});

describe("corrupt files raise CheckpointError", () => {
  const small = serialize({ a: tensor([2], "float32", [1, 2]), b: [tensor([], "int32", [3]), 4] }, { step: "1" });

  it("truncation at every byte boundary", () => {
    for (let i = 0; i < small.length; i++) expectCheckpointError(() => deserialize(small.slice(0, i)));
  });

  it("random byte flips in the header", () => {
    const { n } = readHeader(small);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 8 + n - 1 }), fc.integer({ min: 1, max: 255 }), (pos, xor) => {
        const b = small.slice();
        b[pos]! ^= xor;
        try {
          deserialize(b); // some flips (inside padding or a metadata value) stay valid
        } catch (e) {
          expect(e).toBeInstanceOf(CheckpointError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("random garbage and garbage headers of plausible length", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.string({ maxLength: 40 }), (junk, text) => {
        const withLen = new Uint8Array(8 + junk.length);
        new DataView(withLen.buffer).setUint32(0, junk.length, true);
        withLen.set(junk, 8);
        for (const b of [junk, withLen, handMade(text, new Uint8Array(0))]) {
          try {
            deserialize(b);
          } catch (e) {
            expect(e).toBeInstanceOf(CheckpointError);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("absurd sizes", () => {
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setUint32(4, 0xffffffff, true);
    expectCheckpointError(() => deserialize(huge), /exceeds the limit/);
    const big = new Uint8Array(16);
    new DataView(big.buffer).setUint32(0, 1000, true);
    expectCheckpointError(() => deserialize(big), /exceeds the 8 bytes/);
    const d8 = new Uint8Array(8);
    expectCheckpointError(() => deserialize(handMade({ x: { dtype: "F32", shape: [1e9, 1e9, 1e9], data_offsets: [0, 8] } }, d8)), /needs more/);
    expectCheckpointError(() => deserialize(handMade({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8e15] } }, d8)), /data_offsets/);
    expectCheckpointError(() => deserialize(handMade({ x: { dtype: "F32", shape: [3], data_offsets: [0, 12] } }, d8)), /data_offsets/);
    expectCheckpointError(() => deserialize(handMade({ x: { dtype: "F32", shape: [-1], data_offsets: [0, 8] } }, d8)), /shape/);
    expectCheckpointError(() => deserialize(handMade({ x: { dtype: "F32", shape: [1.5], data_offsets: [0, 8] } }, d8)), /shape/);
  });

  it("each structural rule of the spec", () => {
    const d8 = new Uint8Array(8);
    const e = (h: unknown, d = d8) => () => deserialize(handMade(h, d));
    expectCheckpointError(e({ x: { dtype: "F16", shape: [4], data_offsets: [0, 8] } }), /unsupported dtype/);
    expectCheckpointError(e({ x: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, y: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }), /overlaps/);
    expectCheckpointError(e({ x: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }), /belong to no tensor/);
    expectCheckpointError(e({ x: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }), /belong to no tensor/);
    expectCheckpointError(e({ "a..b": { dtype: "F32", shape: [2], data_offsets: [0, 8] } }), /well-formed/);
    expectCheckpointError(e({ x: [1] }), /not an object/);
    expectCheckpointError(e({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, __metadata__: { a: 1 } }), /not a string/);
    expectCheckpointError(e([1, 2]), /header/);
    expectCheckpointError(e({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, "a.b": { dtype: "F32", shape: [1], data_offsets: [4, 8] } }), /inside/);
    expectCheckpointError(e({ "a[1]": { dtype: "F32", shape: [2], data_offsets: [0, 8] } }), /index 1/);
    expectCheckpointError(e({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, __metadata__: { "tsjax.tree": '["o",[["y","T"]]]' } }), /no tensor "y"/);
    expectCheckpointError(e({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, __metadata__: { "tsjax.tree": "{" } }), /tsjax.tree/);
    const bad = handMade({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, d8);
    bad[9] = 0xff; // invalid UTF-8 inside the header
    expectCheckpointError(() => deserialize(bad), /UTF-8|JSON|start/);
    // Deeply nested structure metadata must not overflow the stack.
    const deep = "[\"a\",[".repeat(5000) + "\"T\"" + "]]".repeat(5000);
    expectCheckpointError(e({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, __metadata__: { "tsjax.tree": deep } }), /deeper/);
  });
});

describe("like", () => {
  it("lists every mismatch at once", () => {
    const bytes = serialize({ a: tensor([2], "float32", [1, 2]), b: tensor([3], "int32", [1, 2, 3]), c: 1, extra: tensor([], "bool", [1]) });
    const like = { a: tensor([2], "float64", [0, 0]), b: tensor([4], "int32", [0, 0, 0, 0]), c: 2, missing: tensor([1], "float32", [0]) };
    let msg = "";
    try {
      deserialize(bytes, like);
    } catch (e) {
      expect(e).toBeInstanceOf(CheckpointError);
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/4 mismatches/);
    expect(msg).toMatch(/a: expected F64\[2\], checkpoint has F32\[2\]/);
    expect(msg).toMatch(/b: expected I32\[4\], checkpoint has I32\[3\]/);
    expect(msg).toMatch(/missing: missing from the checkpoint/);
    expect(msg).toMatch(/extra: in the checkpoint but not in `like`/);
  });
});

describe("registered classes", () => {
  it("come back as objects without like, and as the class with like", () => {
    class Dense {
      constructor(
        readonly w: Tensor,
        readonly b: Tensor,
      ) {}
    }
    register(Dense, (d) => [[d.w, d.b], null], (_a, [w, b]) => new Dense(w as Tensor, b as Tensor), { childNames: () => ["w", "b"] });
    try {
      const m = { layers: [new Dense(tensor([2], "float32", [1, 2]), tensor([], "float32", [3]))] };
      const bytes = serialize(m);
      expect(Object.keys(readHeader(bytes).header).sort()).toEqual(["__metadata__", "layers[0].b", "layers[0].w"]);
      const plain = deserialize(bytes).tree as any;
      expect(plain.layers[0]).not.toBeInstanceOf(Dense);
      expect(Array.from(plain.layers[0].w._buf)).toEqual([1, 2]);
      const back = deserialize(bytes, m).tree;
      expect(back.layers[0]).toBeInstanceOf(Dense);
      expect(view(back.layers[0]!.b)).toEqual(view(m.layers[0]!.b));
    } finally {
      unregister(Dense);
    }
  });
});

describe("save/load files", () => {
  it("round-trips through a file and leaves no temporary files", () => {
    const dir = tmpDir();
    const p = nodePath.join(dir, "model.safetensors");
    const tree = { params: [tensor([2, 2], "float32", [1, 2, 3, 4])], step: 7 };
    save(p, tree, { seed: "42" });
    save(p, tree, { seed: "43" }); // overwrite
    expect(fs.readdirSync(dir)).toEqual(["model.safetensors"]);
    const { tree: back, metadata } = load(p, tree);
    expect(view(back)).toEqual(view(tree));
    expect(metadata.seed).toBe("43");
    fs.rmSync(dir, { recursive: true });
  });

  it("a failed write raises CheckpointError and leaves the old file unchanged", () => {
    const dir = tmpDir();
    const p = nodePath.join(dir, "model.safetensors");
    save(p, { x: 1 });
    const before = fs.readFileSync(p);
    // Target is a directory: the rename fails after the temp file was written.
    const sub = nodePath.join(dir, "sub");
    fs.mkdirSync(sub);
    fs.writeFileSync(nodePath.join(sub, "keep"), "x");
    expectCheckpointError(() => save(sub, { x: 2 }), /cannot write/);
    expectCheckpointError(() => save(nodePath.join(dir, "nope", "m.safetensors"), { x: 2 }), /cannot write/);
    // Unsavable tree: nothing is written at all.
    expectCheckpointError(() => save(p, { f: () => 0 }));
    if (process.getuid?.() !== 0) {
      fs.chmodSync(dir, 0o500);
      try {
        expectCheckpointError(() => save(p, { x: 3 }), /cannot write/);
      } finally {
        fs.chmodSync(dir, 0o700);
      }
    }
    expect(fs.readFileSync(p).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(["model.safetensors", "sub"]);
    expectCheckpointError(() => load(sub), /cannot read/);
    expectCheckpointError(() => load(nodePath.join(dir, "absent")), /cannot read/);
    fs.rmSync(dir, { recursive: true });
  });
});
