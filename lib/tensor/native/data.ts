import type { NativeTensor as H } from "./core";

/** Resampling filters of PIL's resize (and torch's antialiased interpolate for bilinear/bicubic). */
export type Interpolation = "bilinear" | "bicubic" | "box" | "hamming" | "lanczos";

/**
 * Field offsets of one augmentation record (a run of AUGMENT_RECORD float64 values), mirrored from
 * native/cpu/augment.h. Rows/columns are source pixels; output row i samples around offY + (i + 0.5) * scaleY
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

/** Data-pipeline ops (native/cpu/augment*.cc, image_decode.cc, data_pool.cc); both run on the data pool. */
export interface DataOps {
  /**
   * Crop/resize, flips, color jitter, grayscale, blur and normalization of a batch. `images` is one uint8
   * [N, H, W, C] tensor (records index N) or a list of uint8 [H, W, C] tensors; C is 1 or 3. `params` holds
   * views * B records; record v * B + b becomes image b of output v. Resolves to `views` float32 [B, 3, h, w].
   */
  augmentBatch(
    images: H | readonly H[],
    params: Float64Array,
    views: number,
    outSize: readonly [number, number],
    interpolation: Interpolation,
    mean: readonly number[],
    std: readonly number[],
  ): Promise<H[]>;
  /** Reads and decodes JPEG/PNG files to uint8 RGB [H, W, 3]; a failed file gives its error message. */
  decodeImages(paths: readonly string[]): Promise<(H | string)[]>;
  /** Threads of the data pool, which runs all decoding and augmentation (the -j flag; default min(cores, 4)). */
  setDataThreads(n: number): void;
  getDataThreads(): number;
}
