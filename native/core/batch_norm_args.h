// Argument checks and output shapes of batchNorm / batchNormBackward, shared by both addons
// (native/cpu/batch_norm.cc, native/cuda/batch_norm.cc) so that a bad call gets the same error on either device.
#pragma once

#include <string>

#include "binding.h"

namespace ssql {
namespace parse {

// x viewed as [N, C, S] with S = H * W (1 for 2-D input).
struct Planes {
  int64_t N, C, S;
  int64_t count() const { return N * S; }
  int64_t at(int64_t n, int64_t c) const { return (n * C + c) * S; }
};

inline Planes planesOf(const char* op, const Tensor& x) {
  if (x.dim() != 2 && x.dim() != 4)
    throw RangeError(std::string(op) + "(): input must be [N, C] or [N, C, H, W], got " + shapeStr(x.shape));
  return {x.shape[0], x.shape[1], x.dim() == 4 ? x.shape[2] * x.shape[3] : 1};
}

// A float32 [C] tensor argument; null when optional and not given.
inline TensorPtr channelVector(const Args& a, size_t i, const char* name, int64_t C, bool optional) {
  auto t = optional ? a.optTensor(i, name) : a.tensor(i, name);
  if (!t) return t;
  requireDtype(a.op, name, *t, DType::F32);
  requireShape(a.op, name, *t, {C});
  return t;
}

// A trailing boolean argument that may be left out (false).
inline bool optBoolean(const Args& a, size_t i, const char* name) {
  return i < a.count() && !a.at(i, name).IsUndefined() ? a.boolean(i, name) : false;
}

// batchNorm(x, weight?, bias?, runningMean?, runningVar?, training, momentum, eps, relu?, withRange?, fake quant?)
//   -> [y, mean, invStd, range or null, mask or null]
// fake quant (CPU; arguments 10-15, see cpu/output_fake_quant.h): y is fake-quantized per tensor in the same pass and
// mask (uint8) is the gate its backward takes.
// relu: y = max(batch norm, 0) in the same pass; withRange: range = [min(y), max(y)] (NaN, NaN when y holds a NaN),
// where the backend computes it in the same pass (the CPU's; CUDA returns null and the observer reduces y itself).
struct BatchNormArgs {
  TensorPtr x, weight, bias, runningMean, runningVar;  // all but x optional
  Planes p;
  bool training, relu, withRange;
  double momentum, eps;
  TensorPtr y, mean, invStd;
};

inline BatchNormArgs batchNormArgs(const Args& a) {
  BatchNormArgs b;
  b.x = a.tensor(0, "x");
  requireDtype(a.op, "x", *b.x, DType::F32);
  b.p = planesOf(a.op, *b.x);
  b.weight = channelVector(a, 1, "weight", b.p.C, true);
  b.bias = channelVector(a, 2, "bias", b.p.C, true);
  b.runningMean = channelVector(a, 3, "runningMean", b.p.C, true);
  b.runningVar = channelVector(a, 4, "runningVar", b.p.C, true);
  b.training = a.boolean(5, "training");
  b.momentum = a.number(6, "momentum");
  b.eps = a.number(7, "eps");
  b.relu = optBoolean(a, 8, "relu");
  b.withRange = optBoolean(a, 9, "withRange");
  if (!b.runningMean != !b.runningVar) throw TypeError("batchNorm(): runningMean and runningVar must be given together");
  if (!(b.eps >= 0.0)) throw RangeError("batchNorm(): eps must be >= 0");
  if (!(b.momentum >= 0.0 && b.momentum <= 1.0)) throw RangeError("batchNorm(): momentum must be in [0, 1]");
  if (!b.training && !b.runningMean) throw RangeError("batchNorm(): eval mode needs runningMean and runningVar");
  if (b.training && b.p.count() <= 1)
    throw RangeError("batchNorm(): expected more than 1 value per channel when training, got input " +
                     shapeStr(b.x->shape));
  b.y = empty(DType::F32, b.x->shape);
  b.mean = empty(DType::F32, {b.p.C});
  b.invStd = empty(DType::F32, {b.p.C});
  return b;
}

// batchNormBackward(gy, x, weight?, mean, invStd, training, withAffine, gate?) -> [dx, dWeight?, dBias?]
// gate: the output of a batchNorm run with relu (float32: gy counts only where it is positive, ReLU's backward), or
// the uint8 mask of one run with a fused fake quant (gy * mask, that fake quant's and the ReLU's backward).
struct BatchNormBackwardArgs {
  TensorPtr gy, x, weight, mean, invStd, reluOut;  // reluOut: the gate
  Planes p;
  bool training, withAffine;
  TensorPtr dx, dw, db;  // dw, db: null unless withAffine
};

inline BatchNormBackwardArgs batchNormBackwardArgs(const Args& a) {
  BatchNormBackwardArgs b;
  b.gy = a.tensor(0, "gy");
  b.x = a.tensor(1, "x");
  requireDtype(a.op, "gy", *b.gy, DType::F32);
  requireDtype(a.op, "x", *b.x, DType::F32);
  b.p = planesOf(a.op, *b.x);
  requireSameShape(a.op, *b.gy, *b.x);
  b.weight = channelVector(a, 2, "weight", b.p.C, true);
  b.mean = channelVector(a, 3, "mean", b.p.C, false);
  b.invStd = channelVector(a, 4, "invStd", b.p.C, false);
  b.training = a.boolean(5, "training");
  b.withAffine = a.boolean(6, "withAffine");
  b.reluOut = a.optTensor(7, "gate");
  if (b.reluOut) {
    if (b.reluOut->dtype != DType::F32 && b.reluOut->dtype != DType::U8)
      throw TypeError(std::string(a.op) + "(): 'gate' must be float32 (a ReLU output) or uint8 (a mask)");
    requireSameShape(a.op, *b.gy, *b.reluOut);
  }
  b.dx = empty(DType::F32, b.x->shape);
  if (b.withAffine) {
    b.dw = empty(DType::F32, {b.p.C});
    b.db = empty(DType::F32, {b.p.C});
  }
  return b;
}

}  // namespace parse
}  // namespace ssql
