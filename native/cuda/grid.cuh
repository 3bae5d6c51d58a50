// Device pieces shared by the *_kernels.cu files: grid-stride loops (and launchMap, one element per call of a
// device lambda), a whole-block reduction by warp shuffles, and the block width of row-wise kernels.
#pragma once

#include <cstdint>

#include "runtime.h"

namespace ssql {
namespace cuda {

__device__ inline int64_t globalIndex() { return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; }
__device__ inline int64_t globalStride() { return static_cast<int64_t>(blockDim.x) * gridDim.x; }

template <typename F>
__global__ void mapKernel(int64_t n, F f) {
  for (int64_t i = globalIndex(); i < n; i += globalStride()) f(i);
}

// f(i) for every i in [0, n), on `s`; `name` goes into the launch error.
template <typename F>
void launchMap(int64_t n, F f, cudaStream_t s, const char* name) {
  if (n <= 0) return;
  mapKernel<<<blocksFor(n), kThreads, 0, s>>>(n, f);
  checkCuda(cudaGetLastError(), name);
}

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
inline int rowThreads(int64_t cols) {
  int t = 32;
  while (t < 256 && t < cols) t *= 2;
  return t;
}

}  // namespace cuda
}  // namespace ssql
