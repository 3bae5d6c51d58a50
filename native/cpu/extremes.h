// Min/max of float runs with NaN tracked apart (torch.min/max propagate NaN): the per-tensor observer's reduction,
// also run by producers (batch norm's epilogue) that hand the observer their output's range.
#pragma once

#include <cstdint>
#include <limits>

namespace ssql {

struct Extremes {
  float mn = std::numeric_limits<float>::infinity();
  float mx = -std::numeric_limits<float>::infinity();
  bool nan = false;

  // The observed min and max, both NaN when a NaN was seen.
  float min() const { return nan ? std::numeric_limits<float>::quiet_NaN() : mn; }
  float max() const { return nan ? std::numeric_limits<float>::quiet_NaN() : mx; }
};

// Folds p[0..n) into the running min/max/NaN flag.
void scanRun(const float* p, int64_t n, float* mnOut, float* mxOut, int* nanOut);

inline void scanRun(const float* p, int64_t n, Extremes& e) {
  int nan = e.nan;
  scanRun(p, n, &e.mn, &e.mx, &nan);
  e.nan = nan != 0;
}

inline void merge(Extremes& into, const Extremes& e) {
  into.mn = e.mn < into.mn ? e.mn : into.mn;
  into.mx = e.mx > into.mx ? e.mx : into.mx;
  into.nan = into.nan || e.nan;
}

}  // namespace ssql
