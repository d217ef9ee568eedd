import { afterEach, describe, expect, it } from "vitest";
import { setConfig } from "../../src/core/config.js";
import { numpy as np, grad } from "../../src/index.js";
import { NaNError } from "../../src/core/trace.js";

describe("debugNans", () => {
  afterEach(() => setConfig("debugNans", false));
  it("is off by default: NaNs flow", () => {
    expect(Number.isNaN(np.log(np.array(-1)).item())).toBe(true);
  });
  it("names the primitive that made the first NaN", () => {
    setConfig("debugNans", true);
    expect(() => np.log(np.array(-1))).toThrow(NaNError);
    expect(() => np.log(np.array(-1))).toThrow(/^log: produced a NaN in output 0 \(f32\[\]\)/);
    expect(() => grad((x) => np.sum(np.sqrt(x)))(np.array([-1, 1]))).toThrow(/sqrt: produced a NaN/);
  });
  it("does not blame a primitive whose inputs already held NaN", () => {
    setConfig("debugNans", true);
    const nan = np.array([Number.NaN]);
    expect(Number.isNaN(np.add(nan, 1).data()[0]!)).toBe(true);
  });
});
