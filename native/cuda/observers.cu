// CUDA kernels of the observer ops (aminmax_, emaUpdate_, calcQParams); launchers declared in fake_quant.h.
// Same bits as the CPU ops (native/cpu/observers.cc): the formulas come from core/fake_quant_math.h.
#include <climits>
#include <cstdint>

#include "../core/fake_quant_math.h"
#include "fake_quant.h"
#include "quant_reduce.cuh"

namespace ssql {
namespace cuda {

namespace {

using namespace quant_reduce;

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Scans channel c's elements from `first` in steps of `step` (in units of 4 when vec4: inner % 4 == 0 and x 16-byte
// aligned, so groups of 4 stay in one channel row).
__device__ __forceinline__ Extreme scanChannel(const float* __restrict__ x, int64_t c, int64_t channels, int64_t inner,
                                               int64_t perChannel, bool vec4, int64_t first, int64_t step) {
  Extreme e = emptyExtreme();
  const bool contiguous = perChannel == inner;  // outer == 1: the channel is one row, no index division
  if (vec4) {
    for (int64_t k4 = first; k4 < perChannel / 4; k4 += step) {
      const int64_t i = contiguous ? c * inner + k4 * 4 : channelElement(k4 * 4, c, channels, inner);
      const float4 v = __ldg(reinterpret_cast<const float4*>(x + i));
      visit(e, v.x, i);
      visit(e, v.y, i + 1);
      visit(e, v.z, i + 2);
      visit(e, v.w, i + 3);
    }
  } else {
    for (int64_t k = first; k < perChannel; k += step) {
      const int64_t i = contiguous ? c * inner + k : channelElement(k, c, channels, inner);
      visit(e, __ldg(x + i), i);
    }
  }
  return e;
}

// Writes channel c's result, merged with the buffers' contents as the CPU op does when accumulating (old wins
// ties, NaN propagates: a NaN already stored stays, a new NaN replaces).
__device__ __forceinline__ void storeExtreme(const Extreme& e, int64_t c, float* __restrict__ mn, float* __restrict__ mx,
                                             int32_t* __restrict__ argmin, int32_t* __restrict__ argmax, bool accumulate) {
  const float nan = __int_as_float(0x7fc00000);
  const bool hasNan = e.inan != INT_MAX;
  const float nmn = hasNan ? nan : e.mn, nmx = hasNan ? nan : e.mx;
  const int32_t imn = hasNan ? e.inan : e.imn, imx = hasNan ? e.inan : e.imx;
  const float omn = mn[c], omx = mx[c];
  if (!accumulate || (omn == omn && (nmn != nmn || nmn < omn))) {
    mn[c] = nmn;
    if (argmin) argmin[c] = imn;
  }
  if (!accumulate || (omx == omx && (nmx != nmx || nmx > omx))) {
    mx[c] = nmx;
    if (argmax) argmax[c] = imx;
  }
}

// One block per channel: the whole reduction in one launch.
__global__ void aminmaxChannelKernel(const float* __restrict__ x, float* __restrict__ mn, float* __restrict__ mx,
                                     int32_t* __restrict__ argmin, int32_t* __restrict__ argmax, int64_t channels,
                                     int64_t inner, int64_t perChannel, bool vec4, bool accumulate) {
  const int64_t c = blockIdx.x;
  Extreme e = blockCombine(scanChannel(x, c, channels, inner, perChannel, vec4, threadIdx.x, blockDim.x));
  if (threadIdx.x == 0) storeExtreme(e, c, mn, mx, argmin, argmax, accumulate);
}

// Grid (blocksPerChannel, channels): each block scans a strided slice of one channel; partial [c][b].
__global__ void aminmaxPartialKernel(const float* __restrict__ x, Extreme* __restrict__ partial, int64_t channels,
                                     int64_t inner, int64_t perChannel, bool vec4) {
  const int64_t c = blockIdx.y;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  Extreme e = blockCombine(
      scanChannel(x, c, channels, inner, perChannel, vec4, int64_t(blockIdx.x) * blockDim.x + threadIdx.x, step));
  if (threadIdx.x == 0) partial[c * gridDim.x + blockIdx.x] = e;
}

// One warp per channel folds the block partials.
__global__ void aminmaxFinalKernel(const Extreme* __restrict__ partial, int blocksPerChannel, float* __restrict__ mn,
                                   float* __restrict__ mx, int32_t* __restrict__ argmin, int32_t* __restrict__ argmax,
                                   bool accumulate) {
  const int64_t c = blockIdx.x;
  Extreme e = emptyExtreme();
  for (int b = threadIdx.x; b < blocksPerChannel; b += 32) combine(e, partial[c * blocksPerChannel + b]);
  warpCombine(e);
  if (threadIdx.x == 0) storeExtreme(e, c, mn, mx, argmin, argmax, accumulate);
}

// Blocks per channel of the two-pass reduction; 1 means the one-pass kernel.
int blocksPerChannel(QuantLayout l) {
  const int64_t per = l.outer * l.inner;
  if (blockPerChannel(l.channels, per)) return 1;
  int64_t cap = 2048 / (l.channels > 0 ? l.channels : 1);
  if (cap < 1) cap = 1;
  if (cap > 1024) cap = 1024;
  int64_t want = (per + 4 * kThreads * 4 - 1) / (4 * kThreads * 4);
  if (want < 1) want = 1;
  return static_cast<int>(want < cap ? want : cap);
}

__global__ void emaKernel(float* __restrict__ dst, const float* __restrict__ src, int64_t n, float km, float kr) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = __fadd_rn(__fmul_rn(km, dst[i]), __fmul_rn(kr, src[i]));
}

__global__ void calcQParamsKernel(const float* __restrict__ mn, const float* __restrict__ mx, float* __restrict__ scale,
                                  int32_t* __restrict__ zp, int32_t* __restrict__ enabled, int64_t channels, int bits,
                                  bool symmetric) {
  int anyNan = 0, anyZero = 0;
  for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) {
    const float s = symmetric ? fq::symmetricScale(mn[c], mx[c], bits) : fq::asymmetricScale(mn[c], mx[c], bits);
    scale[c] = s;
    zp[c] = symmetric ? 0 : fq::asymmetricZeroPoint(mn[c], s);
    anyNan |= s != s;
    anyZero |= s == 0.0f;
  }
  anyNan = __syncthreads_or(anyNan);
  anyZero = __syncthreads_or(anyZero);
  if (threadIdx.x == 0) enabled[0] = (anyNan || !anyZero) ? 1 : 0;
}

}  // namespace

size_t aminmaxWorkspaceBytes(QuantLayout layout) {
  const int bpc = blocksPerChannel(layout);
  return bpc == 1 ? 0 : static_cast<size_t>(layout.channels) * static_cast<size_t>(bpc) * sizeof(Extreme);
}

cudaError_t aminmax(const float* x, float* min, float* max, int32_t* argmin, int32_t* argmax, QuantLayout layout,
                    bool accumulate, void* workspace, cudaStream_t stream) {
  const int64_t per = layout.outer * layout.inner;
  if (per == 0 || layout.numel() >= INT_MAX || layout.channels > 65535) return cudaErrorInvalidValue;
  const int bpc = blocksPerChannel(layout);
  const bool vec4 = layout.inner % 4 == 0 && aligned16(x);
  const auto channels = static_cast<unsigned>(layout.channels);
  if (bpc == 1) {
    aminmaxChannelKernel<<<channels, kThreads, 0, stream>>>(x, min, max, argmin, argmax, layout.channels, layout.inner,
                                                            per, vec4, accumulate);
    return cudaGetLastError();
  }
  Extreme* partial = static_cast<Extreme*>(workspace);
  aminmaxPartialKernel<<<dim3(bpc, channels), kThreads, 0, stream>>>(x, partial, layout.channels, layout.inner, per, vec4);
  aminmaxFinalKernel<<<channels, 32, 0, stream>>>(partial, bpc, min, max, argmin, argmax, accumulate);
  return cudaGetLastError();
}

cudaError_t emaUpdate(float* dst, const float* src, int64_t n, double momentum, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  int64_t blocks = (n + kThreads - 1) / kThreads;
  emaKernel<<<static_cast<unsigned>(blocks > 65535 ? 65535 : blocks), kThreads, 0, stream>>>(
      dst, src, n, static_cast<float>(momentum), static_cast<float>(1.0 - momentum));
  return cudaGetLastError();
}

cudaError_t calcQParams(const float* min, const float* max, float* scale, int32_t* zeroPoint, int32_t* enabled,
                        int64_t channels, int bits, bool symmetric, cudaStream_t stream) {
  if (bits < 1 || bits > 16) return cudaErrorInvalidValue;
  calcQParamsKernel<<<1, kThreads, 0, stream>>>(min, max, scale, zeroPoint, enabled, channels, bits, symmetric);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace ssql
