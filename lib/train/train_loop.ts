import type { DistributedDataParallel } from "../distributed/ddp";
import type { SGD } from "../optim/sgd";
import { backward } from "../tensor/autograd";
import { tidy } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import type { Progress } from "./progress";

/** What the loop needs of a batch: its size for the throughput, and to free it after the step. */
export interface TrainBatch {
  readonly size: number;
  dispose(): void;
}

/** One step's forward: the loss to back-propagate and, for SSQL, the bits it drew. */
export interface StepResult {
  loss: Tensor;
  bits?: { w: number; a: number };
}

export interface StepReport<B> {
  epoch: number;
  /** 1-based step within the epoch. */
  step: number;
  batch: B;
  loss: number;
  lr: number;
  bits?: { w: number; a: number };
}

export interface EpochReport {
  epoch: number;
  meanLoss: number;
  lr: number;
  steps: number;
  seconds: number;
  /** Images of the epoch over all processes, for its throughput. */
  images: number;
}

/**
 * The training loop's hooks: what differs between SSL pretraining and linear evaluation / fine-tuning. The loop
 * itself does the rest, the same for every command: set the epoch's learning rate, broadcast buffers and sync
 * gradients under DDP, back-propagate, step and zero the optimizer, check the loss is finite, report progress.
 */
export interface TrainLoop<B extends TrainBatch> {
  readonly optimizer: SGD;
  readonly ddp: DistributedDataParallel | null;
  /** Under DDP, broadcast rank 0's buffers (BN running statistics) before every step. */
  readonly broadcastBuffers: boolean;
  /** The schedule's length (TRAIN.EPOCHS), shown in progress. */
  readonly epochs: number;
  /** Steps per epoch, shown in progress. */
  readonly steps: number;
  /** Processes whose batches make one global step (for the images/s shown). */
  readonly processes: number;
  readonly progress: Progress;
  /** Names what trains (a bit setting, "4w4f") in progress lines and, as "[4w4f] ", in errors. */
  readonly label?: string;
  /** Extra text for the progress line (ssl: the latest kNN accuracies). */
  status?(): string | undefined;
  lr(epoch: number): number;
  batches(epoch: number): AsyncIterable<B> | Iterable<B>;
  beforeEpoch?(epoch: number): void;
  /** The forward pass and loss of one batch; runs inside the step's tensor scope, the loop back-propagates. */
  forward(batch: B): StepResult;
  /** After the optimizer step (an SSL method's afterStep). */
  afterStep?(): void;
  onStep?(report: StepReport<B>): void;
  afterEpoch?(report: EpochReport): Promise<void> | void;
}

/** Trains epochs [from, to) and returns each epoch's mean loss. */
export async function trainEpochs<B extends TrainBatch>(loop: TrainLoop<B>, from: number, to: number): Promise<number[]> {
  const losses: number[] = [];
  loop.progress.beginRun(from, to);
  let steps = 0;
  for (let epoch = from; epoch < to; epoch++) {
    loop.progress.beginEpoch(epoch, steps);
    const r = await trainEpoch(loop, epoch);
    losses.push(r.meanLoss);
    steps += r.steps;
  }
  return losses;
}

async function trainEpoch<B extends TrainBatch>(loop: TrainLoop<B>, epoch: number): Promise<EpochReport> {
  const { optimizer, ddp, progress } = loop;
  const prefix = loop.label ? `[${loop.label}] ` : "";
  const lr = loop.lr(epoch);
  for (const g of optimizer.paramGroups) g.lr = lr;
  loop.beforeEpoch?.(epoch);
  const t0 = Date.now();
  let sum = 0;
  let count = 0;
  let images = 0;
  for await (const batch of loop.batches(epoch)) {
    if (ddp && loop.broadcastBuffers) await ddp.broadcastBuffers();
    let bits: StepResult["bits"];
    const loss: Tensor = tidy(() => {
      const out = loop.forward(batch);
      bits = out.bits;
      if (ddp) ddp.backward(out.loss);
      else backward(out.loss);
      return out.loss;
    });
    if (ddp) await ddp.finishGradientSync();
    optimizer.step();
    optimizer.zeroGrad();
    loop.afterStep?.();
    const value = await loss.item();
    loss.dispose();
    images += batch.size * loop.processes;
    batch.dispose();
    if (!Number.isFinite(value)) throw new Error(`${prefix}the loss became ${value} at epoch ${epoch}, step ${count}; lower TRAIN.LR_SCHEDULER.BASE_LR`);
    sum += value;
    count++;
    const secs = (Date.now() - t0) / 1000;
    const extra = [loop.label, bits && `bits ${bits.w}w${bits.a}f`, loop.status?.()].filter(Boolean).join(" ") || undefined;
    progress.update({ epoch, epochs: loop.epochs, step: count, steps: loop.steps, loss: value, lr, imagesPerSec: images / Math.max(secs, 1e-3), extra });
    loop.onStep?.({ epoch, step: count, batch, loss: value, lr, bits });
  }
  const report: EpochReport = { epoch, meanLoss: sum / Math.max(1, count), lr, steps: count, seconds: (Date.now() - t0) / 1000, images };
  await loop.afterEpoch?.(report);
  return report;
}
