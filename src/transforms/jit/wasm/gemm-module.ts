/**
 * Generates the f32 GEMM module: C[M,N] = A[M,K]·B[K,N] for strided A and B (so transposes are
 * free: they only change the packing strides), blocked the way Goto's algorithm blocks it.
 *
 * - `kernel`: an MR×NR register tile of f32x4 accumulators (MR rows, NR/4 vectors per row) over a
 *   packed A micro-panel (MR values per k, splat-loaded) and a packed B micro-panel (NR values per
 *   k, vector-loaded), unrolled over k; no FMA in SIMD128, so mul then add, or relaxed SIMD's
 *   `f32x4.relaxed_madd` where the engine has it (`fma`; one rounding per step instead of two).
 * - `packA` / `packB`: copy a KC-deep block of A (MC rows) and B (NC columns) into contiguous
 *   micro-panels, zero-padded to multiples of MR / NR so the kernel never sees an edge; row-major
 *   A and transposed B go through 4×4 register transposes, transposed A and row-major B are
 *   vector copies, four A panels or two B panels per pass so each source row read is a whole
 *   cache line.
 * - `gemm`: the loops jc (NC) → pc (KC) → pack B → ic (MC) → pack A → jr (NR) → ir (MR). Edge tiles
 *   go through a scratch MR×NR tile and are copied in/out, so every C element is computed by the
 *   same sequence of operations whatever the tile position: splitting M or N between threads is
 *   bitwise identical to one thread (only the K blocking, a function of K, orders the sums).
 */
import { ConfigError } from "../../../core/errors.js";
import { type FuncBuilder, I32, ModuleBuilder, Op, Simd, V128 } from "./assembler.js";

/** Compile-time shape of the micro-kernel. */
export interface MicroKernelShape {
  /** Rows of the register tile. */
  mr: number;
  /** Columns of the register tile (a multiple of 4). */
  nr: number;
  /** Unroll factor of the k loop. */
  unroll: number;
  /**
   * Multiply-add with relaxed SIMD's `f32x4.relaxed_madd` (one FMA on x64 with FMA3) instead of
   * mul then add. Only where {@link relaxedSimdSupported}; {@link WasmGemm} turns it on by
   * default there.
   */
  fma?: boolean;
}

/**
 * Whether this engine accepts relaxed SIMD (Node ≥ 22, Chrome ≥ 114; Node 20 behind
 * `--experimental-wasm-relaxed-simd`), checked by validating a one-instruction module.
 */
export function relaxedSimdSupported(): boolean {
  const m = new ModuleBuilder();
  const f = m.func("madd", [], [V128]);
  f.f32x4Const(0).f32x4Const(0).f32x4Const(0).simd(Simd.f32x4_relaxed_madd);
  return WebAssembly.validate(m.toBytes());
}

/**
 * 4×8: 8 accumulators + 2 B vectors + 4 splats + 1 product = 15 of the 15 xmm registers V8
 * allocates on x64; 5×8, 6×8, 3×12 and 8×4 spill (17–21 GFLOP/s against 38–40 measured on the
 * project machine, mul+add; with FMA 4×8, 3×12 and 2×16 reach 47–50, 5×8 and 4×12 spill). k
 * unrolled by 8 (see the kernel's loop).
 */
export const DEFAULT_SHAPE: MicroKernelShape = { mr: 4, nr: 8, unroll: 8 };

/**
 * Multiple the packed K depth is padded to with zeros. The kernel handles any kc, so 1; the packs
 * keep the capability for kernels that need a fixed multiple.
 */
const K_PAD = 1;

/** The exported function names and their parameter lists (all i32, pointers are byte offsets). */
export interface GemmExports {
  /**
   * `gemm(M, N, K, a, rsa, csa, b, rsb, csb, c, ldc, pa, pb, tile, n0, n1, kcMax, mcMax, ncMax)`:
   * strides in elements; computes columns [n0, n1) of C; pa/pb/tile are scratch of
   * `scratchBytes(...)`.
   */
  gemm: (...args: number[]) => void;
}

function minI32(f: FuncBuilder, a: () => void, b: () => void, tmpA: number, tmpB: number): void {
  a();
  f.localSet(tmpA);
  b();
  f.localSet(tmpB);
  f.localGet(tmpA).localGet(tmpB).localGet(tmpA).localGet(tmpB).op(Op.i32_lt_s).op(Op.select);
}

/**
 * 4×4 transpose of the v128 locals `r` (rows) into new locals (columns) with two rounds of
 * shuffles: interleave pairs of rows, then take halves.
 */
function transpose4(f: FuncBuilder, r: readonly number[]): number[] {
  const let_ = (emit: () => void) => {
    emit();
    const l = f.local(V128);
    f.localSet(l);
    return l;
  };
  const sh = (a: number, b: number, lanes: [number, number, number, number]) =>
    let_(() => f.localGet(a).localGet(b).shuffle32(lanes));
  const t0 = sh(r[0]!, r[1]!, [0, 4, 1, 5]);
  const t1 = sh(r[0]!, r[1]!, [2, 6, 3, 7]);
  const t2 = sh(r[2]!, r[3]!, [0, 4, 1, 5]);
  const t3 = sh(r[2]!, r[3]!, [2, 6, 3, 7]);
  return [
    sh(t0, t2, [0, 1, 4, 5]),
    sh(t0, t2, [2, 3, 6, 7]),
    sh(t1, t3, [0, 1, 4, 5]),
    sh(t1, t3, [2, 3, 6, 7]),
  ];
}

/** Builds the module bytes for one micro-kernel shape. */
/**
 * A panel that is not full (the last rows of A, columns of B): for k from `start()` up to `kc`,
 * `width` lanes, lane l < `valid` copied from `src + l·laneStride` and the rest zero; `src` steps
 * by `kStride` per k and `dst` past the written floats. All fields name locals (byte strides).
 */
function emitMaskedPanel(
  f: FuncBuilder,
  width: number,
  r: {
    k: number;
    lane: number;
    t0: number;
    src: number;
    dst: number;
    kc: number;
    valid: number;
    laneStride: number;
    kStride: number;
  },
  start: () => void,
): void {
  f.forRange(
    r.k,
    start,
    () => f.localGet(r.kc),
    1,
    () => {
      f.localGet(r.src).localSet(r.t0);
      f.forRange(
        r.lane,
        () => f.i32Const(0),
        () => f.i32Const(width),
        1,
        () => {
          f.localGet(r.lane).localGet(r.valid).op(Op.i32_lt_s);
          f.if(
            () => f.localGet(r.dst).localGet(r.t0).f32Load().f32Store(),
            () => f.localGet(r.dst).f32Const(0).f32Store(),
          );
          f.localGet(r.t0).localGet(r.laneStride).op(Op.i32_add).localSet(r.t0);
          f.localGet(r.dst).i32Const(4).op(Op.i32_add).localSet(r.dst);
        },
      );
      f.localGet(r.src).localGet(r.kStride).op(Op.i32_add).localSet(r.src);
    },
  );
}

/** Zeroes rows k in [kc, kcp) of a panel of `width` lanes at `dst` and moves `dst` past them. */
function emitZeroRows(
  f: FuncBuilder,
  width: number,
  r: { kc: number; kcp: number; dst: number; tmp: number },
): void {
  f.localGet(r.kcp)
    .localGet(r.kc)
    .op(Op.i32_sub)
    .i32Const(width * 4)
    .op(Op.i32_mul)
    .localSet(r.tmp);
  f.localGet(r.dst).i32Const(0).localGet(r.tmp).memoryFill();
  f.localGet(r.dst).localGet(r.tmp).op(Op.i32_add).localSet(r.dst);
}

export function buildGemmModule(
  shape: MicroKernelShape,
  memory: { shared: boolean; maxPages: number },
): Uint8Array<ArrayBuffer> {
  const { mr: MR, nr: NR, unroll: U } = shape;
  if (NR % 4 !== 0 || MR < 1 || U < 1) throw new Error(`bad micro-kernel shape ${JSON.stringify(shape)}`);
  if (shape.fma && !relaxedSimdSupported())
    throw new ConfigError("fma needs relaxed SIMD, which this engine lacks", "buildGemmModule");
  const NV = NR / 4;
  const m = new ModuleBuilder();
  m.importMemory("env", "memory", { shared: memory.shared, maxPages: memory.maxPages });

  // kernel(kc, ap, bp, cp, ldcBytes, first)
  const kern = m.func("kernel", [I32, I32, I32, I32, I32, I32], []);
  {
    const f = kern;
    const [KC, AP, BP, CP, LDC, FIRST] = [0, 1, 2, 3, 4, 5];
    const acc: number[][] = [];
    for (let i = 0; i < MR; i++) acc.push(Array.from({ length: NV }, () => f.local(V128)));
    const bv = Array.from({ length: NV }, () => f.local(V128));
    const av = f.local(V128);
    const row = f.local(I32);
    // Initialise: zero on the first K block, else the current C.
    f.localGet(FIRST).if(
      () => {
        for (let i = 0; i < MR; i++) for (let v = 0; v < NV; v++) f.f32x4Const(0).localSet(acc[i]![v]!);
      },
      () => {
        f.localGet(CP).localSet(row);
        for (let i = 0; i < MR; i++) {
          for (let v = 0; v < NV; v++)
            f.localGet(row)
              .v128Load(v * 16)
              .localSet(acc[i]![v]!);
          f.localGet(row).localGet(LDC).op(Op.i32_add).localSet(row);
        }
      },
    );
    const step = (u: number) => {
      for (let v = 0; v < NV; v++)
        f.localGet(BP)
          .v128Load((u * NR + v * 4) * 4)
          .localSet(bv[v]!);
      for (let i = 0; i < MR; i++) {
        f.localGet(AP)
          .simdMem(Simd.v128_load32_splat, (u * MR + i) * 4, 2)
          .localSet(av);
        for (let v = 0; v < NV; v++) {
          if (shape.fma) {
            f.localGet(av).localGet(bv[v]!).localGet(acc[i]![v]!).simd(Simd.f32x4_relaxed_madd);
          } else {
            f.localGet(acc[i]![v]!).localGet(av).localGet(bv[v]!).simd(Simd.f32x4_mul).simd(Simd.f32x4_add);
          }
          f.localSet(acc[i]![v]!);
        }
      }
    };
    // Unrolled do-while (kc ≥ 1) with an exit after each step but the last, taken when k runs out
    // (kc not a multiple of U), straight to the stores. It replaces a remainder loop, which made V8
    // spill the accumulators (half the speed), and it keeps V8 from hoisting every unrolled step's
    // loads to the top (loads cannot move above a branch, and the accumulators are live on both
    // paths), which spilled too. Measured on the project machine (GFLOP/s, 256–1024²): U = 1 and 4
    // about 34, U = 6, 8 and 16 about 39–41. Also measured slower (GFLOP/s, same run): an exit
    // every 2 or 4 steps only (19–25 against 41: the loads hoist and spill again), no exits (13),
    // A advanced per step so the splats keep offsets 0–12 and need no address arithmetic (33
    // against 39), and A packed pre-splatted (each value 4×, plain vector loads; 5–15 % slower).
    f.block(() =>
      f.loop(() => {
        for (let u = 0; u < U; u++) {
          step(u);
          if (u < U - 1)
            f.localGet(KC)
              .i32Const(u + 1)
              .op(Op.i32_eq)
              .brIf(1);
        }
        f.localGet(AP)
          .i32Const(MR * 4 * U)
          .op(Op.i32_add)
          .localSet(AP);
        f.localGet(BP)
          .i32Const(NR * 4 * U)
          .op(Op.i32_add)
          .localSet(BP);
        f.localGet(KC).i32Const(U).op(Op.i32_sub).localTee(KC).brIf(0);
      }),
    );
    f.localGet(CP).localSet(row);
    for (let i = 0; i < MR; i++) {
      for (let v = 0; v < NV; v++)
        f.localGet(row)
          .localGet(acc[i]![v]!)
          .v128Store(v * 16);
      f.localGet(row).localGet(LDC).op(Op.i32_add).localSet(row);
    }
  }

  // packA(mc, kc, a, rsaBytes, csaBytes, dst, kcp): panels of MR rows, (k, i) at (k*MR + i),
  // k in [kc, kcp) zero.
  const packA = m.func("packA", [I32, I32, I32, I32, I32, I32, I32], []);
  {
    const f = packA;
    const [MC, KC, A, RSA, CSA, DST, KCP] = [0, 1, 2, 3, 4, 5, 6];
    const ir = f.local(I32);
    const k = f.local(I32);
    const rows = f.local(I32);
    const src = f.local(I32);
    const i = f.local(I32);
    const t0 = f.local(I32);
    const t1 = f.local(I32);
    f.forRange(
      ir,
      () => f.i32Const(0),
      () => f.localGet(MC),
      MR,
      () => {
        minI32(
          f,
          () => f.i32Const(MR),
          () => f.localGet(MC).localGet(ir).op(Op.i32_sub),
          t0,
          t1,
        );
        f.localSet(rows);
        // src = a + ir*rsa
        f.localGet(A).localGet(ir).localGet(RSA).op(Op.i32_mul).op(Op.i32_add).localSet(src);
        f.localGet(rows)
          .i32Const(MR)
          .op(Op.i32_eq)
          .if(
            () => {
              f.i32Const(0).localSet(k);
              if (MR === 4) {
                // Vector paths: A transposed (a panel column is 4 contiguous floats) or row-major
                // (4 rows × 4 k read as vectors, transposed in registers). Packing A is most of
                // the non-kernel work when N is small (convolutions, thin layers).
                // Transposed A, four panels at once when 16 rows remain: a k row then gives 64
                // contiguous bytes (a cache line) instead of 16, so the column stride (often a
                // multiple of 4 KiB, colliding in L1 sets) is paid once per line, not per panel.
                const quad = () => {
                  f.localGet(KCP).i32Const(16).op(Op.i32_mul).localSet(t1);
                  f.forRange(
                    k,
                    () => f.i32Const(0),
                    () => f.localGet(KC),
                    1,
                    () => {
                      for (let q = 0; q < 4; q++) {
                        f.localGet(DST);
                        if (q > 0) f.localGet(t1).i32Const(q).op(Op.i32_mul).op(Op.i32_add);
                        f.localGet(src)
                          .v128Load(q * 16)
                          .v128Store();
                      }
                      f.localGet(DST).i32Const(16).op(Op.i32_add).localSet(DST);
                      f.localGet(src).localGet(CSA).op(Op.i32_add).localSet(src);
                    },
                  );
                  // Zero rows [kc, kcp) of the first three panels; the common code below
                  // zeroes the fourth's, with DST moved to the fourth panel's row kc.
                  for (let q = 0; q < 3; q++) {
                    f.localGet(DST);
                    if (q > 0) f.localGet(t1).i32Const(q).op(Op.i32_mul).op(Op.i32_add);
                    f.i32Const(0)
                      .localGet(KCP)
                      .localGet(KC)
                      .op(Op.i32_sub)
                      .i32Const(16)
                      .op(Op.i32_mul)
                      .memoryFill();
                  }
                  f.localGet(DST).localGet(t1).i32Const(3).op(Op.i32_mul).op(Op.i32_add).localSet(DST);
                  f.localGet(ir)
                    .i32Const(3 * MR)
                    .op(Op.i32_add)
                    .localSet(ir);
                };
                f.localGet(RSA)
                  .i32Const(4)
                  .op(Op.i32_eq)
                  .if(
                    () =>
                      f
                        .localGet(MC)
                        .localGet(ir)
                        .op(Op.i32_sub)
                        .i32Const(4 * MR)
                        .op(Op.i32_ge_s)
                        .if(quad, () =>
                          f.loop(() => {
                            f.localGet(k).localGet(KC).op(Op.i32_ge_s).brIf(1);
                            f.localGet(DST).localGet(src).v128Load().v128Store();
                            f.localGet(DST).i32Const(16).op(Op.i32_add).localSet(DST);
                            f.localGet(src).localGet(CSA).op(Op.i32_add).localSet(src);
                            f.localGet(k).i32Const(1).op(Op.i32_add).localSet(k);
                            f.br(0);
                          }),
                        ),
                    () =>
                      f
                        .localGet(CSA)
                        .i32Const(4)
                        .op(Op.i32_eq)
                        .if(() =>
                          f.block(() =>
                            f.loop(() => {
                              f.localGet(k).i32Const(4).op(Op.i32_add).localGet(KC).op(Op.i32_gt_s).brIf(1);
                              const rowsV: number[] = [];
                              for (let r = 0; r < 4; r++) {
                                f.localGet(src);
                                if (r > 0) f.localGet(RSA).i32Const(r).op(Op.i32_mul).op(Op.i32_add);
                                f.v128Load();
                                const l = f.local(V128);
                                f.localSet(l);
                                rowsV.push(l);
                              }
                              transpose4(f, rowsV).forEach((c, kk) =>
                                f
                                  .localGet(DST)
                                  .localGet(c)
                                  .v128Store(kk * 16),
                              );
                              f.localGet(DST).i32Const(64).op(Op.i32_add).localSet(DST);
                              f.localGet(src).i32Const(16).op(Op.i32_add).localSet(src);
                              f.localGet(k).i32Const(4).op(Op.i32_add).localSet(k);
                              f.br(0);
                            }),
                          ),
                        ),
                  );
              }
              f.forRange(
                k,
                () => f.localGet(k),
                () => f.localGet(KC),
                1,
                () => {
                  // t0 walks down the MR rows of column k.
                  f.localGet(src).localSet(t0);
                  for (let r = 0; r < MR; r++) {
                    f.localGet(DST)
                      .localGet(t0)
                      .f32Load()
                      .f32Store(r * 4);
                    if (r < MR - 1) f.localGet(t0).localGet(RSA).op(Op.i32_add).localSet(t0);
                  }
                  f.localGet(DST)
                    .i32Const(MR * 4)
                    .op(Op.i32_add)
                    .localSet(DST);
                  f.localGet(src).localGet(CSA).op(Op.i32_add).localSet(src);
                },
              );
            },
            () => {
              emitMaskedPanel(
                f,
                MR,
                { k, lane: i, t0, src, dst: DST, kc: KC, valid: rows, laneStride: RSA, kStride: CSA },
                () => f.i32Const(0),
              );
            },
          );
        emitZeroRows(f, MR, { kc: KC, kcp: KCP, dst: DST, tmp: t1 });
      },
    );
  }

  // packB(kc, nc, b, rsbBytes, csbBytes, dst, kcp): panels of NR columns, (k, j) at (k*NR + j),
  // k in [kc, kcp) zero.
  const packB = m.func("packB", [I32, I32, I32, I32, I32, I32, I32], []);
  {
    const f = packB;
    const [KC, NC, B, RSB, CSB, DST, KCP] = [0, 1, 2, 3, 4, 5, 6];
    const jr = f.local(I32);
    const d2 = f.local(I32);
    const k = f.local(I32);
    const cols = f.local(I32);
    const src = f.local(I32);
    const j = f.local(I32);
    const t0 = f.local(I32);
    const t1 = f.local(I32);
    f.forRange(
      jr,
      () => f.i32Const(0),
      () => f.localGet(NC),
      NR,
      () => {
        minI32(
          f,
          () => f.i32Const(NR),
          () => f.localGet(NC).localGet(jr).op(Op.i32_sub),
          t0,
          t1,
        );
        f.localSet(cols);
        f.localGet(B).localGet(jr).localGet(CSB).op(Op.i32_mul).op(Op.i32_add).localSet(src);
        // Contiguous full panel: NR/4 vector copies per k.
        const copyPanel = () =>
          f.forRange(
            k,
            () => f.i32Const(0),
            () => f.localGet(KC),
            1,
            () => {
              for (let v = 0; v < NV; v++)
                f.localGet(DST)
                  .localGet(src)
                  .v128Load(v * 16)
                  .v128Store(v * 16);
              f.localGet(DST)
                .i32Const(NR * 4)
                .op(Op.i32_add)
                .localSet(DST);
              f.localGet(src).localGet(RSB).op(Op.i32_add).localSet(src);
            },
          );
        // Two full panels at once when they fit: a row of B then gives 2·NR contiguous floats (a
        // whole cache line for NR = 8) instead of half of one. One panel at a time reads 32 bytes
        // per row at a row stride that is often a multiple of 4 KiB, where the rows collide in
        // the same L1 sets and every panel re-reads its lines from L2 (0.44 ns per element
        // measured at N = 1024; 2 panels: see bench/wasm.ts).
        const copyPanelPair = () => {
          // d2: the second panel, kcp·NR floats after the first.
          f.localGet(DST)
            .localGet(KCP)
            .i32Const(NR * 4)
            .op(Op.i32_mul)
            .op(Op.i32_add)
            .localSet(d2);
          f.forRange(
            k,
            () => f.i32Const(0),
            () => f.localGet(KC),
            1,
            () => {
              for (let v = 0; v < NV; v++)
                f.localGet(DST)
                  .localGet(src)
                  .v128Load(v * 16)
                  .v128Store(v * 16);
              for (let v = 0; v < NV; v++)
                f.localGet(d2)
                  .localGet(src)
                  .v128Load((NV + v) * 16)
                  .v128Store(v * 16);
              f.localGet(DST)
                .i32Const(NR * 4)
                .op(Op.i32_add)
                .localSet(DST);
              f.localGet(d2)
                .i32Const(NR * 4)
                .op(Op.i32_add)
                .localSet(d2);
              f.localGet(src).localGet(RSB).op(Op.i32_add).localSet(src);
            },
          );
          // Zero the first panel's rows [kc, kcp), then continue as if on the second panel.
          f.localGet(DST)
            .i32Const(0)
            .localGet(KCP)
            .localGet(KC)
            .op(Op.i32_sub)
            .i32Const(NR * 4)
            .op(Op.i32_mul)
            .memoryFill();
          f.localGet(d2).localSet(DST);
          f.localGet(jr).i32Const(NR).op(Op.i32_add).localSet(jr);
        };
        f.localGet(cols).i32Const(NR).op(Op.i32_eq).localGet(CSB).i32Const(4).op(Op.i32_eq).op(Op.i32_and);
        f.if(
          () => {
            f.localGet(NC)
              .localGet(jr)
              .op(Op.i32_sub)
              .i32Const(2 * NR)
              .op(Op.i32_ge_s)
              .if(copyPanelPair, copyPanel);
          },
          () => {
            f.i32Const(0).localSet(k);
            // B transposed (k contiguous per column), full panel: 4 columns × 4 k as vectors,
            // transposed in registers.
            f.localGet(cols)
              .i32Const(NR)
              .op(Op.i32_eq)
              .localGet(RSB)
              .i32Const(4)
              .op(Op.i32_eq)
              .op(Op.i32_and);
            f.if(() =>
              f.block(() =>
                f.loop(() => {
                  f.localGet(k).i32Const(4).op(Op.i32_add).localGet(KC).op(Op.i32_gt_s).brIf(1);
                  for (let g = 0; g < NV; g++) {
                    const colsV: number[] = [];
                    for (let c = 0; c < 4; c++) {
                      f.localGet(src)
                        .localGet(CSB)
                        .i32Const(4 * g + c)
                        .op(Op.i32_mul)
                        .op(Op.i32_add)
                        .v128Load();
                      const l = f.local(V128);
                      f.localSet(l);
                      colsV.push(l);
                    }
                    transpose4(f, colsV).forEach((row, kk) =>
                      f
                        .localGet(DST)
                        .localGet(row)
                        .v128Store((kk * NR + 4 * g) * 4),
                    );
                  }
                  f.localGet(DST)
                    .i32Const(4 * NR * 4)
                    .op(Op.i32_add)
                    .localSet(DST);
                  f.localGet(src).i32Const(16).op(Op.i32_add).localSet(src);
                  f.localGet(k).i32Const(4).op(Op.i32_add).localSet(k);
                  f.br(0);
                }),
              ),
            );
            emitMaskedPanel(
              f,
              NR,
              { k, lane: j, t0, src, dst: DST, kc: KC, valid: cols, laneStride: CSB, kStride: RSB },
              () => f.localGet(k),
            );
          },
        );
        emitZeroRows(f, NR, { kc: KC, kcp: KCP, dst: DST, tmp: t1 });
      },
    );
  }

  // copyTile(src, srcLd, dst, dstLd, rows, cols): byte strides.
  const copyTile = m.func("copyTile", [I32, I32, I32, I32, I32, I32], []);
  {
    const f = copyTile;
    const [SRC, SLD, DST, DLD, ROWS, COLS] = [0, 1, 2, 3, 4, 5];
    const r = f.local(I32);
    f.forRange(
      r,
      () => f.i32Const(0),
      () => f.localGet(ROWS),
      1,
      () => {
        f.localGet(DST).localGet(SRC).localGet(COLS).i32Const(2).op(Op.i32_shl).memoryCopy();
        f.localGet(SRC).localGet(SLD).op(Op.i32_add).localSet(SRC);
        f.localGet(DST).localGet(DLD).op(Op.i32_add).localSet(DST);
      },
    );
  }

  // gemm(M, N, K, a, rsa, csa, b, rsb, csb, c, ldc, pa, pb, tile, n0, n1, KCB, MCB, NCB)
  const gemm = m.func("gemm", Array(19).fill(I32), []);
  {
    const f = gemm;
    const [M, , K, A, RSA, CSA, B, RSB, CSB, C, LDC, PA, PB, TILE, N0, N1, KCB, MCB, NCB] = Array.from(
      { length: 19 },
      (_, i) => i,
    );
    const jc = f.local(I32);
    const pc = f.local(I32);
    const ic = f.local(I32);
    const jr = f.local(I32);
    const ir = f.local(I32);
    const nc = f.local(I32);
    const kc = f.local(I32);
    const kcp = f.local(I32);
    const mc = f.local(I32);
    const nr = f.local(I32);
    const mrr = f.local(I32);
    const first = f.local(I32);
    const cp = f.local(I32);
    const ldcB = f.local(I32);
    const t0 = f.local(I32);
    const t1 = f.local(I32);
    const i = f.local(I32);
    f.localGet(LDC).i32Const(2).op(Op.i32_shl).localSet(ldcB);
    // K = 0: C[:, n0:n1] = 0.
    f.localGet(K)
      .op(Op.i32_eqz)
      .if(() => {
        f.forRange(
          i,
          () => f.i32Const(0),
          () => f.localGet(M),
          1,
          () => {
            f.localGet(C).localGet(i).localGet(ldcB).op(Op.i32_mul).op(Op.i32_add);
            f.localGet(N0).i32Const(2).op(Op.i32_shl).op(Op.i32_add);
            f.i32Const(0);
            f.localGet(N1).localGet(N0).op(Op.i32_sub).i32Const(2).op(Op.i32_shl);
            f.memoryFill();
          },
        );
        f.op(Op.return);
      });
    f.forRange(
      jc,
      () => f.localGet(N0),
      () => f.localGet(N1),
      0,
      () => {
        minI32(
          f,
          () => f.localGet(NCB),
          () => f.localGet(N1).localGet(jc).op(Op.i32_sub),
          t0,
          t1,
        );
        f.localSet(nc);
        f.forRange(
          pc,
          () => f.i32Const(0),
          () => f.localGet(K),
          0,
          () => {
            minI32(
              f,
              () => f.localGet(KCB),
              () => f.localGet(K).localGet(pc).op(Op.i32_sub),
              t0,
              t1,
            );
            f.localSet(kc);
            // kcp: K rounded up to K_PAD (the packs zero-fill the extra rows).
            f.localGet(kc)
              .i32Const(K_PAD - 1)
              .op(Op.i32_add)
              .i32Const(-K_PAD)
              .op(Op.i32_and)
              .localSet(kcp);
            f.localGet(pc).op(Op.i32_eqz).localSet(first);
            // packB(kc, nc, b + (pc*rsb + jc*csb)*4, rsb*4, csb*4, pb)
            f.localGet(kc).localGet(nc);
            f.localGet(B)
              .localGet(pc)
              .localGet(RSB)
              .op(Op.i32_mul)
              .localGet(jc)
              .localGet(CSB)
              .op(Op.i32_mul)
              .op(Op.i32_add)
              .i32Const(2)
              .op(Op.i32_shl)
              .op(Op.i32_add);
            f.localGet(RSB)
              .i32Const(2)
              .op(Op.i32_shl)
              .localGet(CSB)
              .i32Const(2)
              .op(Op.i32_shl)
              .localGet(PB)
              .localGet(kcp);
            f.call(m.indexOf(packB));
            f.forRange(
              ic,
              () => f.i32Const(0),
              () => f.localGet(M),
              0,
              () => {
                minI32(
                  f,
                  () => f.localGet(MCB),
                  () => f.localGet(M).localGet(ic).op(Op.i32_sub),
                  t0,
                  t1,
                );
                f.localSet(mc);
                f.localGet(mc).localGet(kc);
                f.localGet(A)
                  .localGet(ic)
                  .localGet(RSA)
                  .op(Op.i32_mul)
                  .localGet(pc)
                  .localGet(CSA)
                  .op(Op.i32_mul)
                  .op(Op.i32_add)
                  .i32Const(2)
                  .op(Op.i32_shl)
                  .op(Op.i32_add);
                f.localGet(RSA)
                  .i32Const(2)
                  .op(Op.i32_shl)
                  .localGet(CSA)
                  .i32Const(2)
                  .op(Op.i32_shl)
                  .localGet(PA)
                  .localGet(kcp);
                f.call(m.indexOf(packA));
                f.forRange(
                  jr,
                  () => f.i32Const(0),
                  () => f.localGet(nc),
                  NR,
                  () => {
                    minI32(
                      f,
                      () => f.i32Const(NR),
                      () => f.localGet(nc).localGet(jr).op(Op.i32_sub),
                      t0,
                      t1,
                    );
                    f.localSet(nr);
                    f.forRange(
                      ir,
                      () => f.i32Const(0),
                      () => f.localGet(mc),
                      MR,
                      () => {
                        minI32(
                          f,
                          () => f.i32Const(MR),
                          () => f.localGet(mc).localGet(ir).op(Op.i32_sub),
                          t0,
                          t1,
                        );
                        f.localSet(mrr);
                        // cp = c + ((ic+ir)*ldc + jc + jr)*4
                        f.localGet(C)
                          .localGet(ic)
                          .localGet(ir)
                          .op(Op.i32_add)
                          .localGet(ldcB)
                          .op(Op.i32_mul)
                          .op(Op.i32_add)
                          .localGet(jc)
                          .localGet(jr)
                          .op(Op.i32_add)
                          .i32Const(2)
                          .op(Op.i32_shl)
                          .op(Op.i32_add)
                          .localSet(cp);
                        // ap = pa + ir*kcp*4, bp = pb + jr*kcp*4
                        const args = (c: () => void, ld: () => void) => {
                          f.localGet(kcp);
                          f.localGet(PA)
                            .localGet(ir)
                            .localGet(kcp)
                            .op(Op.i32_mul)
                            .i32Const(2)
                            .op(Op.i32_shl)
                            .op(Op.i32_add);
                          f.localGet(PB)
                            .localGet(jr)
                            .localGet(kcp)
                            .op(Op.i32_mul)
                            .i32Const(2)
                            .op(Op.i32_shl)
                            .op(Op.i32_add);
                          c();
                          ld();
                          f.localGet(first);
                          f.call(m.indexOf(kern));
                        };
                        f.localGet(mrr)
                          .i32Const(MR)
                          .op(Op.i32_eq)
                          .localGet(nr)
                          .i32Const(NR)
                          .op(Op.i32_eq)
                          .op(Op.i32_and);
                        f.if(
                          () =>
                            args(
                              () => f.localGet(cp),
                              () => f.localGet(ldcB),
                            ),
                          () => {
                            f.localGet(first)
                              .op(Op.i32_eqz)
                              .if(() => {
                                f.localGet(cp)
                                  .localGet(ldcB)
                                  .localGet(TILE)
                                  .i32Const(NR * 4)
                                  .localGet(mrr)
                                  .localGet(nr);
                                f.call(m.indexOf(copyTile));
                              });
                            args(
                              () => f.localGet(TILE),
                              () => f.i32Const(NR * 4),
                            );
                            f.localGet(TILE)
                              .i32Const(NR * 4)
                              .localGet(cp)
                              .localGet(ldcB)
                              .localGet(mrr)
                              .localGet(nr);
                            f.call(m.indexOf(copyTile));
                          },
                        );
                      },
                    );
                  },
                );
                f.localGet(ic).localGet(MCB).op(Op.i32_add).localSet(ic);
              },
            );
            f.localGet(pc).localGet(KCB).op(Op.i32_add).localSet(pc);
          },
        );
        f.localGet(jc).localGet(NCB).op(Op.i32_add).localSet(jc);
      },
    );
  }
  return m.toBytes();
}

/** Scratch bytes one thread needs for given block sizes: packed A, packed B, the edge tile. */
export function scratchLayout(
  shape: MicroKernelShape,
  blocks: { kc: number; mc: number; nc: number },
): { pa: number; pb: number; tile: number; total: number } {
  const round = (n: number, m: number) => Math.ceil(n / m) * m;
  const kcp = round(blocks.kc, K_PAD);
  const pa = round(blocks.mc, shape.mr) * kcp * 4;
  const pb = round(blocks.nc, shape.nr) * kcp * 4;
  const tile = shape.mr * shape.nr * 4;
  const a64 = (n: number) => round(n, 64);
  return { pa: 0, pb: a64(pa), tile: a64(pa) + a64(pb), total: a64(pa) + a64(pb) + a64(tile) };
}
