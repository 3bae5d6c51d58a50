import type { Module, Sequential } from "../nn/module";
import type { ResNet } from "../nn/resnet";
import type { QuantizedEncoder } from "../quant/quant_model";
import type { BitSampler } from "../quant/sampling";
import type { Tensor } from "../tensor/tensor";
import { average, symmetricNegativeCosine } from "./losses";
import { SslMethod, type StepOutput } from "./method";
import { ssqlTwoViews } from "./ssql";
import { freeTemporaries } from "../tensor/scope";

/** SimSiam (§4.2): L = −(cos(p1, sg z2) + cos(p2, sg z1)) / 2. */
export class SimSiam extends SslMethod {
  constructor(readonly encoder: ResNet, readonly predictor: Sequential) {
    super();
    this.registerModule("encoder", encoder as Module);
    this.registerModule("predictor", predictor);
  }

  step(x1: Tensor, x2: Tensor): StepOutput {
    return freeTemporaries(() => {
      const z1 = this.encoder.forward(x1);
      const z2 = this.encoder.forward(x2);
      const p1 = this.predictor.forward(z1);
      const p2 = this.predictor.forward(z2);
      return { loss: symmetricNegativeCosine(p1, p2, z1, z2) };
    });
  }
}

/**
 * SSQL on SimSiam (§4.3): an FP pass of both views that also observes activation ranges, one (W, A) bit draw,
 * a fake-quantized pass through the same weights, and L = (L_fp + L_q) / 2 with FP targets for both terms.
 */
export class SSQLSimSiam extends SimSiam {
  constructor(
    encoder: ResNet,
    predictor: Sequential,
    private readonly quant: QuantizedEncoder,
    private readonly bits: BitSampler,
  ) {
    super(encoder, predictor);
    this.bitSampler = bits;
  }

  override step(x1: Tensor, x2: Tensor): StepOutput {
    return freeTemporaries(() => {
      const v = ssqlTwoViews(this.quant, this.bits, this.encoder, this.predictor, x1, x2);
      const lossFp = symmetricNegativeCosine(v.p1, v.p2, v.z1, v.z2);
      const lossQ = symmetricNegativeCosine(v.p1q, v.p2q, v.z1, v.z2);
      return { loss: average(lossFp, lossQ), bits: v.bits };
    });
  }
}
