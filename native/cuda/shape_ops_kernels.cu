// Kernel of permute (native/cpu/shape_ops.cc): a gather over the permuted strides, 32-bit indices when they fit.
#include <cstdint>
#include <string>

#include "kernels.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

template <typename T, typename Index>
__global__ void permuteKernel(const T* __restrict__ x, T* __restrict__ out, Index n, PermuteIndex p) {
  for (Index o = blockIdx.x * static_cast<Index>(blockDim.x) + threadIdx.x; o < n;
       o += static_cast<Index>(blockDim.x) * gridDim.x) {
    Index rem = o, off = 0;
    for (int d = p.nd - 1; d >= 0; --d) {
      Index size = static_cast<Index>(p.shape[d]);
      Index idx = rem % size;
      rem /= size;
      off += idx * static_cast<Index>(p.inStride[d]);
    }
    out[o] = x[off];
  }
}

template <typename T>
void permuteAs(const void* x, void* out, int64_t n, const PermuteIndex& p, cudaStream_t s) {
  const T* px = static_cast<const T*>(x);
  T* po = static_cast<T*>(out);
  if (n < (int64_t(1) << 31)) permuteKernel<T, uint32_t><<<blocksFor(n), kThreads, 0, s>>>(px, po, static_cast<uint32_t>(n), p);
  else permuteKernel<T, int64_t><<<blocksFor(n), kThreads, 0, s>>>(px, po, n, p);
  checkCuda(cudaGetLastError(), "permute kernel");
}

}  // namespace

void permute(const void* x, void* out, size_t elemSize, int64_t n, const PermuteIndex& p, cudaStream_t s) {
  if (n <= 0) return;
  if (elemSize == 1) return permuteAs<uint8_t>(x, out, n, p, s);
  if (elemSize == 4) return permuteAs<uint32_t>(x, out, n, p, s);
  throw CudaError("permute(): unsupported element size " + std::to_string(elemSize));
}

}  // namespace cuda
}  // namespace ssql
