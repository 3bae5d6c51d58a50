// Host allocator that keeps freed blocks of 1 MiB and more for reuse. glibc hands large blocks back to the OS
// (mmap/munmap above its threshold, heap trimming below), so every training step would page-fault its activations
// into fresh memory again; reusing the same sizes step after step avoids that entirely.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

#include "../core/tensor.h"

namespace ssql {

class CachingAllocator : public Allocator {
 public:
  CachingAllocator() {
    long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
    size_t ram = pages > 0 && pageSize > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(pageSize) : (size_t(8) << 30);
    limit_ = ram / 4;
  }

  void* allocate(size_t bytes) override {
    size_t size = sizeClass(bytes);
    if (size >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        cached_ -= size;
        return p;
      }
    }
    void* p = std::aligned_alloc(64, size);
    if (!p && size >= kMinCached) {
      releaseCached();
      p = std::aligned_alloc(64, size);
    }
    if (!p) throw std::bad_alloc();
    return p;
  }

  void deallocate(void* p, size_t bytes) override {
    size_t size = sizeClass(bytes);
    if (size >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + size <= limit_) {
        free_.emplace(size, p);
        cached_ += size;
        return;
      }
    }
    std::free(p);
  }

  void releaseCached() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, p] : free_) std::free(p);
    free_.clear();
    cached_ = 0;
  }

 private:
  static constexpr size_t kMinCached = size_t(1) << 20;

  // Multiples of 64 bytes below 1 MiB; above, steps of 1/8 of the enclosing power of two (at most 12.5% waste),
  // so that slightly different sizes (a last, smaller batch) still find a block.
  static size_t sizeClass(size_t bytes) {
    size_t r = (bytes + 63) & ~size_t(63);
    if (r < kMinCached) return r;
    size_t step = size_t(1) << (63 - __builtin_clzll(r) - 3);
    return (r + step - 1) & ~(step - 1);
  }

  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
  size_t limit_;
};

}  // namespace ssql
