import { describe, expect, it } from "vitest";
import { backward } from "../../lib/tensor/autograd";
import * as E from "../../lib/tensor/ops/elementwise";
import { crossEntropy, logSoftmax, topkCorrect } from "../../lib/tensor/ops/loss";
import * as R from "../../lib/tensor/ops/reduce";
import { tidy } from "../../lib/tensor/scope";
import { tensor } from "../../lib/tensor/tensor";
import { type FixtureCase, arrayOf, expectClose, fixtureTests, tensorOf } from "../helpers/fixtures";
import { gradCheck, randomTensor } from "../helpers/numeric";

function check(c: FixtureCase): void {
  const x = tensorOf(c, "x", true);
  if (c.params.op === "logSoftmax") {
    tidy(() => {
      const y = logSoftmax(x);
      expectClose(`${c.name} y`, y, arrayOf(c, "y"));
      backward(y, tensorOf(c, "gy"));
    });
    expectClose(`${c.name} gx`, x.grad, arrayOf(c, "gx"));
  } else if (c.params.op === "crossEntropy") {
    const t = tensorOf(c, "target");
    tidy(() => {
      const loss = crossEntropy(x, t, { labelSmoothing: c.params.labelSmoothing });
      expect(loss.shape).toEqual([]);
      expectClose(`${c.name} loss`, loss, arrayOf(c, "loss"));
      backward(loss, tensor([c.params.gLoss], []));
    });
    expectClose(`${c.name} gx`, x.grad, arrayOf(c, "gx"));
  } else {
    const counts = topkCorrect(x, tensorOf(c, "target"), c.params.ks);
    expect(Array.from(counts.toArraySync()), c.name).toEqual(Array.from(arrayOf(c, "counts")));
  }
}

describe("losses against PyTorch", () => {
  fixtureTests("loss", check);
});

describe("losses", () => {
  it("cross-entropy gradient matches finite differences with label smoothing", () => {
    const x = randomTensor([4, 5], 61);
    const t = tensor(Int32Array.from([0, 4, 2, 2]), [4]);
    expect(gradCheck(([xi]) => crossEntropy(xi, t, { labelSmoothing: 0.2 }), [x], 1e-2)).toBeLessThan(2e-3);
  });

  it("log_softmax gradient matches finite differences", () => {
    const x = randomTensor([3, 4], 62);
    const r = randomTensor([3, 4], 63, false);
    expect(gradCheck(([xi]) => R.sum(E.mul(logSoftmax(xi), r)), [x], 1e-2)).toBeLessThan(2e-3);
  });

  it("top-k counts ties for the lower class index (hand-computed)", () => {
    const x = tensor([1, 1, 0, 0.5, 2, 2], [2, 3]);
    const t = tensor(Int32Array.from([1, 1]), [2]);
    // Row 0: class 0 ties with the target and ranks first -> target is 2nd. Row 1: class 2 ties and ranks after.
    expect(Array.from(topkCorrect(x, t, [1, 2]).toArraySync())).toEqual([1, 2]);
  });
});
