import type { Sequential } from "../nn/module";
import type { ResNet } from "../nn/resnet";
import type { QuantizedEncoder } from "../quant/quant_model";
import type { BitSampler } from "../quant/sampling";
import type { Tensor } from "../tensor/tensor";

/**
 * The SSQL recipe around any encoder computation: run `fp` with the activation observers on (ranges over
 * exactly this step's FP passes), draw one (W, A) pair, then run `quantized` through the same weights
 * fake-quantized at those bits (each weight observed once for all of `fp`'s passes and fake-quantized once for all
 * of `quantized`'s). The predictor stays FP: hooks are reset to full precision after each part.
 */
export function ssqlPasses<F, Q>(quant: QuantizedEncoder, sampler: BitSampler, fp: () => F, quantized: () => Q): { fp: F; q: Q; bits: { w: number; a: number } } {
  quant.observe();
  let fpOut: F;
  try {
    fpOut = quant.sharedWeightPasses(fp);
  } finally {
    quant.fullPrecision();
  }
  const bits = sampler.next();
  quant.quantize(bits.w, bits.a);
  let qOut: Q;
  try {
    qOut = quant.sharedWeightPasses(quantized);
  } finally {
    quant.fullPrecision();
  }
  return { fp: fpOut, q: qOut, bits };
}

/** Both views through encoder then predictor, in FP (observing) and quantized: [z1, z2, p1, p2] and [p1q, p2q]. */
export function ssqlTwoViews(quant: QuantizedEncoder, sampler: BitSampler, encoder: ResNet, predictor: Sequential, x1: Tensor, x2: Tensor) {
  const r = ssqlPasses(
    quant,
    sampler,
    () => [encoder.forward(x1), encoder.forward(x2)] as const,
    () => [encoder.forward(x1), encoder.forward(x2)] as const,
  );
  const [z1, z2] = r.fp;
  return {
    z1,
    z2,
    p1: predictor.forward(z1),
    p2: predictor.forward(z2),
    p1q: predictor.forward(r.q[0]),
    p2q: predictor.forward(r.q[1]),
    bits: r.bits,
  };
}
