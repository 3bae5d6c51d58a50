// Kernels of augmentBatch on CUDA: each stage of the plan (augment_plan.h) is one grid-stride kernel over the
// whole batch, its element body from augment_stages.h. Compiled with --fmad=false (native/CMakeLists.txt,
// scripts/build-cuda-plain.sh) so that the float arithmetic is the CPU op's, bit for bit (core/augment_math.h).
#include "augment.h"
#include "augment_stages.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

template <aug::StageKind K>
__global__ void stageKernel(aug::StageData d, int arg, int64_t n) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    aug::stageAt(K, d, arg, i);
}

template <aug::StageKind K>
void launch(const aug::StageData& d, const aug::Stage& s, cudaStream_t stream) {
  stageKernel<K><<<blocksFor(s.n), kThreads, 0, stream>>>(d, s.arg, s.n);
  SSQL_LAUNCHED("augmentBatch stage");
}

}  // namespace

void augmentStages(const std::vector<aug::Stage>& stages, const aug::StageData& d, cudaStream_t s) {
  using K = aug::StageKind;
  for (const aug::Stage& st : stages) {
    if (st.n == 0) continue;
    switch (st.kind) {
      case K::Coefficients: launch<K::Coefficients>(d, st, s); break;
      case K::Resize: launch<K::Resize>(d, st, s); break;
      case K::ContrastRows: launch<K::ContrastRows>(d, st, s); break;
      case K::ContrastMean: launch<K::ContrastMean>(d, st, s); break;
      case K::Jitter: launch<K::Jitter>(d, st, s); break;
      case K::Grayscale: launch<K::Grayscale>(d, st, s); break;
      case K::Blur: launch<K::Blur>(d, st, s); break;
      case K::Normalize: launch<K::Normalize>(d, st, s); break;
    }
  }
}

}  // namespace cuda
}  // namespace ssql
