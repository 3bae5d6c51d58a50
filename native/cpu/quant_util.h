// Loop helpers shared by the CPU quantization ops (fake_quant.cc, observers.cc); their argument checks are in
// core/quant_args.h, shared with the CUDA addon.
#pragma once

#include <omp.h>

#include <algorithm>
#include <string>

#include "../core/binding.h"
#include "../core/quant_args.h"
#include "parallel.h"

// Inner loops are compiled twice, for AVX2 and for the baseline ISA, and picked at load time (GCC target_clones).
// Both give the same bits: only IEEE mul/add/compare/select are used, and FMA is not enabled.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SSQL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SSQL_CLONES
#endif

namespace ssql {
namespace quant {

constexpr int64_t kMinParallel = 32768;  // elements below which threads cost more than they save

// f(begin, end) over [0, n) in chunks, in parallel when the work is large enough.
template <typename F>
inline void parallelChunks(int64_t n, int64_t chunk, F&& f) {
  int64_t chunks = (n + chunk - 1) / chunk;
  parallelForDynamicIf(n >= kMinParallel && chunks > 1, chunks,
                       [&](int64_t k) { f(k * chunk, std::min(n, (k + 1) * chunk)); });
}

// f(i) for i in [0, count) where each item touches `work` elements.
template <typename F>
inline void parallelItems(int64_t count, int64_t work, F&& f) {
  parallelForDynamicIf(count * work >= kMinParallel && count > 1, count, f);
}

}  // namespace quant
}  // namespace ssql
