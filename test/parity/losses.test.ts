import { describe, expect, it } from "vitest";
import { regularizerName } from "../../lib/losses/regularizer_name";
import { batchNorm2dWeights, slimmingPenalty } from "../../lib/losses/regularizers";
import { linearCriterion, sslCriterion } from "../../lib/losses/criteria";
import { createResNet } from "../../lib/nn/resnet";
import { average, byolV2Loss, crossEntropy, ntXent, symmetricNegativeCosine } from "../../lib/ssl/losses";
import { backward, noGrad } from "../../lib/tensor/autograd";
import { Generator } from "../../lib/tensor/ops/random";
import { normalize } from "../../lib/tensor/ops/norm";
import { tidy } from "../../lib/tensor/scope";
import { tensor, zeros, type Tensor } from "../../lib/tensor/tensor";
import { readFixture } from "../helpers/fixtures";

/**
 * The criteria and the regularizer against the original's own classes (losses/criterions/*.py,
 * losses/regularizers/Slimming.py run through its LOSS class): test/fixtures/original/generate_losses.py.
 */
interface Arr {
  shape: number[];
  data: number[];
}
const fx = readFixture<Record<string, any>>("original/losses.json");
const t = (a: Arr): Tensor => tensor(Float32Array.from(a.data), a.shape);
const value = (x: Tensor): number => x.toArraySync()[0]!;

describe("criteria as the original's losses/criterions", () => {
  const i = fx.inputs as Record<string, Arr>;
  it("CosineSimilarity: two predictions, and the SSQL four (FP and quantized branches averaged)", () =>
    tidy(() => {
      const [p1, p2, z1, z2, op1, op2] = ["p1", "p2", "z1", "z2", "op1", "op2"].map((k) => t(i[k]!));
      expect(value(symmetricNegativeCosine(p1, p2, z1, z2))).toBeCloseTo(fx.CosineSimilarity_2, 6);
      expect(value(average(symmetricNegativeCosine(p1, p2, z1, z2), symmetricNegativeCosine(op1, op2, z1, z2)))).toBeCloseTo(fx.CosineSimilarity_4, 6);
    }));

  it("CosineSimilarityv2", () =>
    tidy(() => {
      const [p1, p2, z1, z2] = ["p1", "p2", "z1", "z2"].map((k) => t(i[k]!));
      expect(value(byolV2Loss(p1, p2, z1, z2))).toBeCloseTo(fx.CosineSimilarityv2, 5);
    }));

  it("InfoNCEv2 and InfoNCE on normalised embeddings (T 0.5) are the same NT-Xent", () =>
    tidy(() => {
      const f1 = normalize(t(i.p1!), 1);
      const f2 = normalize(t(i.p2!), 1);
      expect(value(ntXent(f1, f2, 0.5))).toBeCloseTo(fx.InfoNCEv2, 5);
      expect(value(ntXent(f1, f2, 0.5))).toBeCloseTo(fx.InfoNCE, 5);
    }));

  it("CrossEntropy on MoCo logits (positive at 0), and the mean of two for SSQL_MoCo", () =>
    tidy(() => {
      const labels = zeros([fx.logits.shape[0]], "cpu", "int32");
      const l1 = crossEntropy(t(fx.logits), labels);
      expect(value(l1)).toBeCloseTo(fx.CrossEntropy_1, 5);
      expect(value(average(l1, crossEntropy(t(fx.qlogits), labels)))).toBeCloseTo(fx.CrossEntropy_2, 5);
    }));

  it("accepts per method only the criteria it computes, and names the key otherwise", () => {
    expect(sslCriterion("BYOL", "CosineSimilarityv2")).toBe("CosineSimilarityv2");
    expect(sslCriterion("SimCLR", "")).toBe("InfoNCEv2");
    expect(() => sslCriterion("SSQL_SimSiam", "InfoNCEv2")).toThrow(/TRAIN\.LOSS\.CRITERION\.NAME: 'InfoNCEv2' does not apply to SSL\.TYPE SSQL_SimSiam; supported for SSQL_SimSiam: CosineSimilarity/);
    expect(() => sslCriterion("MoCo", "LpLoss")).toThrow(/TRAIN\.LOSS\.CRITERION\.NAME.*supported for MoCo: CrossEntropy/);
    expect(() => sslCriterion("BYOL", "Cosine")).toThrow(/unknown criterion 'Cosine'/);
    expect(() => linearCriterion("InfoNCE")).toThrow(/TRAIN\.LOSS\.CRITERION\.NAME: 'InfoNCE' is not supported by linear/);
  });
});

describe("regularizers as the original's losses/regularizers", () => {
  it("Slimming: sum of |gamma| over the BatchNorm2d layers, gradient sign(gamma)", () => {
    const net = createResNet("cifar_resnet18", new Generator(0), { numClasses: 128 });
    const ws = batchNorm2dWeights(net);
    expect(ws.length).toBe(fx.bn_weights.length);
    noGrad(() => {
      ws.forEach((w, j) => {
        const v = Float32Array.from({ length: w.shape[0]! }, (_, k) => Math.sin(100 * j + k + 0.5));
        w.ops.copy_(w.handle, tensor(v, w.shape).handle);
      });
    });
    tidy(() => {
      const r = slimmingPenalty(net)!;
      expect(Math.abs(value(r) / fx.Slimming.value - 1)).toBeLessThan(1e-5);
      backward(r);
    });
    const g = ws[0]!.grad!.toArraySync();
    expect(Array.from(g)).toEqual(fx.Slimming.bn1_grad_of_term.data.map((x: number) => Math.round(x)));
    net.dispose();
  });

  it("PACT stops the run by name (no PACT quantizer here; the original failed too)", () => {
    expect(fx.PACT_without_alpha).toMatch(/AttributeError/);
    expect(() => regularizerName("PACT")).toThrow(/TRAIN\.LOSS\.REGULARIZER\.NAME: PACT .* supported: Slimming/);
    expect(() => regularizerName("L2")).toThrow(/unknown regularizer 'L2'/);
    expect(regularizerName("")).toBeNull();
  });
});
