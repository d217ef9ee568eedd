/**
 * Renders a kernel-IR kernel as gpu.js kernel source text (shared/GPUJS.md D2): one
 * `function k_<hash>(a0, a1, …) { … }` string, every shape, stride and loop bound baked in as an
 * integer literal, literal-start literal-bound loops only, integer-only index arithmetic (multiplies
 * and adds; a division only to split a leading axis when it is exact in float32), one `const` per
 * node. On gpu.js's `webasm` target the transcendentals are range-reduced polynomials expanded
 * inline, since `Math.exp`/`log`/`tanh` there call back into JavaScript per element.
 *
 * On the GL targets (headless-gl, WebGL) the text becomes GLSL, whose builtins differ from `Math.*`
 * (measured under Mesa, see the "gl" flavour below): `exp` and `log` are expanded from the same
 * polynomials (GLSL's `exp` is only (3 + 2|x|) ulp and its `log` only 2^-21 absolute near 1 by the
 * GLSL spec, 33 ulp and 106 ulp measured), `tanh` is built from the polynomial `exp` (gpu.js's GLSL
 * `tanh` cancels near 0 and is NaN beyond |x| ≈ 44), `Infinity` is written `(1.0 / 0.0)` (gpu.js
 * turns the identifier into FLT_MAX), and `pow` of a negative base is sign-corrected (GLSL's `pow`
 * is undefined there).
 */
import type { Affine, BinaryOp, KExpr, Kernel, ReduceOp, UnaryOp } from "./kernel-ir.js";
import { REDUCE_INIT, forEachLoad, kernelHash } from "./kernel-ir.js";

/**
 * Which flavour of gpu.js target the text is for: `"webasm"` avoids `Math.*` transcendentals,
 * `"gl"` works around GLSL's builtins (see the header), `"native"` trusts `Math.*` (cpu, WebGPU).
 */
export type GpuJsFlavour = "webasm" | "gl" | "native";

/** The text of +∞ per flavour (gpu.js's GLSL writes the identifier `Infinity` as FLT_MAX). */
function infinityText(flavour: GpuJsFlavour): string {
  return flavour === "gl" ? "(1.0 / 0.0)" : "Infinity";
}

/** Why a kernel cannot be rendered faithfully for gpu.js (the plan then runs it elsewhere). */
export class RenderDeclined extends Error {}

export interface RenderedKernel {
  name: string;
  source: string;
  /** gpu.js's `output` (x fastest). */
  output: number[];
  argNames: string[];
  loopMaxIterations: number;
}

/** Above 2^24 float32 index arithmetic stops being exact, so larger buffers are declined. */
const MAX_INDEX = 2 ** 24;

/** The largest finite float32, as a literal. */
const FLT_MAX = "3.4028234663852886e38";

/**
 * Formats a float literal the way gpu.js types it as a float (always with a point or exponent).
 * `infinity` is the text of +∞ for the target (see {@link GpuJsFlavour}).
 *
 * @example
 * ```ts
 * floatLiteral(2); // "2.0"
 * floatLiteral(-Infinity, "(1.0 / 0.0)"); // "(-(1.0 / 0.0))"
 * ```
 */
export function floatLiteral(v: number, infinity = "Infinity"): string {
  const f = Math.fround(v);
  if (Number.isNaN(f)) return "(0.0 / 0.0)";
  if (f === Number.POSITIVE_INFINITY) return infinity;
  if (f === Number.NEGATIVE_INFINITY) return `(-${infinity})`;
  let s = String(f);
  if (!/[.e]/.test(s)) s += ".0";
  return f < 0 || Object.is(f, -0) ? `(${Object.is(f, -0) ? "-0.0" : s})` : s;
}

/*
 * The polynomial transcendentals, as statement templates expanded in place (gpu.js's webasm front
 * end rejects locals initialised from a helper function's parameter, so there are no helper
 * functions). `$v` is the input, `$name` a local made unique per expansion, `$out` the result.
 * Coefficients are Cephes' expf, logf and tanhf; 2^n and a float's exponent are found by
 * comparisons and exact power-of-two scalings, since gpu.js's subset has no bit casts.
 */
const POW2_STEPS = [64, 64, 32, 16, 8, 4, 2, 1];

function expTemplate(): string[] {
  const lines = [
    "const $x = Math.min(Math.max($v, -87.33654), 88.72283);",
    "const $n = Math.floor($x * 1.442695 + 0.5);",
    "const $r = $x - $n * 0.693359375 + $n * 0.00021219444;",
    "let $p = (((((0.00019875691 * $r + 0.0013981999) * $r + 0.008333452) * $r + 0.041665796) * $r + 0.16666666) * $r + 0.5) * $r * $r + $r + 1.0;",
    "let $m = Math.abs($n);",
    "const $neg = $n < 0.0;",
  ];
  for (const k of POW2_STEPS) {
    lines.push(
      `if ($m >= ${k}.0) { $p = $p * ($neg ? ${floatLiteral(2 ** -k)} : ${floatLiteral(2 ** k)}); $m = $m - ${k}.0; }`,
    );
  }
  // Ordered comparisons only, so a NaN input falls through to itself (GLSL's min/max drop NaN).
  lines.push("const $out = $v <= 88.72283 ? ($v >= -87.33654 ? $p : 0.0) : ($v > 88.72283 ? Infinity : $v);");
  return lines;
}

function logTemplate(): string[] {
  const lines = ["let $m = $v;", "let $e = 0.0;"];
  for (const k of POW2_STEPS)
    lines.push(
      `if ($m < ${floatLiteral(2 ** (1 - k))}) { $m = $m * ${floatLiteral(2 ** k)}; $e = $e - ${k}.0; }`,
    );
  for (const k of POW2_STEPS.slice(1))
    lines.push(
      `if ($m >= ${floatLiteral(2 ** k)}) { $m = $m * ${floatLiteral(2 ** -k)}; $e = $e + ${k}.0; }`,
    );
  lines.push(
    "if ($m > 1.4142135) { $m = $m * 0.5; $e = $e + 1.0; }",
    "const $f = $m - 1.0;",
    "const $z = $f * $f;",
    "let $y = ((((((((0.070376836 * $f - 0.1151461) * $f + 0.11676999) * $f - 0.12420141) * $f + 0.14249323) * $f - 0.16668057) * $f + 0.20000714) * $f - 0.24999994) * $f + 0.3333333) * $f * $z;",
    "$y = $y - 0.00021219444 * $e;",
    "$y = $y - 0.5 * $z;",
    "const $r = $f + $y + 0.693359375 * $e;",
    "const $out = $v > 0.0 ? ($v < Infinity ? $r : $v) : ($v == 0.0 ? (-Infinity) : (0.0 / 0.0));",
  );
  return lines;
}

const TEMPLATES: Record<"exp" | "log", string[]> = { exp: expTemplate(), log: logTemplate() };

const INFIX: Partial<Record<BinaryOp, string>> = { add: "+", sub: "-", mul: "*", div: "/" };
const COMPARE: Partial<Record<BinaryOp, string>> = {
  eq: "==",
  ne: "!=",
  lt: "<",
  le: "<=",
  gt: ">",
  ge: ">=",
};

function binaryText(fn: BinaryOp, a: string, b: string): string {
  const infix = INFIX[fn];
  if (infix) return `(${a} ${infix} ${b})`;
  const cmp = COMPARE[fn];
  if (cmp) return `(${a} ${cmp} ${b} ? 1.0 : 0.0)`;
  switch (fn) {
    case "max":
      return `Math.max(${a}, ${b})`;
    case "min":
      return `Math.min(${a}, ${b})`;
    case "and": // bool lanes hold exactly 0 or 1
      return `(${a} * ${b})`;
    case "or":
      return `Math.max(${a}, ${b})`;
    default:
      throw new RenderDeclined(`no gpu.js text for ${fn}`);
  }
}

/**
 * max / min that propagate NaN as `Math.max` does (and as JAX's max does). GLSL's `max`/`min`
 * return the other operand for a NaN, so on GL they are spelled as comparisons; `x != x` is
 * NaN-exact under Mesa (unlike `x - x`, which it folds).
 */
function nanMaxMin(fn: "max" | "min", a: string, b: string): string {
  return `((${a} ${fn === "max" ? ">" : "<"} ${b} || ${a} != ${a}) ? ${a} : ${b})`;
}

function combineText(op: ReduceOp, acc: string, v: string, flavour: GpuJsFlavour): string {
  if (flavour === "gl" && (op === "max" || op === "min")) return nanMaxMin(op, v, acc);
  switch (op) {
    case "sum":
      return `${acc} + ${v}`;
    case "prod":
      return `${acc} * ${v}`;
    case "max":
      return `Math.max(${acc}, ${v})`;
    case "min":
      return `Math.min(${acc}, ${v})`;
  }
}

function indexText(a: Affine, outVars: readonly string[], redVars: readonly string[]): string {
  const terms: string[] = [];
  a.out.forEach((c, d) => {
    if (c !== 0) terms.push(c === 1 ? outVars[d]! : `${outVars[d]} * ${c}`);
  });
  a.red.forEach((c, d) => {
    if (c !== 0) terms.push(c === 1 ? redVars[d]! : `${redVars[d]} * ${c}`);
  });
  if (a.offset !== 0 || terms.length === 0) terms.push(String(a.offset));
  return terms.join(" + ").replace(/\+ -/g, "- ");
}

/**
 * Emits one `const` per expression node. Identical node texts within a block share one name (a
 * textual CSE), which is what makes micro-tiles pay: with several lanes (outputs per thread along
 * the last axis), loads that do not depend on that axis are emitted once for all lanes.
 */
class Emitter {
  readonly lines: string[] = [];
  private n = 0;
  private memo = new Map<string, string>();
  /** The current lane: its output index along the last axis is `base + lane`. */
  lane = 0;
  constructor(
    private readonly outVars: readonly string[],
    private readonly redVars: readonly string[],
    private readonly flavour: GpuJsFlavour,
    /** Outputs per thread along the last axis (1, or 4 for micro-tiled kernels). */
    private readonly lanes: number,
  ) {}

  /** Starts a new block (names bound inside a loop are not visible after it). */
  newBlock(): void {
    this.memo = new Map();
  }

  private fresh(): string {
    return `t${this.n++}`;
  }

  private bindTo(text: string, indent: string): string {
    const hit = this.memo.get(text);
    if (hit !== undefined) return hit;
    const name = this.fresh();
    this.lines.push(`${indent}const ${name} = ${text};`);
    this.memo.set(text, name);
    return name;
  }

  /** Expands a polynomial template for input `x`; returns the result's name. */
  private expand(which: "exp" | "log", x: string, indent: string): string {
    const key = `${which}#${x}`;
    const hit = this.memo.get(key);
    if (hit !== undefined) return hit;
    const p = `${this.fresh()}_`;
    const inf = infinityText(this.flavour);
    for (const line of TEMPLATES[which])
      this.lines.push(
        indent +
          line
            .replace(/\$v\b/g, x)
            .replace(/\$(\w+)/g, `${p}$1`)
            .replace(/\bInfinity\b/g, inf),
      );
    this.memo.set(key, `${p}out`);
    return `${p}out`;
  }

  private loadIndex(a: Affine): string {
    if (this.lanes === 1) return indexText(a, this.outVars, this.redVars);
    const last = a.out.length - 1;
    return indexText(
      { offset: a.offset + a.out[last]! * this.lane, out: a.out, red: a.red },
      this.outVars,
      this.redVars,
    );
  }

  /** Whether exp/log/tanh are expanded from the polynomials (webasm: speed; GL: accuracy). */
  private get polynomial(): boolean {
    return this.flavour !== "native";
  }

  private exp(x: string, indent: string): string {
    return this.polynomial ? this.expand("exp", x, indent) : this.bindTo(`Math.exp(${x})`, indent);
  }

  private log(x: string, indent: string): string {
    return this.polynomial ? this.expand("log", x, indent) : this.bindTo(`Math.log(${x})`, indent);
  }

  /**
   * log1p for GL, where Mesa reassociates `(1 + x) - 1` to `x` and so defeats Goldberg's correction:
   * for |x| ≤ 0.5, log1p(x) = 2·atanh(s) with s = x / (2 + x) (|s| ≤ 1/3, two roundings), summed as
   * the odd series through s^15 (the next term is below 2^-25 relative); elsewhere log(1 + x),
   * whose rounding of 1 + x costs at most 2.5 ulp there (exact below -0.5 by Sterbenz).
   */
  private log1pSeries(x: string, indent: string): string {
    const s = this.bindTo(`${x} / (2.0 + ${x})`, indent);
    const z = this.bindTo(`${s} * ${s}`, indent);
    let poly = "0.06666667"; // 1/15
    for (const c of [13, 11, 9, 7, 5, 3, 1]) poly = `(${poly} * ${z} + ${floatLiteral(1 / c)})`;
    const series = this.bindTo(`2.0 * ${s} * ${poly}`, indent);
    const u = this.bindTo(`1.0 + ${x}`, indent);
    const l = this.log(u, indent);
    return this.bindTo(`(Math.abs(${x}) <= 0.5 ? ${series} : ${l})`, indent);
  }

  /**
   * `a^b`. GLSL's `pow` is undefined for a negative base (Mesa gives NaN, `Math.pow(-2, 3)` is -8),
   * so on GL it runs on |a| and takes the sign from b's parity when b is an integer (NaN otherwise).
   * The sign of a zero result is not kept ((-0)^3 gives +0).
   */
  private pow(a: string, b: string, indent: string): string {
    if (this.flavour !== "gl") return this.bindTo(`Math.pow(${a}, ${b})`, indent);
    const m = this.bindTo(`Math.pow(Math.abs(${a}), ${b})`, indent);
    const odd = `Math.abs(${b} - 2.0 * Math.floor(${b} * 0.5)) == 1.0`;
    // x^0 = 1 for every x; otherwise NaN in gives NaN out (GLSL's pow(NaN, 3) is 0 under Mesa).
    const nan = `${a} != ${a} || ${b} != ${b}`;
    return this.bindTo(
      `(${b} == 0.0 ? 1.0 : ((${nan}) ? (0.0 / 0.0) : (${a} < 0.0 ? (Math.floor(${b}) == ${b} ? (${odd} ? -${m} : ${m}) : (0.0 / 0.0)) : ${m})))`,
      indent,
    );
  }

  private unary(fn: UnaryOp, x: string, indent: string): string {
    switch (fn) {
      case "exp":
        return this.exp(x, indent);
      case "log":
        return this.log(x, indent);
      case "tanh": {
        if (!this.polynomial) return this.bindTo(`Math.tanh(${x})`, indent);
        // Cephes tanhf: an odd polynomial below 0.625, else 1 - 2/(e^{2|x|} + 1).
        const a = this.bindTo(`Math.abs(${x})`, indent);
        const z = this.bindTo(`${x} * ${x}`, indent);
        const s = this.bindTo(
          `((((-0.0057049887 * ${z} + 0.020639088) * ${z} - 0.053739715) * ${z} + 0.13331442) * ${z} - 0.33333282) * ${z} * ${x} + ${x}`,
          indent,
        );
        const ax2 = this.bindTo(`${a} + ${a}`, indent);
        const e = this.exp(ax2, indent);
        const w = this.bindTo(`1.0 - 2.0 / (${e} + 1.0)`, indent);
        return this.bindTo(`${a} < 0.625 ? ${s} : (${x} < 0.0 ? -${w} : ${w})`, indent);
      }
      case "logistic": {
        const nx = this.bindTo(`-${x}`, indent);
        const e = this.exp(nx, indent);
        return this.bindTo(`1.0 / (1.0 + ${e})`, indent);
      }
      case "log1p": {
        if (this.flavour === "gl") return this.log1pSeries(x, indent);
        // Goldberg's log1p: log(u) · x / (u - 1) with u = 1 + x, exact where u rounds to 1.
        const u = this.bindTo(`1.0 + ${x}`, indent);
        const d = this.bindTo(`${u} - 1.0`, indent);
        const l = this.log(u, indent);
        return this.bindTo(
          `${d} == 0.0 ? ${x} : (${u} == ${infinityText(this.flavour)} ? ${u} : ${l} * (${x} / ${d}))`,
          indent,
        );
      }
      case "expm1": {
        // Kahan's expm1: (u - 1) · x / log(u) with u = e^x, for small |x|.
        const u = this.exp(x, indent);
        const d = this.bindTo(`${u} - 1.0`, indent);
        const l = this.log(u, indent);
        return this.bindTo(
          `${u} == 1.0 ? ${x} : (Math.abs(${x}) < 0.5 ? ${d} * (${x} / ${l}) : ${d})`,
          indent,
        );
      }
      default:
        return this.bindTo(simpleUnary(fn, x), indent);
    }
  }

  emit(e: KExpr, indent: string): string {
    switch (e.op) {
      case "const":
        return floatLiteral(e.value, infinityText(this.flavour));
      case "acc":
        return this.lanes === 1 ? "acc" : `acc${this.lane}`;
      case "load":
        return this.bindTo(`a${e.arg}[${this.loadIndex(e.index)}]`, indent);
      case "unary":
        return this.unary(e.fn, this.emit(e.x, indent), indent);
      case "binary": {
        const a = this.emit(e.a, indent);
        const b = this.emit(e.b, indent);
        if (e.fn === "pow") return this.pow(a, b, indent);
        if ((e.fn === "max" || e.fn === "min") && this.flavour === "gl")
          return this.bindTo(nanMaxMin(e.fn, a, b), indent);
        // Mesa folds x - x to 0 even for ±∞ and NaN (is_finite is lowered to x - x == 0), so GL
        // spells out its IEEE value: 0 for finite x, NaN otherwise.
        if (e.fn === "sub" && a === b && this.flavour === "gl")
          return this.bindTo(`(Math.abs(${a}) <= ${FLT_MAX} ? 0.0 : (0.0 / 0.0))`, indent);
        return this.bindTo(binaryText(e.fn, a, b), indent);
      }
      case "select":
        return this.bindTo(
          `(${this.emit(e.c, indent)} != 0.0 ? ${this.emit(e.t, indent)} : ${this.emit(e.f, indent)})`,
          indent,
        );
    }
  }
}

function simpleUnary(fn: UnaryOp, x: string): string {
  switch (fn) {
    case "neg":
      return `(-${x})`;
    case "sqrt":
      return `Math.sqrt(${x})`;
    case "rsqrt":
      return `(1.0 / Math.sqrt(${x}))`;
    case "sin":
      return `Math.sin(${x})`;
    case "cos":
      return `Math.cos(${x})`;
    case "abs":
      return `Math.abs(${x})`;
    case "sign":
      return `(${x} > 0.0 ? 1.0 : (${x} < 0.0 ? -1.0 : ${x}))`;
    case "floor":
      return `Math.floor(${x})`;
    case "ceil":
      return `Math.ceil(${x})`;
    case "not":
      return `(${x} == 0.0 ? 1.0 : 0.0)`;
    default:
      throw new RenderDeclined(`no gpu.js text for ${fn}`);
  }
}

/**
 * Four outputs per thread (a 1×4 micro-tile, returned as `Array(4)`) for reductions on webasm whose
 * last output axis is a multiple of 4 and whose body reads something independent of that axis
 * (a matmul's lhs row): those loads are then shared by the four accumulators.
 */
function microTileLanes(k: Kernel, flavour: GpuJsFlavour): number {
  const rank = k.outShape.length;
  if (flavour !== "webasm" || k.reduction === null || rank === 0 || rank > 3) return 1;
  if (k.outShape[rank - 1]! % 4 !== 0) return 1;
  let shared = false;
  forEachLoad(k.reduction.body, (a) => {
    if (a.out[rank - 1] === 0) shared = true;
  });
  return shared ? 4 : 1;
}

/**
 * Renders a (coalesced) kernel. Throws {@link RenderDeclined} when gpu.js cannot run it exactly
 * (buffers past 2^24 elements, an index space it cannot split exactly). `maxTextureSize` is the GL
 * texture limit (the thread grid is laid out to stay within it).
 *
 * @example
 * ```ts
 * const r = renderGpuJs(coalesce(kernel), "gl", { maxTextureSize: 16384 });
 * gpu.createKernel(r.source, { output: r.output, argumentTypes: { a0: "Array" } });
 * ```
 */
export function renderGpuJs(
  k: Kernel,
  flavour: GpuJsFlavour,
  opts: { microTile?: boolean; maxTextureSize?: number } = {},
): RenderedKernel {
  const rank = k.outShape.length;
  const outSize = k.outShape.reduce((p, d) => p * d, 1);
  if (outSize > MAX_INDEX || k.argSizes.some((s) => s > MAX_INDEX))
    throw new RenderDeclined("a buffer exceeds 2^24 elements (float32 index arithmetic)");
  if (k.argSizes.some((s) => s === 0)) throw new RenderDeclined("an input buffer is empty");
  const outVars = k.outShape.map((_, d) => `o${d}`);
  const redShape = k.reduction?.shape ?? [];
  const redVars = redShape.map((_, d) => `r${d}`);
  const head: string[] = [];
  let output: number[];
  const thread = ["this.thread.x", "this.thread.y", "this.thread.z"];
  const lanes = opts.microTile === false ? 1 : microTileLanes(k, flavour);
  // gpu.js on GL maps a 2D output straight onto a texture of that size; 1D and 3D outputs are packed
  // into a near-square one. A 2D output wider or taller than the texture limit therefore runs as 3D
  // with a unit y axis: [x, 1, z], z carrying the rows.
  const tallOrWide =
    rank === 2 && Math.max(k.outShape[0]!, k.outShape[1]! / lanes) > (opts.maxTextureSize ?? Infinity);
  if (rank === 0) output = [1];
  else if (tallOrWide) {
    head.push(
      lanes > 1 ? `  const o1 = this.thread.x * ${lanes};` : "  const o1 = this.thread.x;",
      "  const o0 = this.thread.z;",
    );
    output = [k.outShape[1]! / lanes, 1, k.outShape[0]!];
  } else if (rank <= 3) {
    output = [];
    for (let j = 0; j < rank; j++) {
      const d = rank - 1 - j;
      head.push(
        j === 0 && lanes > 1 ? `  const o${d} = ${thread[j]} * ${lanes};` : `  const o${d} = ${thread[j]};`,
      );
      output.push(j === 0 ? k.outShape[d]! / lanes : k.outShape[d]!);
    }
  } else {
    // x and y are the two innermost axes; z runs over the leading ones, split by exact divisions.
    const lead = k.outShape.slice(0, rank - 2);
    const zSize = lead.reduce((p, d) => p * d, 1);
    if (zSize >= 2 ** 22)
      throw new RenderDeclined(`leading index space ${zSize} too large to split exactly in float32`);
    head.push(
      `  const o${rank - 1} = this.thread.x;`,
      `  const o${rank - 2} = this.thread.y;`,
      "  let q = this.thread.z;",
    );
    for (let d = 0; d < lead.length; d++) {
      const inner = lead.slice(d + 1).reduce((p, s) => p * s, 1);
      if (flavour === "gl" && inner > 1) {
        // (q + 0.5)/inner lies at least 0.5/inner from an integer, so a correctly rounded division
        // floors exactly; GLSL only promises 2.5 ulp for '/' (gpu.js reports Mesa's integer division
        // as inaccurate), so one exact integer-valued correction step each way follows.
        head.push(
          `  let o${d} = Math.floor((q + 0.5) / ${inner}.0);`,
          `  if (o${d} * ${inner}.0 > q) { o${d} = o${d} - 1.0; }`,
          `  if ((o${d} + 1.0) * ${inner}.0 <= q) { o${d} = o${d} + 1.0; }`,
        );
      } else head.push(`  const o${d} = Math.floor((q + 0.5) / ${inner}.0);`);
      if (d < lead.length - 1) head.push(`  q = q - o${d} * ${inner};`);
    }
    output = [k.outShape[rank - 1]!, k.outShape[rank - 2]!, zSize];
  }
  const em = new Emitter(outVars, redVars, flavour, lanes);
  const accs = lanes === 1 ? ["acc"] : Array.from({ length: lanes }, (_, j) => `acc${j}`);
  if (k.reduction) {
    const red = k.reduction;
    const init = floatLiteral(REDUCE_INIT[red.op], infinityText(flavour));
    for (const a of accs) em.lines.push(`  let ${a} = ${init};`);
    let indent = "  ";
    for (let d = 0; d < redShape.length; d++) {
      em.lines.push(`${indent}for (let r${d} = 0; r${d} < ${redShape[d]}; r${d}++) {`);
      indent += "  ";
    }
    em.newBlock();
    accs.forEach((a, j) => {
      em.lane = j;
      const v = em.emit(red.body, indent);
      em.lines.push(`${indent}${a} = ${combineText(red.op, a, v, flavour)};`);
    });
    for (let d = redShape.length - 1; d >= 0; d--) {
      indent = indent.slice(2);
      em.lines.push(`${indent}}`);
    }
    em.newBlock();
  }
  const results = accs.map((_, j) => {
    em.lane = j;
    return em.emit(k.expr, "  ");
  });
  const result = lanes === 1 ? results[0]! : `[${results.join(", ")}]`;
  const name = `k_${kernelHash(k)}`;
  const argNames = k.argSizes.map((_, i) => `a${i}`);
  const source = [
    `function ${name}(${argNames.join(", ")}) {`,
    ...head,
    ...em.lines,
    `  return ${result};`,
    "}",
  ].join("\n");
  return { name, source, output, argNames, loopMaxIterations: Math.max(1, ...redShape) };
}
