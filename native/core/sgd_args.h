// Argument checks of sgdStep_ (torch.optim.SGD's options), shared by both addons (native/cpu/sgd.cc,
// native/cuda/sgd.cc).
#pragma once

#include <cmath>

#include "binding.h"

namespace ssql {
namespace parse {

// sgdStep_(p, g, buf?, lr, momentum, weightDecay, dampening, nesterov, initBuf); buf is null unless momentum > 0.
struct SgdArgs {
  TensorPtr p, g, buf;
  float lr, momentum, weightDecay, dampening;
  bool nesterov, initBuf;
};

inline SgdArgs sgdArgs(const Args& a) {
  SgdArgs s;
  s.p = a.tensor(0, "p");
  s.g = a.tensor(1, "g");
  auto buf = a.optTensor(2, "buf");
  requireDtype(a.op, "p", *s.p, DType::F32);
  requireDtype(a.op, "g", *s.g, DType::F32);
  requireSameShape(a.op, *s.p, *s.g);
  s.lr = static_cast<float>(a.number(3, "lr"));
  s.momentum = static_cast<float>(a.number(4, "momentum"));
  s.weightDecay = static_cast<float>(a.number(5, "weightDecay"));
  s.dampening = static_cast<float>(a.number(6, "dampening"));
  s.nesterov = a.boolean(7, "nesterov");
  s.initBuf = a.boolean(8, "initBuf");
  if (!std::isfinite(s.lr) || !(s.momentum >= 0.0f) || !(s.weightDecay >= 0.0f) || !std::isfinite(s.momentum) ||
      !std::isfinite(s.weightDecay) || !std::isfinite(s.dampening))
    throw RangeError("sgdStep_(): lr must be finite, momentum and weightDecay finite and >= 0");
  if (s.momentum > 0.0f) {
    if (!buf) throw TypeError("sgdStep_(): momentum > 0 needs a momentum buffer");
    requireDtype(a.op, "buf", *buf, DType::F32);
    requireSameShape(a.op, *s.p, *buf);
    s.buf = buf;
  }
  if (s.nesterov && (s.momentum <= 0.0f || s.dampening != 0.0f))
    throw RangeError("sgdStep_(): Nesterov momentum requires a momentum and zero dampening");
  return s;
}

}  // namespace parse
}  // namespace ssql
