import type { ProcessGroup } from "../distributed/process_group";
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
import { keyPermutation, shuffledKeys } from "./key_shuffle";
import { average } from "./losses";
import { SslMethod, type SslMethodState, type StepOutput } from "./method";
import { copyWeights, freeze, momentumUpdate } from "./momentum";
import { ssqlPasses } from "./ssql";
import { freeTemporaries } from "../tensor/scope";

/** A step's keys: this rank's (for its logits) and the global batch's (for the queue). */
interface Keys {
  local: Tensor;
  global: Tensor;
}

/**
 * MoCo v2 (§4.6): a momentum key encoder and a queue of K keys; logits [q·k, q·queue] / T with the positive at
 * index 0. With a process group (the constructor's `group`) the keys come from the shuffle-BN across ranks and the queue
 * takes the keys of the global batch, as the original; in one process the batch is encoded as it is (the
 * original's in-batch permutation is invisible to BN statistics).
 */
export class MoCo extends SslMethod {
  queue: Tensor;
  queuePtr = 0;
  /** Key batches encoded so far; the shuffle of step s is keyPermutation(seed, s), so a resumed run continues it. */
  keySteps = 0;
  /** The permutation of the last shuffled global batch (null in one process). */
  lastPermutation: Int32Array | null = null;
  /** Every step enqueues exactly the global batch, so the last partial batch is dropped (as the original). */
  override readonly dropLast: boolean = true;
  private readonly group: ProcessGroup | null;
  private readonly shuffleSeed: number;

  constructor(
    readonly encoder: ResNet,
    readonly keyEncoder: ResNet,
    readonly dim: number,
    readonly queueSize: number,
    protected readonly momentum: number,
    protected readonly temperature: number,
    gen: RandomGenerator,
    /** The ranks of a multi-process run (the forward itself communicates); null: a single process. */
    group: ProcessGroup | null = null,
  ) {
    super();
    this.group = group && group.size > 1 ? group : null;
    this.registerModule("encoder", encoder as Module);
    this.registerModule("encoder_k", keyEncoder as Module);
    copyWeights(keyEncoder, encoder);
    freeze(keyEncoder);
    this.queue = noGrad(() => normalize(gen.normal([dim, queueSize]), 0)).keep();
    this.registerBuffer("queue", this.queue);
    this.shuffleSeed = gen.seed;
  }

  /** Throws unless the queue takes whole global batches (the original asserts K % batch_size == 0). */
  override checkBatch(perProcess: number, ranks: number): void {
    const b = perProcess * ranks;
    if (this.queueSize % b !== 0)
      throw new RangeError(
        `MoCo: SSL.SETTING.MOCO_K (${this.queueSize}) must be a multiple of the global batch (${b}${ranks > 1 ? ` = ${perProcess} per process x ${ranks} processes` : ""})`,
      );
  }

  protected keys(xk: Tensor): Keys {
    this.checkBatch(xk.shape[0], this.group?.size ?? 1);
    const step = this.keySteps++;
    return noGrad(() => {
      momentumUpdate(this.keyEncoder, this.encoder, this.momentum);
      const encode = (x: Tensor) => normalize(this.keyEncoder.forward(x), 1);
      if (!this.group) {
        const k = encode(xk);
        return { local: k, global: k };
      }
      const r = shuffledKeys(this.group, xk, (n) => keyPermutation(this.shuffleSeed, step, n), encode);
      this.lastPermutation = r.permutation;
      return r;
    });
  }

  /**
   * The queue as this step's logits see it: a copy, because enqueue() overwrites the queue in place before the
   * backward reads it (the original's queue.clone().detach()).
   */
  protected queueSnapshot(): Tensor {
    return this.queue.wrap(this.queue.ops.clone(this.queue.handle));
  }

  protected logits(q: Tensor, k: Tensor, queue: Tensor): Tensor {
    const pos = sum(mul(q, detach(k)), 1, true);
    const neg = matmul(q, queue);
    return mulScalar(concat([pos, neg], 1), 1 / this.temperature);
  }

  protected loss(logits: Tensor): Tensor {
    const labels = zeros([logits.shape[0]], logits.device, "int32");
    return crossEntropy(logits, labels);
  }

  /** Writes the global batch's keys [b, dim] at queuePtr (b divides K, checked in keys()). */
  protected enqueue(k: Tensor): void {
    const b = k.shape[0];
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

  override state(): SslMethodState {
    return { ...super.state(), queuePtr: this.queuePtr, keySteps: this.keySteps };
  }

  override loadState(s: SslMethodState): void {
    super.loadState(s);
    if (s.queuePtr !== undefined) {
      if (s.queuePtr >= this.queueSize) throw new RangeError(`MoCo: a saved queue pointer of ${s.queuePtr} does not fit the queue of ${this.queueSize} keys`);
      this.queuePtr = s.queuePtr;
    }
    if (s.keySteps !== undefined) this.keySteps = s.keySteps;
  }

  step(xq: Tensor, xk: Tensor): StepOutput {
    return freeTemporaries(() => {
      const q = normalize(this.encoder.forward(xq), 1);
      const k = this.keys(xk);
      const loss = this.loss(this.logits(q, k.local, this.queueSnapshot()));
      this.enqueue(k.global);
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
    group: ProcessGroup | null = null,
  ) {
    super(encoder, keyEncoder, dim, queueSize, momentum, temperature, gen, group);
    this.bitSampler = bits;
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
      const queue = this.queueSnapshot();
      const loss = average(this.loss(this.logits(r.q, k.local, queue)), this.loss(this.logits(r.fp, k.local, queue)));
      this.enqueue(k.global);
      return { loss, bits: r.bits };
    });
  }
}
