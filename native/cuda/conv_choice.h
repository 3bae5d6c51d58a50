// When a cuDNN graph-API engine replaces the legacy convolution algorithm (native/cuda/conv.cc): it must be clearly
// faster and compute the same numbers. Pure host logic, no CUDA, so test/native/conv_choice_check.cc checks it on
// the CPU.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>

namespace ssql {
namespace cuda {

// An engine is adopted only when it takes at most 97% of the legacy algorithm's time: timing noise between two
// equally fast kernels must not flip the choice.
constexpr double kEngineSpeedup = 0.97;
// Largest accepted max |engine - legacy| / max |legacy|. Float32 results of different summation orders differ by
// ~1e-7 to 1e-6 of the largest output; TF32 (10-bit mantissa) differs by ~1e-3, so an engine that silently uses
// TF32 is rejected.
constexpr double kEngineTolerance = 1e-5;

inline bool engineIsFaster(double legacyMs, double engineMs) {
  return legacyMs > 0 && engineMs > 0 && engineMs <= kEngineSpeedup * legacyMs;
}

// max |a - b| / max(max |ref|, 1e-30) over n elements; infinity when either side holds a NaN or an infinity, so a
// non-finite output never passes.
inline double maxRelativeDifference(const float* ref, const float* other, size_t n) {
  double maxDiff = 0, maxRef = 0;
  for (size_t i = 0; i < n; ++i) {
    double r = ref[i], o = other[i];
    if (!std::isfinite(r) || !std::isfinite(o)) return std::numeric_limits<double>::infinity();
    maxDiff = std::fmax(maxDiff, std::fabs(r - o));
    maxRef = std::fmax(maxRef, std::fabs(r));
  }
  return maxDiff / std::fmax(maxRef, 1e-30);
}

inline bool engineMatches(double relativeDifference) { return relativeDifference <= kEngineTolerance; }

// Adopt the engine: faster by the margin and the same result.
inline bool adoptEngine(double legacyMs, double engineMs, double relativeDifference) {
  return engineIsFaster(legacyMs, engineMs) && engineMatches(relativeDifference);
}

}  // namespace cuda
}  // namespace ssql
