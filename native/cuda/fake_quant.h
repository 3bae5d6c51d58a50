// Launchers of the CUDA quantization kernels (native/cuda/fake_quant.cu, observers.cu): plain C++, no N-API, so the CUDA addon's
// op bodies (or anything else) can call them. Every pointer is device memory; every launcher only queues work on
// `stream` (no host synchronisation, no allocation) and returns cudaGetLastError() of its launches.
// Semantics are those of the CPU ops of the same names (native/cpu/fake_quant.cc, observers.cc), which define them;
// the per-element formulas are shared through native/core/fake_quant_math.h.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace ssql {
namespace cuda {

// x viewed as [outer, channels, inner] around the channel axis. Per tensor: {1, 1, numel}.
struct QuantLayout {
  int64_t outer;
  int64_t channels;
  int64_t inner;
  int64_t numel() const { return outer * channels * inner; }
};

// fakeQuantPerTensor / fakeQuantPerChannel: out and (when mask != nullptr) the uint8 clamp mask in one pass.
// scale [channels] f32, zeroPoint [channels] i32, enabled: nullptr or one i32 (0 = identity: out = x, mask = 1).
// perChannel picks the per-channel op's rule for non-finite values (see fake_quant_math.h); divide rounds
// x / scale (IEEE division, the original's rule) instead of x * (1 / scale) (PyTorch's fake-quant ops).
cudaError_t fakeQuantForward(const float* x, float* out, uint8_t* mask, const float* scale, const int32_t* zeroPoint,
                             const int32_t* enabled, QuantLayout layout, bool perChannel, int32_t quantMin,
                             int32_t quantMax, bool divide, cudaStream_t stream);

// fakeQuantBackward: dx = grad * mask over n elements.
cudaError_t fakeQuantBackward(const float* grad, const uint8_t* mask, float* dx, int64_t n, cudaStream_t stream);

// fakeQuantRangeBackward: dx = grad * M plus the scale term routed to argmin/argmax (flat indices into x) per channel.
// Indices outside x or outside their channel are skipped (the CPU op rejects them; checking here would need a
// read-back).
// `workspace` holds fakeQuantRangeBackwardWorkspaceBytes(layout) bytes (the per-channel sums).
size_t fakeQuantRangeBackwardWorkspaceBytes(QuantLayout layout);
cudaError_t fakeQuantRangeBackward(const float* grad, const float* x, float* dx, const float* scale,
                                   const int32_t* zeroPoint, const float* min, const float* max, const int32_t* argmin,
                                   const int32_t* argmax, const int32_t* enabled, QuantLayout layout, bool perChannel,
                                   int32_t quantMin, int32_t quantMax, bool symmetric, bool divide, void* workspace,
                                   cudaStream_t stream);

// aminmax_: per-channel min/max (and, when argmin/argmax != nullptr, the first flat index of each extreme) written
// into the [channels] buffers; accumulate merges with their current contents (old wins ties, NaN propagates).
// `workspace` holds aminmaxWorkspaceBytes(layout) bytes.
size_t aminmaxWorkspaceBytes(QuantLayout layout);
cudaError_t aminmax(const float* x, float* min, float* max, int32_t* argmin, int32_t* argmax, QuantLayout layout,
                    bool accumulate, void* workspace, cudaStream_t stream);

// emaUpdate_: dst = momentum * dst + (1 - momentum) * src, each product rounded to fp32 (no FMA).
cudaError_t emaUpdate(float* dst, const float* src, int64_t n, double momentum, cudaStream_t stream);

// calcQParams: scale / zeroPoint [channels] from min/max, and enabled[0] = 0 when the smallest scale is 0.
cudaError_t calcQParams(const float* min, const float* max, float* scale, int32_t* zeroPoint, int32_t* enabled,
                        int64_t channels, int bits, bool symmetric, cudaStream_t stream);

}  // namespace cuda
}  // namespace ssql
