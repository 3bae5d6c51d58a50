import { Module } from "../nn/module";
import type { ResNet } from "../nn/resnet";
import type { BitSampler, BitSamplerState } from "../quant/sampling";
import type { Tensor } from "../tensor/tensor";

/** What one training step produced: the loss to back-propagate and, for SSQL methods, the drawn bits. */
export interface StepOutput {
  loss: Tensor;
  bits?: { w: number; a: number };
}

/**
 * A method's state that is not a tensor and must survive a resume so the run continues exactly (its tensors,
 * MoCo's queue included, are module buffers and go with the weights). Saved under the checkpoint's `method` key.
 */
export interface SslMethodState {
  /** SSQL methods: the per-step bit sampler. */
  sampler?: BitSamplerState;
  /** MoCo: where the next keys go in the queue. */
  queuePtr?: number;
  /** MoCo: key batches encoded so far (the next permutation of the multi-process shuffle-BN). */
  keySteps?: number;
}

/**
 * An SSL method: a module holding the encoder (backbone with its projector as `fc`) and its other parts. It owns
 * everything method-specific the training loop needs: its resumable state, whether the loader drops the last
 * partial batch, and its checks of the batch size, so the loop itself knows no method by name.
 */
export abstract class SslMethod extends Module {
  abstract readonly encoder: ResNet;
  abstract step(x1: Tensor, x2: Tensor): StepOutput;
  /** The original drops the last partial training batch only for MoCo variants. */
  readonly dropLast: boolean = false;
  /** SSQL methods: the bit sampler whose position is part of the state. */
  protected bitSampler: BitSampler | null = null;

  /** Throws when `perProcess` images per process on `processes` ranks cannot train this method. */
  checkBatch(_perProcess: number, _processes: number): void {}
  /** Work after the optimizer step (none for most methods). */
  afterStep(): void {}

  state(): SslMethodState {
    return this.bitSampler ? { sampler: this.bitSampler.state() } : {};
  }

  loadState(s: SslMethodState): void {
    if (this.bitSampler && s.sampler) this.bitSampler.loadState(s.sampler);
  }
}
