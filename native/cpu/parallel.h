// OpenMP loops that stay serial for small sizes, where thread start-up costs more than the work.
#pragma once

#include <cstdint>

namespace ssql {

constexpr int64_t kParallelGrain = 16384;

template <typename F>
inline void parallelFor(int64_t n, F&& f) {
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace ssql
