// Hot loops are compiled three times (AVX-512, AVX2, baseline x86-64) and the loader picks the best the CPU runs,
// since the addon itself is built for baseline x86-64 so that one build runs everywhere.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SSQL_VECTORIZED __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SSQL_VECTORIZED
#endif

#include <omp.h>

#include <cstdint>

#include "parallel.h"

namespace ssql {

// Splits [0, n) into one contiguous range per thread, so that each thread runs one vectorized kernel call.
template <typename F>
inline void parallelRanges(int64_t n, F&& f) {
  if (n < kParallelGrain) {
    f(int64_t(0), n);
    return;
  }
#pragma omp parallel
  {
    int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    f(n * t / T, n * (t + 1) / T);
  }
}

}  // namespace ssql
