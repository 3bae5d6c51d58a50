import { describe, expect, it } from "vitest";
import { backward } from "../../lib/tensor/autograd";
import * as E from "../../lib/tensor/ops/elementwise";
import { adaptiveAvgPool2d, maxPool2d } from "../../lib/tensor/ops/pool";
import * as R from "../../lib/tensor/ops/reduce";
import { tidy } from "../../lib/tensor/scope";
import { tensor } from "../../lib/tensor/tensor";
import { type FixtureCase, arrayOf, expectClose, fixtureTests, tensorOf } from "../helpers/fixtures";
import { gradCheck, randomTensor } from "../helpers/numeric";

function check(c: FixtureCase): void {
  const x = tensorOf(c, "x", true);
  const { kernel, stride, padding } = c.params;
  tidy(() => {
    const [y, idx] = x.ops.maxPool2d(x.handle, kernel, stride, padding);
    expect(Array.from(x.ops.toArray(idx)), `${c.name} indices`).toEqual(Array.from(arrayOf(c, "indices")));
    x.ops.dispose(y);
    x.ops.dispose(idx);
    const out = maxPool2d(x, kernel, stride, padding);
    expectClose(`${c.name} y`, out, arrayOf(c, "y"));
    backward(out, tensorOf(c, "gy"));
  });
  expectClose(`${c.name} gx`, x.grad, arrayOf(c, "gx"));
}

describe("maxPool2d against PyTorch", () => {
  fixtureTests("max_pool2d", check, "ImageNet stem pooling (large fixture)");

  it("propagates NaN and reports its index", () => {
    const x = tensor([1, NaN, 3, 2], [1, 1, 2, 2]);
    const [y, idx] = x.ops.maxPool2d(x.handle, [2, 2], [2, 2], [0, 0]);
    expect(Number.isNaN(x.ops.item(y))).toBe(true);
    expect(x.ops.item(idx)).toBe(1);
  });

  it("gradient matches finite differences with overlapping windows", () => {
    const x = randomTensor([1, 2, 5, 4], 51);
    expect(gradCheck(([xi]) => R.sum(E.square(maxPool2d(xi, 3, 1, 1))), [x], 1e-3)).toBeLessThan(2e-3);
  });
});

describe("adaptiveAvgPool2d", () => {
  it("is the mean over H and W (hand-computed)", () => {
    const x = tensor([1, 2, 3, 4, 10, 20, 30, 40], [1, 2, 2, 2]);
    const y = adaptiveAvgPool2d(x);
    expect(y.shape).toEqual([1, 2, 1, 1]);
    expect(Array.from(y.toArraySync())).toEqual([2.5, 25]);
  });
});
