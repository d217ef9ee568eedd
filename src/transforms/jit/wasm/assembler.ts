/**
 * A tiny WebAssembly assembler: LEB128, the binary module layout (types, one imported memory,
 * functions, exports, code) and a function-body emitter with the core and SIMD128 (`0xfd`) opcodes
 * the kernels need. Kernels are generated as bytes here and handed to `new WebAssembly.Module`, so
 * the backend has no native or build-time dependency.
 *
 * @example
 * ```ts
 * const m = new ModuleBuilder();
 * m.importMemory("env", "memory", { shared: false });
 * const f = m.func("add1", [I32], [I32]);
 * f.localGet(0).i32Const(1).op(Op.i32_add);
 * const bytes = m.toBytes(); // new WebAssembly.Module(bytes)
 * ```
 */

/** Value types. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof V128;

/** Unsigned LEB128. */
export function uleb(n: number, out: number[] = []): number[] {
  n >>>= 0;
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(n: number, out: number[] = []): number[] {
  n |= 0;
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function utf8(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

/** Core opcodes (one byte, no immediates unless noted in the emitter). */
export const Op = {
  unreachable: 0x00,
  nop: 0x01,
  drop: 0x1a,
  select: 0x1b,
  return: 0x0f,
  i32_eqz: 0x45,
  i32_eq: 0x46,
  i32_ne: 0x47,
  i32_lt_s: 0x48,
  i32_lt_u: 0x49,
  i32_gt_s: 0x4a,
  i32_gt_u: 0x4b,
  i32_le_s: 0x4c,
  i32_le_u: 0x4d,
  i32_ge_s: 0x4e,
  i32_ge_u: 0x4f,
  i32_add: 0x6a,
  i32_sub: 0x6b,
  i32_mul: 0x6c,
  i32_div_s: 0x6d,
  i32_div_u: 0x6e,
  i32_rem_u: 0x70,
  i32_and: 0x71,
  i32_or: 0x72,
  i32_xor: 0x73,
  i32_shl: 0x74,
  i32_shr_s: 0x75,
  i32_shr_u: 0x76,
  f32_abs: 0x8b,
  f32_neg: 0x8c,
  f32_sqrt: 0x91,
  f32_add: 0x92,
  f32_sub: 0x93,
  f32_mul: 0x94,
  f32_div: 0x95,
  f32_min: 0x96,
  f32_max: 0x97,
} as const;

/** SIMD128 opcodes, emitted after the `0xfd` prefix as a LEB128 u32. */
export const Simd = {
  v128_load: 0x00,
  v128_load32_splat: 0x09,
  v128_store: 0x0b,
  v128_const: 0x0c,
  i8x16_shuffle: 0x0d,
  i32x4_splat: 0x11,
  f32x4_splat: 0x13,
  i32x4_extract_lane: 0x1b,
  f32x4_extract_lane: 0x1f,
  f32x4_replace_lane: 0x20,
  i32x4_eq: 0x37,
  i32x4_gt_s: 0x3b,
  f32x4_eq: 0x41,
  f32x4_ne: 0x42,
  f32x4_lt: 0x43,
  f32x4_gt: 0x44,
  f32x4_le: 0x45,
  f32x4_ge: 0x46,
  v128_not: 0x4d,
  v128_and: 0x4e,
  v128_andnot: 0x4f,
  v128_or: 0x50,
  v128_xor: 0x51,
  v128_bitselect: 0x52,
  v128_load32_lane: 0x56,
  v128_store32_lane: 0x5a,
  v128_load32_zero: 0x5c,
  f32x4_ceil: 0x67,
  f32x4_floor: 0x68,
  f32x4_trunc: 0x69,
  f32x4_nearest: 0x6a,
  i32x4_shl: 0xab,
  i32x4_shr_s: 0xac,
  i32x4_shr_u: 0xad,
  i32x4_add: 0xae,
  i32x4_sub: 0xb1,
  i32x4_mul: 0xb5,
  f32x4_abs: 0xe0,
  f32x4_neg: 0xe1,
  f32x4_sqrt: 0xe3,
  f32x4_add: 0xe4,
  f32x4_sub: 0xe5,
  f32x4_mul: 0xe6,
  f32x4_div: 0xe7,
  f32x4_min: 0xe8,
  f32x4_max: 0xe9,
  i32x4_trunc_sat_f32x4_s: 0xf8,
  f32x4_convert_i32x4_s: 0xfa,
  /** Relaxed SIMD: a·b + c, fused or not as the platform does it (validate before use). */
  f32x4_relaxed_madd: 0x105,
} as const;

const f32Scratch = new Float32Array(1);
const f32Bytes = new Uint8Array(f32Scratch.buffer);

/**
 * A function body under construction. Every emitter returns `this`, so code reads as a chain in
 * stack order. Locals are declared with {@link FuncBuilder.local}; parameters are locals 0…n-1.
 */
export class FuncBuilder {
  readonly code: number[] = [];
  readonly locals: ValType[] = [];
  constructor(
    readonly name: string,
    readonly params: readonly ValType[],
    readonly results: readonly ValType[],
  ) {}

  /** Declares a new local and returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  op(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }
  simd(opcode: number): this {
    this.code.push(0xfd);
    uleb(opcode, this.code);
    return this;
  }
  /** A SIMD memory access with its memarg (log2 alignment, byte offset). */
  simdMem(opcode: number, offset = 0, alignLog2 = 0): this {
    this.simd(opcode);
    uleb(alignLog2, this.code);
    uleb(offset, this.code);
    return this;
  }
  /** A SIMD lane access (extract/replace) with its lane index. */
  simdLane(opcode: number, lane: number): this {
    this.simd(opcode);
    this.code.push(lane);
    return this;
  }
  /** A SIMD load/store of one lane: memarg then lane index. */
  simdMemLane(opcode: number, lane: number, offset = 0): this {
    this.simd(opcode);
    uleb(2, this.code);
    uleb(offset, this.code);
    this.code.push(lane);
    return this;
  }

  localGet(i: number): this {
    this.code.push(0x20);
    uleb(i, this.code);
    return this;
  }
  localSet(i: number): this {
    this.code.push(0x21);
    uleb(i, this.code);
    return this;
  }
  localTee(i: number): this {
    this.code.push(0x22);
    uleb(i, this.code);
    return this;
  }
  i32Const(v: number): this {
    this.code.push(0x41);
    sleb(v, this.code);
    return this;
  }
  f32Const(v: number): this {
    this.code.push(0x43);
    f32Scratch[0] = v;
    for (const b of f32Bytes) this.code.push(b);
    return this;
  }
  /** `v128.const` with four f32 lanes. */
  f32x4Const(a: number, b = a, c = a, d = a): this {
    this.simd(Simd.v128_const);
    const lanes = new Float32Array([a, b, c, d]);
    for (const byte of new Uint8Array(lanes.buffer)) this.code.push(byte);
    return this;
  }
  /** `i8x16.shuffle` of the two vectors on the stack, by 32-bit lanes (0–3 first, 4–7 second). */
  shuffle32(lanes: readonly [number, number, number, number]): this {
    this.simd(Simd.i8x16_shuffle);
    for (const l of lanes) this.code.push(4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3);
    return this;
  }
  /** `v128.const` with four i32 lanes. */
  i32x4Const(a: number, b = a, c = a, d = a): this {
    this.simd(Simd.v128_const);
    const lanes = new Int32Array([a, b, c, d]);
    for (const byte of new Uint8Array(lanes.buffer)) this.code.push(byte);
    return this;
  }
  f32Load(offset = 0): this {
    this.code.push(0x2a, 2);
    uleb(offset, this.code);
    return this;
  }
  f32Store(offset = 0): this {
    this.code.push(0x38, 2);
    uleb(offset, this.code);
    return this;
  }
  i32Load(offset = 0): this {
    this.code.push(0x28, 2);
    uleb(offset, this.code);
    return this;
  }
  i32Store(offset = 0): this {
    this.code.push(0x36, 2);
    uleb(offset, this.code);
    return this;
  }
  v128Load(offset = 0): this {
    return this.simdMem(Simd.v128_load, offset, 0);
  }
  v128Store(offset = 0): this {
    return this.simdMem(Simd.v128_store, offset, 0);
  }
  /** `memory.fill` (bulk memory): [dest, value, length] on the stack. */
  memoryFill(): this {
    this.code.push(0xfc);
    uleb(11, this.code);
    this.code.push(0);
    return this;
  }
  /** `memory.copy` (bulk memory): [dest, src, length] on the stack. */
  memoryCopy(): this {
    this.code.push(0xfc);
    uleb(10, this.code);
    this.code.push(0, 0);
    return this;
  }
  call(funcIndex: number): this {
    this.code.push(0x10);
    uleb(funcIndex, this.code);
    return this;
  }

  /** `block … end` with no result; `br 0` inside jumps past the end. */
  block(body: () => void): this {
    this.code.push(0x02, 0x40);
    body();
    this.code.push(0x0b);
    return this;
  }
  /** `loop … end` with no result; `br 0` inside jumps back to the top. */
  loop(body: () => void): this {
    this.code.push(0x03, 0x40);
    body();
    this.code.push(0x0b);
    return this;
  }
  /** `if … (else …) end` on the i32 on the stack. */
  if(then: () => void, otherwise?: () => void): this {
    this.code.push(0x04, 0x40);
    then();
    if (otherwise) {
      this.code.push(0x05);
      otherwise();
    }
    this.code.push(0x0b);
    return this;
  }
  br(depth: number): this {
    this.code.push(0x0c);
    uleb(depth, this.code);
    return this;
  }
  brIf(depth: number): this {
    this.code.push(0x0d);
    uleb(depth, this.code);
    return this;
  }

  /**
   * `for (i = start; i < end; i += step) body()` over i32 locals, as `block { loop { … } }`.
   * `start`/`end` emit their value; the loop is skipped when empty.
   */
  forRange(i: number, start: () => void, end: () => void, step: number, body: () => void): this {
    start();
    this.localSet(i);
    return this.block(() => {
      this.loop(() => {
        this.localGet(i);
        end();
        this.op(Op.i32_ge_s).brIf(1);
        body();
        // step 0: the body advances i itself (runtime block sizes).
        if (step !== 0) this.localGet(i).i32Const(step).op(Op.i32_add).localSet(i);
        this.br(0);
      });
    });
  }

  /** The encoded body: local declarations (run-length) then the code and `end`. */
  encode(): number[] {
    const groups: [number, ValType][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const body: number[] = [...uleb(groups.length)];
    for (const [n, t] of groups) body.push(...uleb(n), t);
    for (const b of this.code) body.push(b);
    body.push(0x0b);
    return [...uleb(body.length), ...body];
  }
}

/** Memory import options: `shared` requires a maximum (in 64 KiB pages). */
export interface MemoryImport {
  shared: boolean;
  minPages?: number;
  maxPages?: number;
}

/** A module with one imported memory, functions (all exported by name) and nothing else. */
export class ModuleBuilder {
  private readonly funcs: FuncBuilder[] = [];
  private memory: { module: string; name: string; spec: MemoryImport } | undefined;

  importMemory(module: string, name: string, spec: MemoryImport): this {
    this.memory = { module, name, spec };
    return this;
  }

  /** Adds a function; its index is the order of addition. */
  func(name: string, params: readonly ValType[], results: readonly ValType[]): FuncBuilder {
    const f = new FuncBuilder(name, params, results);
    this.funcs.push(f);
    return f;
  }

  /** Index of a function added earlier, for `call`. */
  indexOf(f: FuncBuilder): number {
    return this.funcs.indexOf(f);
  }

  toBytes(): Uint8Array<ArrayBuffer> {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const section = (id: number, payload: number[]) => {
      out.push(id, ...uleb(payload.length));
      for (const b of payload) out.push(b);
    };
    // Types: one per function (duplicates are legal and keep the indexing trivial).
    const types: number[] = [...uleb(this.funcs.length)];
    for (const f of this.funcs) {
      types.push(0x60, ...uleb(f.params.length), ...f.params, ...uleb(f.results.length), ...f.results);
    }
    section(1, types);
    if (this.memory) {
      const { module, name, spec } = this.memory;
      const min = spec.minPages ?? 1;
      const limits =
        spec.shared || spec.maxPages !== undefined
          ? [spec.shared ? 0x03 : 0x01, ...uleb(min), ...uleb(spec.maxPages ?? 65536)]
          : [0x00, ...uleb(min)];
      section(2, [...uleb(1), ...utf8(module), ...utf8(name), 0x02, ...limits]);
    }
    const fsec: number[] = [...uleb(this.funcs.length)];
    this.funcs.forEach((_, i) => fsec.push(...uleb(i)));
    section(3, fsec);
    const exp: number[] = [...uleb(this.funcs.length)];
    this.funcs.forEach((f, i) => exp.push(...utf8(f.name), 0x00, ...uleb(i)));
    section(7, exp);
    const code: number[] = [...uleb(this.funcs.length)];
    for (const f of this.funcs) for (const b of f.encode()) code.push(b);
    section(10, code);
    return new Uint8Array(out);
  }
}
