// Device blocks come from a BlockPool (native/core/block_pool.h) per process, keyed by stream: a block freed on a
// stream can be handed out again at once, because any later use on the same stream is ordered after the work that
// used it before. This file supplies the pool's segments (cudaMalloc / cudaFree) and the pinned staging buffers, and
// applies SSQL_CUDA_ALLOC_CONF (core/alloc_conf.h) on the first allocation.
#include "allocator.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/block_pool.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

using Stream = BlockPool::Stream;

struct State {
  std::mutex mu;
  std::unordered_map<Stream, int> streamDevice;  // each stream belongs to one device
  BlockPool pool{[this](size_t bytes, Stream st) { return mallocSegment(bytes, st); },
                 [this](void* p, size_t, Stream st) { freeSegment(p, st); }};
  std::vector<PinnedBuffer*> pinnedIdle;
  bool configured = false;

  // A bad SSQL_CUDA_ALLOC_CONF fails every allocation with the parser's message, until the process restarts.
  void configure() {
    if (configured) return;
    const char* text = std::getenv("SSQL_CUDA_ALLOC_CONF");
    AllocConf conf;
    try {
      conf = parseAllocConf(text ? text : "");
    } catch (const std::invalid_argument& e) {
      throw RangeError(e.what());
    }
    size_t freeBytes = 0, totalBytes = 0;
    if (cudaMemGetInfo(&freeBytes, &totalBytes) != cudaSuccess) {
      cudaGetLastError();
      totalBytes = 0;  // no share to compute: the threshold stays off
    }
    pool.configure(conf, totalBytes);
    configured = true;
  }

  void* mallocSegment(size_t bytes, Stream st) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      return nullptr;
    }
    if (e != cudaSuccess) throwCuda(e, "cudaMalloc");
    streamDevice[st] = currentDevice();
    return p;
  }

  void freeSegment(void* p, Stream st) {
    auto s = reinterpret_cast<cudaStream_t>(st);
    int device = streamDevice.count(st) ? streamDevice[st] : currentDevice();
    int current = currentDevice();
    if (device != current) cudaSetDevice(device);
    // A cached block may still be read by work queued on its stream.
    cudaStreamSynchronize(s);
    cudaFree(p);
    if (device != current) cudaSetDevice(current);
    cudaGetLastError();
  }
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

void* CachingDeviceAllocator::allocate(size_t bytes) {
  cudaStream_t st = stream();  // also selects the device on first use
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.configure();
  void* p = s.pool.allocate(bytes, reinterpret_cast<Stream>(st));
  if (!p) {
    emptyPinnedCacheLocked(s);
    p = s.pool.allocate(bytes, reinterpret_cast<Stream>(st));
  }
  if (p) return p;
  size_t freeBytes = 0, totalBytes = 0;
  cudaMemGetInfo(&freeBytes, &totalBytes);
  cudaGetLastError();
  throw CudaError("CUDA out of memory: tried to allocate " + formatBytes(static_cast<double>(bytes)) + " on device " +
                  std::to_string(currentDevice()) + " (" + formatBytes(static_cast<double>(freeBytes)) + " free of " +
                  formatBytes(static_cast<double>(totalBytes)) + "; this process holds " +
                  formatBytes(static_cast<double>(s.pool.stats().allocatedBytes)) +
                  " in tensors, cache already emptied): cudaErrorMemoryAllocation");
}

void CachingDeviceAllocator::deallocate(void* p, size_t) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.pool.deallocate(p);
}

CachingDeviceAllocator& deviceAllocator() {
  static CachingDeviceAllocator* a = new CachingDeviceAllocator();
  return *a;
}

DeviceMemoryStats deviceMemoryStats() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  const BlockPoolStats& p = s.pool.stats();
  return {p.allocatedBytes, p.reservedBytes, p.peakAllocatedBytes, p.peakReservedBytes, p.mallocs, p.cacheHits, p.gcSegments};
}

void resetPeakMemoryStats() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.pool.resetPeak();
}

void emptyCache() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.pool.emptyCache();
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
