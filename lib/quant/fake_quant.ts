import { isGradEnabled, record } from "../tensor/autograd";
import { releaseInternal } from "../tensor/ops/saved";
import type { QuantRounding } from "../tensor/native/quant";
import { Tensor } from "../tensor/tensor";

export type { QuantRounding };

/** The original's rule (its uniform quantizer rounds x / scale); the default of QUANT.ROUNDING. */
export const DEFAULT_ROUNDING: QuantRounding = "divide";

/** Checks a rounding rule (QUANT.ROUNDING), naming `what` in the error. */
export function validateRounding(value: unknown, what = "QUANT.ROUNDING"): QuantRounding {
  if (value === "divide" || value === "reciprocal") return value;
  throw new RangeError(`${what} must be 'divide' (x / scale, the original's) or 'reciprocal' (x * (1 / scale), PyTorch's fake-quant ops), got ${JSON.stringify(value)}`);
}

/** Integer grid of a b-bit quantizer: signed [-2^(b-1), 2^(b-1) - 1] when symmetric, else unsigned [0, 2^b - 1]. */
export function quantRange(bits: number, symmetric: boolean): [number, number] {
  if (!Number.isInteger(bits) || bits < 1 || bits > 16) throw new RangeError(`quantRange(): bits must be an integer in 1..16, got ${bits}`);
  return symmetric ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
}

/**
 * Quantization parameters on the device: scale (float32) and zeroPoint (int32) of [1] values per tensor (axis null)
 * or [C] along `axis`; `enabled` (int32 [1], or null for always on) turns the fake quant into the identity where it
 * holds 0, so the original's "min(scale) == 0" rule needs no read-back.
 */
export interface QParams {
  readonly scale: Tensor;
  readonly zeroPoint: Tensor;
  readonly enabled: Tensor | null;
  readonly quantMin: number;
  readonly quantMax: number;
  readonly axis: number | null;
  /** x / scale (the original's) or x * (1 / scale) (PyTorch's); DEFAULT_ROUNDING when absent. */
  readonly rounding?: QuantRounding;
}

/**
 * Where a scale came from when it is a function of the quantized tensor itself (the original's weight quantizer):
 * the min/max it was computed from, the first positions (flat indices) of those extremes in `source`, and whether
 * calcQParams was symmetric.
 */
export interface QRange {
  readonly min: Tensor;
  readonly max: Tensor;
  readonly argmin: Tensor;
  readonly argmax: Tensor;
  readonly source: Tensor;
  readonly symmetric: boolean;
}

// Views of their own for the tensors a backward reads, so that a quantizer may drop its qparams before backward.
function saveFor(ts: readonly (Tensor | null)[]): (Tensor | null)[] {
  return ts.map((t) => (t ? t.view(t.shape) : null));
}

function forward(x: Tensor, qp: QParams, withMask: boolean): [Tensor, Tensor | null] {
  const en = qp.enabled?.handle ?? null;
  const r = qp.rounding ?? DEFAULT_ROUNDING;
  const [o, m] =
    qp.axis === null
      ? x.ops.fakeQuantPerTensor(x.handle, qp.scale.handle, qp.zeroPoint.handle, qp.quantMin, qp.quantMax, en, withMask, r)
      : x.ops.fakeQuantPerChannel(x.handle, qp.scale.handle, qp.zeroPoint.handle, qp.axis, qp.quantMin, qp.quantMax, en, withMask, r);
  return [x.wrap(o), m ? x.wrap(m) : null];
}

function maskedGrad(name: string, x: Tensor, qp: QParams): Tensor {
  const needGrad = isGradEnabled() && x.requiresGrad;
  const [out, mask] = forward(x, qp, needGrad);
  if (!mask) return out;
  record(name, out, [x], [mask], (g) => [g.wrap(g.ops.fakeQuantBackward(g.handle, mask.handle))]);
  return releaseInternal(out, mask);
}

/**
 * torch.fake_quantize_per_tensor_affine(x, scale, zero_point, quant_min, quant_max) with tensor qparams; grad * mask.
 * PyTorch's x * (1 / scale) unless `rounding` says "divide".
 */
export function fakeQuantizePerTensorAffine(
  x: Tensor, scale: Tensor, zeroPoint: Tensor, quantMin: number, quantMax: number, enabled: Tensor | null = null,
  rounding: QuantRounding = "reciprocal",
): Tensor {
  return maskedGrad("fakeQuantizePerTensorAffine", x, { scale, zeroPoint, enabled, quantMin, quantMax, axis: null, rounding });
}

/** torch.fake_quantize_per_channel_affine(x, scale, zero_point, axis, quant_min, quant_max); grad * mask. Rounding as above. */
export function fakeQuantizePerChannelAffine(
  x: Tensor, scale: Tensor, zeroPoint: Tensor, axis: number, quantMin: number, quantMax: number, enabled: Tensor | null = null,
  rounding: QuantRounding = "reciprocal",
): Tensor {
  return maskedGrad("fakeQuantizePerChannelAffine", x, { scale, zeroPoint, enabled, quantMin, quantMax, axis, rounding });
}

/** Fake quantization with fixed (gradient-free) qparams, per tensor or per channel as qp.axis says. */
export function fakeQuantize(x: Tensor, qp: QParams): Tensor {
  return maskedGrad(qp.axis === null ? "fakeQuantizePerTensorAffine" : "fakeQuantizePerChannelAffine", x, qp);
}

/**
 * Fake quantization whose scale is a differentiable function of x's own min/max (`range`, from which qp was
 * computed), as the original's uniform weight quantizer: the gradient is grad * mask plus, per channel, the scale
 * term routed to the element that set the range (ssql-reference §5.4), in one fused native op.
 */
export function fakeQuantizeLiveRange(x: Tensor, qp: QParams, range: QRange): Tensor {
  if (range.source !== x) throw new Error("fakeQuantizeLiveRange(): the range was observed on another tensor than the one quantized");
  const needGrad = isGradEnabled() && x.requiresGrad;
  const [out] = forward(x, qp, false);
  if (!needGrad) return out;
  const saved = saveFor([qp.scale, qp.zeroPoint, qp.enabled, range.min, range.max, range.argmin, range.argmax]);
  const [scale, zp, en, mn, mx, amin, amax] = saved.map((t) => t?.handle ?? null);
  record("fakeQuantizeLiveRange", out, [x], [x, ...saved], (g) => [
    g.wrap(
      g.ops.fakeQuantRangeBackward(
        g.handle, x.handle, scale!, zp!, mn!, mx!, amin!, amax!, qp.axis, qp.quantMin, qp.quantMax, range.symmetric, en,
        qp.rounding ?? DEFAULT_ROUNDING,
      ),
    ),
  ]);
  return releaseInternal(out, ...saved.filter((t): t is Tensor => t !== null));
}
