/** The command line's pure parts: data subsets and label noise, pooling, tables, charts, flags. */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import { random } from "../../src/index.js";
import { numberFlag } from "../../src/cli/args.js";
import { prepare, seededSubset, symmetricNoise } from "../../src/cli/data/datasets.js";
import { duration, markdownTable, meanStd, sig4 } from "../../src/cli/report/format.js";
import { progress } from "../../src/cli/report/progress.js";
import { barChart, lineChart, niceTicks } from "../../src/cli/report/svg.js";
import { configToFlags, resolveTrainConfig } from "../../src/cli/train/config.js";

const runs = { numRuns: 60, seed: 5 };

describe("data", () => {
  test.prop(
    [
      fc.integer({ min: 0, max: 1000 }),
      fc.integer({ min: 1, max: 300 }),
      fc.double({ min: 0, max: 0.99, noNaN: true }),
    ],
    runs,
  )("symmetric noise changes exactly round(p·n) labels, each to a different class", (seed, n, p) => {
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % 10);
    const before = labels.slice();
    const noisy = symmetricNoise(random.key(seed), labels, p, 10);
    expect(Array.from(labels)).toEqual(Array.from(before)); // input untouched
    let changed = 0;
    noisy.forEach((v, i) => {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(10);
      if (v !== labels[i]) changed++;
    });
    expect(changed).toBe(Math.round(p * n));
  });

  it("noise flips to every other class about equally (chi-square against uniform)", () => {
    const n = 9000;
    const labels = new Int32Array(n); // all class 0
    const noisy = symmetricNoise(random.key(1), labels, 1 - 1e-9, 10);
    const counts = new Array(10).fill(0);
    noisy.forEach((v) => counts[v]++);
    expect(counts[0]).toBe(0);
    const expected = n / 9;
    const chi2 = counts.slice(1).reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(27.9); // p = 0.0005 for 8 degrees of freedom
  });

  test.prop(
    [fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 200 })],
    runs,
  )(
    "a seeded subset is distinct indices, and a prefix of any larger subset with the same key",
    (seed, a, b) => {
      const key = random.key(seed);
      const [small, large] = [Math.min(a, b), Math.max(a, b)];
      const s = seededSubset(key, 200, small);
      const l = seededSubset(key, 200, large);
      expect(new Set(s).size).toBe(small);
      expect(Array.from(l.subarray(0, small))).toEqual(Array.from(s));
    },
  );

  it("average pooling and standardisation match a direct computation", () => {
    const rows = 4;
    const images = Uint8Array.from({ length: 2 * rows * rows }, (_, i) => (i * 37) % 256);
    const split = { images, labels: Uint8Array.of(3, 4), n: 2, rows, cols: rows };
    const p = prepare(split, { indices: Int32Array.of(1), imageSize: 2, image: false });
    expect(p.featureShape).toEqual([4]);
    expect(Array.from(p.y)).toEqual([4]);
    const px = (r: number, c: number) => images[16 + r * 4 + c]!;
    const mean = (px(2, 2) + px(2, 3) + px(3, 2) + px(3, 3)) / 4 / 255;
    expect(p.x[3]).toBeCloseTo((mean - 0.1307) / 0.3081, 5);
    expect(() => prepare(split, { indices: Int32Array.of(0), imageSize: 3, image: false })).toThrow(
      /must divide/,
    );
  });
});

describe("reports", () => {
  test.prop(
    [fc.double({ min: -1e4, max: 1e4, noNaN: true }), fc.double({ min: 0, max: 1e4, noNaN: true })],
    runs,
  )("nice ticks cover the range with a constant step", (lo, width) => {
    const t = niceTicks(lo, lo + width);
    expect(t[0]!).toBeLessThanOrEqual(lo + 1e-9 * Math.abs(lo));
    expect(t[t.length - 1]!).toBeGreaterThanOrEqual(lo + width - 1e-9 * Math.abs(lo + width));
    const steps = t.slice(1).map((v, i) => v - t[i]!);
    for (const s of steps) expect(s).toBeCloseTo(steps[0]!, 6);
  });

  it("charts name every series, escape text and are deterministic", () => {
    const series = [
      {
        name: "SGD <a&b>",
        points: [
          [1, 0.5],
          [2, 0.25],
        ] as [number, number][],
      },
      {
        name: "SAM",
        points: [
          [1, 0.6],
          [2, Number.NaN],
        ] as [number, number][],
        dashed: true,
      },
    ];
    const svg = lineChart(series, { title: "t", xLabel: "epoch", yLabel: "loss" });
    expect(svg).toBe(lineChart(series, { title: "t", xLabel: "epoch", yLabel: "loss" }));
    expect(svg).toContain("SGD &lt;a&amp;b&gt;");
    expect(svg).not.toContain("NaN");
    expect(svg).toContain('stroke-dasharray="5 3"');
    // Epochs are whole numbers, and so are their ticks.
    const ticks = [...svg.matchAll(/text-anchor="middle">([^<]+)<\/text>/g)].map((m) => m[1]);
    expect(ticks).toContain("1");
    expect(ticks).toContain("2");
    expect(ticks).not.toContain("1.5");
    const bars = barChart(["a", "b"], [{ label: "0 %", values: [80, 85], errors: [1, 2] }], {
      title: "t",
      xLabel: "x",
      yLabel: "y",
    });
    expect(bars.match(/<rect x=/g)).toHaveLength(3); // two bars and the plot frame
  });

  it("tables, statistics and number formatting", () => {
    expect(markdownTable(["a", "bb"], [["1", "2"]])).toBe("| a   | bb  |\n|-----|-----|\n| 1   | 2   |\n");
    const { mean, std } = meanStd([1, 2, 3, 4]);
    expect(mean).toBe(2.5);
    expect(std).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(meanStd([7])).toEqual({ mean: 7, std: 0 });
    expect(sig4(0.000123456)).toBe("1.235e-4");
    expect(sig4(12.34567)).toBe("12.35");
  });
});

describe("progress", () => {
  const report = {
    epoch: 2,
    epochs: 3,
    step: 10,
    stepsPerEpoch: 10,
    loss: 0.001234,
    acc: 0.5,
    stepsPerSecond: 12.5,
    eta: 75,
  };

  it("redraws one bar line on a terminal, with every token", () => {
    let text = "";
    const p = progress({ write: (s: string) => (text += s), isTTY: true, columns: 120 }, "auto");
    p.step(report);
    const clear = "\r\u001b[2K";
    expect(text.startsWith(clear)).toBe(true);
    expect(text.slice(clear.length)).toMatch(
      /^epoch 2\/3 █+ 10\/10 {2}loss 0\.001234 {2}acc 50\.0% {2}12\.5 steps\/s {2}ETA 1m15s$/,
    );
    p.epoch("epoch 2/3 done");
    expect(text.endsWith("\r\x1b[2Kepoch 2/3 done\n")).toBe(true);
  });

  it("prints only the epoch lines when not a terminal, nothing when off", () => {
    let text = "";
    const p = progress({ write: (s: string) => (text += s) }, "auto");
    p.step(report);
    p.epoch("epoch 2/3 done");
    expect(text).toBe("epoch 2/3 done\n");
    const q = progress({ write: (s: string) => (text += s), isTTY: true }, "none");
    q.step(report);
    q.epoch("x");
    expect(text).toBe("epoch 2/3 done\n");
    expect(duration(3725)).toBe("1h02m");
  });
});

describe("flags", () => {
  it("parse strictly and name the flag", () => {
    expect(numberFlag("c", "lr", "0.5", 1)).toBe(0.5);
    expect(numberFlag("c", "lr", undefined, 1)).toBe(1);
    for (const bad of ["", " ", "1e", "0x", "Infinity", "NaN"])
      expect(() => numberFlag("c", "lr", bad, 1)).toThrow(ConfigError);
    expect(() => numberFlag("c", "n", "1.5", 1, { integer: true })).toThrow(
      "--n must be an integer, got '1.5'",
    );
  });

  it("a resolved config round-trips through its flags", () => {
    const cfg = resolveTrainConfig({
      optimizer: "asam",
      hidden: "64,32",
      "label-noise": "0.2",
      "train-size": "500",
      "batch-size": "50",
    });
    expect(cfg.rho).toBe(0.5); // ASAM's default radius
    expect(resolveTrainConfig(configToFlags(cfg))).toEqual(cfg);
  });
});
