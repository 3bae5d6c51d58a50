// Argument checks and output shapes of the data-moving shape ops (permute, concat, narrow), shared by both addons
// (native/cpu/shape_ops.cc, native/cuda/shape_ops.cc).
#pragma once

#include <string>
#include <vector>

#include "binding.h"
#include "nn_args.h"

namespace ssql {
namespace parse {

// permute(x, dims): out[i] is x's dimension perm[i].
struct PermuteArgs {
  TensorPtr x;
  std::vector<int64_t> perm;       // normalized
  std::vector<int64_t> inStrides;  // x's contiguous strides
  TensorPtr out;
};

// deviceLimit(x) runs after the rank check, before the dims are read (CUDA's index holds at most kMaxDims).
template <typename DeviceLimit>
PermuteArgs permuteArgs(const Args& a, DeviceLimit&& deviceLimit) {
  PermuteArgs p;
  p.x = a.tensor(0, "x");
  p.perm = a.ints(1, "dims");
  const Shape& s = p.x->shape;
  int64_t nd = p.x->dim();
  if (static_cast<int64_t>(p.perm.size()) != nd) throw RangeError("permute(): dims must list every dimension of " + shapeStr(s));
  deviceLimit(*p.x);
  std::vector<bool> seen(nd, false);
  Shape os(nd);
  for (int64_t i = 0; i < nd; ++i) {
    int64_t k = normalizeDim("permute", p.perm[i], nd);
    if (seen[k]) throw RangeError("permute(): repeated dimension");
    seen[k] = true;
    p.perm[i] = k;
    os[i] = s[k];
  }
  p.inStrides.assign(nd, 1);
  for (int64_t i = nd - 2; i >= 0; --i) p.inStrides[i] = p.inStrides[i + 1] * s[i + 1];
  p.out = empty(p.x->dtype, os);
  return p;
}

// concat(tensors, dim): the output viewed as [outer, out.shape[dim] * inner].
struct ConcatArgs {
  std::vector<TensorPtr> xs;
  int64_t dim, outer, inner;
  TensorPtr out;
};

inline ConcatArgs concatArgs(const Args& a) {
  ConcatArgs c;
  c.xs = a.tensors(0, "tensors");
  if (c.xs.empty()) throw RangeError("concat(): needs at least one tensor");
  const Tensor& first = *c.xs[0];
  int64_t nd = first.dim();
  int64_t k = normalizeDim("concat", a.integer(1, "dim"), nd);
  Shape os = first.shape;
  os[k] = 0;
  for (auto& t : c.xs) {
    if (t->dim() != nd || t->dtype != first.dtype) throw RangeError("concat(): tensors differ in rank or dtype");
    for (int64_t i = 0; i < nd; ++i)
      if (i != k && t->shape[i] != first.shape[i])
        throw RangeError("concat(): shapes " + shapeStr(first.shape) + " and " + shapeStr(t->shape) +
                         " differ outside dim " + std::to_string(k));
    os[k] += t->shape[k];
  }
  c.dim = k;
  c.out = empty(first.dtype, os);
  c.outer = c.inner = 1;
  for (int64_t i = 0; i < k; ++i) c.outer *= os[i];
  for (int64_t i = k + 1; i < nd; ++i) c.inner *= os[i];
  return c;
}

// narrow(x, dim, start, length): x viewed as [outer, x.shape[dim], inner], rows [start, start + length) of the middle.
struct NarrowArgs {
  TensorPtr x;
  int64_t dim, start, length, outer, inner;
  TensorPtr out;
};

inline NarrowArgs narrowArgs(const Args& a) {
  NarrowArgs n;
  n.x = a.tensor(0, "x");
  int64_t nd = n.x->dim();
  int64_t k = normalizeDim("narrow", a.integer(1, "dim"), nd);
  n.start = a.integer(2, "start");
  n.length = a.integer(3, "length");
  if (n.start < 0 || n.length < 0 || n.start + n.length > n.x->shape[k])
    throw RangeError("narrow(): range [" + std::to_string(n.start) + ", " + std::to_string(n.start + n.length) +
                     ") outside dimension of size " + std::to_string(n.x->shape[k]));
  Shape os = n.x->shape;
  os[k] = n.length;
  n.dim = k;
  n.out = empty(n.x->dtype, os);
  n.outer = n.inner = 1;
  for (int64_t i = 0; i < k; ++i) n.outer *= os[i];
  for (int64_t i = k + 1; i < nd; ++i) n.inner *= os[i];
  return n;
}

}  // namespace parse
}  // namespace ssql
