import type { Device } from "../tensor/binding";
import { tensor, type Tensor } from "../tensor/tensor";
import { augment } from "./augment";
import type { ImageDataset } from "./dataset";
import { Rng } from "../tensor/prng";
import { DistributedSampler, batchIndices, type Sampler } from "./sampler";
import type { Pipeline } from "./transforms";

export interface Batch {
  /** The first (or only) view: float32 [B, 3, h, w] on the device it was augmented on (augmentOn). */
  readonly images: Tensor;
  /** Every view; two for the SSL pipeline (TwoCropsTransform). */
  readonly views: readonly Tensor[];
  /** int32 [B]. */
  readonly labels: Tensor;
  readonly size: number;
  /** Position of this batch in its epoch. */
  readonly index: number;
  /** Files left out of this batch because they could not be decoded. */
  readonly skipped: readonly string[];
  dispose(): void;
}

export interface LoaderOptions {
  readonly dataset: ImageDataset;
  readonly pipeline: Pipeline;
  /** Per-process batch size. */
  readonly batchSize: number;
  /** Default: every index in order (the validation loader). */
  readonly sampler?: Sampler;
  /** Drop the last partial batch (an SSL method's dropLast). */
  readonly dropLast?: boolean;
  /** Augmentation draws come from Rng(seed, rank, epoch, batch index). */
  readonly seed: number;
  readonly rank?: number;
  /** Batches prepared ahead of the one being consumed (default 2). */
  readonly prefetch?: number;
  /**
   * Where batches are augmented (default "cpu": on the data pool). "cuda" uploads each batch's uint8 sources and
   * augments them on the GPU, with the same draws and values; labels stay on the CPU for `upload`.
   */
  readonly augmentOn?: Device;
  /** Moves a finished batch to the training device (the CUDA upload hook); runs ahead with the prefetch. */
  readonly upload?: (batch: Batch) => Batch | Promise<Batch>;
}

/**
 * Batches of augmented images, prepared `prefetch` batches ahead: decoding and augmentation run on the
 * native data pool (or augmentation on the GPU, queued behind the step), so they overlap the training step that
 * consumes the current batch.
 */
export class DataLoader {
  readonly sampler: Sampler;
  /** Files skipped as undecodable since this loader was made, omitted batches included. */
  skippedCount = 0;
  private readonly o: LoaderOptions;

  constructor(o: LoaderOptions) {
    this.o = o;
    this.sampler = o.sampler ?? new DistributedSampler({ length: o.dataset.length, shuffle: false });
    if (this.sampler.length !== o.dataset.length)
      throw new RangeError(`DataLoader: the sampler covers ${this.sampler.length} samples, the dataset has ${o.dataset.length}`);
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`DataLoader: batch size must be a positive integer, got ${o.batchSize}`);
    if (this.sampler.batchSize !== undefined && this.sampler.batchSize !== o.batchSize)
      throw new RangeError(`DataLoader: the sampler lays out batches of ${this.sampler.batchSize}, the loader's batch size is ${o.batchSize}`);
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.sampler.numSamples;
    return this.o.dropLast ? Math.floor(n / this.o.batchSize) : Math.ceil(n / this.o.batchSize);
  }

  /**
   * The batches of one epoch (the sampler's setEpoch happens here), from `startBatch` on so that a resumed
   * run sees exactly the batches an uninterrupted one would have.
   */
  async *epoch(epoch: number, startBatch = 0): AsyncGenerator<Batch, void, undefined> {
    this.sampler.setEpoch(epoch);
    const batches = batchIndices(this.sampler.indices(), this.o.batchSize, this.o.dropLast ?? false);
    const depth = Math.max(1, this.o.prefetch ?? 2);
    const pending: Promise<Batch | null>[] = [];
    let next = startBatch;
    const fill = () => {
      while (pending.length < depth && next < batches.length) {
        const p = this.make(epoch, next, batches[next]);
        p.catch(() => {}); // surfaced when awaited below; avoids an unhandled rejection while queued
        pending.push(p);
        next++;
      }
    };
    try {
      fill();
      while (pending.length) {
        const p = pending.shift()!;
        fill();
        const b = await p;
        if (b) yield b;
      }
    } finally {
      // Stopped early (break, error): free what was prepared ahead.
      for (const p of pending) p.then((b) => b?.dispose(), () => {});
    }
  }

  /** One batch, or null when every file in it was skipped as undecodable. */
  private async make(epoch: number, index: number, indices: Int32Array): Promise<Batch | null> {
    const rng = Rng.fromSeed(this.o.seed, this.o.rank ?? 0, epoch, index);
    const src = await this.o.dataset.load(indices);
    this.skippedCount += src.skipped.length;
    if (src.src.length === 0) return null;
    let views: Tensor[];
    try {
      views = await augment(this.o.pipeline, rng, src, this.o.augmentOn ?? "cpu");
    } finally {
      src.dispose();
    }
    const labels = tensor(src.labels, [src.labels.length]).keep();
    const batch: Batch = {
      images: views[0],
      views,
      labels,
      size: src.labels.length,
      index,
      skipped: src.skipped,
      dispose() {
        for (const v of views) v.dispose();
        labels.dispose();
      },
    };
    return this.o.upload ? this.o.upload(batch) : batch;
  }
}
