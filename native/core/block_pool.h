// Device memory cached in segments that are split into blocks and merged back when freed: the scheme of PyTorch's
// CUDACachingAllocator (best fit per stream, sizes rounded to 512 B, small requests carved from 2 MiB segments,
// 1-10 MiB ones from 20 MiB segments, larger ones from their own segment whose cached blocks later serve smaller
// requests too). Free of device calls: the backend injects how a segment is obtained and returned, so the
// bookkeeping is tested on the CPU (test/native/block_pool_check.cc). Not synchronized: the caller holds a lock.
// Options (alloc_conf.h) as PyTorch's: max_split_size keeps large cached blocks whole, and a garbage-collection
// threshold gives back the oldest free segments before the pool grows past that share of the device.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "alloc_conf.h"

namespace ssql {

struct BlockPoolStats {
  int64_t allocatedBytes = 0;  // blocks handed out (rounded sizes)
  int64_t reservedBytes = 0;   // segments obtained and not yet returned
  int64_t peakAllocatedBytes = 0;
  int64_t peakReservedBytes = 0;
  int64_t mallocs = 0;    // segments obtained (cache misses)
  int64_t cacheHits = 0;  // requests served from cached segments
  int64_t gcSegments = 0;  // free segments given back by the garbage-collection threshold
};

class BlockPool {
 public:
  using Stream = std::uintptr_t;
  // Returns nullptr when the device has no room for `bytes`.
  using SegmentAlloc = std::function<void*(size_t bytes, Stream stream)>;
  // Gives a whole segment back; the backend waits for work still queued on `stream` first.
  using SegmentFree = std::function<void(void* p, size_t bytes, Stream stream)>;

  static constexpr size_t kMinBlock = 512;
  static constexpr size_t kSmallRequest = size_t{1} << 20;
  static constexpr size_t kSmallSegment = size_t{2} << 20;
  static constexpr size_t kMediumRequest = size_t{10} << 20;
  static constexpr size_t kMediumSegment = size_t{20} << 20;
  static constexpr size_t kLargeRounding = size_t{2} << 20;
  // How much larger than a request of at least max_split_size a cached block may be and still serve it whole.
  static constexpr size_t kOversizeSlack = size_t{20} << 20;

  static size_t roundSize(size_t bytes) { return bytes < kMinBlock ? kMinBlock : (bytes + kMinBlock - 1) / kMinBlock * kMinBlock; }

  static size_t segmentSize(size_t rounded) {
    if (rounded <= kSmallRequest) return kSmallSegment;
    if (rounded < kMediumRequest) return kMediumSegment;
    return (rounded + kLargeRounding - 1) / kLargeRounding * kLargeRounding;
  }

  BlockPool(SegmentAlloc alloc, SegmentFree free) : alloc_(std::move(alloc)), free_(std::move(free)) {}
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // Options for the requests from now on; deviceBytes is what the garbage-collection threshold is a share of.
  void configure(const AllocConf& conf, size_t deviceBytes) {
    conf_ = conf;
    deviceBytes_ = deviceBytes;
  }

  // Gives back the segments with nothing in use; blocks still in use keep theirs.
  ~BlockPool() {
    emptyCache();
    for (Block* b : smallFree_) delete b;
    for (Block* b : largeFree_) delete b;
    for (auto& [p, b] : active_) delete b;
  }

  // A block of at least `bytes` for work on `stream`, or nullptr when the device is out of memory even after every
  // cached segment was given back.
  void* allocate(size_t bytes, Stream stream) {
    const size_t size = roundSize(bytes);
    const bool small = size <= kSmallRequest;
    Block* b = takeFree(size, stream, small);
    if (b) {
      stats_.cacheHits++;
    } else {
      b = newSegment(size, stream, small);
      if (!b) return nullptr;
    }
    if (shouldSplit(b, size)) split(b, size);
    b->free = false;
    active_[b->ptr] = b;
    stats_.allocatedBytes += static_cast<int64_t>(b->size);
    stats_.peakAllocatedBytes = std::max(stats_.peakAllocatedBytes, stats_.allocatedBytes);
    return b->ptr;
  }

  // Returns a block to its stream's cache, merged with free neighbours; false for a pointer this pool did not give.
  bool deallocate(void* p) {
    auto it = active_.find(static_cast<char*>(p));
    if (it == active_.end()) return false;
    Block* b = it->second;
    active_.erase(it);
    stats_.allocatedBytes -= static_cast<int64_t>(b->size);
    b->free = true;
    b->freedAt = ++clock_;
    if (b->prev && b->prev->free) b = merge(b->prev, b);
    if (b->next && b->next->free) b = merge(b, b->next);
    freeSet(b->small).insert(b);
    return true;
  }

  // Gives back every segment with nothing in use; returns the bytes given back.
  size_t emptyCache() {
    size_t released = 0;
    for (bool small : {true, false}) {
      auto& set = freeSet(small);
      for (auto it = set.begin(); it != set.end();) {
        Block* b = *it;
        if (b->prev || b->next) {
          ++it;
          continue;
        }
        it = set.erase(it);
        released += b->size;
        releaseSegment(b);
      }
    }
    return released;
  }

  // The size handed out for `p` (rounded, possibly with an unsplit remainder), or 0 when p is not in use.
  size_t blockSize(void* p) const {
    auto it = active_.find(static_cast<char*>(p));
    return it == active_.end() ? 0 : it->second->size;
  }

  const BlockPoolStats& stats() const { return stats_; }

  void resetPeak() {
    stats_.peakAllocatedBytes = stats_.allocatedBytes;
    stats_.peakReservedBytes = stats_.reservedBytes;
  }

 private:
  struct Block {
    char* ptr;
    size_t size;
    Stream stream;
    bool small;
    bool free;
    Block* prev;  // neighbours within the same segment
    Block* next;
    uint64_t freedAt = 0;  // when it last became free (the pool's clock)
  };

  struct BySize {
    bool operator()(const Block* a, const Block* b) const {
      return std::tie(a->stream, a->size, a->ptr) < std::tie(b->stream, b->size, b->ptr);
    }
  };
  using FreeSet = std::set<Block*, BySize>;

  FreeSet& freeSet(bool small) { return small ? smallFree_ : largeFree_; }

  // A remainder worth a block of its own: any for small blocks; above 1 MiB for large ones below max_split_size
  // (smaller remainders stay attached, as PyTorch's, so that large segments are not cut into slivers).
  bool shouldSplit(const Block* b, size_t size) const {
    const size_t remaining = b->size - size;
    return b->small ? remaining >= kMinBlock : remaining > kSmallRequest && b->size < conf_.maxSplitSize;
  }

  // Best fit: the smallest cached block of this stream that holds `size`. A block of at least max_split_size serves
  // only a request of at least that size, and at most kOversizeSlack smaller than the block (both rules reject
  // every larger block too, so the smallest fit decides).
  Block* takeFree(size_t size, Stream stream, bool small) {
    auto& set = freeSet(small);
    Block key{nullptr, size, stream, small, true, nullptr, nullptr};
    auto it = set.lower_bound(&key);
    if (it == set.end() || (*it)->stream != stream) return nullptr;
    Block* b = *it;
    if (b->size >= conf_.maxSplitSize && (size < conf_.maxSplitSize || b->size >= size + kOversizeSlack)) return nullptr;
    set.erase(it);
    return b;
  }

  // Gives back whole free segments, the longest free first, until reserving `bytes` more stays within the
  // threshold's share of the device (or none is left).
  void collectGarbage(size_t bytes) {
    if (conf_.gcThreshold <= 0.0 || deviceBytes_ == 0) return;
    const auto limit = static_cast<int64_t>(conf_.gcThreshold * static_cast<double>(deviceBytes_));
    if (stats_.reservedBytes + static_cast<int64_t>(bytes) <= limit) return;
    std::vector<Block*> idle;
    for (bool small : {true, false})
      for (Block* b : freeSet(small))
        if (!b->prev && !b->next) idle.push_back(b);
    std::sort(idle.begin(), idle.end(), [](const Block* a, const Block* b) { return a->freedAt < b->freedAt; });
    for (Block* b : idle) {
      if (stats_.reservedBytes + static_cast<int64_t>(bytes) <= limit) break;
      freeSet(b->small).erase(b);
      releaseSegment(b);
      stats_.gcSegments++;
    }
  }

  void releaseSegment(Block* b) {
    free_(b->ptr, b->size, b->stream);
    stats_.reservedBytes -= static_cast<int64_t>(b->size);
    delete b;
  }

  Block* newSegment(size_t size, Stream stream, bool small) {
    const size_t bytes = segmentSize(size);
    collectGarbage(bytes);
    void* p = alloc_(bytes, stream);
    if (!p) {
      emptyCache();
      p = alloc_(bytes, stream);
      if (!p) return nullptr;
    }
    stats_.mallocs++;
    stats_.reservedBytes += static_cast<int64_t>(bytes);
    stats_.peakReservedBytes = std::max(stats_.peakReservedBytes, stats_.reservedBytes);
    return new Block{static_cast<char*>(p), bytes, stream, small, true, nullptr, nullptr};
  }

  // Cuts `b` to `size`; the rest becomes a free block right after it.
  void split(Block* b, size_t size) {
    auto* rest = new Block{b->ptr + size, b->size - size, b->stream, b->small, true, b, b->next};
    if (b->next) b->next->prev = rest;
    b->next = rest;
    b->size = size;
    freeSet(b->small).insert(rest);
  }

  // Joins free neighbours a (first) and b into a; a free neighbour leaves the free set while its size changes.
  Block* merge(Block* a, Block* b) {
    auto& set = freeSet(a->small);
    if (a->free) set.erase(a);
    if (b->free) set.erase(b);
    a->size += b->size;
    a->freedAt = std::max(a->freedAt, b->freedAt);
    a->next = b->next;
    if (b->next) b->next->prev = a;
    delete b;
    return a;
  }

  SegmentAlloc alloc_;
  SegmentFree free_;
  AllocConf conf_;
  size_t deviceBytes_ = 0;
  uint64_t clock_ = 0;
  FreeSet smallFree_, largeFree_;
  std::unordered_map<char*, Block*> active_;
  BlockPoolStats stats_;
};

}  // namespace ssql
