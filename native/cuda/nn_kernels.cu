// Kernels of the nn ops that are not cuDNN/cuBLAS calls: bias broadcast, per-channel sums and batch norm,
// max pooling, log-softmax and cross-entropy, top-k counts.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

__device__ inline int64_t globalIndex() { return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; }
__device__ inline int64_t globalStride() { return static_cast<int64_t>(blockDim.x) * gridDim.x; }

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Reduction over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <typename T, typename Op>
__device__ T blockAllReduce(T v, Op op, T* shared) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  __syncthreads();  // the previous call's readers are done with `shared`
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = shared[0];
  for (int i = 1; i < warps; ++i) v = op(v, shared[i]);
  return v;
}

// Threads per row for row-wise kernels: a power of two from 32 to 256, no more than the row needs.
int rowThreads(int64_t cols) {
  int t = 32;
  while (t < 256 && t < cols) t *= 2;
  return t;
}

// ---- per-channel sums over [n, c, hw]

constexpr int kChannelThreads = 256;

int channelSplits(int64_t n, int64_t c, int64_t hw) {
  int64_t m = n * hw;
  int64_t want = (static_cast<int64_t>(multiprocessorCount()) * 4 + c - 1) / std::max<int64_t>(c, 1);
  want = std::min<int64_t>(want, (m + 2047) / 2048);  // at least 2048 elements per block
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, 1024)));
}

__global__ void channelSumsKernel(ChannelSums mode, const float* __restrict__ x, const float* __restrict__ gy,
                                  const float* __restrict__ mean, int64_t n, int64_t c, int64_t hw, double* __restrict__ out) {
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
      double g = gy[idx];
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

// ---- row-wise softmax family

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

// ---- elementwise helpers of the nn ops

__global__ void addChannelBiasKernel(float* __restrict__ y, const float* __restrict__ bias, int64_t total, int64_t c,
                                     int64_t hw) {
  for (int64_t i = globalIndex(); i < total; i += globalStride()) y[i] += bias[(i / hw) % c];
}

__global__ void fillRowsKernel(float* __restrict__ y, const float* __restrict__ row, int64_t total, int64_t cols) {
  for (int64_t i = globalIndex(); i < total; i += globalStride()) y[i] = row[i % cols];
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
                                    int64_t total, int64_t c, int64_t hw) {
  for (int64_t i = globalIndex(); i < total; i += globalStride()) {
    int64_t ch = (i / hw) % c;
    y[i] = (x[i] - mean[ch]) * scale[ch] + shift[ch];
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
__global__ void batchNormBackwardDataKernel(const float* __restrict__ gy, const float* __restrict__ x,
                                            const float* __restrict__ weight, const float* __restrict__ mean,
                                            const float* __restrict__ invStd, const double* __restrict__ sums,
                                            int64_t total, int64_t c, int64_t hw, bool training,
                                            float* __restrict__ dx) {
  double m = static_cast<double>(total / c);
  for (int64_t i = globalIndex(); i < total; i += globalStride()) {
    int64_t ch = (i / hw) % c;
    float inv = invStd[ch];
    float w = weight ? weight[ch] : 1.0f;
    if (!training) {
      dx[i] = gy[i] * w * inv;
      continue;
    }
    float meanGrad = static_cast<float>(sums[ch * 2] / m);
    float proj = static_cast<float>(sums[ch * 2 + 1] / m) * inv * inv;
    dx[i] = w * inv * (gy[i] - meanGrad - (x[i] - mean[ch]) * proj);
  }
}

// ---- pooling

__global__ void maxPool2dKernel(const float* __restrict__ x, float* __restrict__ y, int32_t* __restrict__ indices,
                                int64_t total, int64_t h, int64_t w, int64_t oh, int64_t ow, int kh, int kw, int sh,
                                int sw, int ph, int pw) {
  for (int64_t o = globalIndex(); o < total; o += globalStride()) {
    int64_t plane = o / (oh * ow);
    int64_t r = o % (oh * ow);
    int64_t oy = r / ow, ox = r % ow;
    int64_t hs = oy * sh - ph, ws = ox * sw - pw;
    int64_t he = min(hs + kh, h), we = min(ws + kw, w);
    hs = max(hs, int64_t(0));
    ws = max(ws, int64_t(0));
    const float* xp = x + plane * h * w;
    float best = -INFINITY;
    int64_t bi = hs * w + ws;
    // First maximum wins; the first NaN wins outright (as the CPU backend).
    for (int64_t yy = hs; yy < he && !isnan(best); ++yy)
      for (int64_t xx = ws; xx < we; ++xx) {
        float v = xp[yy * w + xx];
        if (v > best || isnan(v)) {
          best = v;
          bi = yy * w + xx;
          if (isnan(v)) break;
        }
      }
    y[o] = best;
    indices[o] = static_cast<int32_t>(bi);
  }
}

__global__ void maxPool2dBackwardKernel(const float* __restrict__ gy, const int32_t* __restrict__ indices,
                                        float* __restrict__ dx, int64_t total, int64_t inPlane, int64_t outPlane) {
  for (int64_t o = globalIndex(); o < total; o += globalStride()) {
    int32_t j = indices[o];
    if (j >= 0 && j < inPlane) atomicAdd(&dx[(o / outPlane) * inPlane + j], gy[o]);
  }
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

void addChannelBias(float* y, const float* bias, int64_t n, int64_t c, int64_t hw, cudaStream_t s) {
  int64_t total = n * c * hw;
  if (total <= 0) return;
  addChannelBiasKernel<<<blocksFor(total), kThreads, 0, s>>>(y, bias, total, c, hw);
  checkCuda(cudaGetLastError(), "bias kernel");
}

void fillRows(float* y, const float* row, int64_t rows, int64_t cols, cudaStream_t s) {
  int64_t total = rows * cols;
  if (total <= 0) return;
  fillRowsKernel<<<blocksFor(total), kThreads, 0, s>>>(y, row, total, cols);
  checkCuda(cudaGetLastError(), "bias rows kernel");
}

size_t channelSumsScratchBytes(int64_t n, int64_t c, int64_t hw) {
  int splits = channelSplits(n, c, hw);
  return splits > 1 ? static_cast<size_t>(c) * splits * 2 * sizeof(double) : 0;
}

void channelSums(ChannelSums mode, const float* x, const float* gy, const float* mean, int64_t n, int64_t c, int64_t hw,
                 double* sums, void* scratch, cudaStream_t s) {
  if (c <= 0) return;
  int splits = channelSplits(n, c, hw);
  double* partial = splits > 1 ? static_cast<double*>(scratch) : sums;
  dim3 grid(static_cast<unsigned int>(c), static_cast<unsigned int>(splits));
  channelSumsKernel<<<grid, kChannelThreads, 0, s>>>(mode, x, gy, mean, n, c, hw, partial);
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
                   int64_t c, int64_t hw, cudaStream_t s) {
  int64_t total = n * c * hw;
  if (total <= 0) return;
  channelAffineKernel<<<blocksFor(total), kThreads, 0, s>>>(x, mean, scale, shift, y, total, c, hw);
  checkCuda(cudaGetLastError(), "batch norm kernel");
}

void batchNormBackwardParams(const double* sums, const float* invStd, float* dWeight, float* dBias, int64_t c,
                             cudaStream_t s) {
  if (c <= 0 || (!dWeight && !dBias)) return;
  batchNormBackwardParamsKernel<<<blocksFor(c), kThreads, 0, s>>>(sums, invStd, dWeight, dBias, c);
  checkCuda(cudaGetLastError(), "batch norm backward kernel");
}

void batchNormBackwardData(const float* gy, const float* x, const float* weight, const float* mean, const float* invStd,
                           const double* sums, int64_t n, int64_t c, int64_t hw, bool training, float* dx, cudaStream_t s) {
  int64_t total = n * c * hw;
  if (total <= 0) return;
  batchNormBackwardDataKernel<<<blocksFor(total), kThreads, 0, s>>>(gy, x, weight, mean, invStd, sums, total, c, hw,
                                                                    training, dx);
  checkCuda(cudaGetLastError(), "batch norm backward kernel");
}

void maxPool2d(const float* x, float* y, int32_t* indices, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
               int kh, int kw, int sh, int sw, int ph, int pw, cudaStream_t s) {
  int64_t total = planes * oh * ow;
  if (total <= 0) return;
  maxPool2dKernel<<<blocksFor(total), kThreads, 0, s>>>(x, y, indices, total, h, w, oh, ow, kh, kw, sh, sw, ph, pw);
  checkCuda(cudaGetLastError(), "maxPool2d kernel");
}

void maxPool2dBackward(const float* gy, const int32_t* indices, float* dx, int64_t planes, int64_t inPlane,
                       int64_t outPlane, cudaStream_t s) {
  fillF32(dx, 0.0f, planes * inPlane, s);
  int64_t total = planes * outPlane;
  if (total <= 0) return;
  maxPool2dBackwardKernel<<<blocksFor(total), kThreads, 0, s>>>(gy, indices, dx, total, inPlane, outPlane);
  checkCuda(cudaGetLastError(), "maxPool2dBackward kernel");
}

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
