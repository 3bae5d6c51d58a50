/**
 * Random augmentBatch calls for comparing implementations of the op (the CPU op, the CUDA kernels, the CUDA stages
 * run on the host): used by test/native/augment-stages.test.ts and test/gpu/augment_checks.ts.
 */
import type { DeviceOps, NativeTensor } from "../../lib/tensor/native";
import { AUGMENT_RECORD, AugmentField as F, AugmentFlag, type Interpolation } from "../../lib/tensor/native/data";

export const INTERPOLATIONS: readonly Interpolation[] = ["bilinear", "bicubic", "box", "hamming", "lanczos"];

/**
 * Filters whose weights are plain arithmetic: CUDA must match the CPU bit for bit. Hamming and Lanczos call sin/cos,
 * whose last bit may differ between glibc and CUDA; they must stay within TRIG_FILTER_TOLERANCE (normalized error).
 */
export const EXACT_FILTERS: ReadonlySet<Interpolation> = new Set(["bilinear", "bicubic", "box"]);
export const TRIG_FILTER_TOLERANCE = 1e-6;

export interface HostImage {
  readonly data: Uint8Array;
  readonly shape: readonly [number, number, number];
}

export interface AugmentCase {
  readonly images: readonly HostImage[];
  readonly params: Float64Array;
  readonly views: number;
  readonly outSize: readonly [number, number];
  readonly interpolation: Interpolation;
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Odd sizes, 1 and 3 channels; the sources range from smaller than the output (upscaling) to ~6x larger. */
export const MIXED_SOURCES: readonly (readonly [number, number, number])[] = [
  [29, 23, 3], [17, 31, 1], [40, 9, 3], [5, 7, 3], [64, 48, 1], [33, 35, 3],
];

/** Typical decoded ImageNet sizes (downscaling to 224 by up to ~2.2x). */
export const IMAGENET_SIZED_SOURCES: readonly (readonly [number, number, number])[] = [[375, 500, 3], [333, 500, 3], [500, 375, 1], [401, 399, 3]];

/** Every source 29x23x3, for the NHWC batch form. */
export const UNIFORM_SOURCES: readonly (readonly [number, number, number])[] = Array.from({ length: 4 }, () => [29, 23, 3] as const);

/**
 * Two views of 32 records each: every flag combination (flips, jitter, grayscale, blur) once per view, with
 * random-resized-crop, resize + center-crop and off-centre geometries, some jitter adjustments off (NaN), random
 * jitter orders and blur radii, on sources of the given [h, w, c] (default: MIXED_SOURCES).
 */
export function randomAugmentCase(
  seed: number,
  interpolation: Interpolation,
  shapes: readonly (readonly [number, number, number])[] = MIXED_SOURCES,
  outSize: readonly [number, number] = [11, 13],
): AugmentCase {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const images = shapes.map((shape) => ({ data: Uint8Array.from({ length: shape[0] * shape[1] * shape[2] }, () => int(256)), shape }));
  const views = 2, perView = 32;
  const [oh, ow] = outSize;
  const params = new Float64Array(views * perView * AUGMENT_RECORD);
  for (let i = 0; i < views * perView; i++) {
    const r = params.subarray(i * AUGMENT_RECORD, (i + 1) * AUGMENT_RECORD);
    const src = int(images.length);
    const [H, W] = images[src].shape;
    r[F.src] = src;
    const geometry = int(3);
    if (geometry === 1) {
      // Resize(rh x rw) of the whole image, then a centre crop carried as an offset in source pixels.
      const rh = oh + int(oh), rw = ow + int(ow);
      r[F.height] = H;
      r[F.width] = W;
      r[F.scaleY] = H / rh;
      r[F.scaleX] = W / rw;
      r[F.offY] = Math.floor((rh - oh) / 2) * r[F.scaleY];
      r[F.offX] = Math.floor((rw - ow) / 2) * r[F.scaleX];
    } else {
      const h = 1 + int(H), w = 1 + int(W);
      r[F.top] = int(H - h + 1);
      r[F.left] = int(W - w + 1);
      r[F.height] = h;
      r[F.width] = w;
      r[F.scaleY] = h / oh;
      r[F.scaleX] = w / ow;
      // Off-centre sampling: some windows miss the region and read its nearest edge pixel.
      if (geometry === 2) {
        r[F.offY] = (rnd() - 0.5) * 4 * r[F.scaleY];
        r[F.offX] = (rnd() - 0.5) * 4 * r[F.scaleX];
      }
    }
    const flags = i < perView ? i : (i * 7 + 3) % perView;
    r[F.flags] = flags;
    if (flags & AugmentFlag.jitter) {
      const order = [0, 1, 2, 3];
      for (let k = 3; k > 0; k--) {
        const j = int(k + 1);
        [order[k], order[j]] = [order[j], order[k]];
      }
      order.forEach((v, k) => (r[F.order + k] = v));
      for (let k = 0; k < 3; k++) r[F.brightness + k] = rnd() < 0.2 ? NaN : 0.3 + 1.4 * rnd();
      r[F.hue] = rnd() < 0.2 ? NaN : rnd() - 0.5;
    }
    if (flags & AugmentFlag.blur) r[F.sigma] = 0.1 + 2.4 * rnd();
  }
  return { images, params, views, outSize, interpolation, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
}

/** All images back to back, with [h, w, c] per image: the packed form of augmentBatch's `images`. */
export function packImages(images: readonly HostImage[]): { data: Uint8Array; shapes: Int32Array } {
  const data = new Uint8Array(images.reduce((n, im) => n + im.data.length, 0));
  let at = 0;
  for (const im of images) {
    data.set(im.data, at);
    at += im.data.length;
  }
  return { data, shapes: Int32Array.from(images.flatMap((im) => [...im.shape])) };
}

export type ImageForm = "list" | "packed" | "nhwc";

/** Runs a case on an addon with its images in one of the three forms; the views concatenated, as host floats. */
export async function runAugmentCase(ops: DeviceOps, c: AugmentCase, form: ImageForm): Promise<Float32Array> {
  const handles: NativeTensor[] = [];
  const up = (data: Uint8Array, shape: readonly number[]) => {
    handles.push(ops.fromArray(data, shape));
    return handles[handles.length - 1];
  };
  try {
    let images: NativeTensor | NativeTensor[] | { data: NativeTensor; shapes: Int32Array };
    if (form === "list") images = c.images.map((im) => up(im.data, im.shape));
    else {
      const p = packImages(c.images);
      images = form === "packed" ? { data: up(p.data, [p.data.length]), shapes: p.shapes } : up(p.data, [c.images.length, ...c.images[0].shape]);
    }
    const outs = await ops.augmentBatch(images, c.params, c.views, c.outSize, c.interpolation, c.mean, c.std);
    handles.push(...outs);
    const parts = outs.map((h) => ops.toArray(h) as Float32Array);
    const flat = new Float32Array(parts.reduce((n, a) => n + a.length, 0));
    parts.reduce((at, a) => (flat.set(a, at), at + a.length), 0);
    return flat;
  } finally {
    for (const h of handles) ops.dispose(h);
  }
}

/** Elements whose bits differ, and the first one. */
export function bitDifferences(got: Float32Array, want: Float32Array): { count: number; first?: string } {
  if (got.length !== want.length) return { count: Math.max(got.length, want.length), first: `length ${got.length} vs ${want.length}` };
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length), b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let count = 0;
  let first: string | undefined;
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i] && count++ === 0) first = `[${i}] ${got[i]} vs ${want[i]}`;
  return { count, first };
}
