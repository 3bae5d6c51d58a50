// Kernels of uniform() and normal(): Philox-4x32-10 draws, bit for bit the CPU backend's (the recipe and the
// per-counter math in core/philox.h), one thread per counter of four elements.
#include <cstdint>

#include "../core/philox.h"
#include "kernels.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

struct Uniform {
  double low, range;
  __device__ void operator()(const philox::Lanes& x, float* out, int64_t i, int64_t n) const {
    philox::uniformLanes(x, out, i, n, low, range);
  }
};

struct Normal {
  double mean, stdev;
  __device__ void operator()(const philox::Lanes& x, float* out, int64_t i, int64_t n) const {
    philox::normalLanes(x, out, i, n, mean, stdev);
  }
};

template <typename Draw>
__global__ void drawKernel(float* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset, Draw draw) {
  int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(blockDim.x) * gridDim.x)
    draw(philox::philox4x32_10(offset + static_cast<uint64_t>(g), seed), out, g * 4, n);
}

template <typename Draw>
void launchDraw(float* out, int64_t n, uint64_t seed, uint64_t offset, Draw draw, cudaStream_t s, const char* name) {
  if (n <= 0) return;
  int64_t groups = (n + 3) / 4;
  drawKernel<<<blocksFor(groups), kThreads, 0, s>>>(out, n, seed, offset, draw);
  checkCuda(cudaGetLastError(), name);
}

}  // namespace

void philoxUniform(float* out, int64_t n, double low, double high, uint64_t seed, uint64_t offset, cudaStream_t s) {
  launchDraw(out, n, seed, offset, Uniform{low, high - low}, s, "uniform kernel");
}

void philoxNormal(float* out, int64_t n, double mean, double std, uint64_t seed, uint64_t offset, cudaStream_t s) {
  launchDraw(out, n, seed, offset, Normal{mean, std}, s, "normal kernel");
}

}  // namespace cuda
}  // namespace ssql
