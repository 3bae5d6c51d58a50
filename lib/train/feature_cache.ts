import type { ImageDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import type { Pipeline } from "../data/transforms";
import type { ResNet } from "../nn/resnet";
import { noGrad } from "../tensor/autograd";
import type { Device } from "../tensor/binding";
import { tidy } from "../tensor/scope";
import { tensor, type Tensor } from "../tensor/tensor";
import { toDevice } from "../tensor/transfer";
import { augmentDevice, uploader } from "./device_placement";

/** A pipeline that draws nothing at random: the same image always gives the same tensor. */
export function isDeterministic(p: Pipeline): boolean {
  const s = p.spec;
  return s.geometry.kind !== "randomResizedCrop" && s.hflip === 0 && s.vflip === 0 && s.colorJitter === null && s.grayscale === 0 && s.blur === null;
}

/**
 * The frozen backbone's features of every image of a dataset, computed once. Linear evaluation keeps the whole
 * model in eval mode and the backbone frozen (its quantizers' ranges fixed by calibration), so with a deterministic
 * pipeline an image's feature is the same in every epoch: training the classifier on cached features runs the same
 * steps on the same numbers as running the backbone every time (up to the last bits of batched float32 convolutions).
 * With a random training pipeline (the original's crops and flips) nothing is cached.
 */
export class FeatureCache {
  private constructor(
    private readonly features: Tensor,
    private readonly labels: Int32Array,
    private readonly device: Device,
  ) {}

  static async build(model: ResNet, dataset: ImageDataset, pipeline: Pipeline, batchSize: number, device: Device): Promise<FeatureCache> {
    if (!isDeterministic(pipeline)) throw new Error("FeatureCache: the pipeline is random; features cannot be cached");
    const wasTraining = model.training;
    model.eval();
    const loader = new DataLoader({ dataset, pipeline, batchSize, seed: 0, augmentOn: augmentDevice(device), upload: uploader(device) });
    const parts: Tensor[] = [];
    try {
      for await (const b of loader.epoch(0)) {
        parts.push(noGrad(() => tidy(() => model.features(b.images))));
        b.dispose();
      }
      const h = parts[0].ops.concat(parts.map((t) => t.handle), 0);
      return new FeatureCache(parts[0].wrap(h).keep(), dataset.labels, device);
    } finally {
      for (const t of parts) t.dispose();
      model.train(wasTraining);
    }
  }

  get length(): number {
    return this.features.shape[0];
  }

  /** The features [B, F] and labels [B] of the given dataset indices (a training batch, in its order). */
  batch(indices: Int32Array): { x: Tensor; labels: Tensor; size: number; dispose(): void } {
    const f = this.features;
    const rows = Array.from(indices, (i) => f.wrap(f.ops.narrow(f.handle, 0, i, 1)));
    const x = f.wrap(f.ops.concat(rows.map((r) => r.handle), 0)).keep();
    for (const r of rows) r.dispose();
    const host = tensor(Int32Array.from(indices, (i) => this.labels[i]), [indices.length]);
    const labels = (this.device === "cpu" ? host : toDevice(host, this.device)).keep();
    if (labels !== host) host.dispose();
    return {
      x,
      labels,
      size: indices.length,
      dispose() {
        x.dispose();
        labels.dispose();
      },
    };
  }

  dispose(): void {
    this.features.dispose();
  }
}
