import { describe, expect, it } from "vitest";
import { backward } from "../../lib/tensor/autograd";
import * as E from "../../lib/tensor/ops/elementwise";
import { batchNorm, cosineSimilarity, normalize } from "../../lib/tensor/ops/norm";
import * as R from "../../lib/tensor/ops/reduce";
import { tidy } from "../../lib/tensor/scope";
import { type FixtureCase, arrayOf, expectClose, fixtureTests, has, loadFixture, loadLargeFixture, optTensorOf, tensorOf } from "../helpers/fixtures";
import { gradCheck, randomTensor } from "../helpers/numeric";

function checkBatchNorm(c: FixtureCase): void {
  const x = tensorOf(c, "x", true);
  const w = optTensorOf(c, "w", true);
  const b = optTensorOf(c, "b", true);
  const rm = optTensorOf(c, "rm_in");
  const rv = optTensorOf(c, "rv_in");
  const gy = tensorOf(c, "gy");
  const { training, momentum, eps } = c.params;
  tidy(() => {
    const y = batchNorm(x, rm, rv, w, b, training, momentum, eps);
    expectClose(`${c.name} y`, y, arrayOf(c, "y"));
    backward(y, gy);
  });
  if (rm) expectClose(`${c.name} running mean`, rm, arrayOf(c, "rm_out"));
  if (rv) expectClose(`${c.name} running var`, rv, arrayOf(c, "rv_out"));
  expectClose(`${c.name} gx`, x.grad, arrayOf(c, "gx"));
  if (w) expectClose(`${c.name} gw`, w.grad, arrayOf(c, "gw"));
  if (b) expectClose(`${c.name} gb`, b.grad, arrayOf(c, "gb"));
  for (const t of [x, w, b, rm, rv, gy, x.grad, w?.grad, b?.grad]) t?.dispose();
}

describe("batchNorm against PyTorch", () => {
  fixtureTests("batch_norm", checkBatchNorm);
});

describe("batchNorm gradients", () => {
  for (const training of [true, false])
    it(`match finite differences (4-D, ${training ? "training" : "eval"})`, () => {
      const x = randomTensor([3, 2, 2, 3], 31);
      const w = randomTensor([2], 32);
      const b = randomTensor([2], 33);
      const rm = randomTensor([2], 34, false);
      const rv = E.addScalar(randomTensor([2], 35, false), 2).keep();
      // A random projection of y: sum(y^2) alone is nearly constant in x under batch statistics.
      const r = randomTensor([3, 2, 2, 3], 37, false);
      const f = ([xi, wi, bi]: typeof x[]) => R.sum(E.mul(E.square(batchNorm(xi, rm, rv, wi, bi, training, 0)), r));
      expect(gradCheck(f, [x, w, b], 1e-2)).toBeLessThan(5e-3);
    });

  it("rejects a single value per channel in training, as PyTorch", () => {
    const x = randomTensor([1, 3], 36, false);
    expect(() => batchNorm(x, null, null, null, null, true)).toThrow(RangeError);
  });
});

describe("normalize and cosineSimilarity against PyTorch", () => {
  const cases = loadFixture("similarity");
  const large = loadLargeFixture("similarity");
  for (const c of [...cases, ...(large ?? []).map((l) => ({ ...l, name: `${l.name} (large)` }))]) {
    it(c.name, () => {
      if (c.params.op === "normalize") {
        const x = tensorOf(c, "x", true);
        tidy(() => {
          const y = normalize(x, c.params.dim, c.params.eps);
          expectClose(`${c.name} y`, y, arrayOf(c, "y"));
          backward(y, tensorOf(c, "gy"));
        });
        expectClose(`${c.name} gx`, x.grad, arrayOf(c, "gx"));
      } else {
        const x1 = tensorOf(c, "x1", true);
        const x2 = tensorOf(c, "x2", true);
        tidy(() => {
          const y = cosineSimilarity(x1, x2, c.params.dim, c.params.eps);
          expectClose(`${c.name} y`, y, arrayOf(c, "y"));
          backward(y, tensorOf(c, "gy"));
        });
        expect(has(c, "g1")).toBe(true);
        expectClose(`${c.name} g1`, x1.grad, arrayOf(c, "g1"));
        expectClose(`${c.name} g2`, x2.grad, arrayOf(c, "g2"));
      }
    });
  }
});

describe("normalize and cosineSimilarity gradients", () => {
  it("match finite differences", () => {
    const a = randomTensor([3, 5], 71);
    const b = randomTensor([3, 5], 72);
    const r = randomTensor([3], 73, false);
    const f = ([x, y]: typeof a[]) => R.sum(E.mul(cosineSimilarity(x, y), r));
    expect(gradCheck(f, [a, b], 1e-2)).toBeLessThan(2e-3);
    const rn = randomTensor([3, 5], 74, false);
    expect(gradCheck(([x]) => R.sum(E.mul(normalize(x), rn)), [a], 1e-2)).toBeLessThan(2e-3);
  });
});
