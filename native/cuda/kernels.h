// Kernel launchers (implemented in *_kernels.cu). Pointers are device pointers; every launch goes on `s` and
// throws CudaError if the launch itself fails.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "indexing.h"

namespace ssql {
namespace cuda {

// ---- elementwise_kernels.cu
enum class Binary { Add, Sub, Mul, Div, Maximum, AddRelu };
enum class Unary { AddScalar, MulScalar, PowScalar, Square, ClampMin, ClampMax, Neg, Exp, Log, Sqrt, Abs, Relu, Sigmoid, Floor };
enum class GradZip { ReluBackward, AbsBackward, ClampMinBackward, ClampMaxBackward, SigmoidBackward };

// bc == nullptr: a, b and out have the same shape.
void binary(Binary op, const float* a, const float* b, float* out, int64_t n, const BroadcastIndex* bc, cudaStream_t s);
// In place when x == out.
void unary(Unary op, const float* x, float* out, int64_t n, float scalar, cudaStream_t s);
void gradZip(GradZip op, const float* g, const float* x, float* out, int64_t n, float scalar, cudaStream_t s);
void addScaled(float* dst, const float* src, float alpha, int64_t n, cudaStream_t s);
void fillF32(float* dst, float v, int64_t n, cudaStream_t s);
void fillI32(int32_t* dst, int32_t v, int64_t n, cudaStream_t s);
void u8ToFloat(const uint8_t* x, float* out, int64_t n, cudaStream_t s);
void i32ToFloat(const int32_t* x, float* out, int64_t n, cudaStream_t s);
// out[i] = x[offset of i under bc.strideB].
void expand(const float* x, float* out, int64_t n, const BroadcastIndex& bc, cudaStream_t s);
// y[n, c, hw] += bias[c] (conv2d)
void addChannelBias(float* y, const float* bias, int64_t n, int64_t c, int64_t hw, cudaStream_t s);
// y[r, :] = row (linear)
void fillRows(float* y, const float* row, int64_t rows, int64_t cols, cudaStream_t s);

// ---- reduce_kernels.cu
size_t sumScratchBytes(const ReduceIndex& r);
// out[o] = scale * Σ_r x[...], accumulated in double (as the CPU backend).
void sum(const float* x, float* out, const ReduceIndex& r, double scale, void* scratch, cudaStream_t s);
// Max/min along the middle axis of [outer, len, inner]; NaN propagates and wins, first extreme kept on ties.
void argExtreme(const float* x, float* values, int32_t* indices, int64_t outer, int64_t len, int64_t inner, bool isMax,
                cudaStream_t s);
// out (zeroed here) gets g at the positions named by indices along the middle axis; bad indices are skipped.
void indexScatter(const float* g, const int32_t* indices, float* out, int64_t outer, int64_t len, int64_t inner,
                  cudaStream_t s);

// ---- shape_ops_kernels.cu
void permute(const void* x, void* out, size_t elemSize, int64_t n, const PermuteIndex& p, cudaStream_t s);

// ---- batch_norm_kernels.cu
enum class ChannelSums {
  Moments,        // Σ x, Σ x²
  BackwardTerms,  // Σ gy, Σ gy·(x − mean[c])
  GradSum,        // Σ gy, 0
};
size_t channelSumsScratchBytes(int64_t n, int64_t c, int64_t hw);
// Per-channel sums over [n, c, hw] in double; sums gets 2 values per channel (GradSum: conv2d's bias gradient too).
// reluOut (BackwardTerms; null for none): gy counts only where that fused ReLU output is positive.
void channelSums(ChannelSums mode, const float* x, const float* gy, const float* reluOut, const float* mean, int64_t n,
                 int64_t c, int64_t hw, double* sums, void* scratch, cudaStream_t s);
void channelSumToFloat(const double* sums, float* out, int64_t c, cudaStream_t s);

// Batch statistics → mean, invStd, running stats (unbiased variance), and y = (x − mean[c])·scale[c] + shift[c].
void batchNormFinalizeTrain(const double* sums, int64_t c, int64_t count, float eps, float momentum, float* runningMean,
                            float* runningVar, const float* weight, const float* bias, float* mean, float* invStd,
                            float* scale, float* shift, cudaStream_t s);
void batchNormFinalizeEval(const float* runningMean, const float* runningVar, int64_t c, float eps, const float* weight,
                           const float* bias, float* mean, float* invStd, float* scale, float* shift, cudaStream_t s);
// relu: y = max(y, 0) in the same pass.
void channelAffine(const float* x, const float* mean, const float* scale, const float* shift, float* y, int64_t n,
                   int64_t c, int64_t hw, bool relu, cudaStream_t s);
// sums = Σ gy, Σ gy·(x − mean) per channel; dWeight/dBias may be null.
void batchNormBackwardParams(const double* sums, const float* invStd, float* dWeight, float* dBias, int64_t c,
                             cudaStream_t s);
// reluOut as channelSums'.
void batchNormBackwardData(const float* gy, const float* reluOut, const float* x, const float* weight, const float* mean,
                           const float* invStd, const double* sums, int64_t n, int64_t c, int64_t hw, bool training,
                           float* dx, cudaStream_t s);

// ---- pooling_kernels.cu
void maxPool2d(const float* x, float* y, int32_t* indices, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
               int kh, int kw, int sh, int sw, int ph, int pw, cudaStream_t s);
// dx (zeroed here) [planes, inPlane] accumulates gy [planes, outPlane] at the saved indices.
void maxPool2dBackward(const float* gy, const int32_t* indices, float* dx, int64_t planes, int64_t inPlane,
                       int64_t outPlane, cudaStream_t s);

// ---- loss_kernels.cu
void logSoftmax(const float* x, float* y, int64_t rows, int64_t cols, cudaStream_t s);
void logSoftmaxBackward(const float* gy, const float* y, float* dx, int64_t rows, int64_t cols, cudaStream_t s);
// loss[0] = mean over rows; rowLoss is scratch [rows]. An out-of-range target makes the loss NaN.
void crossEntropy(const float* logits, const int32_t* target, float* logProbs, float* loss, float* rowLoss, int64_t rows,
                  int64_t cols, float smoothing, cudaStream_t s);
void crossEntropyBackward(const float* gLoss, const float* logProbs, const int32_t* target, float* dx, int64_t rows,
                          int64_t cols, float smoothing, cudaStream_t s);

constexpr int kMaxTopK = 16;
struct TopKList {
  int n = 0;
  int32_t k[kMaxTopK] = {};
};
// counts[j] (zeroed here) = number of rows whose target is among the top ks.k[j] logits.
void topkCorrect(const float* logits, const int32_t* target, int32_t* counts, int64_t rows, int64_t cols,
                 const TopKList& ks, cudaStream_t s);

// ---- sgd_kernels.cu
// torch.optim.SGD for one parameter; buf (the momentum buffer) may be null without momentum.
void sgdStep(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weightDecay, float dampening,
             bool nesterov, bool initBuf, cudaStream_t s);

// ---- random_kernels.cu (Philox-4x32-10, the recipe in core/philox.h)
void philoxUniform(float* out, int64_t n, double low, double high, uint64_t seed, uint64_t offset, cudaStream_t s);
void philoxNormal(float* out, int64_t n, double mean, double std, uint64_t seed, uint64_t offset, cudaStream_t s);

}  // namespace cuda
}  // namespace ssql
