import { describe, expect, it } from "vitest";
import { MinMaxObserver } from "../../lib/quant/observers/minmax";
import { backward } from "../../lib/tensor/autograd";
import * as E from "../../lib/tensor/ops/elementwise";
import * as R from "../../lib/tensor/ops/reduce";
import { tidy } from "../../lib/tensor/scope";
import { tensor, type Tensor } from "../../lib/tensor/tensor";
import { gradCheck, randomTensor } from "../helpers/numeric";

/** addRelu: a residual block's relu(out + identity) as one op, and the output range it hands an observer. */
describe("addRelu", () => {
  const bits = (t: Tensor | null) => Array.from(t!.toArraySync());

  it("equals relu(add) bit for bit, forward and backward", () => {
    const shape = [4, 8, 9, 9];
    const gy = randomTensor(shape, 93, false);
    const run = (fused: boolean) => {
      const a = randomTensor(shape, 91), b = randomTensor(shape, 92);
      const y = tidy(() => {
        const out = fused ? E.addRelu(a, b).y : E.relu(E.add(a, b));
        const v = bits(out);
        backward(out, gy);
        return v;
      });
      return { y, ga: bits(a.grad), gb: bits(b.grad) };
    };
    const fused = run(true);
    expect(fused.y.some((v) => v === 0) && fused.y.some((v) => v > 0)).toBe(true);
    expect(fused).toEqual(run(false));
  });

  it("matches finite differences", () => {
    const a = randomTensor([2, 3, 4], 94), b = randomTensor([2, 3, 4], 95);
    const r = randomTensor([2, 3, 4], 96, false);
    expect(gradCheck(([x, y]) => R.sum(E.mul(E.addRelu(x, y).y, r)), [a, b], 1e-3)).toBeLessThan(5e-3);
  });

  it("hands back the output's [min, max] where the backend computes it (a NaN sum becomes 0, as relu's)", () => {
    const n = 3 * 70000; // several chunks of the pass
    const v = new Float32Array(n).map((_, i) => Math.sin(i) * 3);
    for (const nanAt of [-1, n - 5]) {
      const a = tensor(v.map((x, i) => (i === nanAt ? NaN : x)), [3, 70000]);
      const b = tensor(v.map((x) => x / 2 - 1), [3, 70000]);
      tidy(() => {
        const { y, range } = E.addRelu(a, b, { withRange: true });
        if (a.device !== "cpu") return expect(range).toBeNull();
        const own = new MinMaxObserver({ axis: null });
        own.observe(y);
        const want = [...bits(own.range()!.min), ...bits(own.range()!.max)];
        expect(bits(range)).toEqual(want);
        expect(want.some(Number.isNaN)).toBe(false);
        if (nanAt >= 0) expect(y.toArraySync()[nanAt]).toBe(0);
        own.dispose();
      });
      a.dispose();
      b.dispose();
    }
  });

  it("names a shape mismatch", () => {
    const a = randomTensor([2, 3], 97, false), b = randomTensor([3, 2], 98, false);
    expect(() => E.addRelu(a, b)).toThrow(/addRelu.*shape/);
  });
});
