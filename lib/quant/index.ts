export { MAX_BITS, formatBitSetting, parseBitSetting, resolveBitConfig, validateBits, type LayerBits, type QuantLayerInfo } from "./bits";
export { GRANULARITIES, QUANTIZER_NAMES, quantSideSpec, type QuantSideSpec } from "./config";
export {
  fakeQuantize, fakeQuantizeLiveRange, fakeQuantizePerChannelAffine, fakeQuantizePerTensorAffine, quantRange,
  type QParams, type QRange,
} from "./fake_quant";
export { QuantLayer, allocateBits } from "./layer";
export {
  MinMaxObserver, MomentumMinMaxObserver, OBSERVER_NAMES, createObserver,
  type Observer, type ObserverName, type ObserverOptions, type ObservedRange,
} from "./observers";
export { UniformQuantizer, activationQuantizer, weightQuantizer, type UniformQuantizerOptions } from "./quantizer";
export { BitSampler, Xoshiro128, validateBitRange, type BitRange, type BitSamplerState } from "./sampling";
