// CUDA runtime glue shared by kernels (.cu) and op bodies (.cc): checked calls, the per-device stream,
// launch sizes. No N-API here, so nvcc never parses napi.h.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ssql {
namespace cuda {

// A failed CUDA call; the guard in binding.h turns it into a JavaScript Error carrying this message.
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throwCuda(cudaError_t e, const char* expr);

inline void checkCuda(cudaError_t e, const char* expr) {
  if (e != cudaSuccess) throwCuda(e, expr);
}

#define SSQL_CUDA(expr) ::ssql::cuda::checkCuda((expr), #expr)
// After a kernel launch: catches bad launch configurations at once (execution errors surface at the next sync).
#define SSQL_LAUNCHED(kernel) ::ssql::cuda::checkCuda(cudaGetLastError(), "launch of " kernel)

// The device that ops run on (set by setDevice, default 0) and its stream, created on first use.
int currentDevice();
void selectDevice(int device);
cudaStream_t stream();
int multiprocessorCount();

// Whether TF32 tensor cores may be used by cuDNN convolutions and cuBLAS GEMMs (SSQL_TF32=1 via setTf32).
bool tf32Enabled();
void setTf32Enabled(bool on);

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never more than the work needs.
inline unsigned int blocksFor(int64_t n, int threads = kThreads) {
  int64_t want = (n + threads - 1) / threads;
  int64_t cap = static_cast<int64_t>(multiprocessorCount()) * 32;
  if (want > cap) want = cap;
  return static_cast<unsigned int>(want < 1 ? 1 : want);
}

}  // namespace cuda
}  // namespace ssql
