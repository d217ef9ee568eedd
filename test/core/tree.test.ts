import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { ShapeError } from "../../src/core/errors.js";
import { Tensor } from "../../src/core/tensor.js";
import * as tree from "../../src/core/tree.js";
import { arbTree, reorderKeys } from "../../src/testing/arbitraries-tree.js";

/**
 * Deep equality that reads own properties through descriptors, so an own `__proto__` key compares as
 * data, and that checks rebuilt objects are ordinary (prototype Object.prototype).
 */
function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => same(x, bb[i]));
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) =>
    same(Object.getOwnPropertyDescriptor(a, k)!.value, Object.getOwnPropertyDescriptor(b, k)!.value),
  );
}

const PROTO_KEYS_BEFORE = Object.getOwnPropertyNames(Object.prototype).sort().join(",");
afterAll(() => {
  // No test may have written onto Object.prototype.
  expect(Object.getOwnPropertyNames(Object.prototype).sort().join(",")).toBe(PROTO_KEYS_BEFORE);
});

const leafArb = fc.integer({ min: -1000, max: 1000 });

describe("flatten / unflatten", () => {
  it("round-trips random nested trees", () => {
    fc.assert(
      fc.property(arbTree(leafArb, 4), (t) => {
        const [ls, def] = tree.flatten(t);
        expect(ls.length).toBe(def.numLeaves);
        expect(same(tree.unflatten(def, ls), t)).toBe(true);
        expect(same(tree.leaves(t), ls)).toBe(true);
        expect(tree.structure(t).equals(def)).toBe(true);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it("flattens object keys in sorted order", () => {
    const [ls, def] = tree.flatten({ b: 2, a: 1, c: [3, { z: 5, y: 4 }] });
    expect(ls).toEqual([1, 2, 3, 4, 5]);
    expect(def.toString()).toBe("{a: *, b: *, c: [*, {y: *, z: *}]}");
    expect(Object.keys(tree.unflatten(def, ls) as object)).toEqual(["a", "b", "c"]);
  });

  it("is invariant to key insertion order", () => {
    fc.assert(
      fc.property(arbTree(leafArb, 4), fc.nat(5), (t, shift) => {
        const u = reorderKeys(t, shift);
        expect(tree.structure(u).equals(tree.structure(t))).toBe(true);
        expect(tree.treedefEqual(tree.structure(u), tree.structure(t))).toBe(true);
        expect(tree.leaves(u)).toEqual(tree.leaves(t));
      }),
      { numRuns: 100 },
    );
  });

  it("treats null and undefined as empty nodes", () => {
    expect(tree.flatten(null)[0]).toEqual([]);
    expect(tree.flatten(undefined)[0]).toEqual([]);
    const t = { a: null, b: [undefined, 1], c: {} };
    const [ls, def] = tree.flatten(t);
    expect(ls).toEqual([1]);
    expect(def.numLeaves).toBe(1);
    expect(def.toString()).toBe("{a: null, b: [undefined, *], c: {}}");
    expect(same(tree.unflatten(def, [7]), { a: null, b: [undefined, 7], c: {} })).toBe(true);
    // null and undefined are different structures, as they rebuild differently.
    expect(tree.structure(null).equals(tree.structure(undefined))).toBe(false);
    expect(tree.map((x: number) => x + 1, t)).toEqual({ a: null, b: [undefined, 2], c: {} });
  });

  it("treats tensors, numbers and non-plain objects as leaves", () => {
    const x = Tensor._zeros([2, 3], "float32");
    const d = new Date(0);
    class Opaque {
      v = [1, 2];
    }
    const o = new Opaque();
    const [ls, def] = tree.flatten({ x, n: 3, d, o, s: "str", f: Math.sin, m: new Map() });
    expect(ls.length).toBe(7);
    expect(ls).toContain(x);
    expect(ls).toContain(o);
    expect(def.toString()).toBe("{d: *, f: *, m: *, n: *, o: *, s: *, x: *}");
    expect(tree.structure(5).isLeaf).toBe(true);
    expect(tree.structure(x).equals(tree.leafDef)).toBe(true);
  });

  it("accepts null-prototype objects as containers", () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.b = 2;
    o.a = 1;
    expect(tree.leaves(o)).toEqual([1, 2]);
    expect(tree.structure(o).equals(tree.structure({ a: 0, b: 0 }))).toBe(true);
  });

  it("rejects a wrong number of leaves", () => {
    const def = tree.structure({ a: 1, b: [2, 3] });
    expect(() => tree.unflatten(def, [1, 2])).toThrow(ShapeError);
    expect(() => tree.unflatten(def, [1, 2])).toThrow(/3 leaves but 2/);
  });

  it("stops at isLeaf", () => {
    const [ls, def] = tree.flatten({ a: [1, 2], b: 3 }, (x) => Array.isArray(x));
    expect(ls).toEqual([[1, 2], 3]);
    expect(def.toString()).toBe("{a: *, b: *}");
  });

  it("distinguishes structures", () => {
    const s = (t: unknown) => tree.structure(t);
    expect(s([1, 2]).equals(s([1]))).toBe(false);
    expect(s([1, 2]).equals(s({ 0: 1, 1: 2 }))).toBe(false);
    expect(s({ a: 1 }).equals(s({ b: 1 }))).toBe(false);
    expect(s({ a: 1 }).equals(s({ a: [1] }))).toBe(false);
    expect(s({ a: [1, { b: 2 }] }).equals(s({ a: [9, { b: 8 }] }))).toBe(true);
  });
});

describe("prototype safety", () => {
  const parsed = JSON.parse(
    '{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"x": 2}}, "prototype": 3, "toString": 4}',
  );

  it("treats __proto__ as an ordinary own key", () => {
    expect(Object.hasOwn(parsed, "__proto__")).toBe(true);
    const [ls, def] = tree.flatten(parsed);
    expect(ls).toEqual([1, 2, 3, 4]);
    expect(def.toString()).toBe(
      "{__proto__: {polluted: *}, constructor: {prototype: {x: *}}, prototype: *, toString: *}",
    );
    const back = tree.unflatten<Record<string, any>>(def, [10, 20, 30, 40]);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.hasOwn(back, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(back, "__proto__")!.value).toEqual({ polluted: 10 });
    expect(back.constructor.prototype.x).toBe(20);
    expect(back.prototype).toBe(30);
    expect(back.toString).toBe(40);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    const mapped = tree.map((v: number) => v * 2, parsed) as Record<string, unknown>;
    expect(Object.getPrototypeOf(mapped)).toBe(Object.prototype);
    expect(tree.leaves(mapped)).toEqual([2, 4, 6, 8]);
  });

  it("keeps __proto__ distinct from a missing key in structures", () => {
    expect(
      tree
        .structure(parsed)
        .equals(tree.structure({ constructor: { prototype: { x: 0 } }, prototype: 0, toString: 0 })),
    ).toBe(false);
  });

  it("paths name __proto__ literally", () => {
    const paths = tree.leavesWithPath(parsed).map(([p]) => tree.keyPathToString(p));
    expect(paths).toEqual(["__proto__.polluted", "constructor.prototype.x", "prototype", "toString"]);
  });
});

describe("map", () => {
  it("maps over several trees of one structure", () => {
    fc.assert(
      fc.property(arbTree(leafArb, 3), fc.integer(), (t, k) => {
        const t2 = tree.map((x: number) => x + k, t);
        const t3 = reorderKeys(tree.map((x: number) => x * 2, t));
        const out = tree.map((a: number, b: number, c: number) => a + 10 * b + 100 * c, t, t2, t3);
        expect(tree.structure(out).equals(tree.structure(t))).toBe(true);
        const expected = tree.leaves<number>(t).map((a) => a + 10 * (a + k) + 100 * (a * 2));
        expect(tree.leaves(out)).toEqual(expected);
      }),
      { numRuns: 100 },
    );
  });

  it("works on the example", () => {
    expect(tree.map((x: number, y: number) => x + y, { a: 1, b: [2] }, { b: [20], a: 10 })).toEqual({
      a: 11,
      b: [22],
    });
  });

  it("reports the first differing key path and both structures", () => {
    const a = { params: { dense: { b: 0, w: 0 }, out: [0, 0] } };
    const b = { params: { dense: { b: 0, w: [0] }, out: [0] } };
    let err: unknown;
    try {
      tree.map((x: number) => x, a, b);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShapeError);
    const msg = (err as Error).message;
    expect(msg).toContain("tree.map");
    expect(msg).toContain("at params.dense.w ");
    expect(msg).toContain("{params: {dense: {b: *, w: *}, out: [*, *]}}");
    expect(msg).toContain("{params: {dense: {b: *, w: [*]}, out: [*]}}");
    expect(msg).toContain("tree argument 1");
  });

  it("names missing and extra keys", () => {
    expect(() => tree.map((x: number) => x, { a: 1, c: 2 }, { a: 1, b: 2 })).toThrow(/at b \(unexpected key/);
    expect(() => tree.map((x: number) => x, { a: 1, b: 2 }, { a: 1, c: 2 })).toThrow(/at b \(key missing/);
    expect(() => tree.map((x: number) => x, [1, 2], [1, 2], [[1], 2])).toThrow(/at \[0\].*tree argument 2/);
    expect(() => tree.map((x: number) => x, [1], { 0: 1 })).toThrow(/at \(root\)/);
  });

  it("finds the first differing path for random perturbations", () => {
    fc.assert(
      fc.property(
        arbTree(leafArb, 4).filter((t) => tree.structure(t).numLeaves > 0),
        fc.nat(),
        (t, pick) => {
          const [ls, def] = tree.flatten(t);
          const k = pick % ls.length;
          // Replacing leaf k by a container changes the structure first at leaf k's path.
          const perturbed = tree.unflatten(
            def,
            ls.map((x, i) => (i === k ? [x, x] : x)),
          );
          const path = def.leafPaths()[k]!;
          const d = tree.firstDifference(def, tree.structure(perturbed));
          expect(d).not.toBeNull();
          expect(tree.keyPathToString(d!.path)).toBe(tree.keyPathToString(path));
          const where = path.length === 0 ? "(root)" : tree.keyPathToString(path);
          expect(() => tree.map((x: unknown) => x, t, perturbed)).toThrow(`at ${where} (`);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("mapWithPath passes paths and other trees", () => {
    const t = { layers: [{ kernel: 1, bias: 2 }], scale: 3 };
    const out = tree.mapWithPath((p, x: number, y: number) => `${tree.keyPathToString(p)}=${x + y}`, t, t);
    expect(out).toEqual({
      layers: [{ bias: "layers[0].bias=4", kernel: "layers[0].kernel=2" }],
      scale: "scale=6",
    });
  });

  it("reduce folds in flatten order", () => {
    expect(tree.reduce((acc: string, x: number) => acc + x, { b: 2, a: [1, null], c: 3 }, "")).toBe("123");
  });
});

describe("key paths", () => {
  it("formats paths readably", () => {
    const t = { params: { dense: { w: 1 } }, layers: [{ kernel: 2 }], "a.b": 3, "": 4, "0": [5] };
    const strs = tree.leavesWithPath(t).map(([p, x]) => `${tree.keyPathToString(p)}:${x}`);
    expect(strs).toEqual(['[""]:4', '["0"][0]:5', '["a.b"]:3', "layers[0].kernel:2", "params.dense.w:1"]);
    expect(tree.keyPathToString([])).toBe("");
    expect(
      tree.keyPathToString([
        { kind: "index", index: 3 },
        { kind: "attr", name: "x" },
      ]),
    ).toBe("[3].x");
  });

  it("flattenWithPath agrees with flatten", () => {
    fc.assert(
      fc.property(arbTree(leafArb, 3), (t) => {
        const [pairs, def] = tree.flattenWithPath(t);
        expect(def.equals(tree.structure(t))).toBe(true);
        expect(pairs.map(([, x]) => x)).toEqual(tree.leaves(t));
        expect(pairs.length).toBe(def.leafPaths().length);
      }),
      { numRuns: 50 },
    );
  });
});

describe("registered classes", () => {
  class Point {
    constructor(
      readonly x: unknown,
      readonly y: unknown,
      readonly label: string,
    ) {}
  }
  class Pair {
    constructor(readonly items: unknown[]) {}
  }
  tree.register(
    Point,
    (p) => [[p.x, p.y], p.label] as const,
    (label, [x, y]) => new Point(x, y, label),
    { childNames: () => ["x", "y"] },
  );
  tree.register(
    Pair,
    (p) => [p.items, null] as const,
    (_aux, items) => new Pair(items),
  );

  it("round-trips and maps", () => {
    const t = { p: new Point(1, [2, 3], "a"), q: new Pair([4, null]) };
    const [ls, def] = tree.flatten(t);
    expect(ls).toEqual([1, 2, 3, 4]);
    expect(def.toString()).toBe("{p: Point(x=*, y=[*, *]), q: Pair(*, null)}");
    const back = tree.unflatten<typeof t>(def, ls);
    expect(back.p).toBeInstanceOf(Point);
    expect(back.p.label).toBe("a");
    expect(back).toEqual(t);
    const m = tree.map((v: number) => v * 10, t) as unknown as typeof t;
    expect(m.p).toBeInstanceOf(Point);
    expect(m.q.items).toEqual([40, null]);
    expect(tree.leavesWithPath(t).map(([p]) => tree.keyPathToString(p))).toEqual([
      "p.x",
      "p.y[0]",
      "p.y[1]",
      "q[0]",
    ]);
  });

  it("compares auxiliary data", () => {
    expect(tree.structure(new Point(1, 2, "a")).equals(tree.structure(new Point(3, 4, "a")))).toBe(true);
    expect(tree.structure(new Point(1, 2, "a")).equals(tree.structure(new Point(1, 2, "b")))).toBe(false);
    expect(() => tree.map((v: number) => v, new Point(1, 2, "a"), new Point(1, 2, "b"))).toThrow(
      /auxiliary data differ/,
    );
  });

  it("does not treat subclasses or re-registration as registered", () => {
    class Sub extends Point {}
    expect(tree.structure(new Sub(1, 2, "a")).isLeaf).toBe(true);
    expect(() =>
      tree.register(
        Point,
        () => [[], null] as const,
        () => new Point(0, 0, ""),
      ),
    ).toThrow(ShapeError);
  });

  it("round-trips random trees with registered nodes", () => {
    const withNodes = arbTree(leafArb, 2).chain((t) =>
      fc.oneof(
        fc.constant(t),
        fc.tuple(arbTree(leafArb, 1), fc.constantFrom("u", "v")).map(([y, label]) => new Point(t, y, label)),
        fc.constant(new Pair([t, t])),
      ),
    );
    fc.assert(
      fc.property(fc.array(withNodes, { maxLength: 3 }), (t) => {
        const [ls, def] = tree.flatten(t);
        const back = tree.unflatten(def, ls);
        expect(tree.structure(back).equals(def)).toBe(true);
        expect(tree.leaves(back)).toEqual(ls);
      }),
      { numRuns: 50 },
    );
  });
});

describe("transpose and broadcastPrefix", () => {
  it("transposes outer and inner structures", () => {
    const outer = tree.structure([0, 0]);
    const inner = tree.structure({ a: 0, b: 0 });
    expect(
      tree.transpose(outer, inner, [
        { a: 1, b: 2 },
        { a: 3, b: 4 },
      ]),
    ).toEqual({ a: [1, 3], b: [2, 4] });
    expect(() => tree.transpose(outer, inner, [{ a: 1, b: 2 }])).toThrow(ShapeError);
  });

  it("broadcasts a prefix over a full tree", () => {
    expect(tree.broadcastPrefix([0, null], [{ a: 1, b: 2 }, 3])).toEqual([0, 0, null]);
    expect(tree.broadcastPrefix(1, { a: [1, 2], b: 3 })).toEqual([1, 1, 1]);
    expect(tree.broadcastPrefix({ a: 0, b: 1 }, { b: [5, 6], a: 7 })).toEqual([0, 1, 1]);
    expect(() => tree.broadcastPrefix([0, 1, 2], [1, 2])).toThrow(/not a prefix.*\(root\)/);
    expect(() => tree.broadcastPrefix({ a: [0, 1] }, { a: [1, 2, 3] })).toThrow(/at a /);
  });
});

describe("types", () => {
  it("map keeps a tensor tree's type", () => {
    interface Params {
      readonly dense: { readonly w: Tensor; readonly b: Tensor };
      readonly layers: Tensor[];
      readonly scale: Tensor;
    }
    const z = Tensor._zeros([1], "float32");
    const p: Params = { dense: { w: z, b: z }, layers: [z], scale: z };
    // Compile-time check: a Tensor -> Tensor map over Params is assignable to Params.
    const q: Params = tree.map((x: Tensor, y: Tensor) => (x.size > 0 ? x : y), p, p);
    const counts: { dense: { w: number; b: number }; layers: number[]; scale: number } = tree.map(() => 0, p);
    expect(tree.leaves(q).length).toBe(4);
    expect(tree.leaves(counts)).toEqual([0, 0, 0, 0]);
  });
});
