// Fused fake quantization on the CPU: one pass reads x and writes the output and the clamp mask, bit for bit as
// the original's round(x / scale) or PyTorch's fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine
// (x * (1 / scale)), as the `rounding` argument says (see core/fake_quant_math.h), and
// the backward ops: the masked gradient, and the gradient through a scale derived from x's own min/max (SSQL).
// Lets GCC if-convert the branch-free selects so the loops vectorize; results are unchanged (no reassociation).
#pragma GCC optimize("no-trapping-math")

#include <cstring>
#include <vector>

#include "../core/fake_quant_math.h"
#include "output_fake_quant.h"
#include "quant_util.h"

using namespace ssql;
using namespace ssql::quant;

namespace {

// Calls run(begin, end, channel) over contiguous runs of one channel, in parallel: long runs are cut into chunks,
// short ones (a trailing channel axis) are grouped by outer index.
template <typename Run>
void forEachRun(const ChannelLayout& l, Run&& run) {
  const int64_t C = l.channels, inner = l.inner, rows = l.outer * C;
  if (inner >= 256 || C == 1) {
    const int64_t chunk = 16384;
    const int64_t perRow = std::max<int64_t>(1, (inner + chunk - 1) / chunk);
    parallelItems(rows * perRow, std::min(inner, chunk), [&](int64_t s) {
      int64_t r = s / perRow, k = s % perRow;
      int64_t b = r * inner + k * chunk, e = r * inner + std::min(inner, (k + 1) * chunk);
      run(b, e, r % C);
    });
  } else {
    parallelItems(l.outer, C * inner, [&](int64_t o) {
      for (int64_t c = 0; c < C; ++c) run((o * C + c) * inner, (o * C + c + 1) * inner, c);
    });
  }
}

// kReluGate: x is a ReLU's output and the mask also says x > 0 (a producer's fused epilogue).
template <bool kPerChannel, bool kMask, bool kDivide, bool kReluGate = false>
__attribute__((always_inline)) inline void fakeQuantRun(const float* __restrict x, float* __restrict out,
                                                        uint8_t* __restrict mask, int64_t n, float s, float z,
                                                        float qmin, float qmax) {
  const float inv = 1.0f / s;
  for (int64_t i = 0; i < n; ++i) {
    uint8_t m;
    out[i] = kPerChannel ? fq::perChannel(x[i], s, inv, z, qmin, qmax, kDivide, m)
                         : fq::perTensor(x[i], s, inv, z, qmin, qmax, kDivide, m);
    if (kMask) mask[i] = kReluGate ? static_cast<uint8_t>(m & (x[i] > 0.0f)) : m;
  }
}

using RunFn = void (*)(const float*, float*, uint8_t*, int64_t, float, float, float, float);
#define SSQL_FQ_RUN(NAME, PC, MASK, DIV)                                                                         \
  SSQL_CLONES void NAME(const float* x, float* o, uint8_t* m, int64_t n, float s, float z, float lo, float hi) { \
    fakeQuantRun<PC, MASK, DIV>(x, o, m, n, s, z, lo, hi);                                                         \
  }
SSQL_FQ_RUN(runPerTensorMask, false, true, false)
SSQL_FQ_RUN(runPerTensor, false, false, false)
SSQL_FQ_RUN(runPerChannelMask, true, true, false)
SSQL_FQ_RUN(runPerChannel, true, false, false)
SSQL_FQ_RUN(runPerTensorMaskDiv, false, true, true)
SSQL_FQ_RUN(runPerTensorDiv, false, false, true)
SSQL_FQ_RUN(runPerChannelMaskDiv, true, true, true)
SSQL_FQ_RUN(runPerChannelDiv, true, false, true)
#undef SSQL_FQ_RUN
SSQL_CLONES void runReluGated(const float* x, float* o, uint8_t* m, int64_t n, float s, float z, float lo, float hi) {
  fakeQuantRun<false, true, false, true>(x, o, m, n, s, z, lo, hi);
}
SSQL_CLONES void runReluGatedDiv(const float* x, float* o, uint8_t* m, int64_t n, float s, float z, float lo, float hi) {
  fakeQuantRun<false, true, true, true>(x, o, m, n, s, z, lo, hi);
}

// [divide][perChannel][mask]
constexpr RunFn kRuns[2][2][2] = {{{runPerTensor, runPerTensorMask}, {runPerChannel, runPerChannelMask}},
                                  {{runPerTensorDiv, runPerTensorMaskDiv}, {runPerChannelDiv, runPerChannelMaskDiv}}};

void fakeQuantKernel(RunFn run, bool withMask, const float* x, float* out, uint8_t* mask, const float* scale,
                     const int32_t* zp, const ChannelLayout& l, float qmin, float qmax) {
  forEachRun(l, [&](int64_t b, int64_t e, int64_t c) {
    run(x + b, out + b, withMask ? mask + b : nullptr, e - b, scale[c], static_cast<float>(zp[c]), qmin, qmax);
  });
}

Napi::Value fakeQuant(const Args& a, bool perChannel) {
  FakeQuantArgs q = fakeQuantArgs(a, perChannel);
  const int64_t n = q.x->numel();
  const float* px = q.x->f32();
  float* po = q.out->f32();
  uint8_t* pm = q.withMask ? q.mask->data<uint8_t>() : nullptr;
  if (q.enabled && *q.enabled == 0) {
    if (n) std::memcpy(po, px, static_cast<size_t>(n) * sizeof(float));
    if (pm && n) std::memset(pm, 1, static_cast<size_t>(n));
    return wrapMany(a.env(), {q.out, q.mask});
  }
  RunFn run = kRuns[q.divide][perChannel][pm != nullptr];
  fakeQuantKernel(run, pm != nullptr, px, po, pm, q.scale->f32(), q.zeroPoint->data<int32_t>(), q.layout, q.qmin, q.qmax);
  return wrapMany(a.env(), {q.out, q.mask});
}

// dx = g * M and the channel's sum of g * ((c - zp) - M * x/s) over n elements (fp32 blocks summed in double).
template <bool kPerChannel, bool kDivide>
__attribute__((always_inline)) inline double rangeGradRun(const float* __restrict g, const float* __restrict x,
                                                          float* __restrict dx, int64_t n, float s, float z, float qmin,
                                                          float qmax) {
  const float inv = 1.0f / s;
  double acc = 0.0;
  for (int64_t b = 0; b < n; b += 512) {
    const int64_t e = b + 512 < n ? b + 512 : n;
    float part = 0.0f;
    for (int64_t i = b; i < e; ++i) {
      float y = fq::quotient(x[i], s, inv, kDivide);
      float v = z + fq::roundHalfEven(y);
      float m = fq::inRange(v, qmin, qmax) ? 1.0f : 0.0f;
      float c = kPerChannel ? fq::clampRangeInt64(v, qmin, qmax) : fq::clampRange(v, qmin, qmax);
      dx[i] = g[i] * m;
      part += g[i] * ((c - z) - m * y);
    }
    acc += part;
  }
  return acc;
}

using RangeGradFn = double (*)(const float*, const float*, float*, int64_t, float, float, float, float);
#define SSQL_RG_RUN(NAME, PC, DIV)                                                                                  \
  SSQL_CLONES double NAME(const float* g, const float* x, float* dx, int64_t n, float s, float z, float lo, float hi) { \
    return rangeGradRun<PC, DIV>(g, x, dx, n, s, z, lo, hi);                                                          \
  }
SSQL_RG_RUN(rangeGradPerTensor, false, false)
SSQL_RG_RUN(rangeGradPerChannel, true, false)
SSQL_RG_RUN(rangeGradPerTensorDiv, false, true)
SSQL_RG_RUN(rangeGradPerChannelDiv, true, true)
#undef SSQL_RG_RUN

SSQL_CLONES void maskedGrad(const float* __restrict g, const uint8_t* __restrict m, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] * static_cast<float>(m[i]);
}

}  // namespace

namespace ssql {

void fakeQuantEpilogue(const float* y, float* out, uint8_t* mask, int64_t n, const OutputFakeQuant& f, bool relu) {
  RunFn run = relu ? (f.divide ? runReluGatedDiv : runReluGated) : kRuns[f.divide][0][1];
  run(y, out, mask, n, f.scale, f.zp, f.qmin, f.qmax);
}

}  // namespace ssql

SSQL_OP(fakeQuantPerTensor) { return fakeQuant(a, false); }
SSQL_OP(fakeQuantPerChannel) { return fakeQuant(a, true); }

// fakeQuantBackward(grad, mask): grad * mask, as PyTorch's cachemask backward (a masked-out negative gives -0).
SSQL_OP(fakeQuantBackward) {
  FakeQuantBackwardArgs q = fakeQuantBackwardArgs(a);
  const TensorPtr &g = q.grad, &mask = q.mask, &out = q.out;
  const float* pg = g->f32();
  const uint8_t* pm = mask->data<uint8_t>();
  float* po = out->f32();
  parallelChunks(g->numel(), 65536, [&](int64_t b, int64_t e) { maskedGrad(pg + b, pm + b, po + b, e - b); });
  return wrap(a.env(), out);
}

// fakeQuantRangeBackward(grad, x, scale, zeroPoint, min, max, argmin, argmax, axis, quantMin, quantMax, symmetric, enabled,
// rounding)
// Gradient w.r.t. x of fake_quant(x, scale(x)) where scale was computed from x's own min/max (calcQParams):
//   dx_i = g_i M_i + [i = argmin/argmax] * dscale/d(min|max) * sum_j g_j ((c_j - zp) - M_j x_j / s)
// Symmetric: s = max(|min|, |max|) / q_b with q_b = (quantMax - quantMin) / 2; the term goes to the larger of |min|, |max|
// with its sign, half to each on a tie (torch.maximum's rule). Asymmetric: s = (max - min) / (quantMax - quantMin),
// +term to argmax, -term to argmin (the zero point's round() has no gradient).
SSQL_OP(fakeQuantRangeBackward) {
  RangeBackwardArgs q = rangeBackwardArgs(a);
  const TensorPtr &g = q.grad, &x = q.x, &scale = q.scale, &zp = q.zeroPoint, &mn = q.min, &mx = q.max;
  const ChannelLayout& l = q.layout;
  const float qmin = q.qmin, qmax = q.qmax;
  const bool symmetric = q.symmetric;
  const int32_t* enabled = q.enabled;
  const int64_t C = l.channels, n = x->numel();
  const int32_t* pmin = q.argmin->data<int32_t>();
  const int32_t* pmax = q.argmax->data<int32_t>();
  // The indices are where channel c's own min / max sit (aminmax_ on x), so each lies inside channel c.
  auto inChannel = [&](int32_t i, int64_t c) { return (i / l.inner) % C == c; };
  for (int64_t c = 0; c < C; ++c) {
    if (pmin[c] < 0 || pmin[c] >= n || pmax[c] < 0 || pmax[c] >= n)
      throw RangeError(std::string(a.op) + "(): argmin/argmax index out of range for " + shapeStr(x->shape));
    if (!inChannel(pmin[c], c) || !inChannel(pmax[c], c))
      throw RangeError(std::string(a.op) + "(): argmin/argmax of channel " + std::to_string(c) +
                       " points outside that channel (indices must come from aminmax_ on x)");
  }

  auto out = empty(DType::F32, x->shape);
  const float* pg = g->f32();
  const float* px = x->f32();
  float* po = out->f32();
  if (enabled && *enabled == 0) {
    if (n) std::memcpy(po, pg, static_cast<size_t>(n) * sizeof(float));
    return wrap(a.env(), out);
  }
  const float* ps = scale->f32();
  const int32_t* pz = zp->data<int32_t>();
  const bool perChannel = l.axis >= 0;
  const RangeGradFn perTensorRun = q.divide ? rangeGradPerTensorDiv : rangeGradPerTensor;
  const RangeGradFn perChannelRun = q.divide ? rangeGradPerChannelDiv : rangeGradPerChannel;
  std::vector<double> sums(static_cast<size_t>(C), 0.0);
  if (!perChannel) {
    const int64_t chunk = 16384;
    std::vector<double> partial(static_cast<size_t>((n + chunk - 1) / chunk), 0.0);
    parallelChunks(n, chunk, [&](int64_t b, int64_t e) {
      partial[b / chunk] = perTensorRun(pg + b, px + b, po + b, e - b, ps[0], static_cast<float>(pz[0]), qmin, qmax);
    });
    for (double p : partial) sums[0] += p;
  } else {
    parallelItems(C, l.outer * l.inner, [&](int64_t c) {
      double acc = 0.0;
      for (int64_t o = 0; o < l.outer; ++o) {
        int64_t b = (o * C + c) * l.inner;
        acc += perChannelRun(pg + b, px + b, po + b, l.inner, ps[c], static_cast<float>(pz[c]), qmin, qmax);
      }
      sums[c] = acc;
    });
  }
  const float* pmn = mn->f32();
  const float* pmx = mx->f32();
  const double span = static_cast<double>(qmax) - static_cast<double>(qmin);
  for (int64_t c = 0; c < C; ++c) {
    if (symmetric) {
      const double t = sums[c] / (span / 2.0);
      float am = std::fabs(pmn[c]), ax = std::fabs(pmx[c]);
      if (am != am || ax != ax) continue;
      double wMin = am > ax ? 1.0 : (am < ax ? 0.0 : 0.5);
      auto sgn = [](float v) { return v > 0.0f ? 1.0 : (v < 0.0f ? -1.0 : 0.0); };
      if (wMin > 0.0) po[pmin[c]] += static_cast<float>(t * wMin * sgn(pmn[c]));
      if (wMin < 1.0) po[pmax[c]] += static_cast<float>(t * (1.0 - wMin) * sgn(pmx[c]));
    } else {
      const double t = sums[c] / span;
      po[pmax[c]] += static_cast<float>(t);
      po[pmin[c]] -= static_cast<float>(t);
    }
  }
  return wrap(a.env(), out);
}
