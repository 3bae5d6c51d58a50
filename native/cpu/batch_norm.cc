// Batch norm forward/backward over [N, C] or [N, C, H, W] with PyTorch's semantics. Own kernels rather than oneDNN:
// two passes each way (statistics in double, then the elementwise map), one channel at a time so that the channel's
// N x H x W values stay in cache between the passes, and the running-stat update (unbiased variance) and eval mode
// are exactly PyTorch's. A ReLU after the norm runs in the same passes (max in the forward map, its mask in the
// backward sums and map), and the forward can hand its output's min/max to a per-tensor observer (extremes.h).
// No trapping math: GCC then if-converts the ReLU's selects so that those loops vectorize (results unchanged).
#pragma GCC optimize("no-trapping-math")

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/batch_norm_args.h"
#include "../core/binding.h"
#include "extremes.h"
#include "output_fake_quant.h"
#include "parallel.h"
#include "simd.h"

using namespace ssql;

namespace {

using parse::Planes;

// Channels are processed in blocks: one channel at a time for 4-D input (its planes stay in cache across the
// passes), 64 at a time for 2-D input (where a row holds consecutive channels and the loops vectorize across them).
int64_t channelBlock(const Planes& p) { return p.S == 1 ? 64 : 1; }

template <typename F>
void forChannelBlocks(const Planes& p, F&& f) {
  int64_t block = channelBlock(p);
  int64_t blocks = (p.C + block - 1) / block;
  parallelForIf(p.N * p.C * p.S >= kParallelGrain && blocks > 1, blocks,
                [&](int64_t b) { f(b * block, std::min(p.C, (b + 1) * block)); });
}

// sum[c - c0] = sum of x, sumSq[c - c0] = sum of x^2 over one channel block, in double.
SSQL_VECTORIZED
void moments(const Planes& p, const float* x, int64_t c0, int64_t c1, double* sum, double* sumSq) {
  for (int64_t c = c0; c < c1; ++c) sum[c - c0] = sumSq[c - c0] = 0.0;
  for (int64_t n = 0; n < p.N; ++n) {
    if (p.S == 1) {
      const float* row = x + p.at(n, c0);
#pragma omp simd
      for (int64_t j = 0; j < c1 - c0; ++j) {
        double v = row[j];
        sum[j] += v;
        sumSq[j] += v * v;
      }
      continue;
    }
    for (int64_t c = c0; c < c1; ++c) {
      const float* plane = x + p.at(n, c);
      double s = 0.0, q = 0.0;
#pragma omp simd reduction(+ : s, q)
      for (int64_t i = 0; i < p.S; ++i) {
        double v = plane[i];
        s += v;
        q += v * v;
      }
      sum[c - c0] += s;
      sumSq[c - c0] += q;
    }
  }
}

// The gradient that reaches the norm through the fused epilogue's gate: gy (kGate 0), gy where the ReLU's output is
// positive (1: a float output), or gy * mask (2: the uint8 mask of a fused fake quant, as its backward multiplies).
template <int kGate>
inline float gradIn(const float* gy, const void* gate, int64_t i) {
  float g = gy[i];
  if constexpr (kGate == 1) return static_cast<const float*>(gate)[i] > 0.0f ? g : 0.0f;
  if constexpr (kGate == 2) return g * static_cast<float>(static_cast<const uint8_t*>(gate)[i]);
  return g;
}

// sumG = sum of g, sumGX = sum of g * (x - mean) over one channel block, g = gradIn.
template <int kGate>
SSQL_VECTORIZED void gradMoments(const Planes& p, const float* gy, const void* gate, const float* x, const float* mean,
                                 int64_t c0, int64_t c1, double* sumG, double* sumGX) {
  for (int64_t c = c0; c < c1; ++c) sumG[c - c0] = sumGX[c - c0] = 0.0;
  for (int64_t n = 0; n < p.N; ++n) {
    if (p.S == 1) {
      int64_t o = p.at(n, c0);
#pragma omp simd
      for (int64_t j = 0; j < c1 - c0; ++j) {
        double g = gradIn<kGate>(gy, gate, o + j);
        sumG[j] += g;
        sumGX[j] += g * (static_cast<double>(x[o + j]) - mean[c0 + j]);
      }
      continue;
    }
    for (int64_t c = c0; c < c1; ++c) {
      int64_t o = p.at(n, c);
      double m = mean[c], s = 0.0, t = 0.0;
#pragma omp simd reduction(+ : s, t)
      for (int64_t i = 0; i < p.S; ++i) {
        double g = gradIn<kGate>(gy, gate, o + i);
        s += g;
        t += g * (static_cast<double>(x[o + i]) - m);
      }
      sumG[c - c0] += s;
      sumGX[c - c0] += t;
    }
  }
}

// y = x * scale[c] + shift[c] (then max(y, 0) with kRelu, as the relu op rounds it) over one channel block;
// with `range`, the block's output extremes, scanned while each row is still in cache; with `fq`, the output is
// fake-quantized (output_fake_quant.h) through a row-sized scratch and `mask` gets the gradient mask.
template <bool kRelu>
inline float affineAt(float v, float a, float b) {
  float y = v * a + b;
  if constexpr (kRelu) return y > 0.0f ? y : 0.0f;
  return y;
}

template <bool kRelu>
SSQL_VECTORIZED void affine(const Planes& p, const float* x, float* y, uint8_t* mask, int64_t c0, int64_t c1,
                            const float* scale, const float* shift, const OutputFakeQuant* fq, Extremes* range) {
  thread_local std::vector<float> scratch;
  if (fq) scratch.resize(static_cast<size_t>(p.S == 1 ? c1 - c0 : p.S));
  for (int64_t n = 0; n < p.N; ++n) {
    if (p.S == 1) {
      int64_t o = p.at(n, c0);
      float* to = fq ? scratch.data() : y + o;
#pragma omp simd
      for (int64_t j = 0; j < c1 - c0; ++j) to[j] = affineAt<kRelu>(x[o + j], scale[c0 + j], shift[c0 + j]);
      if (fq) fakeQuantEpilogue(to, y + o, mask + o, c1 - c0, *fq, kRelu);
      if (range) scanRun(y + o, c1 - c0, *range);
      continue;
    }
    for (int64_t c = c0; c < c1; ++c) {
      int64_t o = p.at(n, c);
      float a = scale[c], b = shift[c];
      float* to = fq ? scratch.data() : y + o;
#pragma omp simd
      for (int64_t i = 0; i < p.S; ++i) to[i] = affineAt<kRelu>(x[o + i], a, b);
      if (fq) fakeQuantEpilogue(to, y + o, mask + o, p.S, *fq, kRelu);
      if (range) scanRun(y + o, p.S, *range);
    }
  }
}

// dx = k[c] * (g - a0[c] - (x - mean[c]) * a1[c]) over one channel block, g = gradIn.
template <int kGate>
SSQL_VECTORIZED void inputGrad(const Planes& p, const float* gy, const void* gate, const float* x, float* dx, int64_t c0,
                               int64_t c1, const float* k, const float* a0, const float* a1, const float* mean) {
  for (int64_t n = 0; n < p.N; ++n) {
    if (p.S == 1) {
      int64_t o = p.at(n, c0);
#pragma omp simd
      for (int64_t j = 0; j < c1 - c0; ++j) {
        int64_t c = c0 + j;
        dx[o + j] = k[c] * (gradIn<kGate>(gy, gate, o + j) - a0[c] - (x[o + j] - mean[c]) * a1[c]);
      }
      continue;
    }
    for (int64_t c = c0; c < c1; ++c) {
      int64_t o = p.at(n, c);
      float kc = k[c], b0 = a0[c], b1 = a1[c], m = mean[c];
#pragma omp simd
      for (int64_t i = 0; i < p.S; ++i) dx[o + i] = kc * (gradIn<kGate>(gy, gate, o + i) - b0 - (x[o + i] - m) * b1);
    }
  }
}

constexpr decltype(&gradMoments<0>) kGradMoments[3] = {gradMoments<0>, gradMoments<1>, gradMoments<2>};
constexpr decltype(&inputGrad<0>) kInputGrad[3] = {inputGrad<0>, inputGrad<1>, inputGrad<2>};

constexpr int64_t kMaxBlock = 64;

}  // namespace

SSQL_OP(batchNorm) {
  parse::BatchNormArgs b = parse::batchNormArgs(a);
  const Planes& p = b.p;
  const bool training = b.training;
  const double momentum = b.momentum, eps = b.eps;
  const int64_t M = p.count();
  const TensorPtr &x = b.x, &weight = b.weight, &bias = b.bias, &runMean = b.runningMean, &runVar = b.runningVar;
  const TensorPtr &y = b.y, &mean = b.mean, &invStd = b.invStd;
  const float* px = x->f32();
  float* py = y->f32();
  const float* pw = weight ? weight->f32() : nullptr;
  const float* pb = bias ? bias->f32() : nullptr;
  float* rm = runMean ? runMean->f32() : nullptr;
  float* rv = runVar ? runVar->f32() : nullptr;
  float* pm = mean->f32();
  float* pi = invStd->f32();

  const OutputFakeQuant f = outputFakeQuantArgs(a, 10);
  if (f.on && b.withRange) throw RangeError("batchNorm(): withRange and a fused fake quant exclude each other");
  TensorPtr mask = f.on ? empty(DType::U8, x->shape) : nullptr;
  uint8_t* pmask = mask ? mask->data<uint8_t>() : nullptr;
  const OutputFakeQuant* fq = f.on && !f.identity ? &f : nullptr;

  std::vector<float> scales(p.C), shifts(p.C);
  TensorPtr outRange = b.withRange ? empty(DType::F32, {2}) : nullptr;
  const int64_t block = channelBlock(p);
  std::vector<Extremes> ranges(outRange ? static_cast<size_t>((p.C + block - 1) / block) : 0);
  forChannelBlocks(p, [&](int64_t c0, int64_t c1) {
    double sum[kMaxBlock], sumSq[kMaxBlock];
    if (training) moments(p, px, c0, c1, sum, sumSq);
    for (int64_t c = c0; c < c1; ++c) {
      double m, inv;
      if (training) {
        // One pass in double: E[x^2] - E[x]^2 loses nothing a float result would show.
        m = sum[c - c0] / static_cast<double>(M);
        double q = std::max(sumSq[c - c0] - m * sum[c - c0], 0.0);  // sum of squared deviations
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
    Extremes* range = outRange ? &ranges[static_cast<size_t>(c0 / block)] : nullptr;
    if (b.relu)
      affine<true>(p, px, py, pmask, c0, c1, scales.data(), shifts.data(), fq, range);
    else
      affine<false>(p, px, py, pmask, c0, c1, scales.data(), shifts.data(), fq, range);
  });
  // Fake quant turned off by its `enabled` flag: the output as it is, and the ReLU's mask alone.
  if (f.on && f.identity)
    parallelForIf(M * p.C >= kParallelGrain, M * p.C, [&](int64_t i) { pmask[i] = !b.relu || py[i] > 0.0f; });
  if (outRange) {
    Extremes all;
    for (const Extremes& e : ranges) merge(all, e);
    outRange->f32()[0] = all.min();
    outRange->f32()[1] = all.max();
  }
  return wrapMany(a.env(), {y, mean, invStd, outRange, mask});
}

// dx = w * invStd * (gy - mean(gy) - xhat * mean(gy * xhat)) when the statistics came from the batch, else
// w * invStd * gy; dWeight = sum(gy * xhat), dBias = sum(gy).
SSQL_OP(batchNormBackward) {
  parse::BatchNormBackwardArgs b = parse::batchNormBackwardArgs(a);
  const Planes& p = b.p;
  const bool training = b.training, withAffine = b.withAffine;
  const TensorPtr &gy = b.gy, &x = b.x, &weight = b.weight, &mean = b.mean, &invStd = b.invStd;
  const TensorPtr &dx = b.dx, &dw = b.dw, &db = b.db;
  const float* pg = gy->f32();
  const void* gate = b.reluOut ? b.reluOut->storage->data : nullptr;
  const int gateKind = !b.reluOut ? 0 : b.reluOut->dtype == DType::U8 ? 2 : 1;
  const float* px = x->f32();
  const float* pw = weight ? weight->f32() : nullptr;
  const float* pm = mean->f32();
  const float* pi = invStd->f32();
  float* pdx = dx->f32();
  double M = static_cast<double>(p.count());

  std::vector<float> k(p.C), a0(p.C), a1(p.C);
  forChannelBlocks(p, [&](int64_t c0, int64_t c1) {
    double sumG[kMaxBlock], sumGX[kMaxBlock];  // sum(gy), sum(gy * (x - mean))
    if (training || withAffine) kGradMoments[gateKind](p, pg, gate, px, pm, c0, c1, sumG, sumGX);
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
    // In eval mode a0 = a1 = 0 and gy stands in for x, so that dx = k * gy even where x is not finite.
    kInputGrad[gateKind](p, pg, gate, training ? px : pg, pdx, c0, c1, k.data(), a0.data(), a1.data(), pm);
  });
  return wrapMany(a.env(), {dx, dw, db});
}
