import type { Module } from "../nn/module";
import type { ResNet } from "../nn/resnet";
import { normalize } from "../tensor/ops/norm";
import type { Tensor } from "../tensor/tensor";
import { ntXent } from "./losses";
import { SslMethod, type StepOutput } from "./method";
import { freeTemporaries } from "../tensor/scope";

/**
 * SimCLR with the original's InfoNCEv2 (§4.8): X = [f1; f2] normalised, logits X·Xᵀ / T without the diagonal,
 * and for each row the other view of the same image as the positive. Computed on the local batch.
 */
export class SimCLR extends SslMethod {
  constructor(readonly encoder: ResNet, private readonly temperature: number) {
    super();
    this.registerModule("encoder", encoder as Module);
  }

  step(x1: Tensor, x2: Tensor): StepOutput {
    return freeTemporaries(() => {
      return { loss: ntXent(normalize(this.encoder.forward(x1), 1), normalize(this.encoder.forward(x2), 1), this.temperature) };
    });
  }
}
