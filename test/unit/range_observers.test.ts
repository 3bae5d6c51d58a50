import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config";
import { createResNet } from "../../lib/nn/resnet";
import { GaussianObserver, KlHistogramObserver, MseObserver, PercentileObserver, createObserver } from "../../lib/quant/observers";
import { weightQuantizer } from "../../lib/quant/quantizer";
import { quantizeClassifier } from "../../lib/train/calibrate";
import { noGrad } from "../../lib/tensor/autograd";
import { Generator } from "../../lib/tensor/ops/random";
import { tidy } from "../../lib/tensor/scope";
import { tensor, type Tensor } from "../../lib/tensor/tensor";

const root = path.resolve(__dirname, "..", "..");

function randn(shape: number[], seed: number, scale = 1): Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((p, d) => p * d, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = (s + 0.5) / 2 ** 32;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const w = (s + 0.5) / 2 ** 32;
    v[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w) * scale;
  }
  return tensor(v, shape);
}

const arr = (t: Tensor) => Array.from(t.toArraySync());

describe("range observers: the original's accumulation rules", () => {
  it("MSE / HISTOGRAM search the first tensor only; GAUSSIAN keeps the last", () => {
    tidy(() => {
      const [a, b] = [randn([4, 8, 5, 5], 1), randn([4, 8, 5, 5], 2, 3)];
      for (const name of ["MSE", "HISTOGRAM"] as const) {
        const one = new MseObserver(name, { axis: 1, bits: 4 });
        one.observe(a);
        const two = new MseObserver(name, { axis: 1, bits: 4 });
        two.observe(a);
        two.observe(b);
        expect(arr(two.range()!.max)).toEqual(arr(one.range()!.max));
        expect(arr(two.range()!.min)).toEqual(arr(one.range()!.min));
        one.dispose();
        two.dispose();
      }
      const g = new GaussianObserver({ axis: null });
      const gb = new GaussianObserver({ axis: null });
      g.observe(a);
      g.observe(b);
      gb.observe(b);
      expect(arr(g.range()!.max)).toEqual(arr(gb.range()!.max));
      g.dispose();
      gb.dispose();
    });
  });

  it("PERCENTILE / KL_HISTOGRAM without a first pass take the range from what they observe (the original crashes there)", () => {
    tidy(() => {
      const w = randn([16, 8, 3, 3], 3, 0.05);
      for (const make of [() => new PercentileObserver({ axis: 0, alpha: 0.05 }), () => new KlHistogramObserver({ axis: null, bits: 4 })]) {
        const direct = make();
        direct.observe(w);
        const twoPass = make();
        twoPass.observeRange(w);
        twoPass.observe(w);
        expect(arr(direct.range()!.min)).toEqual(arr(twoPass.range()!.min));
        expect(arr(direct.range()!.max)).toEqual(arr(twoPass.range()!.max));
        direct.dispose();
        twoPass.dispose();
      }
    });
  });

  it("a weight quantizer with an accumulating observer observes its weight once per reset()", () => {
    tidy(() => {
      const w = randn([8, 4, 3, 3], 4, 0.1);
      const once = weightQuantizer({ observer: "PERCENTILE", alpha: 0.05, bits: 4 });
      once.observe(w);
      once.observe(w);
      const ref = new PercentileObserver({ axis: 0, alpha: 0.05 });
      ref.observe(w);
      expect(arr(once.observer.range()!.max)).toEqual(arr(ref.range()!.max));
      once.dispose();
      ref.dispose();
    });
  });
});

describe("range observers: bad input names the key", () => {
  it("an ALPHA whose top-k exceeds a batch, a BINS too small for the bit width, parameters out of range", () => {
    tidy(() => {
      const key = "QUANT.A.OBSERVER_METHOD";
      const p = new PercentileObserver({ axis: null, alpha: 0.5, key });
      for (let i = 0; i < 4; i++) p.observeRange(randn([2, 3, 4, 4], 10 + i));
      expect(() => p.observe(randn([2, 3, 4, 4], 20))).toThrow(
        `${key}.ALPHA = 0.5: the PERCENTILE observer keeps the 192 largest |x| per tensor (of 384 calibration values) but a batch of shape [2, 3, 4, 4] holds only 96`,
      );
      p.dispose();
      const kl = new KlHistogramObserver({ axis: null, bits: 8, bins: 300, key });
      kl.observe(randn([2, 3, 4, 4], 5));
      expect(() => kl.range()).toThrow(`${key}.BINS = 300: the KL_HISTOGRAM observer cannot calibrate 8 bits (255 quantized bins of a signed range) with so few bins; the original fails there. Use at least 508 bins`);
      kl.dispose();
      expect(() => createObserver("PERCENTILE", { axis: null, alpha: 101, key })).toThrow(`${key}.ALPHA: the share of largest |x| the PERCENTILE observer cuts off must be a number in [0, 1]`);
      expect(() => createObserver("PERCENTILE", { axis: null, alpha: Number.NaN, key })).toThrow(`${key}.ALPHA`);
      expect(() => createObserver("KL_HISTOGRAM", { axis: null, bins: 0, key })).toThrow(`${key}.BINS: the KL_HISTOGRAM observer's histogram bins must be an integer in 1..1048576, got 0`);
      expect(() => createObserver("KL_HISTOGRAM", { axis: null, bins: 10.5, key })).toThrow(`${key}.BINS`);
      expect(() => createObserver("MSE", { axis: null, bits: 17 })).toThrow(/bits/);
    });
  });
});

describe("two-pass calibration through the quantized classifier (linear / ptq path)", () => {
  it("PERCENTILE outputs and MSE weights: a range pass, then an observing pass, then scales from calcQParams", () => {
    const cfg = loadConfig(path.join(root, "configs", "cifar", "resnet18_linear_eval_cifar.yaml"), [
      { key: "QUANT.A.OBSERVER_METHOD.NAME", value: "PERCENTILE" },
      { key: "QUANT.A.OBSERVER_METHOD.ALPHA", value: 0.001 },
      { key: "QUANT.W.OBSERVER_METHOD.NAME", value: "MSE" },
    ]);
    const net = createResNet(cfg.MODEL.ARCH, new Generator(1), { numClasses: cfg.MODEL.NUM_CLASSES });
    const quant = quantizeClassifier(net, cfg);
    try {
      expect(quant.needsRangePass).toBe(true);
      const x = randn([2, 3, 32, 32], 7);
      net.eval();
      quant.allocate(4, 4);
      quant.observeRanges();
      noGrad(() => tidy(() => void net.forward(x)));
      quant.observe(true);
      noGrad(() => tidy(() => void net.forward(x)));
      quant.quantize(4, 4);
      quant.freeze();
      const conv1 = quant.layer("conv1")!;
      const act = conv1.act!.observer.range()!;
      // PERCENTILE cuts at the k-th largest |y| (k = round(numel * 0.001)): inside the observed range.
      expect(conv1.act!.observer.name).toBe("PERCENTILE");
      expect(act.max.itemSync()).toBeGreaterThan(0);
      expect(conv1.weight!.observer.name).toBe("MSE");
      expect(conv1.weight!.observer.range()!.max.numel).toBe(64);
      const y = noGrad(() => net.forward(x));
      expect(y.shape).toEqual([2, cfg.MODEL.NUM_CLASSES]);
      y.dispose();
      x.dispose();
    } finally {
      quant.dispose();
      net.dispose();
    }
  });
});
