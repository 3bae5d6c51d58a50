// Caching allocators: device blocks split from cached segments and merged back per stream (PyTorch's
// CUDACachingAllocator scheme, native/core/block_pool.h), and pinned host staging buffers reused once the copy that
// used them has finished.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "../core/tensor.h"

namespace ssql {
namespace cuda {

struct DeviceMemoryStats {
  int64_t allocatedBytes;  // blocks handed out (sizes rounded to 512 B)
  int64_t reservedBytes;   // everything obtained from cudaMalloc and not yet returned
  int64_t peakAllocatedBytes;
  int64_t peakReservedBytes;
  int64_t mallocs;         // cudaMalloc calls (segments)
  int64_t cacheHits;       // requests served from cached segments
  int64_t gcSegments;      // free segments given back by SSQL_CUDA_ALLOC_CONF's garbage_collection_threshold
};

struct CachingDeviceAllocator : Allocator {
  void* allocate(size_t bytes) override;
  void deallocate(void* p, size_t bytes) override;
};

CachingDeviceAllocator& deviceAllocator();
DeviceMemoryStats deviceMemoryStats();
void resetPeakMemoryStats();
// Returns every cached (free) device block and idle pinned buffer to the driver.
void emptyCache();

// A pinned host buffer; release() makes it reusable once the work queued on `stream` so far has finished.
struct PinnedBuffer {
  void* data = nullptr;
  size_t bytes = 0;
  cudaEvent_t ready = nullptr;
  bool pending = false;
};
PinnedBuffer* acquirePinned(size_t bytes);
void releasePinned(PinnedBuffer* b, cudaStream_t afterWorkOn);

// Returns a pinned buffer to the cache even when a CUDA call in between throws; set `after` to the stream of
// the copy that reads it.
struct PinnedLease {
  PinnedBuffer* b;
  cudaStream_t after = nullptr;
  explicit PinnedLease(size_t bytes) : b(acquirePinned(bytes)) {}
  ~PinnedLease() { releasePinned(b, after); }
  PinnedLease(const PinnedLease&) = delete;
  PinnedLease& operator=(const PinnedLease&) = delete;
};

}  // namespace cuda
}  // namespace ssql
