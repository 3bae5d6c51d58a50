// Launcher of the augmentation kernels (augment_kernels.cu); no N-API here, so nvcc never parses napi.h.
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "augment_plan.h"

namespace ssql {
namespace cuda {

// Queues the plan's stages on `s`; every pointer in `d` and in its records is a device pointer.
void augmentStages(const std::vector<aug::Stage>& stages, const aug::StageData& d, cudaStream_t s);

}  // namespace cuda
}  // namespace ssql
