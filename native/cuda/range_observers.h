// Launchers of the range-observer kernels (native/cuda/range_observers.cu): the CUDA side of the CPU ops in
// native/cpu/range_observers.cc, which define the semantics; formulas shared through core/observer_math.h. Every
// pointer is device memory; each launcher only queues work on `stream` and returns cudaGetLastError().
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "fake_quant.h"

namespace ssql {
namespace cuda {

// mseRange: per channel (or per tensor) search of the MSE / HISTOGRAM observer; workspace for the per-channel
// (numpy-rule) error rows.
size_t mseRangeWorkspaceBytes(QuantLayout layout, bool perTensor);
cudaError_t mseRange(const float* x, QuantLayout layout, bool perTensor, int bits, float* min, float* max, void* workspace,
                     cudaStream_t stream);

// topkAbs_: buf [channels, k] <- the k largest |x| per channel (with buf's own when accumulating).
size_t topkAbsWorkspaceBytes(QuantLayout layout, int64_t k);
cudaError_t topkAbs(const float* x, float* buf, QuantLayout layout, int64_t k, bool accumulate, void* workspace,
                    cudaStream_t stream);

cudaError_t percentileRange(const float* min, const float* max, const float* buf, int64_t channels, int64_t k, bool cut,
                            float* outMin, float* outMax, cudaStream_t stream);

cudaError_t absHistogram(const float* x, int32_t* hist, const float* min, const float* max, QuantLayout layout,
                         int64_t bins, cudaStream_t stream);

size_t klRangeWorkspaceBytes(int64_t channels, int64_t bins, int bits);
cudaError_t klRange(const int32_t* hist, const float* min, const float* max, int64_t channels, int64_t bins, int bits,
                    float* outMin, float* outMax, void* workspace, cudaStream_t stream);

cudaError_t gaussianRange(const float* x, QuantLayout layout, float alpha, float* min, float* max, cudaStream_t stream);

}  // namespace cuda
}  // namespace ssql
