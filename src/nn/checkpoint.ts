/**
 * Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
 *
 *     [8 bytes: header length N, u64 little-endian][N bytes: JSON header, space-padded to a multiple of 8][data]
 *
 * The header maps each tensor name to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to
 * the start of the data) and may hold `"__metadata__": {string: string}`.
 *
 * How tsjax maps a pytree onto it:
 * - Each tensor leaf is one safetensors tensor named by its key path (`keyPathToString`:
 *   `params.dense.w`, `layers[0].kernel`, `["a.b"]`); a tensor at the root is named `""`.
 * - JS number leaves are stored as 0-d `F64` tensors and JS boolean leaves as 0-d `BOOL` tensors, so
 *   that other tools see every numeric value; the structure records that they come back as JS values.
 * - String leaves live in the structure itself; other leaves (functions, class instances) cannot be saved.
 * - `__metadata__["tsjax.tree"]` holds the structure as JSON. A node is encoded as:
 *   `"T"` tensor, `"n"` number, `"b"` boolean, `["s", text]` string, `"N"` null, `"U"` undefined,
 *   `["a", [children]]` array, `["o", [[key, child], ...]]` object (pairs, so that no user key is ever
 *   a JSON object key of ours), `["c", className, childNames|null, [children]]` registered class.
 *   Without `like`, a registered class comes back as an object (with child names) or an array.
 * - Keys of `__metadata__` starting with `tsjax.` are reserved; every other key is user metadata.
 * - A file without `tsjax.tree` (written by another tool) loads as the nested objects/arrays that its
 *   tensor names describe.
 *
 * Loading validates everything before allocating tensor storage and raises {@link CheckpointError}
 * naming the problem.
 */
import type * as NodeFs from "node:fs";
import type * as NodePath from "node:path";
import type { DType, TypedArray } from "../core/dtype.js";
import { CheckpointError, fmtShape } from "../core/errors.js";
import { Tensor } from "../core/tensor.js";
import { flattenWithPath, keyPathToString, type PathEntry } from "../core/tree.js";

const OP_SAVE = "checkpoint.save";
const OP_LOAD = "checkpoint.load";
const MAX_HEADER = 100_000_000;
const MAX_DEPTH = 512;
const TREE_KEY = "tsjax.tree";
const FORMAT_KEY = "tsjax.format";

const ST_DTYPE: Record<DType, string> = { float32: "F32", float64: "F64", int32: "I32", uint32: "U32", bool: "BOOL" };
const FROM_ST: Record<string, DType> = { F32: "float32", F64: "float64", I32: "int32", U32: "uint32", BOOL: "bool" };
const ITEMSIZE: Record<DType, number> = { float32: 4, float64: 8, int32: 4, uint32: 4, bool: 1 };

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Result of {@link deserialize} and {@link load}. */
export interface Checkpoint<T = unknown> {
  tree: T;
  /** User metadata (reserved `tsjax.` keys removed). */
  metadata: Record<string, string>;
}

type Enc = string | [string, ...unknown[]];

function fail(op: string, msg: string): never {
  throw new CheckpointError(msg, op);
}

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

// ---------------------------------------------------------------------------------------------------
// Serialize

function where(path: readonly PathEntry[]): string {
  return keyPathToString(path) || "(root)";
}

function encode(x: unknown, path: PathEntry[], depth: number): Enc {
  if (depth > MAX_DEPTH) fail(OP_SAVE, `tree is nested deeper than ${MAX_DEPTH} at ${where(path)}`);
  if (x === null) return "N";
  if (x === undefined) return "U";
  if (x instanceof Tensor) return "T";
  switch (typeof x) {
    case "number":
      return "n";
    case "boolean":
      return "b";
    case "string":
      return ["s", x];
    case "object":
      break;
    default:
      fail(OP_SAVE, `leaf at ${where(path)} is a ${typeof x}, which a checkpoint cannot hold`);
  }
  return encodeContainer(x as object, path, depth);
}

function encodeContainer(x: object, path: PathEntry[], depth: number): Enc {
  // Reuse tree.ts for one level so registered classes and key order follow the pytree rules exactly.
  const [pairs, def] = flattenWithPath(x, (y) => y !== x);
  const kids = def.kind === "leaf" ? [] : pairs.map(([p, v]) => encode(v, [...path, ...p], depth + 1));
  switch (def.kind) {
    case "array":
      return ["a", kids];
    case "object":
      return ["o", def.keys!.map((k, i) => [k, kids[i]])];
    case "custom": {
      const names = def.node!.childNames ? [...def.node!.childNames(def.aux)] : null;
      return ["c", def.node!.name, names, kids];
    }
    default:
      return fail(OP_SAVE, `leaf at ${where(path)} (${Object.prototype.toString.call(x)}) cannot be saved`);
  }
}

/**
 * Encodes a pytree of tensors (and numbers, booleans, strings, null) as safetensors bytes.
 *
 * @example const bytes = serialize({ w: np.ones([2, 2]) }, { step: "10" });
 */
export function serialize(tree: unknown, metadata: Record<string, string> = {}): Uint8Array {
  const structure = encode(tree, [], 0);
  const [pairs] = flattenWithPath(tree);
  const header: Record<string, unknown> = Object.create(null);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [path, leaf] of pairs) {
    const name = keyPathToString(path);
    let dtype: DType;
    let shape: readonly number[];
    let buf: TypedArray;
    if (leaf instanceof Tensor) {
      if (leaf._buf === null) fail(OP_SAVE, `leaf ${name || "(root)"} is a tracer; save concrete values`);
      dtype = leaf.dtype;
      shape = leaf.shape;
      buf = leaf._buf;
    } else if (typeof leaf === "number") {
      dtype = "float64";
      shape = [];
      buf = new Float64Array([leaf]);
    } else if (typeof leaf === "boolean") {
      dtype = "bool";
      shape = [];
      buf = new Uint8Array([leaf ? 1 : 0]);
    } else continue; // strings live in the structure
    if (hasOwn(header, name)) fail(OP_SAVE, `two leaves have the same name ${JSON.stringify(name)}`);
    const bytes = toLittleEndianBytes(buf, ITEMSIZE[dtype]);
    setKey(header, name, { dtype: ST_DTYPE[dtype], shape: [...shape], data_offsets: [offset, offset + bytes.length] });
    chunks.push(bytes);
    offset += bytes.length;
  }
  const meta: Record<string, string> = Object.create(null);
  for (const k of Object.keys(metadata)) {
    const v = metadata[k];
    if (k.startsWith("tsjax.")) fail(OP_SAVE, `metadata key ${JSON.stringify(k)} is reserved`);
    if (typeof v !== "string") fail(OP_SAVE, `metadata ${JSON.stringify(k)} must be a string, got ${typeof v}`);
    setKey(meta, k, v);
  }
  setKey(meta, FORMAT_KEY, "1");
  setKey(meta, TREE_KEY, JSON.stringify(structure));
  setKey(header, "__metadata__", meta);
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  // Space padding to a multiple of 8 keeps the data aligned, as the Rust implementation does.
  if (pad > 0) {
    const padded = new Uint8Array(json.length + pad).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, json.length, true);
  dv.setUint32(4, Math.floor(json.length / 2 ** 32), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

function toLittleEndianBytes(buf: TypedArray, itemsize: number): Uint8Array {
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
  if (!LITTLE_ENDIAN && itemsize > 1) swapBytes(bytes, itemsize);
  return bytes;
}

function swapBytes(bytes: Uint8Array, itemsize: number): void {
  for (let i = 0; i < bytes.length; i += itemsize) bytes.subarray(i, i + itemsize).reverse();
}

// ---------------------------------------------------------------------------------------------------
// Names

/** Parses a canonical key-path string (as `keyPathToString` writes it); null when malformed. */
export function parseKeyPath(name: string): PathEntry[] | null {
  const out: PathEntry[] = [];
  let i = 0;
  const ident = /[A-Za-z_$][A-Za-z0-9_$]*/y;
  while (i < name.length) {
    const c = name[i]!;
    if (c === "[") {
      if (name[i + 1] === '"') {
        let j = i + 2;
        while (j < name.length && name[j] !== '"') j += name[j] === "\\" ? 2 : 1;
        if (j >= name.length || name[j + 1] !== "]") return null;
        let key: unknown;
        try {
          key = JSON.parse(name.slice(i + 1, j + 1));
        } catch {
          return null;
        }
        if (typeof key !== "string") return null;
        out.push({ kind: "key", key });
        i = j + 2;
      } else {
        const m = /^\[(0|[1-9][0-9]{0,14})\]/.exec(name.slice(i, i + 18));
        if (m === null) return null;
        out.push({ kind: "index", index: Number(m[1]) });
        i += m[0].length;
      }
    } else {
      if (out.length > 0) {
        if (c !== ".") return null;
        i++;
      }
      ident.lastIndex = i;
      const m = ident.exec(name);
      if (m === null) return null;
      out.push({ kind: "key", key: m[0] });
      i += m[0].length;
    }
  }
  // Only the canonical spelling is accepted, so each leaf has exactly one name.
  return keyPathToString(out) === name ? out : null;
}

// ---------------------------------------------------------------------------------------------------
// Deserialize

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function isIntIn(x: unknown, max: number): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0 && x <= max;
}

function parseHeader(bytes: Uint8Array): { entries: Map<string, Entry>; meta: Map<string, string>; dataStart: number } {
  if (bytes.length < 8) fail(OP_LOAD, `file has ${bytes.length} bytes, fewer than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > MAX_HEADER) fail(OP_LOAD, `header length ${n} exceeds the limit of ${MAX_HEADER} bytes`);
  if (n > bytes.length - 8) fail(OP_LOAD, `header length ${n} exceeds the ${bytes.length - 8} bytes after the length field`);
  if (n < 2) fail(OP_LOAD, `header length ${n} is too short for a JSON object`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail(OP_LOAD, "header is not valid UTF-8");
  }
  if (text[0] !== "{") fail(OP_LOAD, "header does not start with '{'");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(OP_LOAD, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail(OP_LOAD, "header is not a JSON object");
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const entries = new Map<string, Entry>();
  const meta = new Map<string, string>();
  // JSON.parse makes `__proto__` an own data property; Object.keys plus Map keeps every key inert.
  for (const name of Object.keys(raw)) {
    const v = (raw as Record<string, unknown>)[name];
    if (name === "__metadata__") {
      if (typeof v !== "object" || v === null || Array.isArray(v)) fail(OP_LOAD, "__metadata__ is not an object");
      for (const k of Object.keys(v)) {
        const s = (v as Record<string, unknown>)[k];
        if (typeof s !== "string") fail(OP_LOAD, `__metadata__ ${JSON.stringify(k)} is not a string`);
        meta.set(k, s);
      }
      continue;
    }
    const q = JSON.stringify(name);
    if (parseKeyPath(name) === null) fail(OP_LOAD, `tensor name ${q} is not a well-formed key path`);
    if (typeof v !== "object" || v === null || Array.isArray(v)) fail(OP_LOAD, `tensor ${q}: entry is not an object`);
    const o = v as Record<string, unknown>;
    const st = hasOwn(o, "dtype") ? o["dtype"] : undefined;
    if (typeof st !== "string" || !hasOwn(FROM_ST, st)) fail(OP_LOAD, `tensor ${q}: unsupported dtype ${JSON.stringify(st)}`);
    const dtype = FROM_ST[st]!;
    const shape = hasOwn(o, "shape") ? o["shape"] : undefined;
    if (!Array.isArray(shape) || shape.length > 64 || !shape.every((d) => isIntIn(d, Number.MAX_SAFE_INTEGER))) {
      fail(OP_LOAD, `tensor ${q}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const offs = hasOwn(o, "data_offsets") ? o["data_offsets"] : undefined;
    if (!Array.isArray(offs) || offs.length !== 2 || !isIntIn(offs[0], dataLen) || !isIntIn(offs[1], dataLen) || offs[0] > offs[1]) {
      fail(OP_LOAD, `tensor ${q}: data_offsets ${JSON.stringify(offs)} are not [begin, end] within the ${dataLen}-byte data`);
    }
    const [begin, end] = offs as [number, number];
    // Bounded by the byte length so the product cannot overflow past what the file can hold.
    let numel = 1;
    for (const d of shape as number[]) {
      numel *= d;
      if (numel > dataLen) {
        if ((shape as number[]).includes(0)) numel = 0;
        break;
      }
    }
    if (numel * ITEMSIZE[dtype] !== end - begin) {
      fail(OP_LOAD, `tensor ${q}: shape ${fmtShape(shape as number[])} ${st} needs ${numel > dataLen ? "more than the file's" : numel * ITEMSIZE[dtype]} bytes but data_offsets span ${end - begin}`);
    }
    entries.set(name, { name, dtype, shape: shape as number[], begin, end });
  }
  const sorted = [...entries.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin < pos) fail(OP_LOAD, `tensor ${JSON.stringify(e.name)}: data [${e.begin}, ${e.end}) overlaps another tensor`);
    if (e.begin > pos) fail(OP_LOAD, `data bytes [${pos}, ${e.begin}) belong to no tensor`);
    pos = e.end;
  }
  if (pos !== dataLen) fail(OP_LOAD, `data bytes [${pos}, ${dataLen}) belong to no tensor`);
  return { entries, meta, dataStart };
}

function readTensor(bytes: Uint8Array, dataStart: number, e: Entry): Tensor {
  const size = ITEMSIZE[e.dtype];
  const copy = bytes.slice(dataStart + e.begin, dataStart + e.end); // aligned fresh buffer
  if (!LITTLE_ENDIAN && size > 1) swapBytes(copy, size);
  let buf: TypedArray;
  switch (e.dtype) {
    case "float32":
      buf = new Float32Array(copy.buffer);
      break;
    case "float64":
      buf = new Float64Array(copy.buffer);
      break;
    case "int32":
      buf = new Int32Array(copy.buffer);
      break;
    case "uint32":
      buf = new Uint32Array(copy.buffer);
      break;
    case "bool":
      for (let i = 0; i < copy.length; i++) copy[i] = copy[i] ? 1 : 0;
      buf = copy;
      break;
  }
  return Tensor._fromBuffer(e.shape, e.dtype, buf);
}

type Leaf = { kind: "tensor"; entry: Entry } | { kind: "number"; entry: Entry } | { kind: "boolean"; entry: Entry } | { kind: "string"; value: string };

/** Decodes the structure, checking it against the header; returns a builder that materializes leaves. */
function decodeStructure(enc: unknown, entries: Map<string, Entry>, leaves: Map<string, Leaf>): (get: (l: Leaf) => unknown) => unknown {
  const used = new Set<string>();
  const walk = (x: unknown, path: PathEntry[], depth: number): ((get: (l: Leaf) => unknown) => unknown) => {
    const where = keyPathToString(path) || "(root)";
    if (depth > MAX_DEPTH) fail(OP_LOAD, `tsjax.tree is nested deeper than ${MAX_DEPTH}`);
    if (x === "N") return () => null;
    if (x === "U") return () => undefined;
    if (x === "T" || x === "n" || x === "b") {
      const name = keyPathToString(path);
      const e = entries.get(name);
      if (e === undefined) fail(OP_LOAD, `tsjax.tree has a leaf at ${where} but the file has no tensor ${JSON.stringify(name)}`);
      if (used.has(name)) fail(OP_LOAD, `tsjax.tree names tensor ${JSON.stringify(name)} twice`);
      used.add(name);
      const kind = x === "T" ? "tensor" : x === "n" ? "number" : "boolean";
      if (kind !== "tensor" && (e.shape.length !== 0 || e.dtype !== (kind === "number" ? "float64" : "bool"))) {
        fail(OP_LOAD, `leaf ${where} should be a scalar ${kind} but is ${ST_DTYPE[e.dtype]}${fmtShape(e.shape)}`);
      }
      const leaf: Leaf = { kind, entry: e };
      leaves.set(name, leaf);
      return (get) => get(leaf);
    }
    if (!Array.isArray(x)) fail(OP_LOAD, `tsjax.tree: malformed node at ${where}`);
    const tag = x[0];
    if (tag === "s" && x.length === 2 && typeof x[1] === "string") {
      const leaf: Leaf = { kind: "string", value: x[1] };
      leaves.set(keyPathToString(path), leaf);
      return (get) => get(leaf);
    }
    let keys: (string | null)[];
    let kids: unknown[];
    let asArray = false;
    if (tag === "a" && x.length === 2 && Array.isArray(x[1])) {
      kids = x[1];
      keys = kids.map(() => null);
      asArray = true;
    } else if (tag === "o" && x.length === 2 && Array.isArray(x[1])) {
      const pairs = x[1] as unknown[];
      keys = [];
      kids = [];
      for (const p of pairs) {
        if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== "string") fail(OP_LOAD, `tsjax.tree: malformed object at ${where}`);
        keys.push(p[0]);
        kids.push(p[1]);
      }
      if (new Set(keys).size !== keys.length) fail(OP_LOAD, `tsjax.tree: duplicate key at ${where}`);
    } else if (tag === "c" && x.length === 4 && typeof x[1] === "string" && Array.isArray(x[3])) {
      kids = x[3];
      const names = x[2];
      asArray = names === null;
      if (names === null) keys = kids.map(() => null);
      else if (Array.isArray(names) && names.length === kids.length && names.every((s) => typeof s === "string")) keys = names;
      else fail(OP_LOAD, `tsjax.tree: malformed class node at ${where}`);
    } else fail(OP_LOAD, `tsjax.tree: malformed node at ${where}`);
    const builders = kids.map((k, i) => {
      const key = keys[i];
      path.push(key === null ? { kind: "index", index: i } : { kind: "key", key: key! });
      const b = walk(k, path, depth + 1);
      path.pop();
      return b;
    });
    if (asArray) return (get) => builders.map((b) => b(get));
    return (get) => {
      const obj: Record<string, unknown> = Object.create(null);
      builders.forEach((b, i) => setKey(obj, keys[i]!, b(get)));
      return obj;
    };
  };
  const build = walk(enc, [], 0);
  for (const name of entries.keys()) {
    if (!used.has(name)) fail(OP_LOAD, `tensor ${JSON.stringify(name)} is not part of tsjax.tree`);
  }
  return build;
}

/** Builds nested objects/arrays from tensor names alone (files from other tools). */
function structureFromNames(entries: Map<string, Entry>, leaves: Map<string, Leaf>): (get: (l: Leaf) => unknown) => unknown {
  type Node = { leaf: Leaf | null; kids: Map<string, { entry: PathEntry; node: Node }> };
  const root: Node = { leaf: null, kids: new Map() };
  for (const e of entries.values()) {
    const path = parseKeyPath(e.name)!;
    let node = root;
    for (const step of path) {
      if (node.leaf !== null) fail(OP_LOAD, `tensor ${JSON.stringify(e.name)} lies inside another tensor`);
      const k = step.kind === "index" ? `#${step.index}` : `.${step.kind === "key" ? step.key : step.name}`;
      let next = node.kids.get(k);
      if (next === undefined) {
        next = { entry: step, node: { leaf: null, kids: new Map() } };
        node.kids.set(k, next);
      }
      node = next.node;
    }
    if (node.kids.size > 0) fail(OP_LOAD, `tensor ${JSON.stringify(e.name)} has other tensors inside it`);
    node.leaf = { kind: "tensor", entry: e };
    leaves.set(e.name, node.leaf);
  }
  const walk = (node: Node, where: string): ((get: (l: Leaf) => unknown) => unknown) => {
    if (node.leaf !== null) {
      const leaf = node.leaf;
      return (get) => get(leaf);
    }
    const kids = [...node.kids.values()];
    const nIdx = kids.filter((k) => k.entry.kind === "index").length;
    if (nIdx > 0) {
      if (nIdx !== kids.length) fail(OP_LOAD, `${where} has both indices and keys`);
      const byIdx = new Array<(get: (l: Leaf) => unknown) => unknown>(nIdx);
      for (const k of kids) {
        const i = (k.entry as { index: number }).index;
        if (i >= nIdx) fail(OP_LOAD, `${where} has index ${i} but only ${nIdx} elements`);
        byIdx[i] = walk(k.node, `${where}[${i}]`);
      }
      return (get) => byIdx.map((b) => b(get));
    }
    const named = kids.map((k) => [(k.entry as { key: string }).key, walk(k.node, where)] as const);
    return (get) => {
      const obj: Record<string, unknown> = Object.create(null);
      for (const [k, b] of named) setKey(obj, k, b(get));
      return obj;
    };
  };
  if (entries.size === 0) return () => Object.create(null);
  return walk(root, "(root)");
}

function describe(leaf: unknown): string {
  if (leaf instanceof Tensor) return `${ST_DTYPE[leaf.dtype]}${fmtShape(leaf.shape)}`;
  return typeof leaf;
}

function checkLike(like: unknown, leaves: Map<string, Leaf>): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [path, x] of flattenWithPath(like)[0]) {
    const name = keyPathToString(path);
    const where = name || "(root)";
    seen.add(name);
    const l = leaves.get(name);
    if (l === undefined) {
      problems.push(`${where}: missing from the checkpoint (expected ${describe(x)})`);
      continue;
    }
    const got = l.kind === "string" ? "string" : l.kind === "tensor" ? `${ST_DTYPE[l.entry.dtype]}${fmtShape(l.entry.shape)}` : l.kind;
    const want = describe(x);
    if (got !== want) problems.push(`${where}: expected ${want}, checkpoint has ${got}`);
  }
  for (const name of leaves.keys()) {
    if (!seen.has(name)) problems.push(`${name || "(root)"}: in the checkpoint but not in \`like\``);
  }
  if (problems.length > 0) {
    fail(OP_LOAD, `checkpoint does not match \`like\` (${problems.length} mismatch${problems.length > 1 ? "es" : ""}):\n  ${problems.join("\n  ")}`);
  }
}

/**
 * Decodes safetensors bytes. With `like`, every leaf's path, shape and dtype are checked against it
 * (all mismatches in one error) and the result takes `like`'s structure (registered classes included).
 *
 * @example const { tree, metadata } = deserialize(bytes, params);
 */
export function deserialize<T = unknown>(bytes: Uint8Array, like?: T): Checkpoint<T> {
  try {
    return deserializeUnchecked(bytes, like);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    // A safety net: any other failure is still reported as an unreadable checkpoint.
    throw new CheckpointError(`unreadable checkpoint (${(e as Error)?.message ?? String(e)})`, OP_LOAD);
  }
}

function deserializeUnchecked<T>(bytes: Uint8Array, like?: T): Checkpoint<T> {
  if (!(bytes instanceof Uint8Array)) fail(OP_LOAD, "expected a Uint8Array");
  const { entries, meta, dataStart } = parseHeader(bytes);
  const leaves = new Map<string, Leaf>();
  let build: (get: (l: Leaf) => unknown) => unknown;
  const treeText = meta.get(TREE_KEY);
  if (treeText !== undefined) {
    let enc: unknown;
    try {
      enc = JSON.parse(treeText);
    } catch {
      fail(OP_LOAD, "tsjax.tree metadata is not valid JSON");
    }
    build = decodeStructure(enc, entries, leaves);
  } else {
    build = structureFromNames(entries, leaves);
  }
  if (like !== undefined) checkLike(like, leaves);
  const get = (l: Leaf): unknown => {
    if (l.kind === "string") return l.value;
    const t = readTensor(bytes, dataStart, l.entry);
    if (l.kind === "number") return t._buf![0];
    if (l.kind === "boolean") return t._buf![0] !== 0;
    return t;
  };
  let tree: unknown;
  if (like !== undefined) {
    const [pairs, def] = flattenWithPath(like);
    tree = def.unflatten(pairs.map(([p]) => get(leaves.get(keyPathToString(p))!)));
  } else tree = build(get);
  const metadata: Record<string, string> = Object.create(null);
  for (const [k, v] of meta) if (!k.startsWith("tsjax.")) setKey(metadata, k, v);
  return { tree: tree as T, metadata };
}

// ---------------------------------------------------------------------------------------------------
// Files

/**
 * Node's `fs` and `path`, fetched when a file is touched rather than imported at the top, so this
 * module (and the whole library) also loads in a browser, where `serialize` / `deserialize` work and
 * only `save` / `load` are unavailable.
 */
function nodeFiles(op: string): { fs: typeof NodeFs; path: typeof NodePath } {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof proc?.getBuiltinModule !== "function") {
    fail(op, "needs Node's file system (Node >= 20.16); in a browser use serialize / deserialize on bytes");
  }
  return { fs: proc.getBuiltinModule("node:fs") as typeof NodeFs, path: proc.getBuiltinModule("node:path") as typeof NodePath };
}

/** 12 random hex digits for a temporary file name (Web Crypto: in Node >= 19 and in browsers). */
function randomSuffix(): string {
  return Array.from(globalThis.crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Writes a checkpoint atomically: to a temporary file in the same directory, fsync'd, then renamed over
 * `path`, so a crash mid-write leaves any previous file intact.
 *
 * @example save("/tmp/model.safetensors", { params, step: 100 }, { note: "epoch 3" });
 */
export function save(path: string, tree: unknown, metadata?: Record<string, string>): void {
  const bytes = serialize(tree, metadata);
  const { fs, path: nodePath } = nodeFiles(OP_SAVE);
  const dir = nodePath.dirname(path);
  const tmp = nodePath.join(dir, `.${nodePath.basename(path)}.tmp-${process.pid}-${randomSuffix()}`);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, "wx", 0o644);
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing */
      }
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* the temporary file may not exist */
    }
    fail(OP_SAVE, `cannot write ${path}: ${(e as Error).message}`);
  }
  // Persist the rename itself; not every platform can open a directory, so this is best effort.
  try {
    const dfd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    /* best effort */
  }
}

/**
 * Reads a checkpoint written by {@link save} (or any safetensors file with supported dtypes).
 *
 * @example const { tree: params, metadata } = load("/tmp/model.safetensors", params);
 */
export function load<T = unknown>(path: string, like?: T): Checkpoint<T> {
  let bytes: Uint8Array;
  const { fs } = nodeFiles(OP_LOAD);
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    fail(OP_LOAD, `cannot read ${path}: ${(e as Error).message}`);
  }
  return deserialize(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), like);
}

