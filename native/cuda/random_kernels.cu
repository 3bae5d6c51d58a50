// Kernels of uniform() and normal(): Philox-4x32-10 draws, bit for bit the CPU backend's (the recipe and the
// per-counter math in core/philox.h), one thread per counter of four elements.
#include <cstdint>

#include "../core/philox.h"
#include "kernels.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

__global__ void uniformKernel(float* __restrict__ out, int64_t n, double low, double range, uint64_t seed,
                              uint64_t offset) {
  int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(blockDim.x) * gridDim.x)
    philox::uniformLanes(philox::philox4x32_10(offset + static_cast<uint64_t>(g), seed), out, g * 4, n, low, range);
}

__global__ void normalKernel(float* __restrict__ out, int64_t n, double mean, double stdev, uint64_t seed,
                             uint64_t offset) {
  int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(blockDim.x) * gridDim.x)
    philox::normalLanes(philox::philox4x32_10(offset + static_cast<uint64_t>(g), seed), out, g * 4, n, mean, stdev);
}

}  // namespace

void philoxUniform(float* out, int64_t n, double low, double high, uint64_t seed, uint64_t offset, cudaStream_t s) {
  if (n <= 0) return;
  int64_t groups = (n + 3) / 4;
  uniformKernel<<<blocksFor(groups), kThreads, 0, s>>>(out, n, low, high - low, seed, offset);
  checkCuda(cudaGetLastError(), "uniform kernel");
}

void philoxNormal(float* out, int64_t n, double mean, double std, uint64_t seed, uint64_t offset, cudaStream_t s) {
  if (n <= 0) return;
  int64_t groups = (n + 3) / 4;
  normalKernel<<<blocksFor(groups), kThreads, 0, s>>>(out, n, mean, std, seed, offset);
  checkCuda(cudaGetLastError(), "normal kernel");
}

}  // namespace cuda
}  // namespace ssql
