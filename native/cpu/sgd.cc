// Fused in-place SGD step with torch.optim.SGD's semantics (weight decay, momentum, dampening, Nesterov).
#include <cmath>

#include "../core/binding.h"
#include "../core/sgd_args.h"
#include "simd.h"

using namespace ssql;

namespace {

SSQL_VECTORIZED
void sgdKernel(float* p, const float* g, float* buf, int64_t begin, int64_t end, float lr, float momentum, float wd,
               float keep, bool nesterov, bool initBuf) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    float d = g[i];
    if (wd != 0.0f) d += wd * p[i];
    if (buf) {
      float b = initBuf ? d : momentum * buf[i] + keep * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] -= lr * d;
  }
}

}  // namespace

SSQL_OP(sgdStep_) {
  parse::SgdArgs o = parse::sgdArgs(a);
  const float lr = o.lr, momentum = o.momentum, wd = o.weightDecay, dampening = o.dampening;
  const bool nesterov = o.nesterov, initBuf = o.initBuf;
  float* pp = o.p->f32();
  const float* pg = o.g->f32();
  float* pb = o.buf ? o.buf->f32() : nullptr;
  float keep = 1.0f - dampening;
  parallelRanges(o.p->numel(), [&](int64_t begin, int64_t end) {
    sgdKernel(pp, pg, pb, begin, end, lr, momentum, wd, keep, nesterov, initBuf);
  });
  return a.env().Undefined();
}
