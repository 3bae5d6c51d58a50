// Batch norm forward/backward over [N, C] or [N, C, H, W] with PyTorch's semantics. Own kernels rather than oneDNN:
// one channel at a time, so the channel's N x H x W values stay in cache across the statistics and normalization
// passes, and the running-stat update (unbiased variance) and eval mode are exactly PyTorch's.
#include <cmath>
#include <algorithm>
#include <string>
#include <vector>

#include "../core/binding.h"
#include "parallel.h"

using namespace ssql;

namespace {

// x viewed as [N, C, S] with S = H * W (1 for 2-D input).
struct Planes {
  int64_t N, C, S;
  int64_t count() const { return N * S; }
  int64_t at(int64_t n, int64_t c) const { return (n * C + c) * S; }
};

Planes planesOf(const char* op, const Tensor& x) {
  if (x.dim() != 2 && x.dim() != 4)
    throw RangeError(std::string(op) + "(): input must be [N, C] or [N, C, H, W], got " + shapeStr(x.shape));
  return {x.shape[0], x.shape[1], x.dim() == 4 ? x.shape[2] * x.shape[3] : 1};
}

TensorPtr channelVector(const Args& a, size_t i, const char* name, int64_t C, bool optional) {
  auto t = optional ? a.optTensor(i, name) : a.tensor(i, name);
  if (!t) return t;
  requireDtype(a.op, name, *t, DType::F32);
  requireShape(a.op, name, *t, {C});
  return t;
}

// Channels are processed in blocks: one channel at a time for 4-D input (its planes stay in cache across the
// passes), 64 at a time for 2-D input (where a row holds consecutive channels and the loops vectorize across them).
template <typename F>
void forChannelBlocks(const Planes& p, F&& f) {
  int64_t block = p.S == 1 ? 64 : 1;
  int64_t blocks = (p.C + block - 1) / block;
#pragma omp parallel for schedule(static) if (p.N * p.C * p.S >= kParallelGrain && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) f(b * block, std::min(p.C, (b + 1) * block));
}

// acc[c - c0] = sum over n and s of f(c, x[n, c, s], z[n, c, s]) for c in [c0, c1); z may be null.
template <typename F>
void accumulate(const Planes& p, const float* x, const float* z, int64_t c0, int64_t c1, double* acc, F&& f) {
  for (int64_t c = c0; c < c1; ++c) acc[c - c0] = 0.0;
  for (int64_t n = 0; n < p.N; ++n) {
    if (p.S == 1) {
      int64_t base = p.at(n, c0);
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += f(c, x[base + c - c0], z ? z[base + c - c0] : 0.0f);
      continue;
    }
    for (int64_t c = c0; c < c1; ++c) {
      int64_t o = p.at(n, c);
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < p.S; ++i) s += f(c, x[o + i], z ? z[o + i] : 0.0f);
      acc[c - c0] += s;
    }
  }
}

// y[n, c, s] = f(c, x[n, c, s], z[n, c, s]) for c in [c0, c1).
template <typename F>
void mapPlanes(const Planes& p, const float* x, const float* z, float* y, int64_t c0, int64_t c1, F&& f) {
  for (int64_t n = 0; n < p.N; ++n) {
    int64_t base = p.at(n, c0), len = (c1 - c0) * p.S;
    if (p.S == 1) {
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) y[base + i] = f(c0 + i, x[base + i], z ? z[base + i] : 0.0f);
      continue;
    }
    for (int64_t c = c0; c < c1; ++c) {
      int64_t o = p.at(n, c);
#pragma omp simd
      for (int64_t i = 0; i < p.S; ++i) y[o + i] = f(c, x[o + i], z ? z[o + i] : 0.0f);
    }
  }
}

constexpr int64_t kMaxBlock = 64;

}  // namespace

SSQL_OP(batchNorm) {
  auto x = a.tensor(0, "x");
  requireDtype(a.op, "x", *x, DType::F32);
  Planes p = planesOf(a.op, *x);
  auto weight = channelVector(a, 1, "weight", p.C, true);
  auto bias = channelVector(a, 2, "bias", p.C, true);
  auto runMean = channelVector(a, 3, "runningMean", p.C, true);
  auto runVar = channelVector(a, 4, "runningVar", p.C, true);
  bool training = a.boolean(5, "training");
  double momentum = a.number(6, "momentum");
  double eps = a.number(7, "eps");
  if (!runMean != !runVar) throw TypeError("batchNorm(): runningMean and runningVar must be given together");
  if (!(eps >= 0.0)) throw RangeError("batchNorm(): eps must be >= 0");
  if (!(momentum >= 0.0 && momentum <= 1.0)) throw RangeError("batchNorm(): momentum must be in [0, 1]");
  if (!training && !runMean) throw RangeError("batchNorm(): eval mode needs runningMean and runningVar");
  int64_t M = p.count();
  if (training && M <= 1)
    throw RangeError("batchNorm(): expected more than 1 value per channel when training, got input " + shapeStr(x->shape));

  auto y = empty(DType::F32, x->shape);
  auto mean = empty(DType::F32, {p.C});
  auto invStd = empty(DType::F32, {p.C});
  const float* px = x->f32();
  float* py = y->f32();
  const float* pw = weight ? weight->f32() : nullptr;
  const float* pb = bias ? bias->f32() : nullptr;
  float* rm = runMean ? runMean->f32() : nullptr;
  float* rv = runVar ? runVar->f32() : nullptr;
  float* pm = mean->f32();
  float* pi = invStd->f32();

  std::vector<float> scales(p.C), shifts(p.C);
  forChannelBlocks(p, [&](int64_t c0, int64_t c1) {
    double mu[kMaxBlock], var[kMaxBlock];
    if (training) {
      accumulate(p, px, nullptr, c0, c1, mu, [](int64_t, float v, float) { return static_cast<double>(v); });
      for (int64_t c = c0; c < c1; ++c) mu[c - c0] /= static_cast<double>(M);
      accumulate(p, px, nullptr, c0, c1, var, [&](int64_t c, float v, float) {
        double d = v - mu[c - c0];
        return d * d;
      });
    }
    for (int64_t c = c0; c < c1; ++c) {
      double m, inv;
      if (training) {
        double q = var[c - c0];
        m = mu[c - c0];
        inv = 1.0 / std::sqrt(q / static_cast<double>(M) + eps);
        if (rm) {
          rm[c] = static_cast<float>((1.0 - momentum) * rm[c] + momentum * m);
          rv[c] = static_cast<float>((1.0 - momentum) * rv[c] + momentum * q / static_cast<double>(M - 1));
        }
      } else {
        m = rm[c];
        inv = 1.0 / std::sqrt(static_cast<double>(rv[c]) + eps);
      }
      pm[c] = static_cast<float>(m);
      pi[c] = static_cast<float>(inv);
      double scale = pw ? pw[c] * inv : inv;
      scales[c] = static_cast<float>(scale);
      shifts[c] = static_cast<float>((pb ? pb[c] : 0.0) - m * scale);
    }
    const float* sc = scales.data();
    const float* sh = shifts.data();
    mapPlanes(p, px, nullptr, py, c0, c1, [sc, sh](int64_t c, float v, float) { return v * sc[c] + sh[c]; });
  });
  return wrapMany(a.env(), {y, mean, invStd});
}

// dx = w * invStd * (gy - mean(gy) - xhat * mean(gy * xhat)) when the statistics came from the batch, else
// w * invStd * gy; dWeight = sum(gy * xhat), dBias = sum(gy).
SSQL_OP(batchNormBackward) {
  auto gy = a.tensor(0, "gy");
  auto x = a.tensor(1, "x");
  requireDtype(a.op, "gy", *gy, DType::F32);
  requireDtype(a.op, "x", *x, DType::F32);
  Planes p = planesOf(a.op, *x);
  requireSameShape(a.op, *gy, *x);
  auto weight = channelVector(a, 2, "weight", p.C, true);
  auto mean = channelVector(a, 3, "mean", p.C, false);
  auto invStd = channelVector(a, 4, "invStd", p.C, false);
  bool training = a.boolean(5, "training");
  bool withAffine = a.boolean(6, "withAffine");

  auto dx = empty(DType::F32, x->shape);
  auto dw = withAffine ? empty(DType::F32, {p.C}) : nullptr;
  auto db = withAffine ? empty(DType::F32, {p.C}) : nullptr;
  const float* pg = gy->f32();
  const float* px = x->f32();
  const float* pw = weight ? weight->f32() : nullptr;
  const float* pm = mean->f32();
  const float* pi = invStd->f32();
  float* pdx = dx->f32();
  double M = static_cast<double>(p.count());

  std::vector<float> k(p.C), a0(p.C), a1(p.C);
  forChannelBlocks(p, [&](int64_t c0, int64_t c1) {
    double sumG[kMaxBlock], sumGX[kMaxBlock];  // sum(gy), sum(gy * (x - mean))
    if (training || withAffine) {
      accumulate(p, pg, nullptr, c0, c1, sumG, [](int64_t, float g, float) { return static_cast<double>(g); });
      accumulate(p, pg, px, c0, c1, sumGX, [pm](int64_t c, float g, float xv) {
        return static_cast<double>(g) * (static_cast<double>(xv) - pm[c]);
      });
    }
    for (int64_t c = c0; c < c1; ++c) {
      double inv = pi[c];
      if (withAffine) {
        dw->f32()[c] = static_cast<float>(sumGX[c - c0] * inv);
        db->f32()[c] = static_cast<float>(sumG[c - c0]);
      }
      k[c] = static_cast<float>((pw ? pw[c] : 1.0) * inv);
      a0[c] = training && M > 0 ? static_cast<float>(sumG[c - c0] / M) : 0.0f;
      a1[c] = training && M > 0 ? static_cast<float>(inv * inv * sumGX[c - c0] / M) : 0.0f;
    }
    const float *kk = k.data(), *b0 = a0.data(), *b1 = a1.data();
    if (training) {
      // dx = k * (gy - sumG / M - (x - mean) * inv^2 * sumGX / M)
      mapPlanes(p, pg, px, pdx, c0, c1, [kk, b0, b1, pm](int64_t c, float g, float xv) {
        return kk[c] * (g - b0[c] - (xv - pm[c]) * b1[c]);
      });
    } else {
      mapPlanes(p, pg, nullptr, pdx, c0, c1, [kk](int64_t c, float g, float) { return kk[c] * g; });
    }
  });
  return wrapMany(a.env(), {dx, dw, db});
}
