import { describe, expect, it } from "vitest";
import { backward } from "../../lib/tensor/autograd";
import * as E from "../../lib/tensor/ops/elementwise";
import { batchNorm, batchNormAct, cosineSimilarity, normalize } from "../../lib/tensor/ops/norm";
import { MinMaxObserver, MomentumMinMaxObserver } from "../../lib/quant/observers/minmax";
import type { Observer } from "../../lib/quant/observers/types";
import { tensor } from "../../lib/tensor/tensor";
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

describe("batchNorm with its epilogue (fused ReLU, output range)", () => {
  const bits = (t: { toArraySync(): ArrayLike<number> } | null) => Array.from(t!.toArraySync());
  // Each result of the fused op and of batchNorm then relu, forward and backward, on fresh leaves.
  function both(shape: number[], training: boolean) {
    const C = shape[1];
    const gy = randomTensor(shape, 44, false);
    const run = (fused: boolean) => {
      const x = randomTensor(shape, 41), w = randomTensor([C], 42), b = randomTensor([C], 43);
      const rm = randomTensor([C], 45, false), rv = E.addScalar(randomTensor([C], 46, false), 2).keep();
      const r = tidy(() => {
        const y = fused ? batchNormAct(x, rm, rv, w, b, training, 0.1, 1e-5, { relu: true }).y : E.relu(batchNorm(x, rm, rv, w, b, training, 0.1, 1e-5));
        const out = bits(y);
        backward(y, gy);
        return out;
      });
      return { y: r, gx: bits(x.grad), gw: bits(w.grad), gb: bits(b.grad), rm: bits(rm), rv: bits(rv) };
    };
    return [run(true), run(false)];
  }

  for (const shape of [[4, 3, 5, 5], [8, 70]])
    for (const training of [true, false])
      it(`equals batchNorm then relu bit for bit (${shape.length}-D, ${training ? "training" : "eval"})`, () => {
        const [fused, separate] = both(shape, training);
        expect(fused.y.some((v) => v === 0) && fused.y.some((v) => v > 0)).toBe(true);
        expect(fused).toEqual(separate);
      });

  it("matches finite differences (4-D, training)", () => {
    const x = randomTensor([3, 2, 2, 3], 51), w = randomTensor([2], 52), b = randomTensor([2], 53);
    const r = randomTensor([3, 2, 2, 3], 57, false);
    const f = ([xi, wi, bi]: typeof x[]) => R.sum(E.mul(batchNormAct(xi, null, null, wi, bi, true, 0, 1e-5, { relu: true }).y, r));
    expect(gradCheck(f, [x, w, b], 1e-3)).toBeLessThan(5e-3);
  });

  it("hands back the output's [min, max] where the backend computes it, as the observer's own reduction", () => {
    for (const relu of [true, false])
      for (const shape of [[4, 3, 5, 5], [6, 130]]) {
        const x = randomTensor(shape, 61, false);
        tidy(() => {
          const { y, range } = batchNormAct(x, null, null, null, null, true, 0.1, 1e-5, { relu, withRange: true });
          if (x.device !== "cpu") return expect(range).toBeNull();
          const own = new MinMaxObserver({ axis: null });
          own.observe(y);
          expect(bits(range)).toEqual([...bits(own.range()!.min), ...bits(own.range()!.max)]);
          const folded = new MinMaxObserver({ axis: null });
          expect(folded.takesRange).toBe(true);
          folded.observe(y, range);
          folded.observe(y, range);
          expect(bits(folded.range()!.min)).toEqual(bits(own.range()!.min));
          expect(bits(folded.range()!.max)).toEqual(bits(own.range()!.max));
          own.dispose();
          folded.dispose();
        });
      }
  });

  it("propagates a NaN into the range as the observer's reduction does", () => {
    const v = new Float32Array(2 * 3 * 4).map((_, i) => i / 7);
    v[9] = NaN;
    const x = tensor(v, [2, 3, 2, 2]);
    tidy(() => {
      const { range } = batchNormAct(x, null, null, null, null, true, 0.1, 1e-5, { withRange: true });
      expect(bits(range).every((r) => Number.isNaN(r))).toBe(true);
    });
    x.dispose();
  });

  it("per-channel and index-tracking observers reduce the tensor themselves", () => {
    expect(new MinMaxObserver({ axis: 1 }).takesRange).toBe(false);
    expect(new MinMaxObserver({ axis: null, trackIndices: true }).takesRange).toBe(false);
    // Observing a tensor again changes MINMAX's statistics in nothing, MOMENTUM_MINMAX's EMA in every observation.
    expect(new MinMaxObserver({ axis: 0 }).idempotent).toBe(true);
    const momentum: Observer = new MomentumMinMaxObserver({ axis: 0 });
    expect(momentum.idempotent ?? false).toBe(false);
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
