// CUDA kernels of the range observers (MSE / HISTOGRAM, PERCENTILE, KL_HISTOGRAM, GAUSSIAN); launchers declared in
// range_observers.h. Same formulas as the CPU ops (native/cpu/range_observers.cc) through core/observer_math.h;
// this file is built with --fmad=false (native/CMakeLists.txt) so no multiply-add is contracted.
// Simple layouts: one block per channel for the searches and moments, a grid-stride loop for the histograms.
#include <climits>
#include <cstdint>

#include "../core/observer_math.h"
#include "range_observers.h"

namespace ssql {
namespace cuda {

namespace {

constexpr int kBlock = 256;

// Element k (0 <= k < outer * inner) of channel c in x viewed as [outer, channels, inner].
__device__ __forceinline__ int64_t elementOf(int64_t k, int64_t c, const QuantLayout& l) {
  return ((k / l.inner) * l.channels + c) * l.inner + k % l.inner;
}

// Block-wide double sum, valid in every thread; s holds kBlock doubles.
__device__ double blockSumAll(double v, double* s) {
  s[threadIdx.x] = v;
  __syncthreads();
  for (int w = kBlock / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  double r = s[0];
  __syncthreads();
  return r;
}

__device__ long long blockCountAll(long long v, long long* s) {
  s[threadIdx.x] = v;
  __syncthreads();
  for (int w = kBlock / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  long long r = s[0];
  __syncthreads();
  return r;
}

// Block-wide min / max (NaN propagating), valid in every thread.
__device__ void blockMinMaxAll(float& mn, float& mx, int& nan, float* smn, float* smx, int* snan) {
  smn[threadIdx.x] = mn;
  smx[threadIdx.x] = mx;
  snan[threadIdx.x] = nan;
  __syncthreads();
  for (int w = kBlock / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) {
      smn[threadIdx.x] = fminf(smn[threadIdx.x], smn[threadIdx.x + w]);
      smx[threadIdx.x] = fmaxf(smx[threadIdx.x], smx[threadIdx.x + w]);
      snan[threadIdx.x] |= snan[threadIdx.x + w];
    }
    __syncthreads();
  }
  mn = smn[0];
  mx = smx[0];
  nan = snan[0];
  __syncthreads();
  if (nan) mn = mx = __int_as_float(0x7fc00000);
}

__global__ void mseRangeKernel(const float* __restrict__ x, QuantLayout l, bool perTensor, int bits, float* __restrict__ outMin,
                               float* __restrict__ outMax, float* __restrict__ rows) {
  __shared__ double sd[kBlock];
  __shared__ float smn[kBlock], smx[kBlock];
  __shared__ int snan[kBlock];
  __shared__ float score[2];
  const int64_t c = blockIdx.x, per = l.outer * l.inner;
  float mn = __int_as_float(0x7f800000), mx = __int_as_float(0xff800000);  // +inf, -inf
  int nan = 0;
  for (int64_t k = threadIdx.x; k < per; k += kBlock) {
    const float v = x[elementOf(k, c, l)];
    nan |= v != v;
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  blockMinMaxAll(mn, mx, nan, smn, smx, snan);
  obs::MseState s;
  s.bestMax = mx;
  s.bestMin = mn;
  for (int r = 0; r < obs::kMseRounds; ++r) {
    double mid, midmid;
    obs::mseProbes(s, mid, midmid);
    float cMax[2], cMin[2];
    obs::mseCandidate(mx, mn, mid, cMax[0], cMin[0]);
    obs::mseCandidate(mx, mn, midmid, cMax[1], cMin[1]);
    double sc[2];
    for (int j = 0; j < 2; ++j) {
      const obs::MseGrid g = obs::mseGrid(cMax[j], cMin[j], bits);
      if (perTensor) {
        double acc = 0.0;
        for (int64_t k = threadIdx.x; k < per; k += kBlock) acc += obs::mseError(x[elementOf(k, c, l)], g);
        sc[j] = blockSumAll(acc, sd) / static_cast<double>(per);
      } else {
        // numpy's float32 pairwise mean over the channel's errors, by one thread (its order is sequential).
        float* row = rows + c * per;
        for (int64_t k = threadIdx.x; k < per; k += kBlock) row[k] = obs::mseError(x[elementOf(k, c, l)], g);
        __syncthreads();
        if (threadIdx.x == 0) score[j] = obs::pairwiseSumF32(row, per) / static_cast<float>(per);
        __syncthreads();
        sc[j] = score[j];
        __syncthreads();
      }
    }
    obs::mseStep(s, mid, midmid, sc[0], sc[1], cMax[0], cMin[0], cMax[1], cMin[1]);
  }
  if (threadIdx.x == 0) {
    outMin[c] = s.bestMin;
    outMax[c] = s.bestMax;
  }
}

// |x| of channel c's j-th value, then buf's row when accumulating; as uint32 bits (order-preserving for |x| >= 0).
__device__ __forceinline__ uint32_t topkValue(const float* x, const float* buf, int64_t j, int64_t c, int64_t per,
                                              int64_t k, const QuantLayout& l) {
  const float v = j < per ? fabsf(x[elementOf(j, c, l)]) : buf[c * k + (j - per)];
  return __float_as_uint(v);
}

// One block per channel: the k-th largest value by a bitwise search over the value bits (each step counts the
// values at or above a candidate), then the values above it and as many copies of it as make k.
__global__ void topkAbsKernel(const float* __restrict__ x, float* __restrict__ buf, QuantLayout l, int64_t k, bool accumulate,
                              float* __restrict__ out) {
  __shared__ long long sc[kBlock];
  __shared__ unsigned long long slot;
  const int64_t c = blockIdx.x, per = l.outer * l.inner, m = per + (accumulate ? k : 0);
  uint32_t prefix = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const uint32_t cand = prefix | (1u << bit);
    long long n = 0;
    for (int64_t j = threadIdx.x; j < m; j += kBlock) n += topkValue(x, buf, j, c, per, k, l) >= cand;
    if (blockCountAll(n, sc) >= k) prefix = cand;
  }
  if (threadIdx.x == 0) slot = 0;
  __syncthreads();
  float* row = out + c * k;
  for (int64_t j = threadIdx.x; j < m; j += kBlock) {
    const uint32_t v = topkValue(x, buf, j, c, per, k, l);
    if (v > prefix) row[atomicAdd(&slot, 1ull)] = __uint_as_float(v);
  }
  __syncthreads();
  for (int64_t j = static_cast<int64_t>(slot) + threadIdx.x; j < k; j += kBlock) row[j] = __uint_as_float(prefix);
  __syncthreads();
  for (int64_t j = threadIdx.x; j < k; j += kBlock) buf[c * k + j] = row[j];
}

__global__ void percentileRangeKernel(const float* __restrict__ mn, const float* __restrict__ mx, const float* __restrict__ buf,
                                      int64_t channels, int64_t k, bool cut, float* __restrict__ omn, float* __restrict__ omx) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  float kth = __int_as_float(0x7f800000);
  for (int64_t j = 0; j < k; ++j) kth = buf[c * k + j] < kth ? buf[c * k + j] : kth;
  obs::percentileCut(mn[c], mx[c], kth, cut, omn[c], omx[c]);
}

__global__ void absHistogramKernel(const float* __restrict__ x, int32_t* __restrict__ hist, const float* __restrict__ mn,
                                   const float* __restrict__ mx, QuantLayout l, int64_t bins) {
  const int64_t n = l.outer * l.channels * l.inner;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = (i / l.inner) % l.channels;
    const float th = fmaxf(fabsf(mn[c]), fabsf(mx[c]));
    if (!(th > 0.0f) || isinf(th)) continue;
    const int64_t b = obs::histcBin(fabsf(x[i]), th, bins);
    if (b >= 0) atomicAdd(hist + c * bins + b, 1);
  }
}

__device__ __forceinline__ int64_t klQuantized(float mn, int bits) {
  const int64_t q = (int64_t(1) << bits) - 1;
  return mn >= 0.0f ? 2 * q + 1 : q;
}

// Thread (c, t): divergence of candidate i = half + t of channel c into its slot (stride `slotsMax` per channel).
__global__ void klDivergenceKernel(const int32_t* __restrict__ hist, const float* __restrict__ mn, const float* __restrict__ mx,
                                   int64_t channels, int64_t bins, int bits, int64_t perChannel, int64_t slotsMax,
                                   double* __restrict__ div) {
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < channels * perChannel;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = g / perChannel, t = g % perChannel;
    if (mx[c] - mn[c] < 1e-10f) continue;
    const obs::KlPlan plan = obs::klPlan(bins, klQuantized(mn[c], bits));
    if (!obs::klPlanValid(plan) || t >= plan.zeroBin - plan.half) continue;
    const int64_t i = plan.half + t;
    div[c * slotsMax + obs::klSlot(plan, i)] = obs::klDivergence(hist + c * bins, plan, i);
  }
}

__global__ void klThresholdKernel(const float* __restrict__ mn, const float* __restrict__ mx, int64_t channels, int64_t bins,
                                  int bits, int64_t slotsMax, const double* __restrict__ div, float* __restrict__ omn,
                                  float* __restrict__ omx) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  const float a = mn[c], b = mx[c];
  if (b - a < 1e-10f) {
    omn[c] = a;
    omx[c] = b;
    return;
  }
  const obs::KlPlan plan = obs::klPlan(bins, klQuantized(a, bits));
  if (!obs::klPlanValid(plan)) {  // the op's caller checks this first (the CPU op raises)
    omn[c] = omx[c] = __int_as_float(0x7fc00000);
    return;
  }
  int64_t best = 0;
  for (int64_t s = 1; s < plan.slots; ++s)
    if (div[c * slotsMax + s] < div[c * slotsMax + best]) best = s;
  const float width = __fdiv_rn(__fmul_rn(2.0f, fmaxf(fabsf(a), fabsf(b))), static_cast<float>(bins));
  const float th = __fmul_rn(width, static_cast<float>(best));
  omn[c] = a >= 0.0f ? 0.0f : -th;
  omx[c] = th;
}

__global__ void gaussianRangeKernel(const float* __restrict__ x, QuantLayout l, float alpha, float* __restrict__ outMin,
                                    float* __restrict__ outMax) {
  __shared__ double sd[kBlock];
  const int64_t c = blockIdx.x, per = l.outer * l.inner;
  double s = 0.0;
  for (int64_t k = threadIdx.x; k < per; k += kBlock) s += x[elementOf(k, c, l)];
  const double mean = blockSumAll(s, sd) / static_cast<double>(per);
  double ss = 0.0;
  for (int64_t k = threadIdx.x; k < per; k += kBlock) {
    const double d = x[elementOf(k, c, l)] - mean;
    ss += d * d;
  }
  const double total = blockSumAll(ss, sd);
  if (threadIdx.x == 0) {
    const double var = per > 1 ? total / static_cast<double>(per - 1) : __longlong_as_double(0x7ff8000000000000ll);
    obs::gaussianRange(mean, var, alpha, outMin[c], outMax[c]);
  }
}

unsigned blocksFor(int64_t n) {
  int64_t b = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 ? 65535 : b));
}

}  // namespace

size_t mseRangeWorkspaceBytes(QuantLayout layout, bool perTensor) {
  return perTensor ? 0 : static_cast<size_t>(layout.numel()) * sizeof(float);
}

cudaError_t mseRange(const float* x, QuantLayout layout, bool perTensor, int bits, float* min, float* max, void* workspace,
                     cudaStream_t stream) {
  if (layout.channels < 1 || layout.channels > INT_MAX || bits < 1 || bits > 16) return cudaErrorInvalidValue;
  mseRangeKernel<<<static_cast<unsigned>(layout.channels), kBlock, 0, stream>>>(x, layout, perTensor, bits, min, max,
                                                                                static_cast<float*>(workspace));
  return cudaGetLastError();
}

size_t topkAbsWorkspaceBytes(QuantLayout layout, int64_t k) {
  return static_cast<size_t>(layout.channels) * static_cast<size_t>(k) * sizeof(float);
}

cudaError_t topkAbs(const float* x, float* buf, QuantLayout layout, int64_t k, bool accumulate, void* workspace,
                    cudaStream_t stream) {
  if (layout.channels < 1 || layout.channels > INT_MAX || k < 1) return cudaErrorInvalidValue;
  topkAbsKernel<<<static_cast<unsigned>(layout.channels), kBlock, 0, stream>>>(x, buf, layout, k, accumulate,
                                                                               static_cast<float*>(workspace));
  return cudaGetLastError();
}

cudaError_t percentileRange(const float* min, const float* max, const float* buf, int64_t channels, int64_t k, bool cut,
                            float* outMin, float* outMax, cudaStream_t stream) {
  percentileRangeKernel<<<blocksFor(channels), kBlock, 0, stream>>>(min, max, buf, channels, k, cut, outMin, outMax);
  return cudaGetLastError();
}

cudaError_t absHistogram(const float* x, int32_t* hist, const float* min, const float* max, QuantLayout layout,
                         int64_t bins, cudaStream_t stream) {
  absHistogramKernel<<<blocksFor(layout.numel()), kBlock, 0, stream>>>(x, hist, min, max, layout, bins);
  return cudaGetLastError();
}

namespace {
// The widest plan (signed ranges: fewer quantized bins, more candidates and slots) sizes the per-channel rows.
obs::KlPlan widestPlan(int64_t bins, int bits) { return obs::klPlan(bins, (int64_t(1) << bits) - 1); }
}  // namespace

size_t klRangeWorkspaceBytes(int64_t channels, int64_t bins, int bits) {
  const obs::KlPlan p = widestPlan(bins, bits);
  return p.slots > 0 ? static_cast<size_t>(channels) * static_cast<size_t>(p.slots) * sizeof(double) : 0;
}

cudaError_t klRange(const int32_t* hist, const float* min, const float* max, int64_t channels, int64_t bins, int bits,
                    float* outMin, float* outMax, void* workspace, cudaStream_t stream) {
  const obs::KlPlan p = widestPlan(bins, bits);
  const int64_t slots = p.slots > 0 ? p.slots : 1;
  const int64_t perChannel = p.zeroBin - p.half > 0 ? p.zeroBin - p.half : 0;
  double* div = static_cast<double*>(workspace);
  if (div) {
    cudaError_t e = cudaMemsetAsync(div, 0, static_cast<size_t>(channels * slots) * sizeof(double), stream);
    if (e != cudaSuccess) return e;
    if (perChannel > 0)
      klDivergenceKernel<<<blocksFor(channels * perChannel), kBlock, 0, stream>>>(hist, min, max, channels, bins, bits,
                                                                                  perChannel, slots, div);
  }
  klThresholdKernel<<<blocksFor(channels), kBlock, 0, stream>>>(min, max, channels, bins, bits, slots, div, outMin, outMax);
  return cudaGetLastError();
}

cudaError_t gaussianRange(const float* x, QuantLayout layout, float alpha, float* min, float* max, cudaStream_t stream) {
  if (layout.channels < 1 || layout.channels > INT_MAX) return cudaErrorInvalidValue;
  gaussianRangeKernel<<<static_cast<unsigned>(layout.channels), kBlock, 0, stream>>>(x, layout, alpha, min, max);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace ssql
