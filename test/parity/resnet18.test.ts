import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createResNet, type ResNet } from "../../lib/nn/resnet";
import { backward } from "../../lib/tensor/autograd";
import { crossEntropy } from "../../lib/tensor/ops/loss";
import { Generator } from "../../lib/tensor/ops/random";
import { tidy } from "../../lib/tensor/scope";
import { GENERATE_MS, compareGroup, expectScalarClose, goldenSkipReason, hostToTensor, loadGolden, loadInit, type Golden } from "../helpers/golden";

/**
 * The whole CIFAR ResNet-18 classifier (models/cifar_resnet.py), forward and backward with cross-entropy, against
 * PyTorch (test/fixtures/generate_golden.py, case resnet18): the same weights, BN state and batch; loss and every
 * parameter gradient within 1e-4 normalized error, and the BN running statistics after the pass.
 */

const skip = goldenSkipReason();
if (skip) console.warn(`resnet18: skipped: ${skip}`);

describe.skipIf(skip !== null)("CIFAR ResNet-18 forward + backward against PyTorch", () => {
  let g: Golden;
  let net: ResNet;
  let loss: number;
  let logits: Float32Array;

  beforeAll(async () => {
    g = await loadGolden("resnet18");
    net = createResNet("cifar_resnet18", new Generator(0), { numClasses: Number(g.meta.num_classes) });
    loadInit(g, net, (k) => (k.endsWith("num_batches_tracked") ? null : k));
    net.train();
    const x = hostToTensor(g.tensors.x);
    const target = hostToTensor(g.tensors.target);
    try {
      [loss, logits] = tidy(() => {
        const out = net.forward(x);
        const l = crossEntropy(out, target);
        backward(l);
        return [l.itemSync(), out.toArraySync() as Float32Array] as const;
      });
    } finally {
      x.dispose();
      target.dispose();
    }
  }, GENERATE_MS);
  afterAll(() => net?.dispose());

  it("has the original's state-dict keys", () => {
    const ours = [...net.stateDict().keys()].sort();
    const theirs = Object.keys(g.tensors)
      .filter((k) => k.startsWith("init/") && !k.endsWith("num_batches_tracked"))
      .map((k) => k.slice(5))
      .sort();
    expect(ours).toEqual(theirs);
  });

  it("matches the logits and the loss", () => {
    const ref = g.tensors["out/logits"].data as Float32Array;
    let num = 0;
    let den = 0;
    for (let i = 0; i < ref.length; i++) {
      num += (logits[i] - ref[i]) ** 2;
      den += ref[i] ** 2;
    }
    expect(Math.sqrt(num / den)).toBeLessThanOrEqual(1e-5);
    expectScalarClose("loss", loss, g.tensors.loss.data[0] as number, 1e-5);
  });

  it("matches every parameter gradient", () => {
    const params = new Map(net.namedParameters());
    const c = compareGroup(g, "grad", (k) => params.get(k)?.grad, 1e-4);
    console.log(`resnet18 grads: ${c.count} tensors, worst ${c.worst.err.toExponential(2)} at ${c.worst.key}`);
    expect(c.count).toBe(params.size);
  });

  it("matches every BN running statistic after the pass", () => {
    const buffers = new Map(net.namedBuffers());
    const c = compareGroup(g, "after", (k) => buffers.get(k), 1e-5);
    expect(c.count).toBe(buffers.size);
  });
});
