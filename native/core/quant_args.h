// Argument checks of the quantization ops, shared by both addons (native/cpu/fake_quant.cc, observers.cc and
// native/cuda/quant_ops.cc) so that a bad call gets the same error on either device.
#pragma once

#include <string>

#include "binding.h"
#include "nn_args.h"

namespace ssql {
namespace quant {

// x viewed as [outer, channels, inner] around the channel axis; per-tensor is channels = 1, inner = numel.
struct ChannelLayout {
  int64_t outer = 1, channels = 1, inner = 1;
  int64_t axis = -1;  // -1: per tensor
};

inline ChannelLayout perTensorLayout(const Tensor& x) {
  ChannelLayout l;
  l.inner = x.numel();
  return l;
}

inline ChannelLayout channelLayout(const char* op, const Tensor& x, int64_t axis) {
  int64_t nd = x.dim();
  int64_t k = axis < 0 ? axis + nd : axis;
  if (nd == 0 || k < 0 || k >= nd)
    throw RangeError(std::string(op) + "(): axis " + std::to_string(axis) + " out of range for shape " + shapeStr(x.shape));
  ChannelLayout l;
  l.axis = k;
  l.channels = x.shape[k];
  for (int64_t i = 0; i < k; ++i) l.outer *= x.shape[i];
  for (int64_t i = k + 1; i < nd; ++i) l.inner *= x.shape[i];
  return l;
}

// Argument i is either null (per tensor) or an integer axis.
inline ChannelLayout layoutArg(const Args& a, size_t i, const Tensor& x) {
  auto v = a.at(i, "axis");
  if (v.IsNull() || v.IsUndefined()) return perTensorLayout(x);
  return channelLayout(a.op, x, a.integer(i, "axis"));
}

inline TensorPtr i32(const Args& a, size_t i, const char* name) {
  auto t = a.tensor(i, name);
  requireDtype(a.op, name, *t, DType::I32);
  return t;
}

inline void requireNumel(const char* op, const char* name, const Tensor& t, int64_t n) {
  if (t.numel() != n)
    throw RangeError(std::string(op) + "(): '" + name + "' must hold " + std::to_string(n) + " value(s), got shape " +
                     shapeStr(t.shape));
}

// Optional int32 [1] flag: 0 makes the op the identity (PyTorch's fake_quant_enabled). The pointer is the tensor's
// storage on the addon's device: the CPU ops read it on the host, the CUDA kernels on the device.
inline const int32_t* enabledArg(const Args& a, size_t i) {
  auto t = a.optTensor(i, "enabled");
  if (!t) return nullptr;
  requireDtype(a.op, "enabled", *t, DType::I32);
  requireNumel(a.op, "enabled", *t, 1);
  return t->data<int32_t>();
}

inline void quantRangeArgs(const Args& a, size_t i, float& qmin, float& qmax) {
  int64_t lo = a.integer(i, "quantMin"), hi = a.integer(i + 1, "quantMax");
  if (lo > hi) throw RangeError(std::string(a.op) + "(): quantMin " + std::to_string(lo) + " exceeds quantMax " + std::to_string(hi));
  if (lo < -(int64_t(1) << 24) || hi > (int64_t(1) << 24))
    throw RangeError(std::string(a.op) + "(): quantMin/quantMax must lie within +-2^24");
  qmin = static_cast<float>(lo);
  qmax = static_cast<float>(hi);
}

// emaUpdate_'s momentum and calcQParams' bits, checked alike on both devices.
inline double momentumArg(const Args& a, size_t i) {
  double m = a.number(i, "momentum");
  if (!(m >= 0.0 && m <= 1.0)) throw RangeError(std::string(a.op) + "(): momentum must lie in [0, 1]");
  return m;
}

inline int bitsArg(const Args& a, size_t i) {
  int64_t bits = a.integer(i, "bits");
  if (bits < 1 || bits > 16)
    throw RangeError(std::string(a.op) + "(): bits must lie in 1..16, got " + std::to_string(bits));
  return static_cast<int>(bits);
}

}  // namespace quant
}  // namespace ssql
