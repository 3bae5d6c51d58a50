// Reductions over dimensions on CUDA: sum, mean, and max/min with indices along one dimension.
#include <cmath>
#include <limits>
#include <string>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

namespace {

// Kept and reduced dimensions of a contiguous tensor, each run of same-kind neighbours merged into one.
cuda::ReduceIndex makeReduceIndex(const char* op, const Shape& s, const std::vector<bool>& mask) {
  struct Dim {
    int64_t size, stride;
    bool reduced;
  };
  std::vector<Dim> dims;
  int64_t stride = 1;
  for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
    if (s[i] != 1) {
      if (!dims.empty() && dims.back().reduced == mask[i]) dims.back().size *= s[i];
      else dims.push_back({s[i], stride, static_cast<bool>(mask[i])});
    }
    stride *= s[i];
  }
  cuda::ReduceIndex r;
  // dims runs innermost-first; the index wants outermost-first.
  for (auto it = dims.rbegin(); it != dims.rend(); ++it) {
    int& nd = it->reduced ? r.ndReduced : r.ndKept;
    if (nd == cuda::kMaxDims)
      throw RangeError(std::string(op) + "(): too many alternating reduced/kept dimensions in " + shapeStr(s));
    (it->reduced ? r.reducedShape : r.keptShape)[nd] = it->size;
    (it->reduced ? r.reducedStride : r.keptStride)[nd] = it->stride;
    ++nd;
    (it->reduced ? r.reduced : r.outputs) *= it->size;
  }
  return r;
}

Napi::Value sumOrMean(const Args& a, bool mean) {
  auto x = f32Arg(a, 0, "x");
  auto dims = a.ints(1, "dims");
  bool keepdim = a.count() > 2 ? a.boolean(2, "keepdim") : false;
  auto mask = reducedMask(a.op, x->shape, dims);
  auto out = empty(DType::F32, reducedShape(x->shape, mask, keepdim));
  int64_t outN = out->numel();
  if (!outN) return wrap(a.env(), out);
  cuda::ReduceIndex r = makeReduceIndex(a.op, x->shape, mask);
  double scale = 1.0;
  if (mean) {
    int64_t count = x->numel() / outN;
    scale = count ? 1.0 / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
  }
  size_t scratchBytes = cuda::sumScratchBytes(r);
  TensorPtr scratch = scratchBytes ? empty(DType::U8, {static_cast<int64_t>(scratchBytes)}) : nullptr;
  cuda::sum(x->f32(), out->f32(), r, scale, scratch ? scratch->storage->data : nullptr, cuda::stream());
  return wrap(a.env(), out);
}

Napi::Value argExtreme(const Args& a, bool isMax) {
  auto x = f32Arg(a, 0, "x");
  int64_t nd = x->dim();
  int64_t d = a.integer(1, "dim");
  bool keepdim = a.count() > 2 ? a.boolean(2, "keepdim") : false;
  int64_t k = d < 0 ? d + nd : d;
  if (k < 0 || k >= nd)
    throw RangeError(std::string(a.op) + "(): dimension " + std::to_string(d) + " out of range for shape " + shapeStr(x->shape));
  int64_t len = x->shape[k];
  if (len == 0) throw RangeError(std::string(a.op) + "(): cannot reduce an empty dimension");
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < k; ++i) outer *= x->shape[i];
  for (int64_t i = k + 1; i < nd; ++i) inner *= x->shape[i];
  std::vector<bool> mask(nd, false);
  mask[k] = true;
  Shape os = reducedShape(x->shape, mask, keepdim);
  auto vals = empty(DType::F32, os);
  auto idxs = empty(DType::I32, os);
  cuda::argExtreme(x->f32(), vals->f32(), idxs->data<int32_t>(), outer, len, inner, isMax, cuda::stream());
  return wrapMany(a.env(), {vals, idxs});
}

}  // namespace

SSQL_OP(sum) { return sumOrMean(a, false); }
SSQL_OP(mean) { return sumOrMean(a, true); }
SSQL_OP(maxDim) { return argExtreme(a, true); }
SSQL_OP(minDim) { return argExtreme(a, false); }

// Scatter the gradient of a max/min along `dim` back to the input positions given by `indices`.
// Indices outside the dimension cannot be reported without a device sync; they are skipped (zero gradient).
SSQL_OP(indexGradBackward) {
  auto g = f32Arg(a, 0, "grad");
  auto idx = a.tensor(1, "indices");
  requireDtype(a.op, "indices", *idx, DType::I32);
  Shape inShape = shapeArg(a, 2, "inputShape");
  int64_t d = a.integer(3, "dim");
  int64_t nd = static_cast<int64_t>(inShape.size());
  int64_t k = d < 0 ? d + nd : d;
  if (k < 0 || k >= nd) throw RangeError("indexGradBackward(): dim out of range");
  int64_t len = inShape[k], outer = 1, inner = 1;
  for (int64_t i = 0; i < k; ++i) outer *= inShape[i];
  for (int64_t i = k + 1; i < nd; ++i) inner *= inShape[i];
  if (g->numel() != outer * inner || idx->numel() != outer * inner)
    throw RangeError("indexGradBackward(): grad/indices do not match input shape " + shapeStr(inShape));
  auto out = empty(DType::F32, inShape);
  cuda::indexScatter(g->f32(), idx->data<int32_t>(), out->f32(), outer, len, inner, cuda::stream());
  return wrap(a.env(), out);
}
