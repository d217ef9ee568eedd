/** The README's examples run and give what the README says; its commands are the ones CI runs. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { type Tensor, grad, jvp, makeJaxpr, nn, numpy as np, optim, random, tree, vmap } from "../src/index.js";

const root = join(__dirname, "..");

describe("README", () => {
  it("opens with the demo and test commands, and CI runs the test command", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const block = readme.split("```sh")[1]!.split("```")[0]!;
    expect(block).toContain("npm ci && npm run demo");
    expect(block).toContain("npm test");
    expect(readFileSync(join(root, ".ci/run"), "utf8")).toMatch(/^(xvfb-run -a )?npm test( |$)/m);
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(pkg.scripts.demo).toBeDefined();
  });

  it("its examples give what it says", () => {
    const f = (x: Tensor) => np.sum(np.sin(x));
    expect(Array.from((grad(f)(np.array([0, 1])) as Tensor).data())).toEqual([1, Math.fround(Math.cos(1))]);
    expect((grad(grad((x: Tensor) => np.sin(x)))(np.array(0.5)) as Tensor).item()).toBeCloseTo(-Math.sin(0.5), 6);
    expect((vmap((a: Tensor, b: Tensor) => np.dot(a, b))(np.ones([8, 3]), np.ones([8, 3])) as Tensor).shape).toEqual([8]);
    const [y, dy] = jvp(f, [np.array([0, 1])], [np.array([1, 0])]) as Tensor[];
    expect(y!.item()).toBeCloseTo(Math.sin(1), 6);
    expect(dy!.item()).toBe(1);
    expect(makeJaxpr((x: Tensor) => np.sin(x))(np.zeros([3])).toString()).toBe("{ lambda ; a:f32[3]. let b:f32[3] = sin a in (b,) }");
    const loss = (w: Tensor, x: Tensor) => np.sum(np.square(np.matmul(x, w)));
    expect((vmap(grad(loss), { inAxes: [null, 0] })(np.ones([3, 2]), np.ones([16, 3])) as Tensor).shape).toEqual([16, 3, 2]);
    const [k1] = [random.split(random.key(0))];
    expect(random.normal(k1!.reshape([2, 2]).sum(0).astype("uint32"), [2, 3]).shape).toEqual([2, 3]);
    const g = { a: np.array([3, 4]) };
    const norm = np.sqrt(tree.leaves<Tensor>(g).reduce((s, l) => s.add(np.sum(np.square(l))), np.array(0)));
    expect(norm.item()).toBe(5);
  });

  it("its model example trains, lowers the loss, and checkpoints", () => {
    const x = random.normal(random.key(1), [32, 784]);
    const y = random.randint(random.key(2), [32], 0, 10);
    const model = nn.Sequential([nn.Dense(64), nn.relu, nn.Dense(10)]);
    const { params, state } = model.init(random.key(0), [32, 784]);
    const loss = (p: any, x: Tensor, y: Tensor) => {
      const [logits] = model.apply(p, state, x);
      return np.mean(np.sum(nn.oneHot(y, 10).mul(nn.logSoftmax(logits)), -1)).neg();
    };
    const opt = optim.adam(1e-3);
    let p: any = params;
    let s: any = opt.init(params);
    const before = loss(p, x, y).item();
    for (let i = 0; i < 5; i++) {
      const [updates, next] = opt.update(grad(loss)(p, x, y), s, p);
      p = optim.applyUpdates(p, updates);
      s = next;
    }
    expect(loss(p, x, y).item()).toBeLessThan(before);
    const path = `${mkdtempSync(`${tmpdir()}/tsjax-`)}/model.safetensors`;
    nn.save(path, p, { step: "5" });
    const back = nn.load(path, p);
    expect(back.metadata.step).toBe("5");
    expect(tree.leaves<Tensor>(back.tree).map((t) => t.shape)).toEqual(tree.leaves<Tensor>(p).map((t) => t.shape));
  });
});
