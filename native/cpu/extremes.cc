// The min/max scan of extremes.h.
#pragma GCC optimize("no-trapping-math")

#include "extremes.h"

#include <cstring>

#include "quant_util.h"

namespace ssql {

namespace {

typedef float V8f __attribute__((vector_size(32)));
typedef int32_t V8i __attribute__((vector_size(32)));

}  // namespace

// min/max over p[0..n) in 8 lanes (GCC vector extensions: two SSE registers, or one AVX2 register in that clone);
// NaN is tracked apart, since torch.min/max propagate it.
SSQL_CLONES void scanRun(const float* __restrict p, int64_t n, float* mnOut, float* mxOut, int* nanOut) {
  V8f mn, mx;
  V8i nan = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int j = 0; j < 8; ++j) {
    mn[j] = *mnOut;
    mx[j] = *mxOut;
  }
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    V8f v;
    std::memcpy(&v, p + i, sizeof v);
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
    nan |= v != v;
  }
  float a = *mnOut, b = *mxOut;
  int any = *nanOut;
  for (int j = 0; j < 8; ++j) {
    a = mn[j] < a ? mn[j] : a;
    b = mx[j] > b ? mx[j] : b;
    any |= nan[j] != 0;
  }
  for (; i < n; ++i) {
    float v = p[i];
    a = v < a ? v : a;
    b = v > b ? v : b;
    any |= v != v;
  }
  *mnOut = a;
  *mxOut = b;
  *nanOut = any;
}

}  // namespace ssql
