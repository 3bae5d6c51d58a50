import type { Module } from "../nn/module";
import type { ResNet } from "../nn/resnet";
import type { QuantizedEncoder } from "../quant/quant_model";
import type { BitSampler } from "../quant/sampling";
import { detach, noGrad } from "../tensor/autograd";
import { mul, mulScalar } from "../tensor/ops/elementwise";
import { matmul } from "../tensor/ops/linear";
import { crossEntropy } from "../tensor/ops/loss";
import type { Generator as RandomGenerator } from "../tensor/ops/random";
import { sum } from "../tensor/ops/reduce";
import { concat, narrow, transpose } from "../tensor/ops/shape";
import { normalize } from "../tensor/ops/norm";
import { type Tensor, zeros } from "../tensor/tensor";
import { average } from "./losses";
import { SslMethod, type StepOutput } from "./method";
import { copyWeights, freeze, momentumUpdate } from "./momentum";
import { ssqlPasses } from "./ssql";
import { freeTemporaries } from "../tensor/scope";

/**
 * MoCo v2 (§4.6) in its single-process form: a momentum key encoder and a queue of K keys; logits
 * [q·k, q·queue] / T with the positive at index 0. The multi-process shuffle-BN and key all-gather come from
 * the distributed layer.
 */
export class MoCo extends SslMethod {
  queue: Tensor;
  queuePtr = 0;

  constructor(
    readonly encoder: ResNet,
    readonly keyEncoder: ResNet,
    readonly dim: number,
    readonly queueSize: number,
    protected readonly momentum: number,
    protected readonly temperature: number,
    gen: RandomGenerator,
  ) {
    super();
    this.registerModule("encoder", encoder as Module);
    this.registerModule("encoder_k", keyEncoder as Module);
    copyWeights(keyEncoder, encoder);
    freeze(keyEncoder);
    this.queue = noGrad(() => normalize(gen.normal([dim, queueSize]), 0)).keep();
    this.registerBuffer("queue", this.queue);
  }

  protected keys(xk: Tensor): Tensor {
    return noGrad(() => {
      momentumUpdate(this.keyEncoder, this.encoder, this.momentum);
      return normalize(this.keyEncoder.forward(xk), 1);
    });
  }

  protected logits(q: Tensor, k: Tensor): Tensor {
    const pos = sum(mul(q, detach(k)), 1, true);
    const neg = matmul(q, detach(this.queue));
    return mulScalar(concat([pos, neg], 1), 1 / this.temperature);
  }

  protected loss(logits: Tensor): Tensor {
    const labels = zeros([logits.shape[0]], logits.device, "int32");
    return crossEntropy(logits, labels);
  }

  protected enqueue(k: Tensor): void {
    const b = k.shape[0];
    if (this.queueSize % b !== 0) throw new RangeError(`MoCo: SSL.SETTING.MOCO_K (${this.queueSize}) must be a multiple of the global batch (${b})`);
    const p = this.queuePtr;
    const updated = noGrad(() => {
      const parts = [];
      if (p > 0) parts.push(narrow(this.queue, 1, 0, p));
      parts.push(transpose(k));
      if (p + b < this.queueSize) parts.push(narrow(this.queue, 1, p + b, this.queueSize - p - b));
      return concat(parts, 1);
    });
    this.queue.ops.copy_(this.queue.handle, updated.handle);
    updated.dispose();
    this.queuePtr = (p + b) % this.queueSize;
  }

  step(xq: Tensor, xk: Tensor): StepOutput {
    return freeTemporaries(() => {
      const q = normalize(this.encoder.forward(xq), 1);
      const k = this.keys(xk);
      const loss = this.loss(this.logits(q, k));
      this.enqueue(k);
      return { loss };
    });
  }
}

/** SSQL on MoCo v2 (§4.7): FP and quantized queries against the same keys and queue; L = (CE + CE_fp) / 2. */
export class SSQLMoCo extends MoCo {
  constructor(
    encoder: ResNet,
    keyEncoder: ResNet,
    dim: number,
    queueSize: number,
    momentum: number,
    temperature: number,
    gen: RandomGenerator,
    private readonly quant: QuantizedEncoder,
    private readonly bits: BitSampler,
  ) {
    super(encoder, keyEncoder, dim, queueSize, momentum, temperature, gen);
  }

  override step(xq: Tensor, xk: Tensor): StepOutput {
    return freeTemporaries(() => {
      const r = ssqlPasses(
        this.quant,
        this.bits,
        () => normalize(this.encoder.forward(xq), 1),
        () => normalize(this.encoder.forward(xq), 1),
      );
      const k = this.keys(xk);
      const loss = average(this.loss(this.logits(r.q, k)), this.loss(this.logits(r.fp, k)));
      this.enqueue(k);
      return { loss, bits: r.bits };
    });
  }
}
