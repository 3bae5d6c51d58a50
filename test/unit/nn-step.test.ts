import { describe, expect, it } from "vitest";
import { resetBatchNorm, resetLinearOrConv } from "../../lib/nn/init";
import { SGD } from "../../lib/optim/sgd";
import { backward, noGrad } from "../../lib/tensor/autograd";
import { conv2d } from "../../lib/tensor/ops/conv";
import { add, relu } from "../../lib/tensor/ops/elementwise";
import { linear } from "../../lib/tensor/ops/linear";
import { crossEntropy, topkCorrect } from "../../lib/tensor/ops/loss";
import { batchNorm, cosineSimilarity } from "../../lib/tensor/ops/norm";
import { adaptiveAvgPool2d, maxPool2d } from "../../lib/tensor/ops/pool";
import { Generator } from "../../lib/tensor/ops/random";
import { mean, sum } from "../../lib/tensor/ops/reduce";
import { flatten } from "../../lib/tensor/ops/shape";
import { tidy } from "../../lib/tensor/scope";
import { liveTensorCount, parameter, tensor, zeros } from "../../lib/tensor/tensor";
import { cpuOps } from "../../lib/tensor/binding";

describe("a small training step with the nn ops", () => {
  it("learns, and leaves live tensors and native bytes flat", () => {
    const gen = new Generator(1);
    const w1 = parameter(zeros([8, 3, 3, 3]));
    const w2 = parameter(zeros([8, 8, 3, 3]));
    const fc = parameter(zeros([4, 8]));
    const fcb = parameter(zeros([4]));
    const [g1, b1] = [parameter(zeros([8])), parameter(zeros([8]))];
    const [rm, rv] = [zeros([8]).keep(), zeros([8]).keep()];
    resetLinearOrConv(w1, null, gen);
    resetLinearOrConv(w2, null, gen);
    resetLinearOrConv(fc, fcb, gen);
    resetBatchNorm(g1, b1, rm, rv);
    const params = [w1, w2, fc, fcb, g1, b1];
    const opt = new SGD(params, { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
    const x = gen.normal([8, 3, 9, 9]).keep();
    const target = tensor(Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3]), [8]).keep();

    const step = () =>
      tidy(() => {
        const h = relu(batchNorm(conv2d(x, w1, null, { stride: 2, padding: 1 }), rm, rv, g1, b1, true));
        const r = relu(add(conv2d(h, w2, null, { padding: 1 }), h));
        const p = maxPool2d(r, 3, 1, 1);
        const feats = flatten(adaptiveAvgPool2d(p));
        const logits = linear(feats, fc, fcb);
        const sim = mean(cosineSimilarity(feats, feats));
        const loss = add(crossEntropy(logits, target, { labelSmoothing: 0.1 }), sum(sim));
        backward(loss);
        opt.step();
        opt.zeroGrad();
        topkCorrect(logits, target, [1]).dispose();
        return loss.itemSync();
      });

    const first = step();
    step();
    const live = liveTensorCount();
    const bytes = cpuOps().memoryStats().bytes;
    let last = first;
    for (let i = 0; i < 30; i++) last = step();
    expect(liveTensorCount()).toBe(live);
    expect(cpuOps().memoryStats().bytes).toBe(bytes);
    expect(last).toBeLessThan(first - 0.5);
  });
});

describe("ops outside a step scope", () => {
  it("free what their backward would have needed when no gradient is recorded", () => {
    const x = tensor(Float32Array.from({ length: 2 * 3 * 4 * 4 }, (_, i) => Math.sin(i)), [2, 3, 4, 4]).keep();
    const t = tensor(Int32Array.from([0, 2]), [2]).keep();
    const logits = flatten(x).keep();
    const before = liveTensorCount();
    const outs = noGrad(() => [batchNorm(x, null, null, null, null, true), maxPool2d(x, 2), crossEntropy(logits, t)]);
    expect(liveTensorCount()).toBe(before + outs.length);
    for (const o of outs) o.dispose();
  });
});
