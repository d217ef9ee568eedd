import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, ShapeError } from "../../../../src/core/errors.js";
import { type Conv2dOptions, convGeometry, WasmConv } from "../../../../src/transforms/jit/wasm/conv.js";
import { WasmGemm } from "../../../../src/transforms/jit/wasm/gemm.js";
import { WasmHeap } from "../../../../src/transforms/jit/wasm/heap.js";

function data(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Direct float64 convolution (NHWC × HWIO), written from the definition, and Σ|x||w| per output. */
function oracle(
  x: Float32Array,
  xs: number[],
  w: Float32Array,
  ws: number[],
  pads: number[],
  st: number[],
  dil: number[],
) {
  const [n, h, wd, c] = xs as [number, number, number, number];
  const [kh, kw, , o] = ws as [number, number, number, number];
  const oh = Math.floor((h + pads[0]! + pads[1]! - ((kh - 1) * dil[0]! + 1)) / st[0]!) + 1;
  const ow = Math.floor((wd + pads[2]! + pads[3]! - ((kw - 1) * dil[1]! + 1)) / st[1]!) + 1;
  const y = new Float64Array(Math.max(n * oh * ow * o, 0));
  const mag = new Float64Array(y.length);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < oh; p++)
      for (let q = 0; q < ow; q++)
        for (let oc = 0; oc < o; oc++) {
          let s = 0;
          let g = 0;
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) {
              const ih = p * st[0]! - pads[0]! + i * dil[0]!;
              const iw = q * st[1]! - pads[2]! + j * dil[1]!;
              if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
              for (let ci = 0; ci < c; ci++) {
                const t = x[((b * h + ih) * wd + iw) * c + ci]! * w[((i * kw + j) * c + ci) * o + oc]!;
                s += t;
                g += Math.abs(t);
              }
            }
          const at = ((b * oh + p) * ow + q) * o + oc;
          y[at] = s;
          mag[at] = g;
        }
  return { y, mag, shape: [n, oh, ow, o] };
}

describe("wasm conv2d (im2col + GEMM)", () => {
  const conv = new WasmConv(new WasmGemm(new WasmHeap()));
  const u = 2 ** -24;

  it("matches a float64 direct convolution within γ_{KH·KW·C}·Σ|x||w| (strides, padding, dilation)", () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 1, max: 3 }),
          h: fc.integer({ min: 1, max: 9 }),
          w: fc.integer({ min: 1, max: 9 }),
          c: fc.integer({ min: 1, max: 5 }),
          kh: fc.integer({ min: 1, max: 3 }),
          kw: fc.integer({ min: 1, max: 3 }),
          o: fc.integer({ min: 1, max: 10 }),
          st: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
          dil: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
          pad: fc.oneof(
            fc.constant("VALID" as const),
            fc.constant("SAME" as const),
            fc.tuple(
              fc.integer({ min: 0, max: 2 }),
              fc.integer({ min: 0, max: 2 }),
              fc.integer({ min: 0, max: 2 }),
              fc.integer({ min: 0, max: 2 }),
            ),
          ),
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        }),
        ({ n, h, w, c, kh, kw, o, st, dil, pad, seed }) => {
          const xs = [n, h, w, c];
          const ws = [kh, kw, c, o];
          const options: Conv2dOptions = {
            strides: st,
            dilation: dil,
            padding:
              typeof pad === "string"
                ? pad
                : [
                    [pad[0], pad[1]],
                    [pad[2], pad[3]],
                  ],
          };
          const g = convGeometry(xs, ws, options);
          fc.pre(g.oh > 0 && g.ow > 0);
          const x = data(n * h * w * c, seed);
          const k = data(kh * kw * c * o, seed + 1);
          const got = conv.conv2d(x, xs, k, ws, options);
          // Pads [top, bottom, left, right]; SAME per lax.padtype_to_pads: the odd one goes after.
          const same = (size: number, k: number, d: number, s: number) => {
            const total = Math.max((Math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0);
            return [Math.floor(total / 2), total - Math.floor(total / 2)];
          };
          const pads =
            pad === "VALID"
              ? [0, 0, 0, 0]
              : pad === "SAME"
                ? [...same(h, kh, dil[0], st[0]), ...same(w, kw, dil[1], st[1])]
                : pad;
          const want = oracle(x, xs, k, ws, pads, st, dil);
          expect(got.shape).toEqual(want.shape);
          const depth = kh * kw * c;
          const gamma = (depth * u) / (1 - depth * u);
          for (let i = 0; i < want.y.length; i++) {
            expect(Math.abs(got.data[i]! - want.y[i]!)).toBeLessThanOrEqual(gamma * want.mag[i]!);
          }
        },
      ),
      { numRuns: 120 },
    );
  });

  it("kernel and input gradients equal the adjoint of the float64 convolution (any strides, padding, dilation)", () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 1, max: 2 }),
          h: fc.integer({ min: 1, max: 8 }),
          w: fc.integer({ min: 1, max: 8 }),
          c: fc.integer({ min: 1, max: 6 }),
          kh: fc.integer({ min: 1, max: 3 }),
          kw: fc.integer({ min: 1, max: 3 }),
          o: fc.integer({ min: 1, max: 9 }),
          st: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
          dil: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
          pad: fc.tuple(
            fc.integer({ min: 0, max: 2 }),
            fc.integer({ min: 0, max: 2 }),
            fc.integer({ min: 0, max: 2 }),
            fc.integer({ min: 0, max: 2 }),
          ),
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        }),
        ({ n, h, w, c, kh, kw, o, st, dil, pad, seed }) => {
          const xs = [n, h, w, c];
          const ws = [kh, kw, c, o];
          const options: Conv2dOptions = {
            strides: st,
            dilation: dil,
            padding: [
              [pad[0], pad[1]],
              [pad[2], pad[3]],
            ],
          };
          const g = convGeometry(xs, ws, options);
          fc.pre(g.oh > 0 && g.ow > 0);
          const x = data(n * h * w * c, seed);
          const k = data(kh * kw * c * o, seed + 1);
          const dy = data(n * g.oh * g.ow * o, seed + 2);
          // The adjoint, from the definition y[b,p,q,o] = Σ x[b, p·s − pt + i·d, …, ci]·w[i, j, ci, o].
          const dx = new Float64Array(x.length);
          const dxMag = new Float64Array(x.length);
          const dw = new Float64Array(k.length);
          const dwMag = new Float64Array(k.length);
          for (let b = 0; b < n; b++)
            for (let p = 0; p < g.oh; p++)
              for (let q = 0; q < g.ow; q++)
                for (let i = 0; i < kh; i++)
                  for (let j = 0; j < kw; j++) {
                    const ih = p * st[0] - pad[0] + i * dil[0];
                    const iw = q * st[1] - pad[2] + j * dil[1];
                    if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                    for (let ci = 0; ci < c; ci++)
                      for (let oc = 0; oc < o; oc++) {
                        const xi = ((b * h + ih) * w + iw) * c + ci;
                        const wi = ((i * kw + j) * c + ci) * o + oc;
                        const d = dy[((b * g.oh + p) * g.ow + q) * o + oc]!;
                        dx[xi] += k[wi]! * d;
                        dxMag[xi] += Math.abs(k[wi]! * d);
                        dw[wi] += x[xi]! * d;
                        dwMag[wi] += Math.abs(x[xi]! * d);
                      }
                  }
          const gotDw = conv.conv2dGradKernel(x, xs, dy, ws, options);
          const gotDx = conv.conv2dGradInput(dy, k, xs, ws, options);
          // dW sums N·OH·OW terms in the GEMM; dx sums O per patch entry, then ≤ KH·KW patches.
          const gamma = (m: number) => (m * u) / (1 - m * u);
          for (let i = 0; i < dw.length; i++) {
            expect(Math.abs(gotDw[i]! - dw[i]!)).toBeLessThanOrEqual(gamma(n * g.oh * g.ow) * dwMag[i]!);
          }
          for (let i = 0; i < dx.length; i++) {
            expect(Math.abs(gotDx[i]! - dx[i]!)).toBeLessThanOrEqual(gamma(o + kh * kw) * dxMag[i]!);
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it("SAME padding keeps ceil(size / stride) and puts the odd pad after (JAX's rule)", () => {
    const g = convGeometry([1, 7, 8, 1], [3, 4, 1, 1], { padding: "SAME", strides: [2, 3] });
    expect([g.oh, g.ow]).toEqual([4, 3]);
    // h: total = (4−1)·2 + 3 − 7 = 2 → (1, 1); w: total = (3−1)·3 + 4 − 8 = 2 → (1, 1).
    expect([g.pt, g.pl]).toEqual([1, 1]);
    expect(convGeometry([1, 6, 6, 1], [2, 2, 1, 1], { padding: "SAME" }).pt).toBe(0);
    // A kernel larger than the input under VALID padding: an empty output, not an error.
    const empty = conv.conv2d(new Float32Array(4), [1, 2, 2, 1], new Float32Array(9 * 2), [3, 3, 1, 2]);
    expect(empty.shape).toEqual([1, 0, 0, 2]);
    expect(empty.data.length).toBe(0);
  });

  it("bad shapes and options raise typed errors naming conv2d", () => {
    expect(() => convGeometry([1, 4, 4], [3, 3, 1, 1])).toThrow(ShapeError);
    expect(() => convGeometry([1, 4, 4, 2], [3, 3, 1, 1])).toThrow(/conv2d: kernel has 1 input channels/);
    expect(() => convGeometry([1, 4, 4, 1], [3, 3, 1, 1], { strides: [0, 1] })).toThrow(ConfigError);
    expect(() => conv.conv2d(new Float32Array(3), [1, 2, 2, 1], new Float32Array(1), [1, 1, 1, 1])).toThrow(
      ShapeError,
    );
  });
});
