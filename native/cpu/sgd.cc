// Fused in-place SGD step with torch.optim.SGD's semantics (weight decay, momentum, dampening, Nesterov).
#include <cmath>

#include "../core/binding.h"
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
  auto p = a.tensor(0, "p");
  auto g = a.tensor(1, "g");
  auto buf = a.optTensor(2, "buf");
  requireDtype(a.op, "p", *p, DType::F32);
  requireDtype(a.op, "g", *g, DType::F32);
  requireSameShape(a.op, *p, *g);
  float lr = static_cast<float>(a.number(3, "lr"));
  float momentum = static_cast<float>(a.number(4, "momentum"));
  float wd = static_cast<float>(a.number(5, "weightDecay"));
  float dampening = static_cast<float>(a.number(6, "dampening"));
  bool nesterov = a.boolean(7, "nesterov");
  bool initBuf = a.boolean(8, "initBuf");
  if (!std::isfinite(lr) || !(momentum >= 0.0f) || !(wd >= 0.0f) || !std::isfinite(momentum) || !std::isfinite(wd) ||
      !std::isfinite(dampening))
    throw RangeError("sgdStep_(): lr must be finite, momentum and weightDecay finite and >= 0");
  if (momentum > 0.0f) {
    if (!buf) throw TypeError("sgdStep_(): momentum > 0 needs a momentum buffer");
    requireDtype(a.op, "buf", *buf, DType::F32);
    requireSameShape(a.op, *p, *buf);
  }
  if (nesterov && (momentum <= 0.0f || dampening != 0.0f))
    throw RangeError("sgdStep_(): Nesterov momentum requires a momentum and zero dampening");
  float* pp = p->f32();
  const float* pg = g->f32();
  float* pb = momentum > 0.0f ? buf->f32() : nullptr;
  float keep = 1.0f - dampening;
  parallelRanges(p->numel(), [&](int64_t begin, int64_t end) {
    sgdKernel(pp, pg, pb, begin, end, lr, momentum, wd, keep, nesterov, initBuf);
  });
  return a.env().Undefined();
}
