// Times work queued on the device stream with CUDA events, the way the convolution plan choice compares the legacy
// algorithm with the graph API's engines (native/cuda/conv.cc, conv_engines.cc): one warm-up run, then the
// fastest of a few timed runs.
#pragma once

#include <cuda_runtime.h>

#include <functional>

namespace ssql {
namespace cuda {

class StreamTimer {
 public:
  explicit StreamTimer(cudaStream_t stream);
  ~StreamTimer();
  StreamTimer(const StreamTimer&) = delete;
  StreamTimer& operator=(const StreamTimer&) = delete;

  // Milliseconds of the fastest of `runs` runs of `queue` (which queues the work and says whether that worked),
  // after one untimed warm-up; negative when `queue` or a CUDA call failed. Waits for the device.
  float bestOf(const std::function<bool()>& queue, int runs = 3);

 private:
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace cuda
}  // namespace ssql
