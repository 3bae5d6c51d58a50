import type { DataLoader } from "../data/loader";
import { allReduceCounts, allReduceSum } from "../distributed/reduce_metrics";
import type { ProcessGroup } from "../distributed/process_group";
import type { Layer } from "../nn/module";
import { noGrad } from "../tensor/autograd";
import { crossEntropy, topkCorrect } from "../tensor/ops/loss";
import { tidy } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";

export interface Accuracy {
  /** Percent of images whose label is the top prediction. */
  top1: number;
  /** Percent with the label among the 5 top predictions (among all of them with fewer than 5 classes). */
  top5: number;
  /** Mean cross-entropy. */
  loss: number;
  images: number;
}

/** A batch of inputs (images, or cached features) with their labels. */
export interface LabelledBatch {
  readonly x: Tensor;
  readonly labels: Tensor;
  readonly size: number;
  dispose(): void;
}

/** The loader's batches of one epoch as LabelledBatches. */
export async function* loaderBatches(loader: DataLoader, epoch: number): AsyncGenerator<LabelledBatch> {
  for await (const b of loader.epoch(epoch)) yield { x: b.images, labels: b.labels, size: b.size, dispose: () => b.dispose() };
}

/**
 * Top-1/top-5 accuracy and mean loss of `forward` over `batches`, without gradients (the caller sets eval mode).
 * With a process group each rank passes its own shard of the set and the counts are summed over the ranks, so
 * every rank returns the accuracy of the whole set; every rank must call it, whatever the size of its shard.
 */
export async function accuracy(
  forward: (x: Tensor) => Tensor,
  batches: AsyncIterable<LabelledBatch> | Iterable<LabelledBatch>,
  numClasses: number,
  group: ProcessGroup | null = null,
): Promise<Accuracy> {
  const ks = [1, Math.min(5, numClasses)];
  let c1 = 0;
  let c5 = 0;
  let lossSum = 0;
  let images = 0;
  for await (const batch of batches) {
    const [counts, loss] = noGrad(() =>
      tidy((): [Tensor, Tensor] => {
        const logits = forward(batch.x);
        return [topkCorrect(logits, batch.labels, ks), crossEntropy(logits, batch.labels)];
      }),
    );
    const [c, l] = await Promise.all([counts.toArray(), loss.item()]);
    counts.dispose();
    loss.dispose();
    c1 += Number(c[0]);
    c5 += Number(c[1]);
    lossSum += l * batch.size;
    images += batch.size;
    batch.dispose();
  }
  // One fixed pair of collectives after the loop: the ranks' shards may hold different numbers of batches.
  [c1, c5, images] = await allReduceCounts(group, [c1, c5, images]);
  [lossSum] = await allReduceSum(group, [lossSum]);
  if (images === 0) throw new Error("evaluation: the validation set gave no images");
  return { top1: (100 * c1) / images, top5: (100 * c5) / images, loss: lossSum / images, images };
}

/**
 * Top-1/top-5 accuracy and mean loss of `model` over every batch of `loader`, in eval mode, without gradients;
 * with a process group, over the union of the ranks' loaders (each a shard, e.g. a DistributedEvalSampler's).
 */
export async function evaluate(model: Layer, loader: DataLoader, numClasses: number, group: ProcessGroup | null = null): Promise<Accuracy> {
  const wasTraining = model.training;
  model.eval();
  try {
    return await accuracy((x) => model.forward(x), loaderBatches(loader, 0), numClasses, group);
  } finally {
    model.train(wasTraining);
  }
}
