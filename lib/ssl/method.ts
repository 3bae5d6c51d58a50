import type { ProcessGroup } from "../distributed/process_group";
import { Module } from "../nn/module";
import type { ResNet } from "../nn/resnet";
import type { Tensor } from "../tensor/tensor";

/** What one training step produced: the loss to back-propagate and, for SSQL methods, the drawn bits. */
export interface StepOutput {
  loss: Tensor;
  bits?: { w: number; a: number };
}

/** An SSL method: a module holding the encoder (backbone with its projector as `fc`) and its other parts. */
export abstract class SslMethod extends Module {
  abstract readonly encoder: ResNet;
  abstract step(x1: Tensor, x2: Tensor): StepOutput;
  /**
   * The ranks of a multi-process run, for methods whose forward itself communicates (MoCo's key shuffle and
   * queue); the others need none, DDP averages their gradients. Null: a single process.
   */
  useProcessGroup(_group: ProcessGroup | null): void {}
  /** Work after the optimizer step (none for most methods). */
  afterStep(): void {}
}
