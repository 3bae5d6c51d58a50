// Observer reductions on the CPU: min/max per tensor or per channel in one pass (with the first index of each
// extreme, torch's tie rule on CPU), the EMA update of the momentum observer, and scale / zero point from min/max.
// Lets GCC if-convert the branch-free selects so the loops vectorize; results are unchanged (no reassociation).
#pragma GCC optimize("no-trapping-math")

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../core/fake_quant_math.h"
#include "extremes.h"
#include "quant_util.h"

// The EMA must round after each multiply as PyTorch's separate mul and add kernels do.
#pragma GCC optimize("fp-contract=off")

using namespace ssql;
using namespace ssql::quant;

namespace {

// First flat index in the run [b, e) whose value equals v (NaN matches NaN), or -1.
inline int64_t firstIndex(const float* x, int64_t b, int64_t e, float v) {
  if (v != v) {
    for (int64_t i = b; i < e; ++i)
      if (x[i] != x[i]) return i;
  } else {
    for (int64_t i = b; i < e; ++i)
      if (x[i] == v) return i;
  }
  return -1;
}

}  // namespace

// aminmax_(x, min, max, argmin, argmax, axis, accumulate): min/max of x per tensor (axis null) or per channel along
// `axis`, written in place. argmin/argmax (int32, flat indices into x; null to skip) give the first position of each
// extreme. With accumulate, the buffers keep the smaller min / larger max of old and new (old wins ties), as the
// original's MinMax observer over several forward passes; NaN propagates as in torch.min/max.
SSQL_OP(aminmax_) {
  AminmaxArgs q = aminmaxArgs(a, std::numeric_limits<int32_t>::max());
  const TensorPtr &x = q.x, &mnT = q.min, &mxT = q.max, &aminT = q.argmin, &amaxT = q.argmax;
  const ChannelLayout& l = q.layout;
  const bool accumulate = q.accumulate;
  const int64_t C = l.channels, n = x->numel();
  const float* px = x->f32();
  std::vector<Extremes> ext(static_cast<size_t>(C));
  std::vector<int64_t> imin(static_cast<size_t>(C), -1), imax(static_cast<size_t>(C), -1);
  const bool withIdx = static_cast<bool>(aminT);

  if (l.axis < 0) {
    const int64_t chunk = 65536, chunks = (n + chunk - 1) / chunk;
    std::vector<Extremes> part(static_cast<size_t>(chunks));
    parallelChunks(n, chunk, [&](int64_t b, int64_t e) { scanRun(px + b, e - b, part[b / chunk]); });
    for (const auto& p : part) merge(ext[0], p);
    if (withIdx) {
      float tmn = ext[0].nan ? NAN : ext[0].mn, tmx = ext[0].nan ? NAN : ext[0].mx;
      std::vector<int64_t> fmn(static_cast<size_t>(chunks)), fmx(static_cast<size_t>(chunks));
      parallelChunks(n, chunk, [&](int64_t b, int64_t e) {
        fmn[b / chunk] = firstIndex(px, b, e, tmn);
        fmx[b / chunk] = firstIndex(px, b, e, tmx);
      });
      for (int64_t k = chunks - 1; k >= 0; --k) {
        if (fmn[k] >= 0) imin[0] = fmn[k];
        if (fmx[k] >= 0) imax[0] = fmx[k];
      }
    }
  } else {
    parallelItems(C, l.outer * l.inner, [&](int64_t c) {
      Extremes e;
      for (int64_t o = 0; o < l.outer; ++o) scanRun(px + (o * C + c) * l.inner, l.inner, e);
      ext[c] = e;
      if (!withIdx) return;
      float tmn = e.nan ? NAN : e.mn, tmx = e.nan ? NAN : e.mx;
      for (int64_t o = 0; o < l.outer && (imin[c] < 0 || imax[c] < 0); ++o) {
        int64_t b = (o * C + c) * l.inner;
        if (imin[c] < 0) imin[c] = firstIndex(px, b, b + l.inner, tmn);
        if (imax[c] < 0) imax[c] = firstIndex(px, b, b + l.inner, tmx);
      }
    });
  }

  float* pmn = mnT->f32();
  float* pmx = mxT->f32();
  int32_t* pamin = withIdx ? aminT->data<int32_t>() : nullptr;
  int32_t* pamax = withIdx ? amaxT->data<int32_t>() : nullptr;
  for (int64_t c = 0; c < C; ++c) {
    float nmn = ext[c].nan ? NAN : ext[c].mn, nmx = ext[c].nan ? NAN : ext[c].mx;
    bool takeMin = !accumulate || (pmn[c] == pmn[c] && (nmn != nmn || nmn < pmn[c]));
    bool takeMax = !accumulate || (pmx[c] == pmx[c] && (nmx != nmx || nmx > pmx[c]));
    if (takeMin) {
      pmn[c] = nmn;
      if (withIdx) pamin[c] = static_cast<int32_t>(imin[c]);
    }
    if (takeMax) {
      pmx[c] = nmx;
      if (withIdx) pamax[c] = static_cast<int32_t>(imax[c]);
    }
  }
  return a.env().Undefined();
}

// emaUpdate_(dst, src, momentum): dst = momentum * dst + (1 - momentum) * src in fp32, as the original's
// MomentumMinMax observer computes it with PyTorch scalar ops.
SSQL_OP(emaUpdate_) {
  EmaUpdateArgs q = emaUpdateArgs(a);
  const TensorPtr &dst = q.dst, &src = q.src;
  const double m = q.momentum;
  const float km = static_cast<float>(m), kr = static_cast<float>(1.0 - m);
  float* pd = dst->f32();
  const float* ps = src->f32();
  parallelChunks(dst->numel(), 65536, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float u = km * pd[i];
      float v = kr * ps[i];
      pd[i] = u + v;
    }
  });
  return a.env().Undefined();
}

// calcQParams(min, max, bits, symmetric) -> [scale f32, zeroPoint i32, enabled i32 [1]]: the original's
// calc_quant_params, plus the device-side flag of its identity rule (enabled = 0 when min(scale) == 0).
SSQL_OP(calcQParams) {
  CalcQParamsArgs q = calcQParamsArgs(a);
  const TensorPtr &mnT = q.min, &mxT = q.max, &scale = q.scale, &zp = q.zeroPoint, &enabled = q.enabled;
  const int bits = q.bits;
  const bool symmetric = q.symmetric;
  const float* pmn = mnT->f32();
  const float* pmx = mxT->f32();
  float* ps = scale->f32();
  int32_t* pz = zp->data<int32_t>();
  bool anyNan = false, anyZero = false;
  for (int64_t c = 0; c < mnT->numel(); ++c) {
    float s = symmetric ? fq::symmetricScale(pmn[c], pmx[c], bits) : fq::asymmetricScale(pmn[c], pmx[c], bits);
    ps[c] = s;
    pz[c] = symmetric ? 0 : fq::asymmetricZeroPoint(pmn[c], s);
    anyNan = anyNan || s != s;
    anyZero = anyZero || s == 0.0f;
  }
  // torch.min(scale) == 0: a NaN anywhere makes the minimum NaN, which is not 0.
  enabled->data<int32_t>()[0] = (anyNan || !anyZero) ? 1 : 0;
  return wrapMany(a.env(), {scale, zp, enabled});
}
