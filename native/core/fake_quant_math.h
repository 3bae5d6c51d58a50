// Per-element fake-quantization and quantization-parameter formulas, shared by the CPU and CUDA kernels so
// both backends compute the same bits. No N-API, no allocation: plain inline functions.
//
// Forward, with y = x / scale (the original's uniform quantizer, correctly rounded fp32 division; the default) or
// y = x * inv_scale, inv_scale = 1.0f / scale (PyTorch's FakeQuantize*Affine on CPU, bit for bit):
//   v = zp + nearbyint(y)                  round half to even
//   mask = quant_min <= v <= quant_max     on the unclamped value
//   out = (clamp(v, quant_min, quant_max) - zp) * scale
// Non-finite v: per-tensor clamps as fmin/fmax do (NaN -> quant_min, +-inf saturate); per-channel goes through
// an int64 conversion in PyTorch, which on x86-64 turns NaN, +-inf and |v| >= 2^63 into INT64_MIN -> quant_min.
// Exact for |zero_point| < 2^24 (zero_point is int32 on the device, converted to float here).
#pragma once

#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace ssql {
namespace fq {

SSQL_HD float absf(float v) {
#ifdef __CUDA_ARCH__
  return fabsf(v);
#else
  return std::fabs(v);
#endif
}

// std::nearbyint in the default rounding mode. On the host it is written branch-free so loops vectorize
// without SSE4.1: adding 2^23 to |y| < 2^23 leaves no fraction bits, and the FPU rounds half to even.
SSQL_HD float roundHalfEven(float y) {
#ifdef __CUDA_ARCH__
  return rintf(y);
#else
  float a = absf(y);
  float t = (a + 8388608.0f) - 8388608.0f;
  t = a < 8388608.0f ? t : a;
  return std::copysign(t, y);
#endif
}

// The value the forward rounds: x / s (divide) or x * (1/s). The two differ in the last ulp, which matters where
// the quotient is a .5 tie: SSQL's symmetric weight scale max|w| / (2^(b-1) - 1/2) puts every channel's extreme
// weight on one. On the device __fdiv_rn / __fmul_rn pin IEEE round-to-nearest (no fast reciprocal division and
// no contraction, whatever nvcc's -prec-div / -use_fast_math / -fmad say).
SSQL_HD float quotient(float x, float s, float inv, bool divide) {
#ifdef __CUDA_ARCH__
  return divide ? __fdiv_rn(x, s) : __fmul_rn(x, inv);
#else
  return divide ? x / s : x * inv;
#endif
}

SSQL_HD float clampRange(float v, float qmin, float qmax) {
  float c = v > qmin ? v : qmin;  // NaN -> qmin, as std::fmax(NaN, qmin)
  return c < qmax ? c : qmax;
}

// The per-channel path's int64 conversion: NaN, infinities and |v| >= 2^63 become INT64_MIN, i.e. quant_min.
SSQL_HD float clampRangeInt64(float v, float qmin, float qmax) {
  float c = clampRange(v, qmin, qmax);
  return absf(v) < 9223372036854775808.0f ? c : qmin;
}

SSQL_HD bool inRange(float v, float qmin, float qmax) { return (qmin <= v) & (v <= qmax); }

// One element of fake_quantize_per_tensor_affine; writes the mask through `m`.
SSQL_HD float perTensor(float x, float scale, float inv, float zp, float qmin, float qmax, bool divide, uint8_t& m) {
  float v = zp + roundHalfEven(quotient(x, scale, inv, divide));
  m = inRange(v, qmin, qmax);
  return (clampRange(v, qmin, qmax) - zp) * scale;
}

// One element of fake_quantize_per_channel_affine (int32 zero point).
SSQL_HD float perChannel(float x, float scale, float inv, float zp, float qmin, float qmax, bool divide, uint8_t& m) {
  float v = zp + roundHalfEven(quotient(x, scale, inv, divide));
  m = inRange(v, qmin, qmax);
  return (clampRangeInt64(v, qmin, qmax) - zp) * scale;
}

// Contribution of one element to dL/dscale of out = (clamp(round(x/s) + zp) - zp) * s with a straight-through
// round: g * ((c - zp) - M * x/s). x/s is the value the forward rounded (quotient()).
SSQL_HD float scaleGradTerm(float g, float x, float s, float inv, float zp, float qmin, float qmax, bool perChannelRule,
                            bool divide) {
  float y = quotient(x, s, inv, divide);
  float v = zp + roundHalfEven(y);
  float c = perChannelRule ? clampRangeInt64(v, qmin, qmax) : clampRange(v, qmin, qmax);
  float mask = inRange(v, qmin, qmax) ? 1.0f : 0.0f;
  return g * ((c - zp) - mask * y);
}

// calc_quant_params of the original (observers/basic_modules.py): symmetric scale = max(|min|, |max|) / ((2^b-1)/2),
// zero point 0; asymmetric scale = (max - min) / (2^b - 1), zero point = -round(min / scale). fp32 division as torch.
SSQL_HD float symmetricScale(float mn, float mx, int bits) {
  float a = absf(mn), b = absf(mx);
  float m = (a != a || b != b) ? (a != a ? a : b) : (a > b ? a : b);  // torch.maximum propagates NaN
  return m / static_cast<float>(((1 << bits) - 1) / 2.0);
}

SSQL_HD float asymmetricScale(float mn, float mx, int bits) {
  return (mx - mn) / static_cast<float>((1 << bits) - 1);
}

// -round(min / scale) as int32; a zero or non-finite ratio (then the layer is identity anyway) gives 0, and the
// value saturates at the int32 range.
SSQL_HD int32_t asymmetricZeroPoint(float mn, float scale) {
  float r = -roundHalfEven(mn / scale);
  if (!(absf(r) <= 3.0e38f)) return 0;
  if (r >= 2147483647.0f) return 2147483647;
  if (r <= -2147483648.0f) return -2147483647 - 1;
  return static_cast<int32_t>(r) + 0;
}

}  // namespace fq
}  // namespace ssql
