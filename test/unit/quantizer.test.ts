import { describe, expect, it } from "vitest";
import { QuantLayer, allocateBits } from "../../lib/quant/layer";
import { UniformQuantizer, activationQuantizer, weightQuantizer } from "../../lib/quant/quantizer";
import { backward, noGrad } from "../../lib/tensor/autograd";
import { cpuOps } from "../../lib/tensor/binding";
import * as R from "../../lib/tensor/ops/reduce";
import * as E from "../../lib/tensor/ops/elementwise";
import { tidy } from "../../lib/tensor/scope";
import { liveTensorCount, tensor } from "../../lib/tensor/tensor";
import { randomTensor } from "../helpers/numeric";

const f = Math.fround;

describe("UniformQuantizer state machine", () => {
  it("is the identity at 0 bits or with quantization off (the same tensor, no copy)", () => {
    tidy(() => {
      const x = tensor([1, 2, 3], [3]);
      const q = activationQuantizer();
      expect(q.apply(x)).toBe(x);
      q.setBits(8);
      q.quantEnabled = false;
      expect(q.apply(x)).toBe(x);
      q.quantEnabled = true;
      expect(() => q.apply(x)).toThrow(/nothing observed since reset\(\)/);
      q.dispose();
    });
  });

  it("activation: asymmetric per-tensor range over every observation until reset, hand-checked values", () => {
    tidy(() => {
      const q = activationQuantizer({ bits: 8, name: "layer1.0" });
      q.observe(tensor([0, 0.3, 1.0, 2.55], [4]));
      q.observe(tensor([0.1, 5.1], [2]));
      const { qp } = q.qparams();
      const scale = f(f(5.1) / 255);
      expect(qp.scale.itemSync()).toBe(scale);
      expect(qp.zeroPoint.itemSync()).toBe(0); // ReLU-like output: min 0
      expect([qp.quantMin, qp.quantMax]).toEqual([0, 255]);
      const y = q.apply(tensor([0.3, -1, 6, 2.55], [4]));
      const inv = f(1 / scale);
      const want = [0.3, -1, 6, 2.55].map((v) => f(Math.min(Math.max(Math.round(f(f(v) * inv)), 0), 255) * scale));
      expect(Array.from(y.toArraySync())).toEqual(want);
      // 4 bits: the held parameters are recomputed from the same statistics.
      q.setBits(4);
      expect(q.qparams().qp.scale.itemSync()).toBe(f(f(5.1) / 15));
      q.reset();
      expect(() => q.apply(tensor([1], [1]))).toThrow(/nothing observed/);
      q.dispose();
    });
  });

  it("freeze() holds the parameters and ignores later observations (linear evaluation)", () => {
    tidy(() => {
      const q = activationQuantizer({ bits: 8 });
      noGrad(() => q.observe(tensor([-1, 3], [2])));
      q.freeze();
      const s = q.qparams().qp.scale.itemSync();
      expect(s).toBe(f(4 / 255));
      expect(q.qparams().qp.zeroPoint.itemSync()).toBe(64); // -round(-1 / (4/255)) = round(63.75)
      q.observe(tensor([-10, 30], [2]));
      expect(q.qparams().qp.scale.itemSync()).toBe(s);
      expect(q.frozen).toBe(true);
      q.reset();
      expect(q.frozen).toBe(false);
      q.dispose();
    });
  });

  it("momentum observer quantizer uses the EMA range", () => {
    tidy(() => {
      const q = new UniformQuantizer({ symmetric: false, axis: null, observer: "MOMENTUM_MINMAX", bits: 8 });
      q.observe(tensor([0, 2], [2]));
      q.reset();
      q.observe(tensor([0, 4], [2]));
      const max = f(f(f(0.99) * 2) + f(f(1 - 0.99) * 4));
      expect(q.qparams().qp.scale.itemSync()).toBe(f(max / 255));
      q.dispose();
    });
  });

  it("weight: the live range routes the scale gradient; another tensor than the observed one is an error", () => {
    tidy(() => {
      const w = randomTensor([4, 3, 3, 3], 11);
      const other = randomTensor([4, 3, 3, 3], 12);
      const q = weightQuantizer({ bits: 4, name: "layer1.0.conv1" });
      q.observe(w);
      expect(() => q.apply(other)).toThrow(/layer1.0.conv1: apply\(\) got another tensor/);
      backward(R.sum(E.mul(q.apply(w), w)));
      expect(w.grad).not.toBeNull();
      q.dispose();
    });
  });

  it("keeps live tensors and native bytes flat across steps", () => {
    const w = randomTensor([8, 4, 3, 3], 3);
    const wq = weightQuantizer({ bits: 4 });
    const aq = activationQuantizer({ bits: 6 });
    const step = () =>
      tidy(() => {
        wq.reset();
        aq.reset();
        const x = randomTensor([2, 8, 3, 3], 5, false);
        for (let v = 0; v < 2; v++) {
          wq.observe(w);
          aq.observe(E.relu(x));
        }
        let loss = null;
        for (let v = 0; v < 2; v++) {
          const y = E.mul(aq.apply(E.relu(x)), R.sum(wq.apply(w)));
          loss = loss ? E.add(loss, R.sum(y)) : R.sum(y);
        }
        backward(loss!);
        x.dispose();
      });
    step();
    const before = [liveTensorCount(), cpuOps().memoryStats().bytes];
    for (let i = 0; i < 5; i++) step();
    expect([liveTensorCount(), cpuOps().memoryStats().bytes]).toEqual(before);
    wq.dispose();
    aq.dispose();
  });
});

describe("QuantLayer and allocateBits", () => {
  it("sets bits per layer with the overrides and rejects bits for a missing quantizer", () => {
    const conv = new QuantLayer("conv1", weightQuantizer(), activationQuantizer());
    const block = new QuantLayer("layer1.0", null, activationQuantizer());
    allocateBits([conv, block], 4, 6, [{ conv1: { w: 8 } }]);
    expect([conv.weight!.bits, conv.act!.bits, block.act!.bits]).toEqual([8, 6, 6]);
    expect(() => block.setBits(4)).toThrow("layer 'layer1.0' has no weight quantizer (bits w=4)");
    expect(() => conv.setBits(17)).toThrow(/bit width must be an integer in 0..16/);
    conv.setQuantState(false, true);
    expect([conv.weight!.quantEnabled, conv.act!.quantEnabled]).toEqual([false, true]);
    conv.dispose();
    block.dispose();
  });
});
