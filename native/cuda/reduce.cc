// Reductions over dimensions on CUDA: sum, mean, and max/min with indices along one dimension.
#include <cmath>
#include <limits>
#include <string>

#include "../core/binding.h"
#include "../core/reduce_args.h"
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
  parse::SumArgs r = parse::sumArgs(a, mean);
  const TensorPtr &x = r.x, &out = r.out;
  if (!out->numel()) return wrap(a.env(), out);
  cuda::ReduceIndex index = makeReduceIndex(a.op, x->shape, r.reduced);
  size_t scratchBytes = cuda::sumScratchBytes(index);
  TensorPtr scratch = scratchBytes ? empty(DType::U8, {static_cast<int64_t>(scratchBytes)}) : nullptr;
  cuda::sum(x->f32(), out->f32(), index, r.scale, scratch ? scratch->storage->data : nullptr, cuda::stream());
  return wrap(a.env(), out);
}

Napi::Value argExtreme(const Args& a, bool isMax) {
  parse::ArgExtremeArgs r = parse::argExtremeArgs(a);
  cuda::argExtreme(r.x->f32(), r.values->f32(), r.indices->data<int32_t>(), r.outer, r.len, r.inner, isMax,
                   cuda::stream());
  return wrapMany(a.env(), {r.values, r.indices});
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
  const auto [outer, len, inner] = parse::indexGradShape(*g, *idx, inShape, d);
  auto out = empty(DType::F32, inShape);
  cuda::indexScatter(g->f32(), idx->data<int32_t>(), out->f32(), outer, len, inner, cuda::stream());
  return wrap(a.env(), out);
}
