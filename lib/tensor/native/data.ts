import type { NativeTensor as H } from "./core";

/** Resampling filters of PIL's resize (and torch's antialiased interpolate for bilinear/bicubic). */
export type Interpolation = "bilinear" | "bicubic" | "box" | "hamming" | "lanczos";

/**
 * Field offsets of one augmentation record (a run of AUGMENT_RECORD float64 values), mirrored from
 * native/core/augment_math.h. Rows/columns are source pixels; output row i samples around offY + (i + 0.5) * scaleY
 * relative to `top`, reading only rows [top, top + height).
 */
export const AugmentField = {
  src: 0,
  top: 1,
  height: 2,
  left: 3,
  width: 4,
  offY: 5,
  scaleY: 6,
  offX: 7,
  scaleX: 8,
  flags: 9,
  brightness: 10,
  contrast: 11,
  saturation: 12,
  hue: 13,
  order: 14,
  sigma: 18,
} as const;
export const AUGMENT_RECORD = 20;
export const AugmentFlag = { hflip: 1, vflip: 2, jitter: 4, grayscale: 8, blur: 16 } as const;

/** Images of different sizes back to back in one uint8 [total] tensor; image i is [h, w, c] = shapes[3i ..]. */
export interface PackedImages {
  readonly data: H;
  readonly shapes: Int32Array;
}

/**
 * Batch augmentation (native/cpu/augment*.cc on the data pool, native/cuda/augment*.cc on the device stream),
 * with the same arguments, checks and results on both addons: bit for bit except the hamming and lanczos
 * filters, whose sin/cos may differ in the last bit on CUDA.
 */
export interface AugmentOps {
  /**
   * Crop/resize, flips, color jitter, grayscale, blur and normalization of a batch. `images` is one uint8
   * [N, H, W, C] tensor (records index N), a list of uint8 [H, W, C] tensors or PackedImages; C is 1 or 3.
   * `params` holds views * B records; record v * B + b becomes image b of output v. Resolves to `views` float32
   * [B, 3, h, w] on the addon's device (on CUDA at once: the work is queued on the stream).
   */
  augmentBatch(
    images: H | readonly H[] | PackedImages,
    params: Float64Array,
    views: number,
    outSize: readonly [number, number],
    interpolation: Interpolation,
    mean: readonly number[],
    std: readonly number[],
  ): Promise<H[]>;
}

/**
 * Host ops (native/cpu/image_decode.cc, data_pool.cc, knn.cc): the data pipeline, and the kNN monitor's
 * neighbour vote; the CPU addon only.
 */
export interface DataOps {
  /** Reads and decodes JPEG/PNG files to uint8 RGB [H, W, 3]; a failed file gives its error message. */
  decodeImages(paths: readonly string[]): Promise<(H | string)[]>;
  /** Threads of the data pool, which runs all decoding and CPU augmentation (the -j flag; default min(cores, 4)). */
  setDataThreads(n: number): void;
  getDataThreads(): number;
  /**
   * Weighted kNN class scores (InstDisc / SimSiam monitor): for each row of `sim` [B, N] (float32), the k largest
   * similarities (ties to the lower bank index), each adding exp(sim / temperature) to the class of its neighbour
   * in `bankLabels` [N] (int32, in 0..classes-1). Returns float32 [B, classes].
   */
  knnClassScores(sim: H, bankLabels: H, k: number, temperature: number, classes: number): H;
}
