// NumPy/PyTorch broadcasting: output shape and per-operand strides over the output's index space.
#pragma once

#include <string>
#include <vector>

#include "tensor.h"

namespace ssql {

struct BroadcastPlan {
  enum Kind { Same, General } kind = Same;
  Shape out;
  std::vector<int64_t> strideA, strideB;  // element strides, 0 on broadcast dimensions
};

inline std::vector<int64_t> contiguousStrides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int64_t i = static_cast<int64_t>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

inline BroadcastPlan planBroadcast(const char* op, const Shape& a, const Shape& b) {
  BroadcastPlan p;
  if (a == b) {
    p.out = a;
    return p;
  }
  size_t n = std::max(a.size(), b.size());
  p.out.assign(n, 1);
  p.strideA.assign(n, 0);
  p.strideB.assign(n, 0);
  auto sa = contiguousStrides(a), sb = contiguousStrides(b);
  for (size_t i = 0; i < n; ++i) {
    int64_t ia = static_cast<int64_t>(i) - static_cast<int64_t>(n - a.size());
    int64_t ib = static_cast<int64_t>(i) - static_cast<int64_t>(n - b.size());
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      throw RangeError(std::string(op) + "(): shapes " + shapeStr(a) + " and " + shapeStr(b) + " cannot be broadcast");
    p.out[i] = da == 1 ? db : da;
    p.strideA[i] = (ia >= 0 && da != 1) ? sa[ia] : 0;
    p.strideB[i] = (ib >= 0 && db != 1) ? sb[ib] : 0;
  }
  p.kind = BroadcastPlan::General;
  return p;
}

// Calls f(outIndex, aIndex, bIndex) for every output element; rows of the last dimension run in parallel.
template <typename F>
inline void forEachBroadcast(const BroadcastPlan& p, F&& f) {
  size_t nd = p.out.size();
  if (nd == 0) {
    f(0, 0, 0);
    return;
  }
  int64_t inner = p.out[nd - 1];
  int64_t rows = numelOf(p.out) / (inner ? inner : 1);
  if (inner == 0) return;
  int64_t sAi = p.strideA[nd - 1], sBi = p.strideB[nd - 1];
#pragma omp parallel for schedule(static) if (rows * inner >= 16384)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t offA = 0, offB = 0, rem = r;
    for (int64_t d = static_cast<int64_t>(nd) - 2; d >= 0; --d) {
      int64_t idx = rem % p.out[d];
      rem /= p.out[d];
      offA += idx * p.strideA[d];
      offB += idx * p.strideB[d];
    }
    int64_t o = r * inner;
    for (int64_t k = 0; k < inner; ++k) f(o + k, offA + k * sAi, offB + k * sBi);
  }
}

}  // namespace ssql
