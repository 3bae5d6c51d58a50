import { describe, expect, it } from "vitest";
import { fakeQuantizePerTensorAffine, type QuantRounding } from "../../lib/quant/fake_quant";
import { backward } from "../../lib/tensor/autograd";
import * as E from "../../lib/tensor/ops/elementwise";
import { batchNorm, batchNormAct } from "../../lib/tensor/ops/norm";
import { tidy } from "../../lib/tensor/scope";
import { tensor, type Tensor } from "../../lib/tensor/tensor";
import { randomTensor } from "../helpers/numeric";

/**
 * A unit's output fake quant run inside the op producing the output (batch norm's and addRelu's epilogue, CPU): the
 * same bits as the fake-quant op after it, forward, and the same gradient (the masks multiply, so only the sign of
 * a zero may differ where the ReLU cut a negative gradient).
 */
const values = (t: Tensor | null) => Array.from(t!.toArraySync(), (v) => v + 0); // -0 -> 0

interface Fq {
  scale: Tensor;
  zeroPoint: Tensor;
  enabled: Tensor;
  quantMin: number;
  quantMax: number;
  rounding: QuantRounding;
}

function fqParams(scale: number, zp: number, bits: number, enabled: boolean, rounding: QuantRounding): Fq {
  return {
    scale: tensor([scale], [1]).keep(),
    zeroPoint: tensor(new Int32Array([zp]), [1]).keep(),
    enabled: tensor(new Int32Array([enabled ? 1 : 0]), [1]).keep(),
    quantMin: 0,
    quantMax: 2 ** bits - 1,
    rounding,
  };
}

const separate = (y: Tensor, q: Fq) => fakeQuantizePerTensorAffine(y, q.scale, q.zeroPoint, q.quantMin, q.quantMax, q.enabled, q.rounding);

describe.skipIf(tensor([0], [1]).device !== "cpu")("output fake quant fused into its producer", () => {
  const settings: [QuantRounding, boolean, number][] = [["divide", true, 4], ["reciprocal", true, 2], ["divide", false, 4]];

  for (const [rounding, enabled, bits] of settings)
    for (const relu of [true, false])
      for (const training of [true, false])
        for (const shape of [[4, 3, 6, 5], [16, 40]])
          it(`batch norm${relu ? " + ReLU" : ""}, ${shape.length}-D, ${training ? "training" : "eval"}, ${rounding}, ${bits} bits${enabled ? "" : ", turned off"}`, () => {
            const C = shape[1];
            // A range that clips both ends of the grid: the masks matter.
            const q = fqParams(0.02, 1, bits, enabled, rounding);
            const gy = randomTensor(shape, 24, false);
            const run = (fused: boolean) => {
              const x = randomTensor(shape, 21), w = randomTensor([C], 22);
              // Biases around 0.5: outputs on both sides of the ReLU, in training and in eval.
              const b = E.addScalar(randomTensor([C], 23, false), 0.5).keep();
              b.requiresGrad = true;
              const rm = randomTensor([C], 25, false), rv = E.addScalar(randomTensor([C], 26, false), 2).keep();
              const y = tidy(() => {
                let out: Tensor;
                if (fused) {
                  const r = batchNormAct(x, rm, rv, w, b, training, 0.1, 1e-5, { relu, fakeQuant: q });
                  expect(r.fakeQuantized).toBe(true);
                  out = r.y;
                } else {
                  const n = batchNorm(x, rm, rv, w, b, training, 0.1, 1e-5);
                  out = separate(relu ? E.relu(n) : n, q);
                }
                const v = Array.from(out.toArraySync());
                backward(out, gy);
                return v;
              });
              return { y, gx: values(x.grad), gw: values(w.grad), gb: values(b.grad), rm: values(rm) };
            };
            const fused = run(true), apart = run(false);
            if (enabled) {
              // On the grid, and clipped at its top (the fake quant's mask cuts gradients there).
              expect(new Set(fused.y).size).toBeLessThanOrEqual(2 ** bits);
              expect(fused.y.filter((v) => Math.abs(v - (q.quantMax - 1) * 0.02) < 1e-6).length).toBeGreaterThan(0);
            }
            expect(fused).toEqual(apart);
          });

  for (const [rounding, enabled, bits] of settings)
    it(`addRelu, ${rounding}, ${bits} bits${enabled ? "" : ", turned off"}`, () => {
      const shape = [4, 5, 7, 7];
      const q = fqParams(0.11, 0, bits, enabled, rounding);
      const gy = randomTensor(shape, 34, false);
      const run = (fused: boolean) => {
        const a = randomTensor(shape, 31), b = randomTensor(shape, 32);
        const y = tidy(() => {
          const out = fused ? E.addRelu(a, b, { fakeQuant: q }).y : separate(E.relu(E.add(a, b)), q);
          const v = Array.from(out.toArraySync());
          backward(out, gy);
          return v;
        });
        return { y, ga: values(a.grad), gb: values(b.grad) };
      };
      expect(run(true)).toEqual(run(false));
    });

  it("computes the range or fake-quantizes, not both", () => {
    const x = randomTensor([2, 3], 41, false);
    const q = fqParams(0.1, 0, 4, true, "divide");
    expect(() => batchNormAct(x, null, null, null, null, true, 0.1, 1e-5, { withRange: true, fakeQuant: q })).toThrow(/range.*fake-quantizes|not both/);
    expect(() => E.addRelu(x, x, { withRange: true, fakeQuant: q })).toThrow(/not both/);
  });
});
