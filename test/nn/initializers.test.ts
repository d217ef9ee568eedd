import { describe, expect, it } from "vitest";
import { ConfigError, ShapeError } from "../../src/core/errors.js";
import * as np from "../../src/core/numpy/index.js";
import * as random from "../../src/core/random.js";
import type { Tensor } from "../../src/core/tensor.js";
import * as init from "../../src/nn/initializers.js";

const vals = (t: Tensor) => np.ravel(t).toArray() as number[];
function stats(xs: number[]): { mean: number; variance: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, variance: xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length };
}
// The sample variance of n draws has standard error var * sqrt((kurtosis - 1) / n); kurtosis is
// 3 for a normal and less for the truncated normal and the uniform, so 3 bounds all three. The
// tolerance is 5 standard errors.
const varTol = (v: number, n: number) => 5 * v * Math.sqrt(2 / n);

describe("computeFans", () => {
  it("uses JAX's receptive field", () => {
    expect(init.computeFans([784, 512])).toEqual([784, 512]);
    expect(init.computeFans([3, 3, 16, 32])).toEqual([144, 288]);
    expect(init.computeFans([5, 7], -2, 0)).toEqual([7, 7]);
    expect(() => init.computeFans([5])).toThrow(ShapeError);
  });
});

describe("variance-scaling initializers", () => {
  const cases: [string, init.Initializer, number[], number][] = [
    ["heNormal dense", init.heNormal(), [400, 50], 2 / 400],
    ["heNormal conv", init.heNormal(), [3, 3, 20, 16], 2 / 180],
    ["heUniform", init.heUniform(), [300, 60], 2 / 300],
    ["glorotNormal", init.glorotNormal(), [200, 100], 2 / 300],
    ["glorotUniform", init.glorotUniform(), [200, 100], 2 / 300],
    ["lecunNormal", init.lecunNormal(), [250, 80], 1 / 250],
    ["lecunUniform", init.lecunUniform(), [250, 80], 1 / 250],
    ["fan_out normal", init.varianceScaling(3, "fan_out", "normal"), [100, 200], 3 / 200],
  ];
  for (const [name, f, shape, v] of cases) {
    it(`${name}: variance ≈ ${v.toPrecision(3)}, mean ≈ 0`, () => {
      const t = f(random.key(7), shape);
      expect(t.shape).toEqual(shape);
      expect(t.dtype).toBe("float32");
      const xs = vals(t);
      const s = stats(xs);
      expect(Math.abs(s.variance - v)).toBeLessThan(varTol(v, xs.length));
      expect(Math.abs(s.mean)).toBeLessThan(5 * Math.sqrt(v / xs.length));
    });
  }
  it("truncated normal stays within 2 corrected standard deviations", () => {
    const v = 2 / 400;
    const bound = (2 * Math.sqrt(v)) / 0.87962566103423978;
    expect(Math.max(...vals(init.heNormal()(random.key(1), [400, 50])).map(Math.abs))).toBeLessThanOrEqual(bound * (1 + 1e-6));
  });
  it("uniform stays within sqrt(3 variance)", () => {
    const bound = Math.sqrt(3 * (2 / 300));
    expect(Math.max(...vals(init.glorotUniform()(random.key(1), [200, 100])).map(Math.abs))).toBeLessThanOrEqual(bound * (1 + 1e-6));
  });
  it("is deterministic per key and honours dtype", () => {
    const a = init.heNormal()(random.key(3), [5, 4], "float64");
    const b = init.heNormal()(random.key(3), [5, 4], "float64");
    expect(a.dtype).toBe("float64");
    expect(vals(a)).toEqual(vals(b));
    expect(vals(init.heNormal()(random.key(4), [5, 4], "float64"))).not.toEqual(vals(a));
  });
  it("rejects bad options", () => {
    expect(() => init.varianceScaling(1, "fan_x" as init.FanMode, "normal")).toThrow(ConfigError);
    expect(() => init.varianceScaling(0, "fan_in", "normal")).toThrow(ConfigError);
  });
});

describe("simple initializers", () => {
  it("zeros, ones, constant", () => {
    expect(vals(init.zeros(random.key(0), [2, 2]))).toEqual([0, 0, 0, 0]);
    expect(vals(init.ones(random.key(0), [3]))).toEqual([1, 1, 1]);
    expect(vals(init.constant(0.5)(random.key(0), [2], "float64"))).toEqual([0.5, 0.5]);
    expect(init.zeros(random.key(0), [0, 3]).shape).toEqual([0, 3]);
  });
  it("normal(stddev) has that standard deviation", () => {
    const xs = vals(init.normal(0.1)(random.key(2), [20000]));
    const s = stats(xs);
    expect(Math.abs(s.variance - 0.01)).toBeLessThan(varTol(0.01, xs.length));
  });
  it("uniform(scale) lies in [0, scale) with mean scale/2", () => {
    const xs = vals(init.uniform(0.2)(random.key(2), [20000]));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(0.2);
    // The mean of U[0, s) has standard error s / sqrt(12 n).
    expect(Math.abs(stats(xs).mean - 0.1)).toBeLessThan((5 * 0.2) / Math.sqrt(12 * xs.length));
  });
  it("truncatedNormal(stddev) lies within 2 stddev", () => {
    const xs = vals(init.truncatedNormal(0.5)(random.key(2), [5000]));
    expect(Math.max(...xs.map(Math.abs))).toBeLessThanOrEqual(1);
  });
});
