// Kernels of batch norm (native/cpu/batch_norm.cc): per-channel sums over [n, c, hw] in double (also the bias
// gradient of conv2d), the statistics and running-stat update, the per-channel affine map and the backward terms.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "grid.cuh"
#include "kernels.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

constexpr int kChannelThreads = 256;

int channelSplits(int64_t n, int64_t c, int64_t hw) {
  int64_t m = n * hw;
  int64_t want = (static_cast<int64_t>(multiprocessorCount()) * 4 + c - 1) / std::max<int64_t>(c, 1);
  want = std::min<int64_t>(want, (m + 2047) / 2048);  // at least 2048 elements per block
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, 1024)));
}

// gy, or gy where a fused ReLU's output is positive (its backward); reluOut null: no ReLU.
__device__ __forceinline__ float gradIn(const float* __restrict__ gy, const float* __restrict__ reluOut, int64_t i) {
  return reluOut && !(reluOut[i] > 0.0f) ? 0.0f : gy[i];
}

__global__ void channelSumsKernel(ChannelSums mode, const float* __restrict__ x, const float* __restrict__ gy,
                                  const float* __restrict__ reluOut, const float* __restrict__ mean, int64_t n,
                                  int64_t c, int64_t hw, double* __restrict__ out) {
  __shared__ double shared[32];
  int64_t ch = blockIdx.x;
  int64_t m = n * hw;
  int64_t chunk = (m + gridDim.y - 1) / gridDim.y;
  int64_t begin = blockIdx.y * chunk;
  int64_t end = min(begin + chunk, m);
  float mu = mode == ChannelSums::BackwardTerms ? mean[ch] : 0.0f;
  double a = 0.0, b = 0.0;
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    int64_t idx = ((j / hw) * c + ch) * hw + j % hw;
    if (mode == ChannelSums::Moments) {
      double v = x[idx];
      a += v;
      b += v * v;
    } else if (mode == ChannelSums::BackwardTerms) {
      double g = gradIn(gy, reluOut, idx);
      a += g;
      b += g * (static_cast<double>(x[idx]) - mu);
    } else {
      a += gy[idx];
    }
  }
  a = blockAllReduce(a, SumOp{}, shared);
  b = blockAllReduce(b, SumOp{}, shared);
  if (threadIdx.x == 0) {
    out[(ch * gridDim.y + blockIdx.y) * 2] = a;
    out[(ch * gridDim.y + blockIdx.y) * 2 + 1] = b;
  }
}

__global__ void channelPartialsKernel(const double* __restrict__ partial, double* __restrict__ sums, int64_t c, int splits) {
  for (int64_t ch = globalIndex(); ch < c; ch += globalStride()) {
    double a = 0.0, b = 0.0;
    for (int s = 0; s < splits; ++s) {
      a += partial[(ch * splits + s) * 2];
      b += partial[(ch * splits + s) * 2 + 1];
    }
    sums[ch * 2] = a;
    sums[ch * 2 + 1] = b;
  }
}

__global__ void channelSumToFloatKernel(const double* __restrict__ sums, float* __restrict__ out, int64_t c) {
  for (int64_t ch = globalIndex(); ch < c; ch += globalStride()) out[ch] = static_cast<float>(sums[ch * 2]);
}

__global__ void batchNormFinalizeTrainKernel(const double* __restrict__ sums, int64_t c, int64_t count, float eps,
                                             float momentum, float* runningMean, float* runningVar,
                                             const float* __restrict__ weight, const float* __restrict__ bias,
                                             float* __restrict__ mean, float* __restrict__ invStd,
                                             float* __restrict__ scale, float* __restrict__ shift) {
  for (int64_t ch = globalIndex(); ch < c; ch += globalStride()) {
    double n = static_cast<double>(count);
    double mu = sums[ch * 2] / n;
    double var = sums[ch * 2 + 1] / n - mu * mu;  // biased: what normalises x
    if (var < 0.0) var = 0.0;
    float inv = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
    float muF = static_cast<float>(mu);
    mean[ch] = muF;
    invStd[ch] = inv;
    if (runningMean) runningMean[ch] = (1.0f - momentum) * runningMean[ch] + momentum * muF;
    // Running variance takes the unbiased estimate, as torch.nn.BatchNorm (count > 1 is checked by the caller).
    if (runningVar) runningVar[ch] = (1.0f - momentum) * runningVar[ch] + momentum * static_cast<float>(var * n / (n - 1.0));
    float w = weight ? weight[ch] : 1.0f;
    scale[ch] = w * inv;
    shift[ch] = bias ? bias[ch] : 0.0f;
  }
}

__global__ void batchNormFinalizeEvalKernel(const float* __restrict__ runningMean, const float* __restrict__ runningVar,
                                            int64_t c, float eps, const float* __restrict__ weight,
                                            const float* __restrict__ bias, float* __restrict__ mean,
                                            float* __restrict__ invStd, float* __restrict__ scale,
                                            float* __restrict__ shift) {
  for (int64_t ch = globalIndex(); ch < c; ch += globalStride()) {
    float inv = 1.0f / sqrtf(runningVar[ch] + eps);
    mean[ch] = runningMean[ch];
    invStd[ch] = inv;
    float w = weight ? weight[ch] : 1.0f;
    scale[ch] = w * inv;
    shift[ch] = bias ? bias[ch] : 0.0f;
  }
}

__global__ void channelAffineKernel(const float* __restrict__ x, const float* __restrict__ mean,
                                    const float* __restrict__ scale, const float* __restrict__ shift, float* __restrict__ y,
                                    int64_t total, int64_t c, int64_t hw, bool relu) {
  for (int64_t i = globalIndex(); i < total; i += globalStride()) {
    int64_t ch = (i / hw) % c;
    float v = (x[i] - mean[ch]) * scale[ch] + shift[ch];
    y[i] = relu ? (v > 0.0f ? v : 0.0f) : v;
  }
}

__global__ void batchNormBackwardParamsKernel(const double* __restrict__ sums, const float* __restrict__ invStd,
                                              float* __restrict__ dWeight, float* __restrict__ dBias, int64_t c) {
  for (int64_t ch = globalIndex(); ch < c; ch += globalStride()) {
    if (dWeight) dWeight[ch] = static_cast<float>(sums[ch * 2 + 1] * invStd[ch]);
    if (dBias) dBias[ch] = static_cast<float>(sums[ch * 2]);
  }
}

// Training: dx = w·invStd·(gy − Σgy/M − (x − mean)·invStd²·Σgy(x − mean)/M); eval: dx = gy·w·invStd.
__global__ void batchNormBackwardDataKernel(const float* __restrict__ gy, const float* __restrict__ reluOut,
                                            const float* __restrict__ x,
                                            const float* __restrict__ weight, const float* __restrict__ mean,
                                            const float* __restrict__ invStd, const double* __restrict__ sums,
                                            int64_t total, int64_t c, int64_t hw, bool training,
                                            float* __restrict__ dx) {
  double m = static_cast<double>(total / c);
  for (int64_t i = globalIndex(); i < total; i += globalStride()) {
    int64_t ch = (i / hw) % c;
    float inv = invStd[ch];
    float w = weight ? weight[ch] : 1.0f;
    float g = gradIn(gy, reluOut, i);
    if (!training) {
      dx[i] = g * w * inv;
      continue;
    }
    float meanGrad = static_cast<float>(sums[ch * 2] / m);
    float proj = static_cast<float>(sums[ch * 2 + 1] / m) * inv * inv;
    dx[i] = w * inv * (g - meanGrad - (x[i] - mean[ch]) * proj);
  }
}

}  // namespace

size_t channelSumsScratchBytes(int64_t n, int64_t c, int64_t hw) {
  int splits = channelSplits(n, c, hw);
  return splits > 1 ? static_cast<size_t>(c) * splits * 2 * sizeof(double) : 0;
}

void channelSums(ChannelSums mode, const float* x, const float* gy, const float* reluOut, const float* mean, int64_t n,
                 int64_t c, int64_t hw, double* sums, void* scratch, cudaStream_t s) {
  if (c <= 0) return;
  int splits = channelSplits(n, c, hw);
  double* partial = splits > 1 ? static_cast<double*>(scratch) : sums;
  dim3 grid(static_cast<unsigned int>(c), static_cast<unsigned int>(splits));
  channelSumsKernel<<<grid, kChannelThreads, 0, s>>>(mode, x, gy, reluOut, mean, n, c, hw, partial);
  checkCuda(cudaGetLastError(), "per-channel sum kernel");
  if (splits > 1) {
    channelPartialsKernel<<<blocksFor(c), kThreads, 0, s>>>(partial, sums, c, splits);
    checkCuda(cudaGetLastError(), "per-channel sum kernel (partials)");
  }
}

void channelSumToFloat(const double* sums, float* out, int64_t c, cudaStream_t s) {
  if (c <= 0) return;
  channelSumToFloatKernel<<<blocksFor(c), kThreads, 0, s>>>(sums, out, c);
  checkCuda(cudaGetLastError(), "bias gradient kernel");
}

void batchNormFinalizeTrain(const double* sums, int64_t c, int64_t count, float eps, float momentum, float* runningMean,
                            float* runningVar, const float* weight, const float* bias, float* mean, float* invStd,
                            float* scale, float* shift, cudaStream_t s) {
  if (c <= 0) return;
  batchNormFinalizeTrainKernel<<<blocksFor(c), kThreads, 0, s>>>(sums, c, count, eps, momentum, runningMean, runningVar,
                                                                 weight, bias, mean, invStd, scale, shift);
  checkCuda(cudaGetLastError(), "batch norm statistics kernel");
}

void batchNormFinalizeEval(const float* runningMean, const float* runningVar, int64_t c, float eps, const float* weight,
                           const float* bias, float* mean, float* invStd, float* scale, float* shift, cudaStream_t s) {
  if (c <= 0) return;
  batchNormFinalizeEvalKernel<<<blocksFor(c), kThreads, 0, s>>>(runningMean, runningVar, c, eps, weight, bias, mean,
                                                                invStd, scale, shift);
  checkCuda(cudaGetLastError(), "batch norm statistics kernel");
}

void channelAffine(const float* x, const float* mean, const float* scale, const float* shift, float* y, int64_t n,
                   int64_t c, int64_t hw, bool relu, cudaStream_t s) {
  int64_t total = n * c * hw;
  if (total <= 0) return;
  channelAffineKernel<<<blocksFor(total), kThreads, 0, s>>>(x, mean, scale, shift, y, total, c, hw, relu);
  checkCuda(cudaGetLastError(), "batch norm kernel");
}

void batchNormBackwardParams(const double* sums, const float* invStd, float* dWeight, float* dBias, int64_t c,
                             cudaStream_t s) {
  if (c <= 0 || (!dWeight && !dBias)) return;
  batchNormBackwardParamsKernel<<<blocksFor(c), kThreads, 0, s>>>(sums, invStd, dWeight, dBias, c);
  checkCuda(cudaGetLastError(), "batch norm backward kernel");
}

void batchNormBackwardData(const float* gy, const float* reluOut, const float* x, const float* weight, const float* mean,
                           const float* invStd, const double* sums, int64_t n, int64_t c, int64_t hw, bool training,
                           float* dx, cudaStream_t s) {
  int64_t total = n * c * hw;
  if (total <= 0) return;
  batchNormBackwardDataKernel<<<blocksFor(total), kThreads, 0, s>>>(gy, reluOut, x, weight, mean, invStd, sums, total,
                                                                    c, hw, training, dx);
  checkCuda(cudaGetLastError(), "batch norm backward kernel");
}

}  // namespace cuda
}  // namespace ssql
