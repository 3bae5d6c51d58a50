// Fused in-place SGD step with torch.optim.SGD's semantics (weight decay, momentum, dampening, Nesterov).
#include <cmath>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

SSQL_OP(sgdStep_) {
  auto p = f32Arg(a, 0, "p");
  auto g = f32Arg(a, 1, "g");
  auto buf = a.optTensor(2, "buf");
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
  cuda::sgdStep(p->f32(), g->f32(), momentum > 0.0f ? buf->f32() : nullptr, p->numel(), lr, momentum, wd, dampening,
                nesterov, initBuf, cuda::stream());
  return a.env().Undefined();
}
