import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backward } from "../../lib/tensor/autograd";
import { conv2d } from "../../lib/tensor/ops/conv";
import * as E from "../../lib/tensor/ops/elementwise";
import * as R from "../../lib/tensor/ops/reduce";
import { cpuOps } from "../../lib/tensor/binding";
import { tidy } from "../../lib/tensor/scope";
import { type FixtureCase, arrayOf, expectClose, fixtureTests, optTensorOf, tensorOf } from "../helpers/fixtures";
import { gradCheck, randomTensor } from "../helpers/numeric";

function check(c: FixtureCase): void {
  const x = tensorOf(c, "x", true);
  const w = tensorOf(c, "w", true);
  const b = optTensorOf(c, "b", true);
  const gy = tensorOf(c, "gy");
  const { stride, padding, dilation, groups } = c.params;
  tidy(() => {
    const y = conv2d(x, w, b, { stride, padding, dilation, groups });
    expectClose(`${c.name} y`, y, arrayOf(c, "y"));
    backward(y, gy);
  });
  expectClose(`${c.name} gx`, x.grad, arrayOf(c, "gx"));
  expectClose(`${c.name} gw`, w.grad, arrayOf(c, "gw"));
  if (b) expectClose(`${c.name} gb`, b.grad, arrayOf(c, "gb"));
  for (const t of [x, w, b, gy, x.grad, w.grad, b?.grad]) t?.dispose();
}

describe("conv2d against PyTorch", () => {
  fixtureTests("conv2d", check, "ResNet-18 layer shapes (large fixtures)");
});

// Each problem runs whichever algorithm timed fastest (native/cpu/conv_algorithm.h), so each must be right alone.
for (const algorithm of ["blocked", "plain", "gemm", "winograd"] as const) {
  describe(`conv2d against PyTorch, every problem on the ${algorithm} algorithm`, () => {
    beforeAll(() => cpuOps().pinConvAlgorithm(algorithm));
    afterAll(() => cpuOps().pinConvAlgorithm(null));
    fixtureTests("conv2d", check, "ResNet-18 layer shapes (large fixtures)");

    it("matches finite differences (3x3 stride 1 with padding 0, 1 and 2, odd sizes)", () => {
      for (const [padding, seed] of [[[0, 1], 41], [[1, 1], 44], [[2, 0], 47]] as const) {
        const x = randomTensor([2, 3, 7, 6], seed);
        const w = randomTensor([4, 3, 3, 3], seed + 1);
        const b = randomTensor([4], seed + 2);
        const f = ([xi, wi, bi]: typeof x[]) => R.sum(E.square(conv2d(xi, wi, bi, { padding: [...padding] })));
        expect(gradCheck(f, [x, w, b], 1e-2), `padding ${padding}`).toBeLessThan(2e-3);
      }
    });

    it("adds a weight's gradient from a second use into the first's in its backward, as the sum of the two", () => {
      const x1 = randomTensor([4, 8, 9, 9], 51, false), x2 = randomTensor([4, 8, 9, 9], 52, false);
      const gy1 = randomTensor([4, 6, 9, 9], 53, false), gy2 = randomTensor([4, 6, 9, 9], 54, false);
      const gradOf = (uses: [typeof x1, typeof x1][]) => {
        const w = randomTensor([6, 8, 3, 3], 55);
        tidy(() => {
          const ys = uses.map(([x]) => conv2d(x, w, null, { padding: 1 }));
          const l = ys.map((y, i) => R.sum(E.mul(y, uses[i][1]))).reduce((a, b) => E.add(a, b));
          backward(l);
        });
        return Array.from(w.grad!.toArraySync());
      };
      // Twice: the first call of a problem times the algorithms (no accumulation then), later calls add in place.
      for (let round = 0; round < 2; round++) {
        const both = gradOf([[x1, gy1], [x2, gy2]]);
        const second = gradOf([[x2, gy2]]);
        const apart = gradOf([[x1, gy1]]).map((v, i) => v + second[i]);
        const scale = apart.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expect(both.reduce((m, v, i) => Math.max(m, Math.abs(v - apart[i])), 0) / scale).toBeLessThan(2e-6);
      }
    });

    it("matches finite differences (asymmetric stride and padding, dilation, bias)", () => {
      const x = randomTensor([2, 3, 7, 6], 31);
      const w = randomTensor([4, 3, 3, 2], 32);
      const b = randomTensor([4], 33);
      const f = ([xi, wi, bi]: typeof x[]) => R.sum(E.square(conv2d(xi, wi, bi, { stride: [2, 1], padding: [1, 2], dilation: [1, 2] })));
      expect(gradCheck(f, [x, w, b], 1e-2)).toBeLessThan(2e-3);
    });
  });
}

describe("conv2d gradients", () => {
  it("match finite differences (stride 2, padding 1, groups 2, dilation 2, bias)", () => {
    const x = randomTensor([1, 4, 6, 5], 11);
    const w = randomTensor([4, 2, 3, 3], 12);
    const b = randomTensor([4], 13);
    const f = ([xi, wi, bi]: typeof x[]) => R.sum(E.square(conv2d(xi, wi, bi, { stride: 2, padding: 1, dilation: [2, 1], groups: 2 })));
    expect(gradCheck(f, [x, w, b], 1e-2)).toBeLessThan(2e-3);
  });

  it("computes only the bias gradient when the weight is frozen", () => {
    const x = randomTensor([2, 3, 5, 5], 21, false);
    const w = randomTensor([4, 3, 3, 3], 22, false);
    const b = randomTensor([4], 23);
    tidy(() => backward(R.sum(conv2d(x, w, b, { padding: 1 }))));
    expect(Array.from(b.grad!.toArraySync())).toEqual([50, 50, 50, 50]);
  });
});
