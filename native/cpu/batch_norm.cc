// Batch norm forward/backward over [N, C] or [N, C, H, W] with PyTorch's semantics. Own kernels rather than oneDNN:
// one channel at a time, so the channel's N x H x W values stay in cache across the statistics and normalization
// passes, and the running-stat update (unbiased variance) and eval mode are exactly PyTorch's.
#include <cmath>
#include <string>

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

template <typename F>
void forChannels(const Planes& p, F&& f) {
#pragma omp parallel for schedule(static) if (p.N * p.C * p.S >= kParallelGrain && p.C > 1)
  for (int64_t c = 0; c < p.C; ++c) f(c);
}

double planeSum(const float* x, int64_t S) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < S; ++i) s += x[i];
  return s;
}

double planeSquaredDeviation(const float* x, int64_t S, double mean) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < S; ++i) {
    double d = x[i] - mean;
    s += d * d;
  }
  return s;
}

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

  forChannels(p, [&](int64_t c) {
    double mu, inv;
    if (training) {
      double s = 0.0;
      for (int64_t n = 0; n < p.N; ++n) s += planeSum(px + p.at(n, c), p.S);
      mu = s / static_cast<double>(M);
      double q = 0.0;
      for (int64_t n = 0; n < p.N; ++n) q += planeSquaredDeviation(px + p.at(n, c), p.S, mu);
      double var = q / static_cast<double>(M);
      inv = 1.0 / std::sqrt(var + eps);
      if (rm) {
        rm[c] = static_cast<float>((1.0 - momentum) * rm[c] + momentum * mu);
        rv[c] = static_cast<float>((1.0 - momentum) * rv[c] + momentum * q / static_cast<double>(M - 1));
      }
    } else {
      mu = rm[c];
      inv = 1.0 / std::sqrt(static_cast<double>(rv[c]) + eps);
    }
    pm[c] = static_cast<float>(mu);
    pi[c] = static_cast<float>(inv);
    float scale = static_cast<float>(pw ? pw[c] * inv : inv);
    float shift = static_cast<float>((pb ? pb[c] : 0.0) - mu * scale);
    for (int64_t n = 0; n < p.N; ++n) {
      const float* xi = px + p.at(n, c);
      float* yi = py + p.at(n, c);
#pragma omp simd
      for (int64_t i = 0; i < p.S; ++i) yi[i] = xi[i] * scale + shift;
    }
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

  forChannels(p, [&](int64_t c) {
    double mu = pm[c], inv = pi[c];
    double sumG = 0.0, sumGX = 0.0;  // sum(gy), sum(gy * (x - mean))
    if (training || withAffine) {
      for (int64_t n = 0; n < p.N; ++n) {
        const float* g = pg + p.at(n, c);
        const float* xi = px + p.at(n, c);
        double s = 0.0, t = 0.0;
#pragma omp simd reduction(+ : s, t)
        for (int64_t i = 0; i < p.S; ++i) {
          s += g[i];
          t += g[i] * (xi[i] - mu);
        }
        sumG += s;
        sumGX += t;
      }
    }
    if (withAffine) {
      dw->f32()[c] = static_cast<float>(sumGX * inv);
      db->f32()[c] = static_cast<float>(sumG);
    }
    double w = pw ? pw[c] : 1.0;
    float k = static_cast<float>(w * inv);
    if (training && M > 0) {
      // dx = k * (gy - sumG / M - (x - mean) * inv^2 * sumGX / M)
      float a0 = static_cast<float>(sumG / M);
      float a1 = static_cast<float>(inv * inv * sumGX / M);
      float m = static_cast<float>(mu);
      for (int64_t n = 0; n < p.N; ++n) {
        const float* g = pg + p.at(n, c);
        const float* xi = px + p.at(n, c);
        float* d = pdx + p.at(n, c);
#pragma omp simd
        for (int64_t i = 0; i < p.S; ++i) d[i] = k * (g[i] - a0 - (xi[i] - m) * a1);
      }
    } else {
      for (int64_t n = 0; n < p.N; ++n) {
        const float* g = pg + p.at(n, c);
        float* d = pdx + p.at(n, c);
#pragma omp simd
        for (int64_t i = 0; i < p.S; ++i) d[i] = k * g[i];
      }
    }
  });
  return wrapMany(a.env(), {dx, dw, db});
}
