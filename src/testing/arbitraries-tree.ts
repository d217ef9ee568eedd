/**
 * fast-check arbitraries for pytrees: random nested objects, arrays and empty nodes, with keys chosen
 * to catch ordering and prototype-pollution mistakes (`__proto__`, `constructor`, `"10"` vs `"2"`).
 */
import fc from "fast-check";

/** Keys that stress sorting, quoting and prototype safety, mixed with ordinary short names. */
export const TRICKY_KEYS: readonly string[] = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "",
  "a.b",
  "0",
  "2",
  "10",
  "w",
  "b",
  "kernel",
  "Z",
];

/** An object key: usually a tricky one, sometimes a random short string. */
export function arbKey(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...TRICKY_KEYS) },
    { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
  );
}

/**
 * Builds a plain object from entries without going through `__proto__`'s setter, so that a
 * `__proto__` key becomes an own property (as `JSON.parse` makes it).
 */
export function objectFromEntries(entries: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    Object.defineProperty(out, k, { value: v, writable: true, enumerable: true, configurable: true });
  }
  return out;
}

/** Options of {@link arbTree}. */
export interface ArbTreeOptions {
  /** Longest array and most object keys per node (default 4). */
  maxChildren?: number;
  /** Whether `null` / `undefined` empty nodes appear (default true). */
  withEmpty?: boolean;
}

/**
 * A random pytree of plain objects, arrays and (optionally) `null`/`undefined`, at most `depth`
 * containers deep, with leaves from `leaf`.
 *
 * @example fc.assert(fc.property(arbTree(fc.integer(), 3), (t) => deepEqual(unflatten(...flatten(t)), t)));
 */
export function arbTree<L>(
  leaf: fc.Arbitrary<L>,
  depth = 3,
  options: ArbTreeOptions = {},
): fc.Arbitrary<unknown> {
  const maxChildren = options.maxChildren ?? 4;
  const withEmpty = options.withEmpty ?? true;
  const base: fc.Arbitrary<unknown> = withEmpty
    ? fc.oneof(
        { weight: 6, arbitrary: leaf as fc.Arbitrary<unknown> },
        { weight: 1, arbitrary: fc.constantFrom(null, undefined) },
      )
    : (leaf as fc.Arbitrary<unknown>);
  if (depth <= 0) return base;
  const sub = arbTree(leaf, depth - 1, options);
  const arr = fc.array(sub, { maxLength: maxChildren });
  const obj = fc
    .uniqueArray(fc.tuple(arbKey(), sub), { maxLength: maxChildren, selector: (e) => e[0] })
    .map((entries) => objectFromEntries(entries));
  return fc.oneof(
    { weight: 2, arbitrary: base },
    { weight: 1, arbitrary: arr },
    { weight: 2, arbitrary: obj },
  );
}

/**
 * A deep copy of a tree whose objects list their keys in another insertion order (reversed, or
 * rotated by `shift`), to test that structure does not depend on insertion order.
 */
export function reorderKeys(tree: unknown, shift = 1): unknown {
  if (Array.isArray(tree)) return tree.map((t) => reorderKeys(t, shift));
  if (tree !== null && typeof tree === "object" && Object.getPrototypeOf(tree) === Object.prototype) {
    const entries = Object.keys(tree).map(
      (k) => [k, reorderKeys((tree as Record<string, unknown>)[k], shift)] as const,
    );
    entries.reverse();
    const s = entries.length === 0 ? 0 : shift % entries.length;
    return objectFromEntries([...entries.slice(s), ...entries.slice(0, s)]);
  }
  return tree;
}
