import type { EpilogueOutput } from "../tensor/ops/epilogue";
import { batchNormAct, type BatchNormEpilogue } from "../tensor/ops/norm";
import { conv2d } from "../tensor/ops/conv";
import { linear } from "../tensor/ops/linear";
import { relu } from "../tensor/ops/elementwise";
import { full, zeros, type Tensor } from "../tensor/tensor";
import type { Generator as RandomGenerator } from "../tensor/ops/random";
import { resetLinearOrConv } from "./init";
import { Layer } from "./module";

export type Pair = [number, number];
const pair = (v: number | Pair): Pair => (typeof v === "number" ? [v, v] : v);

export interface Conv2dOptions {
  stride?: number | Pair;
  padding?: number | Pair;
  bias?: boolean;
}

export class Conv2d extends Layer {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: Pair;
  readonly padding: Pair;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, gen: RandomGenerator, opts: Conv2dOptions = {}) {
    super();
    this.stride = pair(opts.stride ?? 1);
    this.padding = pair(opts.padding ?? 0);
    this.weight = zeros([outChannels, inChannels, kernelSize, kernelSize]);
    this.bias = opts.bias ? zeros([outChannels]) : null;
    resetLinearOrConv(this.weight, this.bias, gen);
    this.registerParameter("weight", this.weight);
    this.registerParameter("bias", this.bias);
  }

  /** The convolution with an explicit (possibly fake-quantized) weight. */
  convolve(x: Tensor, weight: Tensor): Tensor {
    return conv2d(x, weight, this.bias, { stride: this.stride, padding: this.padding });
  }

  forward(x: Tensor): Tensor {
    return this.convolve(x, this.weight);
  }

  protected override onTensorReplaced(name: string, t: Tensor): void {
    if (name === "weight") this.weight = t;
    if (name === "bias") this.bias = t;
  }
}

export class Linear extends Layer {
  weight: Tensor;
  bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, gen: RandomGenerator, opts: { bias?: boolean } = {}) {
    super();
    this.weight = zeros([outFeatures, inFeatures]);
    this.bias = opts.bias === false ? null : zeros([outFeatures]);
    resetLinearOrConv(this.weight, this.bias, gen);
    this.registerParameter("weight", this.weight);
    this.registerParameter("bias", this.bias);
  }

  project(x: Tensor, weight: Tensor): Tensor {
    return linear(x, weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    return this.project(x, this.weight);
  }

  protected override onTensorReplaced(name: string, t: Tensor): void {
    if (name === "weight") this.weight = t;
    if (name === "bias") this.bias = t;
  }
}

/** BatchNorm1d/2d: batch statistics in training (running stats updated in place), running stats in eval. */
export class BatchNorm extends Layer {
  weight: Tensor | null;
  bias: Tensor | null;
  runningMean: Tensor;
  runningVar: Tensor;

  constructor(readonly numFeatures: number, opts: { eps?: number; momentum?: number; affine?: boolean } = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const affine = opts.affine ?? true;
    this.weight = affine ? full([numFeatures], 1) : null;
    this.bias = affine ? zeros([numFeatures]) : null;
    this.runningMean = zeros([numFeatures]);
    this.runningVar = full([numFeatures], 1);
    this.registerParameter("weight", this.weight);
    this.registerParameter("bias", this.bias);
    this.registerBuffer("running_mean", this.runningMean);
    this.registerBuffer("running_var", this.runningVar);
  }

  readonly eps: number;
  readonly momentum: number;
  /**
   * Replaces the training-mode normalisation (batch statistics of this process's batch); null: the default.
   * convertSyncBatchNorm (distributed) sets one with statistics over every rank (TRAIN.SYNC_BN).
   */
  trainingNorm: BatchNormTraining | null = null;

  forward(x: Tensor): Tensor {
    return this.forwardAct(x).y;
  }

  /**
   * forward(x), then the epilogue (a ReLU, the output's range or fake quant) in the same pass where the norm is this
   * process's own; a replaced training norm (SyncBN) runs the ReLU as its own op and does none of the rest.
   */
  forwardAct(x: Tensor, epilogue: BatchNormEpilogue = {}): EpilogueOutput {
    if (this.trainingNorm && this.training) {
      const y = this.trainingNorm(x, this);
      return { y: epilogue.relu ? relu(y) : y, range: null, fakeQuantized: false };
    }
    return batchNormAct(x, this.runningMean, this.runningVar, this.weight, this.bias, this.training, this.momentum, this.eps, epilogue);
  }

  protected override onTensorReplaced(name: string, t: Tensor): void {
    if (name === "weight") this.weight = t;
    if (name === "bias") this.bias = t;
    if (name === "running_mean") this.runningMean = t;
    if (name === "running_var") this.runningVar = t;
  }
}

/** A training-mode batch norm of x with the layer's affine parameters and running statistics. */
export type BatchNormTraining = (x: Tensor, bn: BatchNorm) => Tensor;

export class ReLU extends Layer {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class Identity extends Layer {
  forward(x: Tensor): Tensor {
    return x;
  }
}
