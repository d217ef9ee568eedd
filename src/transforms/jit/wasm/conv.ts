/**
 * 2-D convolution, NHWC input × HWIO kernel → NHWC output, and its two gradients, by im2col + the
 * backend's GEMM (+ col2im for the input gradient): a
 * generated wasm loop copies each output pixel's receptive field (KH·KW·C floats, zeros where it
 * hangs over the padding) into a row of a [N·OH·OW, KH·KW·C] matrix, which times the kernel viewed
 * as [KH·KW·C, O] is the output. Strides, explicit or SAME/VALID padding and dilation. The kernel
 * gradient is patchesᵀ·dy; the input gradient is col2im(dy·Wᵀ), the adjoint of im2col adding
 * each row back onto the pixels it came from.
 */
import { ConfigError, ShapeError } from "../../../core/errors.js";
import { I32, ModuleBuilder, Op, Simd } from "./assembler.js";
import type { WasmGemm } from "./gemm.js";

/** Options of {@link WasmConv.conv2d}. */
export interface Conv2dOptions {
  /** [sh, sw], default [1, 1]. */
  strides?: readonly [number, number];
  /** "VALID" (default), "SAME" (JAX/TF: the extra padding goes after), or [[top, bottom], [left, right]]. */
  padding?: "VALID" | "SAME" | readonly [readonly [number, number], readonly [number, number]];
  /** Kernel dilation [dh, dw], default [1, 1]. */
  dilation?: readonly [number, number];
}

/** Geometry of one convolution. */
export interface ConvGeometry {
  n: number;
  h: number;
  w: number;
  c: number;
  kh: number;
  kw: number;
  o: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pt: number;
  pl: number;
  oh: number;
  ow: number;
}

/**
 * Resolves shapes and options to a geometry, with ShapeError/ConfigError on misuse.
 *
 * @example
 * ```ts
 * convGeometry([8, 28, 28, 1], [3, 3, 1, 32], { padding: "SAME", strides: [2, 2] });
 * // { oh: 14, ow: 14, pt: 0, pl: 0, … }
 * ```
 */
export function convGeometry(
  xShape: readonly number[],
  wShape: readonly number[],
  options: Conv2dOptions = {},
): ConvGeometry {
  if (xShape.length !== 4) throw new ShapeError(`input must be NHWC (rank 4), got [${xShape}]`, "conv2d");
  if (wShape.length !== 4) throw new ShapeError(`kernel must be HWIO (rank 4), got [${wShape}]`, "conv2d");
  const [n, h, w, c] = xShape as [number, number, number, number];
  const [kh, kw, ci, o] = wShape as [number, number, number, number];
  if (ci !== c) throw new ShapeError(`kernel has ${ci} input channels, input has ${c}`, "conv2d");
  const [sh, sw] = options.strides ?? [1, 1];
  const [dh, dw] = options.dilation ?? [1, 1];
  for (const [name, v] of [
    ["stride", sh],
    ["stride", sw],
    ["dilation", dh],
    ["dilation", dw],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new ConfigError(`${name} must be a positive integer, got ${v}`, "conv2d");
  }
  const ekh = (kh - 1) * dh + 1;
  const ekw = (kw - 1) * dw + 1;
  let pads: [number, number, number, number];
  const padding = options.padding ?? "VALID";
  if (padding === "VALID") pads = [0, 0, 0, 0];
  else if (padding === "SAME") {
    const total = (size: number, k: number, s: number) =>
      Math.max((Math.ceil(size / s) - 1) * s + k - size, 0);
    const th = total(h, ekh, sh);
    const tw = total(w, ekw, sw);
    pads = [Math.floor(th / 2), th - Math.floor(th / 2), Math.floor(tw / 2), tw - Math.floor(tw / 2)];
  } else if (Array.isArray(padding) && padding.length === 2) {
    pads = [padding[0][0], padding[0][1], padding[1][0], padding[1][1]];
    if (pads.some((p) => !Number.isInteger(p) || p < 0)) {
      throw new ConfigError(
        `padding must be non-negative integers, got ${JSON.stringify(padding)}`,
        "conv2d",
      );
    }
  } else throw new ConfigError(`bad padding ${JSON.stringify(padding)}`, "conv2d");
  const oh = Math.max(Math.floor((h + pads[0] + pads[1] - ekh) / sh) + 1, 0);
  const ow = Math.max(Math.floor((w + pads[2] + pads[3] - ekw) / sw) + 1, 0);
  return { n, h, w, c, kh, kw, o, sh, sw, dh, dw, pt: pads[0], pl: pads[2], oh, ow };
}

/** im2col(x, dst, n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow): byte pointers, ints. */
function buildIm2col(memory: { shared: boolean; maxPages: number }): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder();
  m.importMemory("env", "memory", { shared: memory.shared, maxPages: memory.maxPages });
  const f = m.func("im2col", Array(16).fill(I32), []);
  const [X, DST, N, H, W, C, KH, KW, SH, SW, DH, DW, PT, PL, OH, OW] = Array.from(
    { length: 16 },
    (_, i) => i,
  );
  const [b, y, x, i, j, ih, iw, cb, rowB] = Array.from({ length: 9 }, () => f.local(I32));
  const range = (v: number, lo: () => void, hi: () => void, body: () => void) =>
    f.forRange(v, lo, hi, 1, body);
  const zero = () => f.i32Const(0);
  f.localGet(C).i32Const(2).op(Op.i32_shl).localSet(cb);
  f.localGet(KW).localGet(cb).op(Op.i32_mul).localSet(rowB);
  range(
    b,
    zero,
    () => f.localGet(N),
    () =>
      range(
        y,
        zero,
        () => f.localGet(OH),
        () =>
          range(
            x,
            zero,
            () => f.localGet(OW),
            () =>
              range(
                i,
                zero,
                () => f.localGet(KH),
                () => {
                  // ih = y*sh − pt + i*dh; a row outside the image is all padding.
                  f.localGet(y).localGet(SH).op(Op.i32_mul).localGet(PT).op(Op.i32_sub);
                  f.localGet(i).localGet(DH).op(Op.i32_mul).op(Op.i32_add).localSet(ih);
                  f.localGet(x).localGet(SW).op(Op.i32_mul).localGet(PL).op(Op.i32_sub).localSet(iw);
                  f.localGet(ih).localGet(H).op(Op.i32_ge_u);
                  f.if(
                    () => {
                      f.localGet(DST).i32Const(0).localGet(rowB).memoryFill();
                      f.localGet(DST).localGet(rowB).op(Op.i32_add).localSet(DST);
                    },
                    () => {
                      // Source row start: x + ((b*h + ih)*w) * c * 4.
                      const src = () => {
                        f.localGet(X);
                        f.localGet(b)
                          .localGet(H)
                          .op(Op.i32_mul)
                          .localGet(ih)
                          .op(Op.i32_add)
                          .localGet(W)
                          .op(Op.i32_mul);
                        f.localGet(cb).op(Op.i32_mul).op(Op.i32_add);
                      };
                      // Fast path: undilated and fully inside, one copy of KW·C floats.
                      f.localGet(DW).i32Const(1).op(Op.i32_eq);
                      f.localGet(iw).i32Const(0).op(Op.i32_ge_s).op(Op.i32_and);
                      f.localGet(iw).localGet(KW).op(Op.i32_add).localGet(W).op(Op.i32_le_s).op(Op.i32_and);
                      f.if(
                        () => {
                          f.localGet(DST);
                          src();
                          f.localGet(iw).localGet(cb).op(Op.i32_mul).op(Op.i32_add);
                          f.localGet(rowB).memoryCopy();
                          f.localGet(DST).localGet(rowB).op(Op.i32_add).localSet(DST);
                        },
                        () => {
                          range(
                            j,
                            zero,
                            () => f.localGet(KW),
                            () => {
                              f.localGet(iw).localGet(W).op(Op.i32_ge_u);
                              f.if(
                                () => f.localGet(DST).i32Const(0).localGet(cb).memoryFill(),
                                () => {
                                  f.localGet(DST);
                                  src();
                                  f.localGet(iw).localGet(cb).op(Op.i32_mul).op(Op.i32_add);
                                  f.localGet(cb).memoryCopy();
                                },
                              );
                              f.localGet(DST).localGet(cb).op(Op.i32_add).localSet(DST);
                              f.localGet(iw).localGet(DW).op(Op.i32_add).localSet(iw);
                            },
                          );
                        },
                      );
                    },
                  );
                },
              ),
          ),
      ),
  );
  buildCol2im(m);
  return m.toBytes();
}

/**
 * col2im(src, dx, n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow): the adjoint of im2col, adding
 * each patch-matrix row back onto the pixels it was read from (dx must start zeroed; padding
 * entries are dropped).
 */
function buildCol2im(m: ModuleBuilder): void {
  const f = m.func("col2im", Array(16).fill(I32), []);
  const [SRC, DX, N, H, W, C, KH, KW, SH, SW, DH, DW, PT, PL, OH, OW] = Array.from(
    { length: 16 },
    (_, i) => i,
  );
  const [b, y, x, i, j, ih, iw, cb, c, dst, c4] = Array.from({ length: 11 }, () => f.local(I32));
  const range = (v: number, lo: () => void, hi: () => void, body: () => void) =>
    f.forRange(v, lo, hi, 1, body);
  const zero = () => f.i32Const(0);
  f.localGet(C).i32Const(2).op(Op.i32_shl).localSet(cb);
  f.localGet(C).i32Const(-4).op(Op.i32_and).localSet(c4);
  range(
    b,
    zero,
    () => f.localGet(N),
    () =>
      range(
        y,
        zero,
        () => f.localGet(OH),
        () =>
          range(
            x,
            zero,
            () => f.localGet(OW),
            () =>
              range(
                i,
                zero,
                () => f.localGet(KH),
                () =>
                  range(
                    j,
                    zero,
                    () => f.localGet(KW),
                    () => {
                      f.localGet(y).localGet(SH).op(Op.i32_mul).localGet(PT).op(Op.i32_sub);
                      f.localGet(i).localGet(DH).op(Op.i32_mul).op(Op.i32_add).localSet(ih);
                      f.localGet(x).localGet(SW).op(Op.i32_mul).localGet(PL).op(Op.i32_sub);
                      f.localGet(j).localGet(DW).op(Op.i32_mul).op(Op.i32_add).localSet(iw);
                      f.localGet(ih)
                        .localGet(H)
                        .op(Op.i32_lt_u)
                        .localGet(iw)
                        .localGet(W)
                        .op(Op.i32_lt_u)
                        .op(Op.i32_and);
                      f.if(() => {
                        // dst = dx + ((b*h + ih)*w + iw) * c * 4
                        f.localGet(DX);
                        f.localGet(b)
                          .localGet(H)
                          .op(Op.i32_mul)
                          .localGet(ih)
                          .op(Op.i32_add)
                          .localGet(W)
                          .op(Op.i32_mul);
                        f.localGet(iw)
                          .op(Op.i32_add)
                          .localGet(cb)
                          .op(Op.i32_mul)
                          .op(Op.i32_add)
                          .localSet(dst);
                        f.forRange(
                          c,
                          zero,
                          () => f.localGet(c4),
                          4,
                          () => {
                            const at = (base: number) =>
                              f.localGet(base).localGet(c).i32Const(2).op(Op.i32_shl).op(Op.i32_add);
                            at(dst);
                            at(dst).v128Load();
                            at(SRC).v128Load();
                            f.simd(Simd.f32x4_add).v128Store();
                          },
                        );
                        f.forRange(
                          c,
                          () => f.localGet(c4),
                          () => f.localGet(C),
                          1,
                          () => {
                            const at = (base: number) =>
                              f.localGet(base).localGet(c).i32Const(2).op(Op.i32_shl).op(Op.i32_add);
                            at(dst);
                            at(dst).f32Load();
                            at(SRC).f32Load();
                            f.op(Op.f32_add).f32Store();
                          },
                        );
                      });
                      f.localGet(SRC).localGet(cb).op(Op.i32_add).localSet(SRC);
                    },
                  ),
              ),
          ),
      ),
  );
}

/**
 * Convolution on the GEMM's heap.
 *
 * @example
 * ```ts
 * const conv = new WasmConv(new WasmGemm(new WasmHeap()));
 * const { data, shape } = conv.conv2d(x, [8, 28, 28, 1], w, [3, 3, 1, 32], { padding: "SAME" });
 * ```
 */
export class WasmConv {
  private readonly im2col: (...args: number[]) => void;
  private readonly col2im: (...args: number[]) => void;
  private staging: { ptr: number; bytes: number } | undefined;

  constructor(readonly gemm: WasmGemm) {
    const heap = gemm.heap;
    const bytes = buildIm2col({ shared: heap.shared, maxPages: heap.maxPages });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: heap.memory } });
    this.im2col = inst.exports.im2col as (...args: number[]) => void;
    this.col2im = inst.exports.col2im as (...args: number[]) => void;
  }

  private geometryArgs(g: ConvGeometry): number[] {
    return [g.n, g.h, g.w, g.c, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, g.oh, g.ow];
  }

  /**
   * Kernel gradient on resident buffers: dW[KH,KW,C,O] = im2col(x)ᵀ · dy, with x NHWC, dy
   * [N,OH,OW,O], `scratch` of {@link WasmConv.scratchBytes} bytes.
   */
  conv2dGradKernelPtr(
    g: ConvGeometry,
    x: number,
    dy: number,
    dw: number,
    scratch: number,
    threads = 1,
  ): void {
    const rows = g.n * g.oh * g.ow;
    const depth = g.kh * g.kw * g.c;
    if (depth === 0 || g.o === 0) return;
    if (rows > 0) this.im2col(x, scratch, ...this.geometryArgs(g));
    this.gemm.gemmPtr(
      depth,
      g.o,
      rows,
      { ptr: scratch, rs: 1, cs: depth },
      { ptr: dy, rs: g.o, cs: 1 },
      dw,
      g.o,
      threads,
    );
  }

  /**
   * Input gradient on resident buffers: dx = col2im(dy · Wᵀ) (any strides, padding, dilation);
   * dx (N·H·W·C floats) is overwritten.
   */
  conv2dGradInputPtr(g: ConvGeometry, dy: number, w: number, dx: number, scratch: number, threads = 1): void {
    const rows = g.n * g.oh * g.ow;
    const depth = g.kh * g.kw * g.c;
    this.gemm.heap.f32().fill(0, dx / 4, dx / 4 + g.n * g.h * g.w * g.c);
    if (rows === 0 || depth === 0) return;
    this.gemm.gemmPtr(
      rows,
      depth,
      g.o,
      { ptr: dy, rs: g.o, cs: 1 },
      { ptr: w, rs: 1, cs: g.o },
      scratch,
      depth,
      threads,
    );
    this.col2im(scratch, dx, ...this.geometryArgs(g));
  }

  /** Stages arrays in persistent memory (grown when too small) and returns their byte offsets. */
  private stage(arrays: readonly Float32Array[], extra: readonly number[]): number[] {
    const r = (b: number) => Math.ceil(b / 64) * 64;
    const sizes = [...arrays.map((a) => 4 * a.length), ...extra].map(r);
    const need = sizes.reduce((a, b) => a + b, 0);
    const heap = this.gemm.heap;
    if (!this.staging || this.staging.bytes < need) {
      if (this.staging) heap.free(this.staging.ptr);
      this.staging = { ptr: heap.alloc(need), bytes: need };
    }
    const ptrs: number[] = [];
    let p = this.staging.ptr;
    for (const s of sizes) {
      ptrs.push(p);
      p += s;
    }
    const mem = heap.f32();
    arrays.forEach((a, i) => mem.set(a, ptrs[i]! / 4));
    return ptrs;
  }

  /**
   * Gradient of {@link WasmConv.conv2d} with respect to the kernel: dW (HWIO) from the input x and
   * the output cotangent dy.
   */
  conv2dGradKernel(
    x: Float32Array,
    xShape: readonly number[],
    dy: Float32Array,
    wShape: readonly number[],
    options: Conv2dOptions & { threads?: number } = {},
  ): Float32Array {
    const g = convGeometry(xShape, wShape, options);
    if (x.length !== g.n * g.h * g.w * g.c)
      throw new ShapeError(`input has ${x.length} elements for [${xShape}]`, "conv2d");
    if (dy.length !== g.n * g.oh * g.ow * g.o) {
      throw new ShapeError(
        `cotangent has ${dy.length} elements, expected ${g.n * g.oh * g.ow * g.o}`,
        "conv2d",
      );
    }
    const wLen = g.kh * g.kw * g.c * g.o;
    const [px, pdy, pw, ps] = this.stage([x, dy], [4 * wLen, WasmConv.scratchBytes(g)]);
    this.conv2dGradKernelPtr(g, px!, pdy!, pw!, ps!, options.threads ?? 1);
    return this.gemm.heap.f32().slice(pw! / 4, pw! / 4 + wLen);
  }

  /** Gradient of {@link WasmConv.conv2d} with respect to the input: dx (NHWC) from dy and the kernel. */
  conv2dGradInput(
    dy: Float32Array,
    w: Float32Array,
    xShape: readonly number[],
    wShape: readonly number[],
    options: Conv2dOptions & { threads?: number } = {},
  ): Float32Array {
    const g = convGeometry(xShape, wShape, options);
    if (w.length !== g.kh * g.kw * g.c * g.o)
      throw new ShapeError(`kernel has ${w.length} elements for [${wShape}]`, "conv2d");
    if (dy.length !== g.n * g.oh * g.ow * g.o) {
      throw new ShapeError(
        `cotangent has ${dy.length} elements, expected ${g.n * g.oh * g.ow * g.o}`,
        "conv2d",
      );
    }
    const xLen = g.n * g.h * g.w * g.c;
    const [pdy, pw, px, ps] = this.stage([dy, w], [4 * xLen, WasmConv.scratchBytes(g)]);
    this.conv2dGradInputPtr(g, pdy!, pw!, px!, ps!, options.threads ?? 1);
    return this.gemm.heap.f32().slice(px! / 4, px! / 4 + xLen);
  }

  /** Bytes of scratch {@link WasmConv.conv2dPtr} needs for the patch matrix. */
  static scratchBytes(g: ConvGeometry): number {
    return 4 * g.n * g.oh * g.ow * g.kh * g.kw * g.c;
  }

  /**
   * On resident buffers: x (NHWC), w (HWIO) and out (N·OH·OW·O floats) are byte offsets, `scratch`
   * holds {@link WasmConv.scratchBytes} bytes.
   */
  conv2dPtr(g: ConvGeometry, x: number, w: number, out: number, scratch: number, threads = 1): void {
    const rows = g.n * g.oh * g.ow;
    const depth = g.kh * g.kw * g.c;
    if (rows === 0 || g.o === 0) return;
    this.im2col(x, scratch, ...this.geometryArgs(g));
    this.gemm.gemmPtr(
      rows,
      g.o,
      depth,
      { ptr: scratch, rs: depth, cs: 1 },
      { ptr: w, rs: g.o, cs: 1 },
      out,
      g.o,
      threads,
    );
  }

  /** Convolution of Float32Arrays; returns the NHWC output and its shape. */
  conv2d(
    x: Float32Array,
    xShape: readonly number[],
    w: Float32Array,
    wShape: readonly number[],
    options: Conv2dOptions & { threads?: number } = {},
  ): { data: Float32Array; shape: [number, number, number, number] } {
    const g = convGeometry(xShape, wShape, options);
    if (x.length !== g.n * g.h * g.w * g.c)
      throw new ShapeError(`input has ${x.length} elements for [${xShape}]`, "conv2d");
    if (w.length !== g.kh * g.kw * g.c * g.o)
      throw new ShapeError(`kernel has ${w.length} elements for [${wShape}]`, "conv2d");
    const outLen = g.n * g.oh * g.ow * g.o;
    const [px, pw, po, ps] = this.stage([x, w], [4 * outLen, WasmConv.scratchBytes(g)]) as [
      number,
      number,
      number,
      number,
    ];
    this.conv2dPtr(g, px, pw, po, ps, options.threads ?? 1);
    return { data: this.gemm.heap.f32().slice(po / 4, po / 4 + outLen), shape: [g.n, g.oh, g.ow, g.o] };
  }
}
