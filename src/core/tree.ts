/**
 * Pytrees, as in JAX's `tree_util`: nested plain objects, arrays and registered classes whose
 * leaves are tensors, numbers or any other value that is not a container.
 *
 * - Plain objects (prototype `Object.prototype` or `null`) flatten their own enumerable string keys in
 *   SORTED order, as JAX sorts dict keys, so two trees with the same keys align whatever their
 *   insertion order.
 * - Arrays (tuples and lists) flatten in index order.
 * - `null` and `undefined` are empty nodes with no leaves, like `None`.
 * - Classes registered with {@link register} flatten through their own functions.
 * - Everything else (tensors, numbers, strings, functions, other class instances) is a leaf.
 *
 * A tree's structure is a {@link TreeDef}; leaf key paths depend only on the structure, so they are
 * computed once per treedef and cached.
 */
import { ShapeError } from "./errors.js";
import type { Tensor } from "./tensor.js";

// ---------------------------------------------------------------------------------------------------
// Key paths

/** One step of a key path: an object key, an array index, or a named child of a registered class. */
export type PathEntry =
  | { readonly kind: "key"; readonly key: string }
  | { readonly kind: "index"; readonly index: number }
  | { readonly kind: "attr"; readonly name: string };

/** The steps from a tree's root to one of its nodes. */
export type KeyPath = readonly PathEntry[];

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function entryToString(e: PathEntry, first: boolean): string {
  switch (e.kind) {
    case "index":
      return `[${e.index}]`;
    case "attr":
    case "key": {
      const k = e.kind === "key" ? e.key : e.name;
      // Keys that are not identifiers (`"a.b"`, `""`) are quoted so the path reads back unambiguously.
      if (IDENT.test(k)) return first ? k : `.${k}`;
      return `[${JSON.stringify(k)}]`;
    }
  }
}

/**
 * Formats a key path readably: object keys joined by dots, indices in brackets.
 *
 * @example keyPathToString([{ kind: "key", key: "layers" }, { kind: "index", index: 0 }, { kind: "key", key: "kernel" }]); // "layers[0].kernel"
 */
export function keyPathToString(path: KeyPath): string {
  let s = "";
  for (let i = 0; i < path.length; i++) s += entryToString(path[i]!, i === 0);
  return s;
}

function pathForMessage(path: KeyPath): string {
  return path.length === 0 ? "(root)" : keyPathToString(path);
}

// ---------------------------------------------------------------------------------------------------
// Registry of custom nodes

/** How a registered class flattens and rebuilds. */
export interface NodeRegistration<T = any, A = any> {
  readonly cls: abstract new (...args: any[]) => T;
  readonly name: string;
  flatten(x: T): readonly [children: readonly unknown[], aux: A];
  unflatten(aux: A, children: unknown[]): T;
  /** Names of the children, for key paths (`.name`); without it children are `[i]`. */
  childNames?(aux: A): readonly string[];
  /** Equality of auxiliary data; defaults to structural equality of plain data. */
  auxEquals(a: A, b: A): boolean;
}

const registry = new Map<unknown, NodeRegistration>();

/** Options of {@link register}. */
export interface RegisterOptions<A> {
  /** Names of the children, so that key paths read `.name` instead of `[i]`. */
  childNames?: (aux: A) => readonly string[];
  /** Equality of auxiliary data, which treedef equality uses. Defaults to structural equality of
   * primitives, arrays and plain objects (`Object.is` for anything else). */
  auxEquals?: (a: A, b: A) => boolean;
}

/**
 * Registers a class as a pytree node (exact class: subclasses must register themselves, as in JAX).
 *
 * @example register(Point, (p) => [[p.x, p.y], null], (_aux, [x, y]) => new Point(x, y));
 */
export function register<T, A = unknown>(
  cls: abstract new (...args: any[]) => T,
  flatten: (x: T) => readonly [children: readonly unknown[], aux: A],
  unflatten: (aux: A, children: unknown[]) => T,
  options: RegisterOptions<A> = {},
): void {
  if (cls === (Object as unknown) || cls === (Array as unknown)) {
    throw new ShapeError(`cannot register ${cls.name}: it is a built-in container`, "tree.register");
  }
  if (registry.has(cls)) throw new ShapeError(`class ${cls.name} is already registered`, "tree.register");
  const reg: NodeRegistration<T, A> = {
    cls,
    name: cls.name || "<anonymous>",
    flatten,
    unflatten,
    auxEquals: options.auxEquals ?? dataEquals,
  };
  if (options.childNames) reg.childNames = options.childNames;
  registry.set(cls, reg);
}

/** Removes a registration (for tests and hot reloading). Returns whether the class was registered. */
export function unregister(cls: abstract new (...args: any[]) => unknown): boolean {
  return registry.delete(cls);
}

/** Structural equality of plain data (primitives, arrays, plain objects); `Object.is` otherwise. */
function dataEquals(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!dataEquals(a[i], b[i])) return false;
    return true;
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !dataEquals((a as any)[k], (b as any)[k])) return false;
  }
  return true;
}

function isPlainObject(x: object): boolean {
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------------------------------
// TreeDef

/** The kind of a treedef node. */
export type NodeKind = "leaf" | "null" | "undefined" | "array" | "object" | "custom";

/**
 * The structure of a pytree: its containers without its leaves. Treedefs compare structurally with
 * {@link TreeDef.equals}.
 */
export class TreeDef {
  /** Number of leaves under this node. */
  readonly numLeaves: number;
  private _paths: KeyPath[] | undefined;
  private _str: string | undefined;

  /** @internal Use {@link structure} or {@link flatten}. */
  constructor(
    readonly kind: NodeKind,
    readonly children: readonly TreeDef[],
    /** Sorted keys of an object node; `null` for other kinds. */
    readonly keys: readonly string[] | null,
    /** The registration of a custom node. */
    readonly node: NodeRegistration | null,
    /** Auxiliary data of a custom node. */
    readonly aux: unknown,
  ) {
    if (kind === "leaf") this.numLeaves = 1;
    else {
      let n = 0;
      for (const c of children) n += c.numLeaves;
      this.numLeaves = n;
    }
  }

  /** True for the treedef of a single leaf. */
  get isLeaf(): boolean {
    return this.kind === "leaf";
  }

  /** Structural equality: same kinds, keys, lengths, registered classes and auxiliary data. */
  equals(other: TreeDef): boolean {
    if (this === other) return true;
    if (this.kind !== other.kind || this.numLeaves !== other.numLeaves) return false;
    const n = this.children.length;
    if (n !== other.children.length) return false;
    if (this.kind === "object") {
      const ka = this.keys!;
      const kb = other.keys!;
      for (let i = 0; i < n; i++) if (ka[i] !== kb[i]) return false;
    } else if (this.kind === "custom") {
      if (this.node !== other.node || !this.node!.auxEquals(this.aux, other.aux)) return false;
    }
    for (let i = 0; i < n; i++) if (!this.children[i]!.equals(other.children[i]!)) return false;
    return true;
  }

  /** Rebuilds a tree of this structure from its leaves (in flatten order). */
  unflatten<T = unknown>(leaves: readonly unknown[]): T {
    return unflatten(this, leaves) as T;
  }

  /** The key path of every leaf, in flatten order (computed once per treedef). */
  leafPaths(): readonly KeyPath[] {
    if (this._paths === undefined) {
      const out: KeyPath[] = [];
      collectPaths(this, [], out);
      this._paths = out;
    }
    return this._paths;
  }

  /** Readable structure: `{a: *, b: [*, *], c: null}`, `Point(*, *)` for registered classes. */
  toString(): string {
    if (this._str === undefined) this._str = defToString(this);
    return this._str;
  }
}

function collectPaths(def: TreeDef, prefix: PathEntry[], out: KeyPath[]): void {
  switch (def.kind) {
    case "leaf":
      out.push(prefix.slice());
      return;
    case "null":
    case "undefined":
      return;
    default:
      for (let i = 0; i < def.children.length; i++) {
        prefix.push(childEntry(def, i));
        collectPaths(def.children[i]!, prefix, out);
        prefix.pop();
      }
  }
}

function childEntry(def: TreeDef, i: number): PathEntry {
  if (def.kind === "object") return { kind: "key", key: def.keys![i]! };
  if (def.kind === "custom" && def.node!.childNames) {
    const name = def.node!.childNames(def.aux)[i];
    if (name !== undefined) return { kind: "attr", name };
  }
  return { kind: "index", index: i };
}

function keyToString(k: string): string {
  return IDENT.test(k) ? k : JSON.stringify(k);
}

function defToString(def: TreeDef): string {
  switch (def.kind) {
    case "leaf":
      return "*";
    case "null":
      return "null";
    case "undefined":
      return "undefined";
    case "array":
      return `[${def.children.map(defToString).join(", ")}]`;
    case "object":
      return `{${def.children.map((c, i) => `${keyToString(def.keys![i]!)}: ${defToString(c)}`).join(", ")}}`;
    case "custom": {
      const names = def.node!.childNames?.(def.aux);
      const inner = def.children.map((c, i) =>
        names?.[i] !== undefined ? `${names[i]}=${defToString(c)}` : defToString(c),
      );
      return `${def.node!.name}(${inner.join(", ")})`;
    }
  }
}

const LEAF = new TreeDef("leaf", [], null, null, undefined);
const NULL_DEF = new TreeDef("null", [], null, null, undefined);
const UNDEFINED_DEF = new TreeDef("undefined", [], null, null, undefined);

/** The treedef of a single leaf. */
export const leafDef: TreeDef = LEAF;

/** True when two treedefs have the same structure. @example treedefEqual(structure({a: 1}), structure({a: 2})); // true */
export function treedefEqual(a: TreeDef, b: TreeDef): boolean {
  return a.equals(b);
}

// ---------------------------------------------------------------------------------------------------
// Flatten / unflatten

/** A predicate that stops flattening at a node and treats it as a leaf (JAX's `is_leaf`). */
export type IsLeaf = (x: unknown) => boolean;

function build(x: unknown, leaves: unknown[], isLeaf: IsLeaf | undefined): TreeDef {
  if (isLeaf?.(x)) {
    leaves.push(x);
    return LEAF;
  }
  if (x === null) return NULL_DEF;
  if (x === undefined) return UNDEFINED_DEF;
  if (typeof x !== "object") {
    leaves.push(x);
    return LEAF;
  }
  if (Array.isArray(x)) {
    const n = x.length;
    const children = new Array<TreeDef>(n);
    for (let i = 0; i < n; i++) children[i] = build(x[i], leaves, isLeaf);
    return new TreeDef("array", children, null, null, undefined);
  }
  const proto = Object.getPrototypeOf(x);
  if (proto === Object.prototype || proto === null) {
    // Own enumerable string keys only; an own `__proto__` key is read as an ordinary data property.
    const keys = Object.keys(x).sort();
    const n = keys.length;
    const children = new Array<TreeDef>(n);
    for (let i = 0; i < n; i++) children[i] = build((x as Record<string, unknown>)[keys[i]!], leaves, isLeaf);
    return new TreeDef("object", children, keys, null, undefined);
  }
  const reg = registry.get(proto.constructor);
  if (reg !== undefined && reg.cls === proto.constructor) {
    const [kids, aux] = reg.flatten(x);
    const n = kids.length;
    const children = new Array<TreeDef>(n);
    for (let i = 0; i < n; i++) children[i] = build(kids[i], leaves, isLeaf);
    return new TreeDef("custom", children, null, reg, aux);
  }
  leaves.push(x);
  return LEAF;
}

/**
 * Splits a tree into its leaves (in canonical order: sorted object keys, array order) and its
 * structure.
 *
 * @example const [leaves, def] = flatten({ b: 2, a: [1, null] }); // leaves [1, 2], def `{a: [*, null], b: *}`
 */
export function flatten<L = unknown>(tree: unknown, isLeaf?: IsLeaf): [L[], TreeDef] {
  const leaves: unknown[] = [];
  const def = build(tree, leaves, isLeaf);
  return [leaves as L[], def];
}

/** The leaves of a tree, in flatten order. @example leaves({ b: 2, a: 1 }); // [1, 2] */
export function leaves<L = unknown>(tree: unknown, isLeaf?: IsLeaf): L[] {
  const out: unknown[] = [];
  build(tree, out, isLeaf);
  return out as L[];
}

/** The structure of a tree. @example structure({ a: [1, 2] }).toString(); // "{a: [*, *]}" */
export function structure(tree: unknown, isLeaf?: IsLeaf): TreeDef {
  return build(tree, [], isLeaf);
}

function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  // Assigning `__proto__` would set the prototype; define it as an ordinary own property instead.
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else obj[key] = value;
}

function rebuild(def: TreeDef, leaves: readonly unknown[], pos: { i: number }): unknown {
  switch (def.kind) {
    case "leaf":
      return leaves[pos.i++];
    case "null":
      return null;
    case "undefined":
      return undefined;
    case "array": {
      const n = def.children.length;
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = rebuild(def.children[i]!, leaves, pos);
      return out;
    }
    case "object": {
      const out: Record<string, unknown> = {};
      const keys = def.keys!;
      for (let i = 0; i < keys.length; i++) setOwn(out, keys[i]!, rebuild(def.children[i]!, leaves, pos));
      return out;
    }
    case "custom": {
      const n = def.children.length;
      const kids = new Array<unknown>(n);
      for (let i = 0; i < n; i++) kids[i] = rebuild(def.children[i]!, leaves, pos);
      return def.node!.unflatten(def.aux, kids);
    }
  }
}

/**
 * Rebuilds a tree from a structure and its leaves. Objects come back with their keys in sorted order.
 *
 * @example unflatten(structure({ a: 0, b: [0] }), [1, 2]); // { a: 1, b: [2] }
 */
export function unflatten<T = unknown>(treedef: TreeDef, leaves: readonly unknown[]): T {
  if (leaves.length !== treedef.numLeaves) {
    throw new ShapeError(
      `structure ${treedef.toString()} has ${treedef.numLeaves} leaves but ${leaves.length} were given`,
      "tree.unflatten",
    );
  }
  return rebuild(treedef, leaves, { i: 0 }) as T;
}

/**
 * Leaves with their key paths, and the structure.
 *
 * @example flattenWithPath({ a: [5] }); // [[[[{kind: "key", key: "a"}, {kind: "index", index: 0}], 5]], def]
 */
export function flattenWithPath<L = unknown>(tree: unknown, isLeaf?: IsLeaf): [[KeyPath, L][], TreeDef] {
  const [ls, def] = flatten<L>(tree, isLeaf);
  const paths = def.leafPaths();
  const out = new Array<[KeyPath, L]>(ls.length);
  for (let i = 0; i < ls.length; i++) out[i] = [paths[i]!, ls[i]!];
  return [out, def];
}

/** Leaves with their key paths. @example leavesWithPath({ w: 1 }).map(([p]) => keyPathToString(p)); // ["w"] */
export function leavesWithPath<L = unknown>(tree: unknown, isLeaf?: IsLeaf): [KeyPath, L][] {
  return flattenWithPath<L>(tree, isLeaf)[0];
}

// ---------------------------------------------------------------------------------------------------
// Structure mismatches

/** Where two structures first differ (in flatten order), and how; `null` when they are equal. */
export function firstDifference(a: TreeDef, b: TreeDef): { path: KeyPath; reason: string } | null {
  const path: PathEntry[] = [];
  const reason = diff(a, b, path);
  return reason === null ? null : { path, reason };
}

function describeNode(d: TreeDef): string {
  switch (d.kind) {
    case "leaf":
      return "a leaf";
    case "null":
      return "null";
    case "undefined":
      return "undefined";
    case "array":
      return `an array of length ${d.children.length}`;
    case "object":
      return "an object";
    case "custom":
      return `a ${d.node!.name}`;
  }
}

function diff(a: TreeDef, b: TreeDef, path: PathEntry[]): string | null {
  if (a === b) return null;
  if (a.kind !== b.kind) return `expected ${describeNode(a)}, got ${describeNode(b)}`;
  switch (a.kind) {
    case "leaf":
    case "null":
    case "undefined":
      return null;
    case "array":
      if (a.children.length !== b.children.length) {
        return `expected an array of length ${a.children.length}, got length ${b.children.length}`;
      }
      break;
    case "object": {
      // Walk both sorted key lists together; the first key present on only one side is the difference,
      // unless an earlier shared key already differs below it.
      const ka = a.keys!;
      const kb = b.keys!;
      let i = 0;
      let j = 0;
      while (i < ka.length || j < kb.length) {
        const x = ka[i];
        const y = kb[j];
        if (x !== undefined && x === y) {
          path.push({ kind: "key", key: x });
          const r = diff(a.children[i]!, b.children[j]!, path);
          if (r !== null) return r;
          path.pop();
          i++;
          j++;
        } else if (y === undefined || (x !== undefined && x < y)) {
          path.push({ kind: "key", key: x! });
          return "key missing from the other tree";
        } else {
          path.push({ kind: "key", key: y });
          return "unexpected key (absent from the first tree)";
        }
      }
      return null;
    }
    case "custom":
      if (a.node !== b.node) return `expected ${describeNode(a)}, got ${describeNode(b)}`;
      if (!a.node!.auxEquals(a.aux, b.aux)) return `${a.node!.name} auxiliary data differ`;
      if (a.children.length !== b.children.length) {
        return `expected ${a.children.length} children, got ${b.children.length}`;
      }
      break;
  }
  for (let i = 0; i < a.children.length; i++) {
    path.push(childEntry(a, i));
    const r = diff(a.children[i]!, b.children[i]!, path);
    if (r !== null) return r;
    path.pop();
  }
  return null;
}

/**
 * Throws a ShapeError naming both structures and the first differing key path, unless they are equal.
 *
 * @example assertSameStructure(structure(a), structure(b), "tree.map", 1);
 */
export function assertSameStructure(expected: TreeDef, got: TreeDef, op: string, argIndex?: number): void {
  if (expected.equals(got)) return;
  const d = firstDifference(expected, got);
  const where = d === null ? "" : ` at ${pathForMessage(d.path)} (${d.reason})`;
  const arg = argIndex === undefined ? "" : ` (tree argument ${argIndex})`;
  throw new ShapeError(
    `tree structures differ${where}${arg}: expected ${expected.toString()}, got ${got.toString()}`,
    op,
  );
}

// ---------------------------------------------------------------------------------------------------
// Maps

/** The type of a tree whose leaves (tensors and numbers) are replaced by `R`. */
export type MapTree<T, R> = T extends Tensor | number | boolean | string | bigint
  ? R
  : T extends null | undefined
    ? T
    : T extends readonly unknown[]
      ? { -readonly [K in keyof T]: MapTree<T[K], R> }
      : T extends (...args: any[]) => any
        ? R
        : T extends object
          ? { -readonly [K in keyof T]: MapTree<T[K], R> }
          : R;

function flattenRest(op: string, def: TreeDef, rest: readonly unknown[]): unknown[][] {
  const out = new Array<unknown[]>(rest.length);
  for (let r = 0; r < rest.length; r++) {
    const [ls, d] = flatten(rest[r]);
    assertSameStructure(def, d, op, r + 1);
    out[r] = ls;
  }
  return out;
}

/**
 * Applies `f` to every leaf, or to corresponding leaves of several trees of the same structure.
 *
 * @example map((x, y) => x + y, { a: 1, b: [2] }, { a: 10, b: [20] }); // { a: 11, b: [22] }
 */
export function map<T, R>(f: (leaf: any, ...rest: any[]) => R, tree: T, ...rest: unknown[]): MapTree<T, R> {
  const [ls, def] = flatten(tree);
  const others = flattenRest("tree.map", def, rest);
  const out = new Array<unknown>(ls.length);
  if (others.length === 0) {
    for (let i = 0; i < ls.length; i++) out[i] = f(ls[i]);
  } else {
    const args = new Array<unknown>(others.length);
    for (let i = 0; i < ls.length; i++) {
      for (let r = 0; r < others.length; r++) args[r] = others[r]![i];
      out[i] = f(ls[i], ...args);
    }
  }
  return unflatten(def, out);
}

/**
 * Like {@link map}, with each leaf's key path as the first argument.
 *
 * @example mapWithPath((p, x) => `${keyPathToString(p)}=${x}`, { a: [1] }); // { a: ["a[0]=1"] }
 */
export function mapWithPath<T, R>(
  f: (path: KeyPath, leaf: any, ...rest: any[]) => R,
  tree: T,
  ...rest: unknown[]
): MapTree<T, R> {
  const [ls, def] = flatten(tree);
  const others = flattenRest("tree.mapWithPath", def, rest);
  const paths = def.leafPaths();
  const out = new Array<unknown>(ls.length);
  for (let i = 0; i < ls.length; i++) {
    const args = others.map((o) => o[i]);
    out[i] = f(paths[i]!, ls[i], ...args);
  }
  return unflatten(def, out);
}

/** Folds `f` over the leaves in flatten order. @example reduce((acc, x) => acc + x, { a: 1, b: [2, 3] }, 0); // 6 */
export function reduce<A>(f: (acc: A, leaf: any) => A, tree: unknown, init: A): A {
  let acc = init;
  for (const leaf of leaves(tree)) acc = f(acc, leaf);
  return acc;
}

/**
 * Turns a tree of `outer` structure whose every leaf position holds a tree of `inner` structure into
 * a tree of `inner` structure holding trees of `outer` structure (JAX's `tree_transpose`).
 *
 * @example transpose(structure([0, 0]), structure({ a: 0, b: 0 }), [{ a: 1, b: 2 }, { a: 3, b: 4 }]); // { a: [1, 3], b: [2, 4] }
 */
export function transpose(outer: TreeDef, inner: TreeDef, tree: unknown): unknown {
  const ls = leaves(tree);
  const expected = outer.numLeaves * inner.numLeaves;
  if (ls.length !== expected) {
    throw new ShapeError(
      `expected ${outer.numLeaves} x ${inner.numLeaves} = ${expected} leaves (outer ${outer.toString()}, inner ${inner.toString()}), got ${ls.length}`,
      "tree.transpose",
    );
  }
  const perInner = new Array<unknown>(inner.numLeaves);
  for (let j = 0; j < inner.numLeaves; j++) {
    const col = new Array<unknown>(outer.numLeaves);
    for (let i = 0; i < outer.numLeaves; i++) col[i] = ls[i * inner.numLeaves + j];
    perInner[j] = unflatten(outer, col);
  }
  return unflatten(inner, perInner);
}

/**
 * Broadcasts a prefix tree over a full tree: returns, for each leaf of `full` (in flatten order), the
 * leaf of `prefix` whose subtree contains it. This is how `vmap`'s `inAxes` applies one axis to a whole
 * subtree. `null`/`undefined` in the prefix are leaves here (they mean "unmapped"), unless
 * `noneIsLeaf` is false.
 *
 * @example broadcastPrefix([0, null], [{ a: 1, b: 2 }, 3]); // [0, 0, null]
 */
export function broadcastPrefix(prefix: unknown, full: unknown, noneIsLeaf = true): unknown[] {
  const [pl, pdef] = flatten(prefix, noneIsLeaf ? (x) => x === null || x === undefined : undefined);
  const out: unknown[] = [];
  const path: PathEntry[] = [];
  const pos = { i: 0 };
  broadcastInto(pdef, pl, pos, full, out, path, pdef);
  return out;
}

function broadcastInto(
  pdef: TreeDef,
  pl: readonly unknown[],
  pos: { i: number },
  full: unknown,
  out: unknown[],
  path: PathEntry[],
  root: TreeDef,
): void {
  if (pdef.kind === "leaf") {
    const v = pl[pos.i++];
    const n = leaves(full).length;
    for (let k = 0; k < n; k++) out.push(v);
    return;
  }
  const [, fdef] = flatten(full, (x) => x !== full);
  // Compare only this level: the full tree's children are opaque leaves here.
  const fail = (why: string): never => {
    throw new ShapeError(
      `prefix ${root.toString()} is not a prefix of the tree ${structure(full).toString()} at ${pathForMessage(path)} (${why})`,
      "tree.broadcastPrefix",
    );
  };
  if (pdef.kind !== fdef.kind) fail(`expected ${describeNode(pdef)}, got ${describeNode(fdef)}`);
  if (pdef.kind === "null" || pdef.kind === "undefined") return;
  if (pdef.children.length !== fdef.children.length)
    fail(`expected ${pdef.children.length} children, got ${fdef.children.length}`);
  if (pdef.kind === "object") {
    for (let i = 0; i < pdef.keys!.length; i++) {
      if (pdef.keys![i] !== fdef.keys![i]) fail(`keys ${pdef.keys!.join(",")} vs ${fdef.keys!.join(",")}`);
    }
  }
  if (pdef.kind === "custom" && (pdef.node !== fdef.node || !pdef.node!.auxEquals(pdef.aux, fdef.aux))) {
    fail(`${describeNode(pdef)} differs`);
  }
  const kids = leaves(full, (x) => x !== full);
  for (let i = 0; i < pdef.children.length; i++) {
    path.push(childEntry(pdef, i));
    broadcastInto(pdef.children[i]!, pl, pos, kids[i], out, path, root);
    path.pop();
  }
}
