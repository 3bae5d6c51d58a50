import { cpuOps } from "../tensor/binding";
import { Tensor } from "../tensor/tensor";

export type Mode = "train" | "validation";

/** The source images of one batch, before augmentation. */
export interface SourceBatch {
  /** One uint8 [N, H, W, C] tensor (in-memory datasets) or one uint8 [H, W, C] tensor per image. */
  readonly images: Tensor | readonly Tensor[];
  /** For each kept sample, its index into `images`. */
  readonly src: Int32Array;
  /** For each kept sample, its source [height, width]. */
  readonly sizes: readonly (readonly [number, number])[];
  readonly labels: Int32Array;
  /** Samples dropped because their file could not be decoded (onCorrupt: "skip"). */
  readonly skipped: readonly string[];
  /** Frees what this batch alone owns (decoded images); never the dataset's own tensor. */
  dispose(): void;
}

export interface ImageDataset {
  readonly name: string;
  readonly mode: Mode;
  /** Folder the data was read from. */
  readonly location: string;
  readonly length: number;
  readonly classes: readonly string[];
  readonly labels: Int32Array;
  load(indices: Int32Array): Promise<SourceBatch>;
  dispose(): void;
}

/**
 * A dataset held in memory as one uint8 NHWC tensor (CIFAR, Fashion-MNIST). NHWC is the layout decoders and
 * PIL produce; the augmentation reads it and writes NCHW float batches.
 */
export class InMemoryDataset implements ImageDataset {
  readonly images: Tensor;
  readonly height: number;
  readonly width: number;

  constructor(
    readonly name: string,
    readonly mode: Mode,
    readonly location: string,
    pixels: Uint8Array,
    shape: readonly [number, number, number, number],
    readonly labels: Int32Array,
    readonly classes: readonly string[],
  ) {
    if (labels.length !== shape[0]) throw new RangeError(`${name}: ${labels.length} labels for ${shape[0]} images`);
    this.images = new Tensor(cpuOps().fromArray(pixels, shape), "cpu", shape).keep();
    this.height = shape[1];
    this.width = shape[2];
  }

  get length(): number {
    return this.labels.length;
  }

  async load(indices: Int32Array): Promise<SourceBatch> {
    const size = [this.height, this.width] as const;
    const labels = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) {
      const k = indices[i];
      if (!(k >= 0 && k < this.length)) throw new RangeError(`${this.name}: index ${k} is outside [0, ${this.length})`);
      labels[i] = this.labels[k];
    }
    return { images: this.images, src: Int32Array.from(indices), sizes: Array.from(indices, () => size), labels, skipped: [], dispose() {} };
  }

  dispose(): void {
    this.images.dispose();
  }
}
