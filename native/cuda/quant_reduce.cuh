// Block-level pieces shared by the quantization kernels (fake_quant.cu, observers.cu): double sums and the
// min / max / first-index reduction, both by warp shuffles then one shared slot per warp. Blocks are kThreads wide.
#pragma once

#include <climits>
#include <cstdint>

namespace ssql {
namespace cuda {
namespace quant_reduce {

constexpr int kThreads = 256;

// x viewed as [outer, channels, inner]: element k of channel c, k running over outer * inner in flat order.
__device__ __forceinline__ int64_t channelElement(int64_t k, int64_t c, int64_t channels, int64_t inner) {
  return ((k / inner) * channels + c) * inner + k % inner;
}

__device__ __forceinline__ double warpSum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// The block's total, valid in thread 0. Ends after a __syncthreads, so global writes made before the call by any
// thread of the block are visible to thread 0 afterwards.
__device__ __forceinline__ double blockSum(double v) {
  __shared__ double part[kThreads / 32];
  v = warpSum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) part[warp] = v;
  __syncthreads();
  v = threadIdx.x < blockDim.x / 32 ? part[lane] : 0.0;
  if (warp == 0) v = warpSum(v);
  return v;
}

// Running min and max with the first flat index of each, and the first NaN's index (INT_MAX if none).
struct Extreme {
  float mn;
  int32_t imn;
  float mx;
  int32_t imx;
  int32_t inan;
};

__device__ __forceinline__ Extreme emptyExtreme() {
  return {__int_as_float(0x7f800000), INT_MAX, __int_as_float(0xff800000), INT_MAX, INT_MAX};
}

__device__ __forceinline__ void visit(Extreme& e, float v, int64_t i) {
  if (v != v) {
    e.inan = min(e.inan, static_cast<int32_t>(i));
    return;
  }
  if (v < e.mn || (v == e.mn && i < e.imn)) {
    e.mn = v;
    e.imn = static_cast<int32_t>(i);
  }
  if (v > e.mx || (v == e.mx && i < e.imx)) {
    e.mx = v;
    e.imx = static_cast<int32_t>(i);
  }
}

__device__ __forceinline__ void combine(Extreme& a, const Extreme& b) {
  if (b.mn < a.mn || (b.mn == a.mn && b.imn < a.imn)) {
    a.mn = b.mn;
    a.imn = b.imn;
  }
  if (b.mx > a.mx || (b.mx == a.mx && b.imx < a.imx)) {
    a.mx = b.mx;
    a.imx = b.imx;
  }
  a.inan = min(a.inan, b.inan);
}

__device__ __forceinline__ void warpCombine(Extreme& e) {
  for (int o = 16; o > 0; o >>= 1) {
    Extreme b;
    b.mn = __shfl_down_sync(0xffffffffu, e.mn, o);
    b.imn = __shfl_down_sync(0xffffffffu, e.imn, o);
    b.mx = __shfl_down_sync(0xffffffffu, e.mx, o);
    b.imx = __shfl_down_sync(0xffffffffu, e.imx, o);
    b.inan = __shfl_down_sync(0xffffffffu, e.inan, o);
    combine(e, b);
  }
}

// The block's result, valid in thread 0.
__device__ __forceinline__ Extreme blockCombine(Extreme e) {
  __shared__ Extreme part[kThreads / 32];
  warpCombine(e);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) part[warp] = e;
  __syncthreads();
  e = threadIdx.x < blockDim.x / 32 ? part[lane] : emptyExtreme();
  if (warp == 0) warpCombine(e);
  return e;
}

// One block per channel pays off when a block covers a channel's elements quickly, and there are either so few of
// them that nothing is gained by splitting, or enough channels to fill the GPU; otherwise several blocks share a
// channel and a second pass combines them.
inline bool blockPerChannel(int64_t channels, int64_t perChannel) {
  return perChannel <= 8192 || (channels >= 128 && perChannel <= 65536);
}

}  // namespace quant_reduce
}  // namespace cuda
}  // namespace ssql
