import { describe, expect, it } from "vitest";
import { backward } from "../../lib/tensor/autograd";
import * as E from "../../lib/tensor/ops/elementwise";
import { linear, matmul } from "../../lib/tensor/ops/linear";
import * as R from "../../lib/tensor/ops/reduce";
import { tidy } from "../../lib/tensor/scope";
import { tensor } from "../../lib/tensor/tensor";
import { type FixtureCase, arrayOf, expectClose, fixtureTests, optTensorOf, tensorOf } from "../helpers/fixtures";
import { gradCheck, randomTensor } from "../helpers/numeric";

function check(c: FixtureCase): void {
  const gy = tensorOf(c, "gy");
  if (c.params.op === "matmul") {
    const a = tensorOf(c, "a", true);
    const b = tensorOf(c, "b", true);
    tidy(() => {
      const y = matmul(a, b);
      expectClose(`${c.name} y`, y, arrayOf(c, "y"));
      backward(y, gy);
    });
    expectClose(`${c.name} ga`, a.grad, arrayOf(c, "ga"));
    expectClose(`${c.name} gb`, b.grad, arrayOf(c, "gb"));
    return;
  }
  const x = tensorOf(c, "x", true);
  const w = tensorOf(c, "w", true);
  const b = optTensorOf(c, "b", true);
  tidy(() => {
    const y = linear(x, w, b);
    expectClose(`${c.name} y`, y, arrayOf(c, "y"));
    backward(y, gy);
  });
  expectClose(`${c.name} gx`, x.grad, arrayOf(c, "gx"));
  expectClose(`${c.name} gw`, w.grad, arrayOf(c, "gw"));
  if (b) expectClose(`${c.name} gb`, b.grad, arrayOf(c, "gb"));
}

describe("matmul and linear against PyTorch", () => {
  fixtureTests("linear", check);
});

describe("matmul", () => {
  it("folds transposes into the product (hand-computed)", () => {
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tensor([1, 0, -1, 2], [2, 2]);
    // a^T @ b = [[1,4],[2,5],[3,6]] @ [[1,0],[-1,2]]
    expect(Array.from(a.ops.toArray(a.ops.matmul(a.handle, b.handle, true, false)))).toEqual([-3, 8, -3, 10, -3, 12]);
    // a @ a^T
    expect(Array.from(a.ops.toArray(a.ops.matmul(a.handle, a.handle, false, true)))).toEqual([14, 32, 32, 77]);
    // b^T @ b^T = [[1, -1], [0, 2]]^2
    expect(Array.from(a.ops.toArray(a.ops.matmul(b.handle, b.handle, true, true)))).toEqual([1, -3, 0, 4]);
  });

  it("gives zeros for an empty inner dimension", () => {
    const a = tensor(new Float32Array(0), [2, 0]);
    const b = tensor(new Float32Array(0), [0, 3]);
    expect(Array.from(a.ops.toArray(a.ops.matmul(a.handle, b.handle, false, false)))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it("linear gradients match finite differences, including a 3-D input", () => {
    const x = randomTensor([2, 3, 4], 41);
    const w = randomTensor([5, 4], 42);
    const b = randomTensor([5], 43);
    expect(gradCheck(([xi, wi, bi]) => R.sum(E.square(linear(xi, wi, bi))), [x, w, b], 1e-2)).toBeLessThan(2e-3);
  });
});
