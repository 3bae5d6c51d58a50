#include "stream_timer.h"

#include <algorithm>

namespace ssql {
namespace cuda {

StreamTimer::StreamTimer(cudaStream_t stream) : stream_(stream) {
  if (cudaEventCreate(&start_) != cudaSuccess || cudaEventCreate(&stop_) != cudaSuccess) cudaGetLastError();
}

StreamTimer::~StreamTimer() {
  if (start_) cudaEventDestroy(start_);
  if (stop_) cudaEventDestroy(stop_);
}

float StreamTimer::bestOf(const std::function<bool()>& queue, int runs) {
  if (!start_ || !stop_) return -1;
  auto failed = [] {
    cudaGetLastError();  // clear a non-sticky error so later calls start clean
    return -1.0f;
  };
  if (!queue()) return failed();
  float best = -1;
  for (int i = 0; i < runs; ++i) {
    float ms = 0;
    if (cudaEventRecord(start_, stream_) != cudaSuccess) return failed();
    if (!queue()) return failed();
    if (cudaEventRecord(stop_, stream_) != cudaSuccess || cudaEventSynchronize(stop_) != cudaSuccess ||
        cudaEventElapsedTime(&ms, start_, stop_) != cudaSuccess)
      return failed();
    best = best < 0 ? ms : std::min(best, ms);
  }
  return best;
}

}  // namespace cuda
}  // namespace ssql
