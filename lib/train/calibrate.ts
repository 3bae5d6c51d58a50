import type { Config } from "../config";
import type { DataLoader } from "../data/loader";
import type { ProcessGroup } from "../distributed/process_group";
import type { ResNet } from "../nn/resnet";
import { quantSideSpec } from "../quant/config";
import { QuantizedEncoder } from "../quant/quant_model";
import { encoderUnits } from "../ssl/build";
import { noGrad } from "../tensor/autograd";
import { tidy } from "../tensor/scope";

/**
 * The original's effective calibration length: its loop subtracts the batch size from len(loader) (a count of
 * batches), so it observes ceil(len(loader) / BATCH_SIZE) batches: 1 for CIFAR-10 at 4 x 128, 5 for ImageNet at
 * 4 x 256. QUANT.CALIBRATION.BATCHES > 0 replaces it.
 */
export function calibrationBatches(cfg: Config, loaderLength: number): number {
  const n = cfg.QUANT.CALIBRATION.BATCHES > 0 ? cfg.QUANT.CALIBRATION.BATCHES : Math.ceil(loaderLength / cfg.TRAIN.BATCH_SIZE);
  return Math.max(1, Math.min(n, loaderLength));
}

/**
 * The quantizers of a classifier (backbone units + "fc") with QUANT.BIT_CONFIG, except that the classifier is
 * always full precision (the original zeroes every QuantLinear's bits after allocation).
 */
export function quantizeClassifier(model: ResNet, cfg: Config): QuantizedEncoder {
  const w = quantSideSpec(cfg.QUANT.W, "QUANT.W");
  const a = quantSideSpec(cfg.QUANT.A, "QUANT.A");
  const overrides = { ...(cfg.QUANT.BIT_CONFIG[0] ?? {}), fc: { w: 0, a: 0 } };
  return new QuantizedEncoder(model, encoderUnits(model), w, a, [overrides], cfg.QUANT.ROUNDING);
}

export interface CalibrationResult {
  batches: number;
  images: number;
}

/**
 * Calibrates `quant` at (w, a) bits: clears every observer, runs `batches` full-precision forwards of the first
 * training batches of epoch 0 in eval mode without gradients (the original's calibrate()), then fixes the scales
 * for all later passes. With a process group the activation ranges are merged (min of mins, max of maxes), so every
 * rank quantizes identically (the original calibrated each rank on its own batches).
 */
export async function calibrate(
  model: ResNet,
  quant: QuantizedEncoder,
  loader: DataLoader,
  batches: number,
  bits: { w: number; a: number },
  group: ProcessGroup | null = null,
): Promise<CalibrationResult> {
  const wasTraining = model.training;
  model.eval();
  let n = 0;
  let images = 0;
  const pass = async () => {
    n = images = 0;
    for await (const batch of loader.epoch(0)) {
      noGrad(() => tidy(() => void model.forward(batch.images)));
      images += batch.size;
      batch.dispose();
      if (++n >= batches) break;
    }
    if (n === 0) throw new Error("calibration: the training loader gave no batch");
  };
  try {
    // Observers that search a range for a bit width (MSE, KL_HISTOGRAM) search it for the bits they will quantize at.
    quant.allocate(bits.w, bits.a);
    // PERCENTILE / KL_HISTOGRAM outputs: the original's first pass (calc_init_params) over the same batches.
    const twoPass = quant.needsRangePass;
    if (twoPass) {
      quant.observeRanges();
      await pass();
    }
    quant.observe(twoPass);
    await pass();
    if (group && group.size > 1) {
      for (const l of quant.layers) {
        const r = l.act?.observer.range();
        if (!r) continue;
        await group.allReduceAsync_(r.min, "min");
        await group.allReduceAsync_(r.max, "max");
      }
    }
    quant.quantize(bits.w, bits.a);
    quant.freeze();
  } finally {
    model.train(wasTraining);
  }
  return { batches: n, images };
}
