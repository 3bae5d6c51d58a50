import type { DataLoader } from "../data/loader";
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

/** Top-1/top-5 accuracy and mean loss of `model` over every batch of `loader`, in eval mode, without gradients. */
export async function evaluate(model: Layer, loader: DataLoader, numClasses: number): Promise<Accuracy> {
  const wasTraining = model.training;
  model.eval();
  const ks = [1, Math.min(5, numClasses)];
  let c1 = 0;
  let c5 = 0;
  let lossSum = 0;
  let images = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      const [counts, loss] = noGrad(() =>
        tidy((): [Tensor, Tensor] => {
          const logits = model.forward(batch.images);
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
  } finally {
    model.train(wasTraining);
  }
  if (images === 0) throw new Error("evaluation: the validation loader gave no images");
  return { top1: (100 * c1) / images, top5: (100 * c5) / images, loss: lossSum / images, images };
}
