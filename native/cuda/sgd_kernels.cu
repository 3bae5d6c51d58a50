// Kernel of sgdStep_ (native/cpu/sgd.cc): one fused pass per parameter, expression for expression the CPU op.
#include <cstdint>

#include "grid.cuh"
#include "kernels.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

// torch.optim.SGD for one parameter: weight decay, (dampened, Nesterov) momentum, then the step.
void sgdStep(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float weightDecay, float dampening,
             bool nesterov, bool initBuf, cudaStream_t s) {
  launchMap(n, [=] __device__(int64_t i) {
    float d = g[i];
    if (weightDecay != 0.0f) d += weightDecay * p[i];
    if (momentum != 0.0f) {
      float b = initBuf ? d : momentum * buf[i] + (1.0f - dampening) * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] -= lr * d;
  }, s, "sgdStep_ kernel");
}

}  // namespace cuda
}  // namespace ssql
