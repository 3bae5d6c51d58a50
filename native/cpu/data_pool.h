// Worker threads for the data pipeline (image decoding, augmentation), sized by -j. They are separate from
// the OpenMP team so the loader's work for the next batch overlaps the training step instead of queueing
// behind it.
#pragma once

#include <cstdint>
#include <functional>

namespace ssql {

// Number of pool threads (>= 1); all data work runs on them.
void setDataThreads(int threads);
int dataThreads();

// Runs f(i) for every i in [0, n) on the pool and returns when all are done (the caller only waits).
// The first exception thrown by f is rethrown here after the others have finished.
void dataParallelFor(int64_t n, const std::function<void(int64_t)>& f);

}  // namespace ssql
