// OpenMP loops that stay serial for small sizes, where thread start-up costs more than the work. The choice is a
// branch in front of the region rather than OpenMP's if() clause: a region the clause keeps serial still sets up a
// libgomp team, about 1.5 us per op, which dominates ops on small tensors.
#pragma once

#include <cstdint>

namespace ssql {

constexpr int64_t kParallelGrain = 16384;

// f(i) for i in [0, n), split statically across threads when `parallel`.
template <typename F>
inline void parallelForIf(bool parallel, int64_t n, F&& f) {
  if (!parallel) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// The same with one item per thread at a time, for items of uneven cost.
template <typename F>
inline void parallelForDynamicIf(bool parallel, int64_t n, F&& f) {
  if (!parallel) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) f(i);
}

template <typename F>
inline void parallelFor(int64_t n, F&& f) {
  parallelForIf(n >= kParallelGrain, n, f);
}

}  // namespace ssql
