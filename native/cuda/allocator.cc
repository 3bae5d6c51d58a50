// Device blocks are cached per (stream, rounded size): a block freed on a stream can be handed out again at once,
// because any later use on the same stream is ordered after the work that used it before.
#include "allocator.h"

#include <cstdio>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

struct Block {
  size_t size;
  cudaStream_t stream;
  int device;
  bool inUse;
};

struct State {
  std::mutex mu;
  std::unordered_map<void*, Block> blocks;                            // every block obtained from cudaMalloc
  std::map<std::pair<cudaStream_t, size_t>, std::vector<void*>> idle;  // cached blocks by (stream, size)
  DeviceMemoryStats stats{};
  std::vector<PinnedBuffer*> pinnedIdle;
};

// Never destroyed: tensors freed during process exit still call deallocate().
State& state() {
  static State* s = new State();
  return *s;
}

std::string formatBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

void emptyDeviceCacheLocked(State& s) {
  int current = currentDevice();
  for (auto& [key, ptrs] : s.idle) {
    for (void* p : ptrs) {
      auto it = s.blocks.find(p);
      if (it == s.blocks.end()) continue;
      if (it->second.device != current) cudaSetDevice(it->second.device);
      // A cached block may still be read by work queued on its stream.
      cudaStreamSynchronize(it->second.stream);
      cudaFree(p);
      if (it->second.device != current) cudaSetDevice(current);
      s.stats.reservedBytes -= static_cast<int64_t>(it->second.size);
      s.blocks.erase(it);
    }
  }
  s.idle.clear();
  cudaGetLastError();
}

void emptyPinnedCacheLocked(State& s) {
  std::vector<PinnedBuffer*> keep;
  for (PinnedBuffer* b : s.pinnedIdle) {
    if (b->pending && cudaEventQuery(b->ready) != cudaSuccess) {
      keep.push_back(b);
      continue;
    }
    cudaEventDestroy(b->ready);
    cudaFreeHost(b->data);
    delete b;
  }
  s.pinnedIdle = std::move(keep);
  cudaGetLastError();
}

}  // namespace

size_t roundAllocationSize(size_t bytes) {
  constexpr size_t kSmall = 1 << 20;
  if (bytes <= kSmall) return ((bytes + 511) / 512) * 512;
  size_t p = 1;
  while (p * 2 <= bytes) p *= 2;
  size_t step = p / 4;
  return ((bytes + step - 1) / step) * step;
}

void* CachingDeviceAllocator::allocate(size_t bytes) {
  cudaStream_t st = stream();  // also selects the device on first use
  size_t size = roundAllocationSize(bytes);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.idle.find({st, size});
  if (it != s.idle.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    s.blocks[p].inUse = true;
    s.stats.allocatedBytes += static_cast<int64_t>(size);
    s.stats.peakAllocatedBytes = std::max(s.stats.peakAllocatedBytes, s.stats.allocatedBytes);
    s.stats.cacheHits++;
    return p;
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, size);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    emptyDeviceCacheLocked(s);
    emptyPinnedCacheLocked(s);
    e = cudaMalloc(&p, size);
  }
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t freeBytes = 0, totalBytes = 0;
    cudaMemGetInfo(&freeBytes, &totalBytes);
    cudaGetLastError();
    throw CudaError("CUDA out of memory: tried to allocate " + formatBytes(static_cast<double>(size)) + " on device " +
                    std::to_string(currentDevice()) + " (" + formatBytes(static_cast<double>(freeBytes)) + " free of " +
                    formatBytes(static_cast<double>(totalBytes)) + "; this process holds " +
                    formatBytes(static_cast<double>(s.stats.allocatedBytes)) +
                    " in tensors, cache already emptied): cudaErrorMemoryAllocation");
  }
  if (e != cudaSuccess) throwCuda(e, "cudaMalloc");
  s.blocks[p] = Block{size, st, currentDevice(), true};
  s.stats.reservedBytes += static_cast<int64_t>(size);
  s.stats.allocatedBytes += static_cast<int64_t>(size);
  s.stats.peakReservedBytes = std::max(s.stats.peakReservedBytes, s.stats.reservedBytes);
  s.stats.peakAllocatedBytes = std::max(s.stats.peakAllocatedBytes, s.stats.allocatedBytes);
  s.stats.mallocs++;
  return p;
}

void CachingDeviceAllocator::deallocate(void* p, size_t) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.blocks.find(p);
  if (it == s.blocks.end() || !it->second.inUse) return;
  it->second.inUse = false;
  s.stats.allocatedBytes -= static_cast<int64_t>(it->second.size);
  s.idle[{it->second.stream, it->second.size}].push_back(p);
}

CachingDeviceAllocator& deviceAllocator() {
  static CachingDeviceAllocator* a = new CachingDeviceAllocator();
  return *a;
}

DeviceMemoryStats deviceMemoryStats() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.stats;
}

void resetPeakMemoryStats() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.stats.peakAllocatedBytes = s.stats.allocatedBytes;
  s.stats.peakReservedBytes = s.stats.reservedBytes;
}

void emptyCache() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  emptyDeviceCacheLocked(s);
  emptyPinnedCacheLocked(s);
}

PinnedBuffer* acquirePinned(size_t bytes) {
  size_t size = 4096;
  while (size < bytes) size *= 2;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  for (size_t i = 0; i < s.pinnedIdle.size(); ++i) {
    PinnedBuffer* b = s.pinnedIdle[i];
    if (b->bytes != size) continue;
    if (b->pending) {
      cudaError_t q = cudaEventQuery(b->ready);
      if (q == cudaErrorNotReady) continue;
      if (q != cudaSuccess) throwCuda(q, "cudaEventQuery (pinned staging buffer)");
      b->pending = false;
    }
    s.pinnedIdle.erase(s.pinnedIdle.begin() + static_cast<std::ptrdiff_t>(i));
    return b;
  }
  auto* b = new PinnedBuffer();
  b->bytes = size;
  cudaError_t e = cudaMallocHost(&b->data, size);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    emptyPinnedCacheLocked(s);
    e = cudaMallocHost(&b->data, size);
  }
  if (e != cudaSuccess) {
    delete b;
    throwCuda(e, "cudaMallocHost (pinned staging buffer)");
  }
  e = cudaEventCreateWithFlags(&b->ready, cudaEventDisableTiming);
  if (e != cudaSuccess) {
    cudaFreeHost(b->data);
    delete b;
    throwCuda(e, "cudaEventCreateWithFlags");
  }
  return b;
}

void releasePinned(PinnedBuffer* b, cudaStream_t afterWorkOn) {
  if (!b) return;
  b->pending = false;
  if (afterWorkOn && cudaEventRecord(b->ready, afterWorkOn) == cudaSuccess) b->pending = true;
  cudaGetLastError();
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.pinnedIdle.push_back(b);
}

}  // namespace cuda
}  // namespace ssql
