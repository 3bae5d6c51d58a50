// Kernels of the reductions (native/cpu/reduce.cc): sum/mean in double, max/min with indices, and the index
// scatter of their backward.
#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <cstdint>

#include "kernels.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

constexpr int kReduceThreads = 256;
// At or below this many reduced elements per output, one thread sums one output.
constexpr int64_t kThreadPerOutputMax = 64;

__device__ inline int64_t keptOffset(const ReduceIndex& r, int64_t o) {
  int64_t off = 0;
  for (int d = r.ndKept - 1; d >= 0; --d) {
    int64_t idx = o % r.keptShape[d];
    o /= r.keptShape[d];
    off += idx * r.keptStride[d];
  }
  return off;
}

__device__ inline int64_t reducedOffset(const ReduceIndex& r, int64_t j) {
  int64_t off = 0;
  for (int d = r.ndReduced - 1; d >= 0; --d) {
    int64_t idx = j % r.reducedShape[d];
    j /= r.reducedShape[d];
    off += idx * r.reducedStride[d];
  }
  return off;
}

__global__ void sumThreadPerOutput(const float* __restrict__ x, float* __restrict__ out, ReduceIndex r, double scale) {
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < r.outputs;
       o += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t base = keptOffset(r, o);
    double acc = 0.0;
    for (int64_t j = 0; j < r.reduced; ++j) acc += x[base + reducedOffset(r, j)];
    out[o] = static_cast<float>(acc * scale);
  }
}

// Block (o, split) sums its slice of output o's reduced elements; one split writes the output directly.
__global__ void sumBlockPerOutput(const float* __restrict__ x, float* __restrict__ out, double* __restrict__ partial,
                                  ReduceIndex r, double scale, int64_t chunk) {
  using BlockReduce = cub::BlockReduce<double, kReduceThreads>;
  __shared__ typename BlockReduce::TempStorage tmp;
  int64_t o = blockIdx.x;
  int64_t split = blockIdx.y;
  int64_t begin = split * chunk;
  int64_t end = min(begin + chunk, r.reduced);
  int64_t base = keptOffset(r, o);
  double acc = 0.0;
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) acc += x[base + reducedOffset(r, j)];
  double total = BlockReduce(tmp).Sum(acc);
  if (threadIdx.x == 0) {
    if (gridDim.y == 1) out[o] = static_cast<float>(total * scale);
    else partial[o * gridDim.y + split] = total;
  }
}

__global__ void sumPartials(const double* __restrict__ partial, float* __restrict__ out, int64_t outputs, int splits,
                            double scale) {
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < outputs;
       o += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    double acc = 0.0;
    for (int s = 0; s < splits; ++s) acc += partial[o * splits + s];
    out[o] = static_cast<float>(acc * scale);
  }
}

int sumSplits(const ReduceIndex& r) {
  if (r.reduced <= kThreadPerOutputMax) return 1;
  int64_t wantBlocks = static_cast<int64_t>(multiprocessorCount()) * 4;
  int64_t splits = (wantBlocks + r.outputs - 1) / r.outputs;
  splits = std::min<int64_t>(splits, (r.reduced + 4095) / 4096);  // at least 4096 elements per block
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(splits, 1024)));
}

__global__ void argExtremeKernel(const float* __restrict__ x, float* __restrict__ values, int32_t* __restrict__ indices,
                                 int64_t outer, int64_t len, int64_t inner, bool isMax) {
  int64_t total = outer * inner;
  for (int64_t oi = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; oi < total;
       oi += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t o = oi / inner, in = oi % inner;
    const float* p = x + o * len * inner + in;
    float best = p[0];
    int32_t bi = 0;
    for (int64_t j = 1; j < len; ++j) {
      if (isnan(best)) break;  // NaN propagates, as in PyTorch
      float v = p[j * inner];
      if (isnan(v) || (isMax ? v > best : v < best)) {
        best = v;
        bi = static_cast<int32_t>(j);
      }
    }
    values[oi] = best;
    indices[oi] = bi;
  }
}

__global__ void indexScatterKernel(const float* __restrict__ g, const int32_t* __restrict__ indices, float* __restrict__ out,
                                   int64_t outer, int64_t len, int64_t inner) {
  int64_t total = outer * inner;
  for (int64_t oi = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; oi < total;
       oi += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t o = oi / inner, in = oi % inner;
    int32_t j = indices[oi];
    if (j >= 0 && j < len) out[(o * len + j) * inner + in] = g[oi];
  }
}

}  // namespace

size_t sumScratchBytes(const ReduceIndex& r) {
  int splits = sumSplits(r);
  return splits > 1 ? static_cast<size_t>(r.outputs) * splits * sizeof(double) : 0;
}

void sum(const float* x, float* out, const ReduceIndex& r, double scale, void* scratch, cudaStream_t s) {
  if (r.outputs <= 0) return;
  if (r.reduced <= kThreadPerOutputMax) {
    sumThreadPerOutput<<<blocksFor(r.outputs), kThreads, 0, s>>>(x, out, r, scale);
    checkCuda(cudaGetLastError(), "sum kernel");
    return;
  }
  int splits = sumSplits(r);
  int64_t chunk = (r.reduced + splits - 1) / splits;
  dim3 grid(static_cast<unsigned int>(r.outputs), static_cast<unsigned int>(splits));
  sumBlockPerOutput<<<grid, kReduceThreads, 0, s>>>(x, out, static_cast<double*>(scratch), r, scale, chunk);
  checkCuda(cudaGetLastError(), "sum kernel");
  if (splits > 1) {
    sumPartials<<<blocksFor(r.outputs), kThreads, 0, s>>>(static_cast<const double*>(scratch), out, r.outputs, splits, scale);
    checkCuda(cudaGetLastError(), "sum kernel (partials)");
  }
}

void argExtreme(const float* x, float* values, int32_t* indices, int64_t outer, int64_t len, int64_t inner, bool isMax,
                cudaStream_t s) {
  int64_t total = outer * inner;
  if (total <= 0) return;
  argExtremeKernel<<<blocksFor(total), kThreads, 0, s>>>(x, values, indices, outer, len, inner, isMax);
  checkCuda(cudaGetLastError(), "maxDim/minDim kernel");
}

void indexScatter(const float* g, const int32_t* indices, float* out, int64_t outer, int64_t len, int64_t inner,
                  cudaStream_t s) {
  fillF32(out, 0.0f, outer * len * inner, s);
  int64_t total = outer * inner;
  if (total <= 0) return;
  indexScatterKernel<<<blocksFor(total), kThreads, 0, s>>>(g, indices, out, outer, len, inner);
  checkCuda(cudaGetLastError(), "indexGradBackward kernel");
}

}  // namespace cuda
}  // namespace ssql
