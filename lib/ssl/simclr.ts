import type { Module } from "../nn/module";
import type { ResNet } from "../nn/resnet";
import { add, mulScalar } from "../tensor/ops/elementwise";
import { matmul } from "../tensor/ops/linear";
import { crossEntropy } from "../tensor/ops/loss";
import { concat, transpose } from "../tensor/ops/shape";
import { normalize } from "../tensor/ops/norm";
import { tensor, type Tensor } from "../tensor/tensor";
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
      const f = concat([normalize(this.encoder.forward(x1), 1), normalize(this.encoder.forward(x2), 1)], 0);
      const n = f.shape[0];
      const b = n / 2;
      const sim = mulScalar(matmul(f, transpose(f)), 1 / this.temperature);
      const mask = new Float32Array(n * n);
      for (let i = 0; i < n; i++) mask[i * n + i] = -1e9;
      const logits = add(sim, tensor(mask, [n, n], f.device));
      const targets = new Int32Array(n).map((_, i) => (i + b) % n);
      return { loss: crossEntropy(logits, tensor(targets, [n], f.device)) };
    });
  }
}
