import { cpuOps } from "../tensor/binding";
import { AUGMENT_RECORD } from "../tensor/native/data";
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

/** Runs the pipeline on a batch on the data pool; resolves to one float32 [B, 3, h, w] tensor per view. */
export async function augment(pipeline: Pipeline, rng: Rng, src: SourceBatch): Promise<Tensor[]> {
  const { params, outSize } = sampleBatchParams(pipeline, rng, src);
  const images = Array.isArray(src.images) ? (src.images as Tensor[]).map((t) => t.handle) : (src.images as Tensor).handle;
  const s = pipeline.spec;
  const out = await cpuOps().augmentBatch(images, params, pipeline.views, outSize, s.interpolation, s.mean, s.std);
  return out.map((h) => new Tensor(h, "cpu").keep());
}

/** Threads of the data pool (decoding and augmentation), the -j flag. */
export function setDataThreads(n: number): void {
  cpuOps().setDataThreads(n);
}
