import type { Module, Sequential } from "../nn/module";
import type { ResNet } from "../nn/resnet";
import type { QuantizedEncoder } from "../quant/quant_model";
import type { BitSampler } from "../quant/sampling";
import { noGrad } from "../tensor/autograd";
import type { Tensor } from "../tensor/tensor";
import { average, byolV2Loss, symmetricNegativeCosine } from "./losses";
import { SslMethod, type StepOutput } from "./method";
import { copyWeights, freeze, momentumUpdate } from "./momentum";
import { ssqlTwoViews } from "./ssql";
import { freeTemporaries } from "../tensor/scope";

export type ByolCriterion = "CosineSimilarity" | "CosineSimilarityv2";

function targets(target: ResNet, online: ResNet, m: number, x1: Tensor, x2: Tensor): [Tensor, Tensor] {
  return noGrad(() => {
    momentumUpdate(target, online, m);
    return [target.forward(x1), target.forward(x2)];
  });
}

function byolLoss(criterion: ByolCriterion, p1: Tensor, p2: Tensor, t1: Tensor, t2: Tensor): Tensor {
  return criterion === "CosineSimilarityv2" ? byolV2Loss(p1, p2, t1, t2) : symmetricNegativeCosine(p1, p2, t1, t2);
}

/** BYOL (§4.4): the target encoder is updated by momentum inside the step, before the targets are computed. */
export class BYOL extends SslMethod {
  constructor(
    readonly encoder: ResNet,
    readonly targetEncoder: ResNet,
    readonly predictor: Sequential,
    protected readonly momentum: number,
    protected readonly criterion: ByolCriterion,
  ) {
    super();
    this.registerModule("encoder", encoder as Module);
    this.registerModule("encoder_k", targetEncoder as Module);
    this.registerModule("predictor", predictor);
    copyWeights(targetEncoder, encoder);
    freeze(targetEncoder);
  }

  step(x1: Tensor, x2: Tensor): StepOutput {
    return freeTemporaries(() => {
      const p1 = this.predictor.forward(this.encoder.forward(x1));
      const p2 = this.predictor.forward(this.encoder.forward(x2));
      const [t1, t2] = targets(this.targetEncoder, this.encoder, this.momentum, x1, x2);
      return { loss: byolLoss(this.criterion, p1, p2, t1, t2) };
    });
  }
}

/** SSQL on BYOL (§4.5): FP and quantized online predictions against the momentum encoder's targets. */
export class SSQLBYOL extends BYOL {
  constructor(
    encoder: ResNet,
    targetEncoder: ResNet,
    predictor: Sequential,
    momentum: number,
    criterion: ByolCriterion,
    private readonly quant: QuantizedEncoder,
    private readonly bits: BitSampler,
  ) {
    super(encoder, targetEncoder, predictor, momentum, criterion);
    this.bitSampler = bits;
  }

  override step(x1: Tensor, x2: Tensor): StepOutput {
    return freeTemporaries(() => {
      const v = ssqlTwoViews(this.quant, this.bits, this.encoder, this.predictor, x1, x2);
      const [t1, t2] = targets(this.targetEncoder, this.encoder, this.momentum, x1, x2);
      const lossFp = byolLoss(this.criterion, v.p1, v.p2, t1, t2);
      const lossQ = byolLoss(this.criterion, v.p1q, v.p2q, t1, t2);
      return { loss: average(lossFp, lossQ), bits: v.bits };
    });
  }
}
