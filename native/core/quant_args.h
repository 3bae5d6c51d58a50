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

// How x / scale is formed before rounding (QUANT.ROUNDING): "divide" (the original's x / scale) or "reciprocal"
// (x * (1 / scale), PyTorch's fake-quant ops).
inline bool divideArg(const Args& a, size_t i) {
  std::string r = a.string(i, "rounding");
  if (r == "divide") return true;
  if (r == "reciprocal") return false;
  throw RangeError(a.where(i, "rounding") + " must be 'divide' or 'reciprocal', got '" + r + "'");
}

// A fake quant fused into its producer's pass (batchNorm's and addRelu's arguments from `first` on) is a CPU-side
// fusion (cpu/output_fake_quant.h); elsewhere the quantizer runs its own op, so a call that passes one is an error.
inline void rejectFusedFakeQuant(const Args& a, size_t first) {
  if (a.count() > first && !a.at(first, "fakeQuantScale").IsNull() && !a.at(first, "fakeQuantScale").IsUndefined())
    throw RangeError(std::string(a.op) + "(): a fused fake quant runs on the CPU only");
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

// ---- each op's arguments, checked, with its outputs allocated; the backends add only the compute ----

// fakeQuantPerTensor(x, scale, zeroPoint, quantMin, quantMax, enabled, withMask, rounding)
// fakeQuantPerChannel(x, scale, zeroPoint, axis, quantMin, quantMax, enabled, withMask, rounding)
struct FakeQuantArgs {
  TensorPtr x, scale, zeroPoint;
  ChannelLayout layout;
  float qmin, qmax;
  const int32_t* enabled;
  bool withMask;
  bool divide;
  TensorPtr out, mask;  // mask: null unless withMask
};

inline FakeQuantArgs fakeQuantArgs(const Args& a, bool perChannel) {
  FakeQuantArgs q;
  q.x = f32Arg(a, 0, "x");
  q.scale = f32Arg(a, 1, "scale");
  q.zeroPoint = i32(a, 2, "zeroPoint");
  size_t k = perChannel ? 4 : 3;
  q.layout = perChannel ? channelLayout(a.op, *q.x, a.integer(3, "axis")) : perTensorLayout(*q.x);
  requireNumel(a.op, "scale", *q.scale, q.layout.channels);
  requireNumel(a.op, "zeroPoint", *q.zeroPoint, q.layout.channels);
  quantRangeArgs(a, k, q.qmin, q.qmax);
  q.enabled = enabledArg(a, k + 2);
  q.withMask = a.boolean(k + 3, "withMask");
  q.divide = divideArg(a, k + 4);
  q.out = empty(DType::F32, q.x->shape);
  if (q.withMask) q.mask = empty(DType::U8, q.x->shape);
  return q;
}

// fakeQuantBackward(grad, mask): the output has grad's shape.
struct FakeQuantBackwardArgs {
  TensorPtr grad, mask, out;
};

inline FakeQuantBackwardArgs fakeQuantBackwardArgs(const Args& a) {
  FakeQuantBackwardArgs q;
  q.grad = f32Arg(a, 0, "grad");
  q.mask = a.tensor(1, "mask");
  requireDtype(a.op, "mask", *q.mask, DType::U8);
  requireSameShape(a.op, *q.grad, *q.mask);
  q.out = empty(DType::F32, q.grad->shape);
  return q;
}

// fakeQuantRangeBackward(grad, x, scale, zeroPoint, min, max, argmin, argmax, axis, quantMin, quantMax, symmetric,
// enabled, rounding). The indices themselves are checked by the backend (the CPU reads them; CUDA cannot without a sync).
struct RangeBackwardArgs {
  TensorPtr grad, x, scale, zeroPoint, min, max, argmin, argmax;
  ChannelLayout layout;
  float qmin, qmax;
  bool symmetric;
  const int32_t* enabled;
  bool divide;
};

inline RangeBackwardArgs rangeBackwardArgs(const Args& a) {
  RangeBackwardArgs q;
  q.grad = f32Arg(a, 0, "grad");
  q.x = f32Arg(a, 1, "x");
  requireSameShape(a.op, *q.grad, *q.x);
  q.scale = f32Arg(a, 2, "scale");
  q.zeroPoint = i32(a, 3, "zeroPoint");
  q.min = f32Arg(a, 4, "min");
  q.max = f32Arg(a, 5, "max");
  q.argmin = i32(a, 6, "argmin");
  q.argmax = i32(a, 7, "argmax");
  q.layout = layoutArg(a, 8, *q.x);
  quantRangeArgs(a, 9, q.qmin, q.qmax);
  q.symmetric = a.boolean(11, "symmetric");
  q.enabled = enabledArg(a, 12);
  q.divide = divideArg(a, 13);
  const int64_t C = q.layout.channels;
  for (auto* t : {q.scale.get(), q.min.get(), q.max.get()}) requireNumel(a.op, "scale/min/max", *t, C);
  for (auto* t : {q.zeroPoint.get(), q.argmin.get(), q.argmax.get()}) requireNumel(a.op, "zeroPoint/argmin/argmax", *t, C);
  return q;
}

// aminmax_(x, min, max, argmin, argmax, axis, accumulate); x may hold at most maxNumel elements (the backend's
// index range).
struct AminmaxArgs {
  TensorPtr x, min, max, argmin, argmax;  // argmin/argmax: both or neither
  ChannelLayout layout;
  bool accumulate;
};

inline AminmaxArgs aminmaxArgs(const Args& a, int64_t maxNumel) {
  AminmaxArgs q;
  q.x = f32Arg(a, 0, "x");
  q.min = f32Arg(a, 1, "min");
  q.max = f32Arg(a, 2, "max");
  q.argmin = a.optTensor(3, "argmin");
  q.argmax = a.optTensor(4, "argmax");
  q.layout = layoutArg(a, 5, *q.x);
  q.accumulate = a.boolean(6, "accumulate");
  const int64_t C = q.layout.channels, n = q.x->numel();
  if (n == 0 || q.layout.outer * q.layout.inner == 0)
    throw RangeError(std::string(a.op) + "(): cannot observe an empty tensor of shape " + shapeStr(q.x->shape));
  if (n > maxNumel) throw RangeError(std::string(a.op) + "(): tensors above 2^31 elements are not supported");
  requireNumel(a.op, "min", *q.min, C);
  requireNumel(a.op, "max", *q.max, C);
  if (static_cast<bool>(q.argmin) != static_cast<bool>(q.argmax))
    throw TypeError(std::string(a.op) + "(): give both argmin and argmax, or neither");
  if (q.argmin) {
    requireDtype(a.op, "argmin", *q.argmin, DType::I32);
    requireDtype(a.op, "argmax", *q.argmax, DType::I32);
    requireNumel(a.op, "argmin", *q.argmin, C);
    requireNumel(a.op, "argmax", *q.argmax, C);
  }
  return q;
}

// emaUpdate_(dst, src, momentum)
struct EmaUpdateArgs {
  TensorPtr dst, src;
  double momentum;
};

inline EmaUpdateArgs emaUpdateArgs(const Args& a) {
  EmaUpdateArgs q;
  q.dst = f32Arg(a, 0, "dst");
  q.src = f32Arg(a, 1, "src");
  requireSameShape(a.op, *q.dst, *q.src);
  q.momentum = momentumArg(a, 2);
  return q;
}

// calcQParams(min, max, bits, symmetric) -> [scale f32, zeroPoint i32, enabled i32 [1]]
struct CalcQParamsArgs {
  TensorPtr min, max;
  int bits;
  bool symmetric;
  TensorPtr scale, zeroPoint, enabled;
};

inline CalcQParamsArgs calcQParamsArgs(const Args& a) {
  CalcQParamsArgs q;
  q.min = f32Arg(a, 0, "min");
  q.max = f32Arg(a, 1, "max");
  requireSameShape(a.op, *q.min, *q.max);
  q.bits = bitsArg(a, 2);
  q.symmetric = a.boolean(3, "symmetric");
  q.scale = empty(DType::F32, q.min->shape);
  q.zeroPoint = empty(DType::I32, q.min->shape);
  q.enabled = empty(DType::I32, {1});
  return q;
}

}  // namespace quant
}  // namespace ssql
