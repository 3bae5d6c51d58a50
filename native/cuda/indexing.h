// Index descriptors passed by value to kernels: broadcast strides, reduction layouts, permutations.
// Adjacent dimensions that stay contiguous for every operand are merged first, so kernels see few dimensions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.h"

namespace ssql {
namespace cuda {

constexpr int kMaxDims = 8;

// out[i] reads a[offA(i)] and b[offB(i)], where offsets come from i's coordinates in `shape`.
struct BroadcastIndex {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strideA[kMaxDims] = {};
  int64_t strideB[kMaxDims] = {};
};

// out[o] = reduce over r of x[keptOffset(o) + reducedOffset(r)].
struct ReduceIndex {
  int ndKept = 0, ndReduced = 0;
  int64_t keptShape[kMaxDims] = {}, keptStride[kMaxDims] = {};
  int64_t reducedShape[kMaxDims] = {}, reducedStride[kMaxDims] = {};
  int64_t outputs = 1, reduced = 1;
};

// out[o] = x[offset(o)] with the input strides listed in output-dimension order.
struct PermuteIndex {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t inStride[kMaxDims] = {};
};

// Builds the merged broadcast index from an output shape and per-operand element strides (0 where broadcast).
inline BroadcastIndex makeBroadcastIndex(const std::vector<int64_t>& shape, const std::vector<int64_t>& sa,
                                         const std::vector<int64_t>& sb, const char* op) {
  std::vector<int64_t> s, a, b;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;  // size-1 dimensions contribute nothing to any offset
    if (!s.empty() && a.back() == sa[i] * shape[i] && b.back() == sb[i] * shape[i]) {
      s.back() *= shape[i];
      a.back() = sa[i];
      b.back() = sb[i];
      continue;
    }
    s.push_back(shape[i]);
    a.push_back(sa[i]);
    b.push_back(sb[i]);
  }
  if (s.size() > static_cast<size_t>(kMaxDims))
    throw RangeError(std::string(op) + "(): broadcasting over more than 8 non-mergeable dimensions is not supported on CUDA");
  BroadcastIndex r;
  r.nd = static_cast<int>(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    r.shape[i] = s[i];
    r.strideA[i] = a[i];
    r.strideB[i] = b[i];
  }
  return r;
}

}  // namespace cuda
}  // namespace ssql
