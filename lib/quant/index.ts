/**
 * Quantization for SSQL: observers, fake quantization on the autograd tape, quantizers with the original's state
 * machine, bit configs and the per-step bit sampler. Choices worth knowing:
 * - Fake quantization follows PyTorch's fake_quantize_per_{tensor,channel}_affine bit for bit: x * (1/scale) in fp32,
 *   round half to even, mask on the unclamped value. The original divides (x / scale); the two round differently for
 *   a share of channels' max-abs weights, which sit on a .5 boundary by construction (see test/parity/weight_quant).
 * - Zero points are int32 tensors, scales float32 tensors; nothing is read back to JavaScript. The original's identity
 *   rule: at 0 bits apply() returns its input untouched; "min(scale) == 0" is an int32 flag that calcQParams writes on
 *   the device and the kernels read (0: output = input, mask = 1, gradient passed through).
 * - The weight scale is differentiable as in the original (the observer saw the live weight): the fused backward routes
 *   the scale term to the first position of the channel's min or max (torch's tie rule on CPU), half to each when
 *   |min| == |max|. Observe the weight with grad enabled to get it; observed under noGrad the scale is a constant.
 */
export {
  BitSettingError, MAX_BITS, formatBitSetting, isBitWidth, parseBitSetting, resolveBitConfig, validateBits,
  type BitSetting, type LayerBits, type QuantLayerInfo,
} from "./bits";
export { quantSideSpec, type QuantSideSpec } from "./config";
export {
  GRANULARITIES, OBSERVER_NAMES, ORIGINAL_OBSERVER_NAMES, QUANTIZER_NAMES,
  type Granularity, type ObserverName, type OriginalObserverName,
} from "./names";
export {
  DEFAULT_ROUNDING, fakeQuantize, fakeQuantizeLiveRange, fakeQuantizePerChannelAffine, fakeQuantizePerTensorAffine, quantRange,
  validateRounding, type QParams, type QRange, type QuantRounding,
} from "./fake_quant";
export { QuantLayer, allocateBits } from "./layer";
export {
  GAUSSIAN_ALPHA, GaussianObserver, KlHistogramObserver, MinMaxObserver, MomentumMinMaxObserver, MseObserver, PercentileObserver,
  createObserver, klBinsFit, validateAlpha, validateBins, type Observer, type ObserverOptions, type ObservedRange,
} from "./observers";
export { UniformQuantizer, activationQuantizer, weightQuantizer, type UniformQuantizerOptions } from "./quantizer";
export { BitSampler, validateBitRange, type BitRange, type BitSamplerState } from "./sampling";
