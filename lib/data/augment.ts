import { cpuOps, cudaOps, type Device } from "../tensor/binding";
import { AUGMENT_RECORD, AugmentField, type PackedImages } from "../tensor/native/data";
import type { NativeTensor } from "../tensor/native";
import { Tensor } from "../tensor/tensor";
import type { SourceBatch } from "./dataset";
import type { Rng } from "../tensor/prng";
import { outputSize, sampleRecord, type Pipeline } from "./transforms";

/**
 * Draws every image's parameters for all views (view-major: record v * B + b) and checks that the batch has
 * one output size.
 */
export function sampleBatchParams(pipeline: Pipeline, rng: Rng, src: SourceBatch): { params: Float64Array; outSize: [number, number] } {
  const n = src.src.length;
  const params = new Float64Array(pipeline.views * n * AUGMENT_RECORD);
  let outSize: [number, number] | undefined;
  for (let v = 0; v < pipeline.views; v++) {
    for (let b = 0; b < n; b++) {
      const [h, w] = src.sizes[b];
      const [oh, ow] = outputSize(pipeline.spec, h, w);
      if (!outSize) outSize = [oh, ow];
      else if (outSize[0] !== oh || outSize[1] !== ow)
        throw new RangeError(`augmentation yields images of different sizes (${outSize.join("x")} and ${oh}x${ow}); a Resize without CenterCrop needs equal aspect ratios`);
      sampleRecord(pipeline.spec, rng, src.src[b], h, w, params, (v * n + b) * AUGMENT_RECORD);
    }
  }
  return { params, outSize: outSize ?? [1, 1] };
}

/**
 * Runs the pipeline on a batch and resolves to one float32 [B, 3, h, w] tensor per view on `device`: on the CPU
 * on the data pool; on CUDA, the batch's uint8 sources are uploaded in one copy and augmented there (the same
 * draws, and the same values bit for bit except hamming/lanczos resampling).
 */
export async function augment(pipeline: Pipeline, rng: Rng, src: SourceBatch, device: Device = "cpu"): Promise<Tensor[]> {
  const { params, outSize } = sampleBatchParams(pipeline, rng, src);
  const s = pipeline.spec;
  if (device === "cpu") {
    const images = Array.isArray(src.images) ? (src.images as Tensor[]).map((t) => t.handle) : (src.images as Tensor).handle;
    const out = await cpuOps().augmentBatch(images, params, pipeline.views, outSize, s.interpolation, s.mean, s.std);
    return out.map((h) => new Tensor(h, "cpu").keep());
  }
  const cuda = cudaOps();
  const { images, uploaded } = uploadSources(src, params, (data, shape) => cuda.fromArray(data, shape));
  try {
    const out = await cuda.augmentBatch(images, params, pipeline.views, outSize, s.interpolation, s.mean, s.std);
    return out.map((h) => new Tensor(h, "cuda").keep());
  } finally {
    // Stream-ordered: the kernels queued above still read it; its block is reused only by later work.
    cuda.dispose(uploaded);
  }
}

/**
 * The batch's source images (in sample order, so record src fields are rewritten to the sample index) in one
 * upload: the NHWC rows of an in-memory dataset, or decoded images of any sizes packed back to back.
 */
export function uploadSources(
  src: SourceBatch,
  params: Float64Array,
  upload: (data: Uint8Array, shape: number[]) => NativeTensor,
): { images: NativeTensor | PackedImages; uploaded: NativeTensor } {
  const cpu = cpuOps();
  const n = src.src.length;
  for (let r = 0; r < params.length / AUGMENT_RECORD; r++) params[r * AUGMENT_RECORD + AugmentField.src] = r % n;
  const whole = Array.isArray(src.images) ? null : (src.images as Tensor);
  const pieces: NativeTensor[] = [];
  let joined: NativeTensor | undefined;
  try {
    for (let b = 0; b < n; b++) {
      if (whole) pieces.push(cpu.narrow(whole.handle, 0, src.src[b], 1));
      else {
        const t = (src.images as readonly Tensor[])[src.src[b]];
        pieces.push(cpu.reshape(t.handle, [t.numel]));
      }
    }
    joined = cpu.concat(pieces, 0);
    const data = cpu.toArray(joined) as Uint8Array;
    if (whole) {
      const uploaded = upload(data, [n, ...whole.shape.slice(1)]);
      return { images: uploaded, uploaded };
    }
    const shapes = Int32Array.from({ length: 3 * n }, (_, i) => (src.images as readonly Tensor[])[src.src[Math.floor(i / 3)]].shape[i % 3]);
    const uploaded = upload(data, [data.length]);
    return { images: { data: uploaded, shapes }, uploaded };
  } finally {
    for (const p of pieces) cpu.dispose(p);
    if (joined) cpu.dispose(joined);
  }
}

/** Threads of the data pool (decoding and CPU augmentation), the -j flag. */
export function setDataThreads(n: number): void {
  cpuOps().setDataThreads(n);
}
