// Argument checks and output shapes of the reductions (sum, mean, maxDim, minDim, indexGradBackward), shared by
// both addons (native/cpu/reduce.cc, native/cuda/reduce.cc).
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "binding.h"
#include "nn_args.h"

namespace ssql {
namespace parse {

// sum(x, dims, keepdim?) / mean(x, dims, keepdim?): `reduced` marks the dimensions summed; out = sum * scale.
struct SumArgs {
  TensorPtr x;
  std::vector<bool> reduced;
  double scale;  // 1 for sum, 1 / count for mean (NaN when nothing is averaged)
  TensorPtr out;
};

inline SumArgs sumArgs(const Args& a, bool mean) {
  SumArgs r;
  r.x = a.tensor(0, "x");
  requireDtype(a.op, "x", *r.x, DType::F32);
  auto dims = a.ints(1, "dims");
  bool keepdim = a.count() > 2 ? a.boolean(2, "keepdim") : false;
  r.reduced = reducedMask(a.op, r.x->shape, dims);
  r.out = empty(DType::F32, reducedShape(r.x->shape, r.reduced, keepdim));
  r.scale = 1.0;
  if (mean) {
    int64_t outN = r.out->numel();
    int64_t count = outN ? r.x->numel() / outN : 0;
    r.scale = count ? 1.0 / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
  }
  return r;
}

// maxDim(x, dim, keepdim?) / minDim: x viewed as [outer, len, inner] around dim -> [values, int32 indices].
struct ArgExtremeArgs {
  TensorPtr x;
  int64_t outer, len, inner;
  TensorPtr values, indices;
};

inline ArgExtremeArgs argExtremeArgs(const Args& a) {
  ArgExtremeArgs r;
  r.x = a.tensor(0, "x");
  requireDtype(a.op, "x", *r.x, DType::F32);
  const Shape& s = r.x->shape;
  int64_t nd = r.x->dim();
  int64_t d = a.integer(1, "dim");
  bool keepdim = a.count() > 2 ? a.boolean(2, "keepdim") : false;
  int64_t k = d < 0 ? d + nd : d;
  if (k < 0 || k >= nd)
    throw RangeError(std::string(a.op) + "(): dimension " + std::to_string(d) + " out of range for shape " + shapeStr(s));
  r.len = s[k];
  if (r.len == 0) throw RangeError(std::string(a.op) + "(): cannot reduce an empty dimension");
  r.outer = r.inner = 1;
  for (int64_t i = 0; i < k; ++i) r.outer *= s[i];
  for (int64_t i = k + 1; i < nd; ++i) r.inner *= s[i];
  std::vector<bool> mask(nd, false);
  mask[k] = true;
  Shape os = reducedShape(s, mask, keepdim);
  r.values = empty(DType::F32, os);
  r.indices = empty(DType::I32, os);
  return r;
}

// indexGradBackward: the input of shape inShape viewed as [outer, len, inner] around dim; grad and indices hold
// outer * inner values. The backends read the arguments themselves (their orders differ) and check the indices.
struct IndexGradShape {
  int64_t outer, len, inner;
};

inline IndexGradShape indexGradShape(const Tensor& grad, const Tensor& indices, const Shape& inShape, int64_t d) {
  int64_t nd = static_cast<int64_t>(inShape.size());
  int64_t k = d < 0 ? d + nd : d;
  if (k < 0 || k >= nd) throw RangeError("indexGradBackward(): dim out of range");
  IndexGradShape r{1, inShape[k], 1};
  for (int64_t i = 0; i < k; ++i) r.outer *= inShape[i];
  for (int64_t i = k + 1; i < nd; ++i) r.inner *= inShape[i];
  if (grad.numel() != r.outer * r.inner || indices.numel() != r.outer * r.inner)
    throw RangeError("indexGradBackward(): grad/indices do not match input shape " + shapeStr(inShape));
  return r;
}

}  // namespace parse
}  // namespace ssql
