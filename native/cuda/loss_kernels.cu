// Kernels of the loss ops (native/cpu/loss.cc): row-wise log-softmax and its backward, cross-entropy with label
// smoothing (rows, mean, backward) and the top-k correct counts, one block per row.
#include <cmath>
#include <cstdint>

#include "grid.cuh"
#include "kernels.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

// log-sum-exp of a row, with the exponentials summed in double as the CPU backend does.
__device__ float rowLogSumExp(const float* __restrict__ xr, int64_t cols, float* sharedF, double* sharedD) {
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, xr[j]);
  m = blockAllReduce(m, MaxOp{}, sharedF);
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += exp(static_cast<double>(xr[j]) - m);
  s = blockAllReduce(s, SumOp{}, sharedD);
  return static_cast<float>(m + log(s));
}

__global__ void logSoftmaxKernel(const float* __restrict__ x, float* __restrict__ y, int64_t cols) {
  __shared__ float sharedF[32];
  __shared__ double sharedD[32];
  const float* xr = x + blockIdx.x * cols;
  float* yr = y + blockIdx.x * cols;
  float lse = rowLogSumExp(xr, cols, sharedF, sharedD);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = xr[j] - lse;
}

__global__ void logSoftmaxBackwardKernel(const float* __restrict__ gy, const float* __restrict__ y, float* __restrict__ dx,
                                         int64_t cols) {
  __shared__ double shared[32];
  int64_t off = blockIdx.x * cols;
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += gy[off + j];
  float sf = static_cast<float>(blockAllReduce(s, SumOp{}, shared));
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dx[off + j] = gy[off + j] - expf(y[off + j]) * sf;
}

// Per-row loss -(1 - ls)·lp[t] - ls/C·Σ lp (NaN for an out-of-range target); also writes the log-probabilities.
__global__ void crossEntropyRowsKernel(const float* __restrict__ logits, const int32_t* __restrict__ target,
                                       float* __restrict__ logProbs, float* __restrict__ rowLoss, int64_t cols,
                                       float smoothing) {
  __shared__ float sharedF[32];
  __shared__ double sharedD[32];
  int64_t row = blockIdx.x;
  const float* xr = logits + row * cols;
  float* yr = logProbs + row * cols;
  float lse = rowLogSumExp(xr, cols, sharedF, sharedD);
  double sumLp = 0.0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    float lp = xr[j] - lse;
    yr[j] = lp;
    sumLp += lp;
  }
  sumLp = blockAllReduce(sumLp, SumOp{}, sharedD);  // its barriers also order the writes above before the read below
  if (threadIdx.x == 0) {
    int32_t t = target[row];
    float loss = NAN;
    if (t >= 0 && t < cols) {
      double ls = smoothing;
      loss = static_cast<float>(-(1.0 - ls) * yr[t] - ls / static_cast<double>(cols) * sumLp);
    }
    rowLoss[row] = loss;
  }
}

__global__ void meanKernel(const float* __restrict__ v, float* __restrict__ out, int64_t n) {
  __shared__ double shared[32];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += v[i];
  acc = blockAllReduce(acc, SumOp{}, shared);
  if (threadIdx.x == 0) out[0] = n > 0 ? static_cast<float>(acc / static_cast<double>(n)) : NAN;
}

__global__ void topkCorrectKernel(const float* __restrict__ logits, const int32_t* __restrict__ target,
                                  int32_t* __restrict__ counts, int64_t cols, TopKList ks) {
  __shared__ int shared[32];
  int64_t row = blockIdx.x;
  const float* xr = logits + row * cols;
  int32_t t = target[row];
  bool valid = t >= 0 && t < cols;
  float lt = valid ? xr[t] : 0.0f;
  bool ltNan = isnan(lt);
  int above = 0;
  // The target's rank: classes above it, where NaN ranks highest and ties go to the lower class index.
  if (valid)
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      float v = xr[j];
      bool vNan = isnan(v);
      bool up = ltNan ? (vNan && j < t) : (vNan || v > lt || (v == lt && j < t));
      above += up ? 1 : 0;
    }
  above = blockAllReduce(above, SumOp{}, shared);
  if (threadIdx.x == 0 && valid)
    for (int i = 0; i < ks.n; ++i)
      if (above < ks.k[i]) atomicAdd(&counts[i], 1);
}

__global__ void crossEntropyBackwardKernel(const float* __restrict__ gLoss, const float* __restrict__ logProbs,
                                           const int32_t* __restrict__ target, float* __restrict__ dx, int64_t total,
                                           int64_t rows, int64_t cols, float smoothing) {
  float g = gLoss[0] / static_cast<float>(rows);
  float uniform = smoothing / static_cast<float>(cols);
  for (int64_t i = globalIndex(); i < total; i += globalStride()) {
    int64_t row = i / cols, col = i % cols;
    float onehot = target[row] == col ? 1.0f - smoothing : 0.0f;
    dx[i] = g * (expf(logProbs[i]) - onehot - uniform);
  }
}

}  // namespace

void logSoftmax(const float* x, float* y, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  logSoftmaxKernel<<<static_cast<unsigned int>(rows), rowThreads(cols), 0, s>>>(x, y, cols);
  checkCuda(cudaGetLastError(), "logSoftmax kernel");
}

void logSoftmaxBackward(const float* gy, const float* y, float* dx, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  logSoftmaxBackwardKernel<<<static_cast<unsigned int>(rows), rowThreads(cols), 0, s>>>(gy, y, dx, cols);
  checkCuda(cudaGetLastError(), "logSoftmaxBackward kernel");
}

void crossEntropy(const float* logits, const int32_t* target, float* logProbs, float* loss, float* rowLoss, int64_t rows,
                  int64_t cols, float smoothing, cudaStream_t s) {
  if (rows > 0 && cols > 0) {
    crossEntropyRowsKernel<<<static_cast<unsigned int>(rows), rowThreads(cols), 0, s>>>(logits, target, logProbs, rowLoss,
                                                                                       cols, smoothing);
    checkCuda(cudaGetLastError(), "crossEntropy kernel");
  }
  meanKernel<<<1, 256, 0, s>>>(rowLoss, loss, cols > 0 ? rows : 0);
  checkCuda(cudaGetLastError(), "crossEntropy mean kernel");
}

void crossEntropyBackward(const float* gLoss, const float* logProbs, const int32_t* target, float* dx, int64_t rows,
                          int64_t cols, float smoothing, cudaStream_t s) {
  int64_t total = rows * cols;
  if (total <= 0) return;
  crossEntropyBackwardKernel<<<blocksFor(total), kThreads, 0, s>>>(gLoss, logProbs, target, dx, total, rows, cols,
                                                                   smoothing);
  checkCuda(cudaGetLastError(), "crossEntropyBackward kernel");
}

void topkCorrect(const float* logits, const int32_t* target, int32_t* counts, int64_t rows, int64_t cols,
                 const TopKList& ks, cudaStream_t s) {
  fillI32(counts, 0, ks.n, s);
  if (rows <= 0 || cols <= 0) return;
  topkCorrectKernel<<<static_cast<unsigned int>(rows), rowThreads(cols), 0, s>>>(logits, target, counts, cols, ks);
  checkCuda(cudaGetLastError(), "topkCorrect kernel");
}

}  // namespace cuda
}  // namespace ssql
