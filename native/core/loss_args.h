// Argument checks of the loss ops (logSoftmax, crossEntropy, topkCorrect and their backwards), shared by both addons
// (native/cpu/loss.cc, native/cuda/loss.cc). The CPU backend also checks target values; CUDA does not (that would
// wait for the device) and gives NaN instead.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "binding.h"
#include "nn_args.h"

namespace ssql {
namespace parse {

// int32 class indices, one per row of the [N, C] logits.
inline TensorPtr targetArg(const Args& a, size_t i, const Tensor& logits) {
  auto t = a.tensor(i, "target");
  requireDtype(a.op, "target", *t, DType::I32);
  requireShape(a.op, "target", *t, {logits.shape[0]});
  return t;
}

inline double labelSmoothingArg(const Args& a, size_t i) {
  double ls = a.number(i, "labelSmoothing");
  if (!(ls >= 0.0 && ls <= 1.0)) throw RangeError(a.where(i, "labelSmoothing") + " must be in [0, 1]");
  return ls;
}

// crossEntropyBackward's upstream gradient: a float32 tensor holding one value.
inline TensorPtr lossGradArg(const Args& a, size_t i) {
  auto g = f32Arg(a, i, "gLoss");
  if (g->numel() != 1) throw RangeError(std::string(a.op) + "(): gLoss must hold one value, got shape " + shapeStr(g->shape));
  return g;
}

// topkCorrect's list of k, each in 1..classes; at most maxCount of them.
inline std::vector<int64_t> topkArg(const Args& a, size_t i, int64_t classes, size_t maxCount = static_cast<size_t>(-1)) {
  auto ks = a.ints(i, "ks");
  if (ks.size() > maxCount)
    throw RangeError(std::string(a.op) + "(): at most " + std::to_string(maxCount) + " values of k on " +
                     (backend().device == kCUDA ? "CUDA" : "the CPU"));
  for (int64_t k : ks)
    if (k < 1 || k > classes)
      throw RangeError(std::string(a.op) + "(): k = " + std::to_string(k) + " is outside 1.." + std::to_string(classes));
  return ks;
}

}  // namespace parse
}  // namespace ssql
