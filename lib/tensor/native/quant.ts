import type { NativeTensor as H } from "./core";

/**
 * How the fake-quant ops form the value they round: "divide" rounds x / scale (fp32 IEEE division, the original's
 * uniform quantizer); "reciprocal" rounds x * (1 / scale) (PyTorch's fake_quantize_* ops). They differ where the
 * quotient is a .5 tie, which SSQL's symmetric weight scale puts every channel's extreme weight on.
 */
export type QuantRounding = "divide" | "reciprocal";

/**
 * A per-tensor fake quant fused into the op producing its input (batchNorm's and addRelu's trailing arguments; CPU):
 * scale [1], zeroPoint [1] int32, enabled [1] int32 or null, quantMin, quantMax, rounding; none of them for none.
 */
export type FusedFakeQuantArgs = [scale?: H, zeroPoint?: H, enabled?: H | null, quantMin?: number, quantMax?: number, rounding?: QuantRounding];

/**
 * Quantization ops (CPU: native/cpu/fake_quant.cc and observers.cc; CUDA kernels: native/cuda/fake_quant.cu and observers.cu).
 * Scales are float32 tensors and zero points int32 tensors ([1] per tensor, [C] per channel), so nothing is read
 * back to JavaScript. `enabled` is an optional int32 [1] flag (from calcQParams): 0 makes the fake-quant ops the
 * identity (output = x, mask = 1, gradient passed through), the original's "min(scale) == 0" rule on the device.
 * `axis: null` means per tensor. Per-element formulas: native/core/fake_quant_math.h.
 */
export interface QuantOps {
  /**
   * Min/max of x per tensor (axis null; buffers of 1 value) or per channel along `axis` ([C] buffers), written in
   * place in one pass. argmin/argmax (int32, flat indices into x, or null) receive the first position of each extreme.
   * accumulate: keep the smaller min / larger max of the buffers and x (old wins ties); NaN propagates.
   */
  aminmax_(x: H, min: H, max: H, argmin: H | null, argmax: H | null, axis: number | null, accumulate: boolean): void;
  /** dst = momentum * dst + (1 - momentum) * src, rounded in fp32 after each product as PyTorch does. */
  emaUpdate_(dst: H, src: H, momentum: number): void;
  /**
   * The original's calc_quant_params from min/max: symmetric scale = max(|min|, |max|) / ((2^bits - 1) / 2) and zero
   * point 0; asymmetric scale = (max - min) / (2^bits - 1), zero point = -round(min / scale) (int32, saturating).
   * Returns [scale, zeroPoint, enabled]; enabled = 0 when the smallest scale is 0 (the original's identity rule).
   */
  calcQParams(min: H, max: H, bits: number, symmetric: boolean): [H, H, H];
  /**
   * The original's MSE observer (its HISTOGRAM observer is the same code) on one tensor: a 15-round ternary search
   * of the factor f in [0.2, 1] for the range f * [min, max] with the smallest mean |x - q(x)|^2.4, q an asymmetric
   * 2^bits-level grid. Returns [min, max] f32 [C] (axis null: [1]). CPU: native/cpu/range_observers.cc, CUDA: native/cuda/range_observers.cu.
   */
  mseRange(x: H, axis: number | null, bits: number): [H, H];
  /**
   * buf (f32 [C, k]) <- the k largest |x| of each channel along `axis` (null: the whole tensor, C = 1), merged with
   * buf's own values when `accumulate`; unordered. k may not exceed the values per channel of x.
   */
  topkAbs_(x: H, buf: H, axis: number | null, accumulate: boolean): void;
  /**
   * The original's PERCENTILE range from the calibration range [min, max] (f32 [C]) and topkAbs_'s buffer: kth = the
   * smallest kept |x|; max > kth (and > 0) becomes kth, min < -kth (and < 0) becomes -kth; with cut false, or
   * max - min < 1e-10, [min, max] stays. Returns [min, max].
   */
  percentileRange(min: H, max: H, buf: H, cut: boolean): [H, H];
  /**
   * hist (int32 [C, bins]) += torch.histc(|x_c|, bins, -th_c, th_c) per channel along `axis` (null: C = 1), th_c =
   * max(|min_c|, |max_c|) of the calibration range; values outside are not counted, a channel with th_c = 0 skipped.
   */
  absHistogram_(x: H, hist: H, min: H, max: H, axis: number | null): void;
  /**
   * The original's KL_HISTOGRAM range per channel from absHistogram_'s counts and the calibration range (see
   * native/core/observer_math.h for its slot rule). Returns [min, max]; a RangeError when the bins cannot hold the
   * bit width's quantized bins (the original's IndexError).
   */
  klRange(hist: H, min: H, max: H, bits: number): [H, H];
  /** The original's GAUSSIAN range: mean -/+ alpha * std (unbiased) per tensor (axis null) or per channel. [min, max]. */
  gaussianRange(x: H, axis: number | null, alpha: number): [H, H];
  /** torch.fake_quantize_per_tensor_affine with tensor qparams ("reciprocal"), or the original's x / scale ("divide"): returns [out, mask (uint8) or null]. */
  fakeQuantPerTensor(
    x: H, scale: H, zeroPoint: H, quantMin: number, quantMax: number, enabled: H | null, withMask: boolean, rounding: QuantRounding,
  ): [H, H | null];
  /** torch.fake_quantize_per_channel_affine (int32 zero point), any axis, rounding as fakeQuantPerTensor: returns [out, mask (uint8) or null]. */
  fakeQuantPerChannel(
    x: H, scale: H, zeroPoint: H, axis: number, quantMin: number, quantMax: number, enabled: H | null, withMask: boolean,
    rounding: QuantRounding,
  ): [H, H | null];
  /** grad * mask, the backward of both fake-quant ops. */
  fakeQuantBackward(grad: H, mask: H): H;
  /**
   * Gradient w.r.t. x of fake-quant(x) whose scale was computed by calcQParams from x's own min/max (the original's
   * weight quantizer, ssql-reference §5.4): grad * M plus the scale term at argmin/argmax (symmetric: to the larger of
   * |min|, |max| with its sign, half each on a tie; asymmetric: +/- to argmax/argmin). Recomputes M from x.
   */
  fakeQuantRangeBackward(
    grad: H, x: H, scale: H, zeroPoint: H, min: H, max: H, argmin: H, argmax: H,
    axis: number | null, quantMin: number, quantMax: number, symmetric: boolean, enabled: H | null, rounding: QuantRounding,
  ): H;
}
