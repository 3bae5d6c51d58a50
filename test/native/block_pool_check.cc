// Checks native/core/block_pool.h (the CUDA caching allocator's bookkeeping) on the CPU: segments come from a fake
// device with a byte budget that records every call. Built and run by test/native/block_pool.test.ts; prints one line
// per check and "all passed", exits non-zero on the first failure.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "core/alloc_conf.h"
#include "core/block_pool.h"

using ssql::AllocConf;
using ssql::BlockPool;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * KiB;

// A device with `capacity` bytes: malloc'd host memory, every segment remembered with its size and stream.
struct FakeDevice {
  size_t capacity;
  size_t used = 0;
  int mallocs = 0, frees = 0, failed = 0;
  std::map<void*, std::pair<size_t, BlockPool::Stream>> segments;

  explicit FakeDevice(size_t cap) : capacity(cap) {}

  BlockPool pool() {
    return BlockPool(
        [this](size_t bytes, BlockPool::Stream s) -> void* {
          if (used + bytes > capacity) {
            ++failed;
            return nullptr;
          }
          void* p = std::malloc(bytes);
          used += bytes;
          ++mallocs;
          segments[p] = {bytes, s};
          return p;
        },
        [this](void* p, size_t bytes, BlockPool::Stream s) {
          auto it = segments.find(p);
          CHECK(it != segments.end());
          CHECK(it->second.first == bytes && it->second.second == s);
          segments.erase(it);
          used -= bytes;
          ++frees;
          std::free(p);
        });
  }
};

// Whether [p, p + n) lies inside one segment of the device.
bool inSegment(const FakeDevice& d, void* p, size_t n) {
  auto it = d.segments.upper_bound(p);
  if (it == d.segments.begin()) return false;
  --it;
  auto* base = static_cast<char*>(it->first);
  return static_cast<char*>(p) >= base && static_cast<char*>(p) + n <= base + it->second.first;
}

void rounding() {
  CHECK(BlockPool::roundSize(1) == 512);
  CHECK(BlockPool::roundSize(512) == 512);
  CHECK(BlockPool::roundSize(513) == 1024);
  // No power-of-two slack: 1 MiB + 1 B costs 1 MiB + 512 B (the old rounding gave 1.25 MiB).
  CHECK(BlockPool::roundSize(MiB + 1) == MiB + 512);
  CHECK(BlockPool::roundSize(300 * MiB + 3) == 300 * MiB + 512);
  CHECK(BlockPool::segmentSize(512) == 2 * MiB);
  CHECK(BlockPool::segmentSize(MiB) == 2 * MiB);
  CHECK(BlockPool::segmentSize(MiB + 512) == 20 * MiB);
  CHECK(BlockPool::segmentSize(11 * MiB + 512) == 12 * MiB);
  std::puts("rounding: 512 B granularity; 2 MiB / 20 MiB / own segments");
}

void smallShareASegment() {
  FakeDevice d(64 * MiB);
  BlockPool pool = d.pool();
  std::vector<char*> ps;
  for (int i = 0; i < 8; ++i) ps.push_back(static_cast<char*>(pool.allocate(1000, 1)));
  CHECK(d.mallocs == 1);
  CHECK(pool.stats().allocatedBytes == 8 * 1024);
  CHECK(pool.stats().reservedBytes == static_cast<int64_t>(2 * MiB));
  for (int i = 0; i < 8; ++i) {
    CHECK(inSegment(d, ps[i], 1024));
    for (int j = 0; j < i; ++j) CHECK(ps[i] + 1024 <= ps[j] || ps[j] + 1024 <= ps[i]);
  }
  for (char* p : ps) CHECK(pool.deallocate(p));
  CHECK(pool.stats().allocatedBytes == 0);
  CHECK(pool.emptyCache() == 2 * MiB);
  CHECK(d.frees == 1 && d.used == 0);
  std::puts("small requests share one 2 MiB segment and merge back into it");
}

void splitLargeCachedBlocks() {
  FakeDevice d(256 * MiB);
  BlockPool pool = d.pool();
  void* big = pool.allocate(64 * MiB, 1);
  CHECK(pool.deallocate(big));
  // A freed 64 MiB block serves a 16 MiB and a 40 MiB request without a new segment.
  void* a = pool.allocate(16 * MiB, 1);
  void* b = pool.allocate(40 * MiB, 1);
  CHECK(d.mallocs == 1);
  CHECK(a == big && static_cast<char*>(b) == static_cast<char*>(a) + 16 * MiB);
  CHECK(pool.stats().allocatedBytes == static_cast<int64_t>(56 * MiB));
  CHECK(pool.stats().cacheHits == 2);
  // Freed in either order, the pieces merge back into the whole segment.
  CHECK(pool.deallocate(a));
  CHECK(pool.deallocate(b));
  void* again = pool.allocate(64 * MiB, 1);
  CHECK(again == big && d.mallocs == 1);
  CHECK(pool.deallocate(again));
  // A remainder up to 1 MiB stays with the block (counted as allocated); a larger one is split off.
  void* near = pool.allocate(63 * MiB + 512 * KiB, 1);
  CHECK(pool.blockSize(near) == 64 * MiB);
  CHECK(pool.deallocate(near));
  void* cut = pool.allocate(62 * MiB, 1);
  CHECK(pool.blockSize(cut) == 62 * MiB);
  CHECK(pool.deallocate(cut));
  CHECK(pool.emptyCache() == 64 * MiB && d.used == 0);
  std::puts("large cached blocks are split for smaller requests and merged back when freed");
}

void bestFitAndStreams() {
  FakeDevice d(512 * MiB);
  BlockPool pool = d.pool();
  void* x = pool.allocate(100 * MiB, 1);
  void* y = pool.allocate(30 * MiB, 1);
  CHECK(pool.deallocate(x));
  CHECK(pool.deallocate(y));
  // Best fit: a 25 MiB request takes the 30 MiB block, not the 100 MiB one.
  void* z = pool.allocate(25 * MiB, 1);
  CHECK(z == y);
  // Another stream never gets this stream's cached blocks (its work is not ordered after theirs).
  void* w = pool.allocate(25 * MiB, 2);
  CHECK(w != x && d.mallocs == 3);
  CHECK(pool.deallocate(z));
  CHECK(pool.deallocate(w));
  CHECK(!pool.deallocate(w));
  int before = d.frees;
  CHECK(pool.emptyCache() == 100 * MiB + 30 * MiB + 26 * MiB);
  CHECK(d.frees == before + 3 && d.used == 0);
  std::puts("best fit within a stream; streams never share cached blocks");
}

void emptyCacheKeepsSegmentsInUse() {
  FakeDevice d(128 * MiB);
  BlockPool pool = d.pool();
  void* a = pool.allocate(4 * MiB, 1);  // a 20 MiB segment
  void* b = pool.allocate(4 * MiB, 1);  // the same segment
  void* c = pool.allocate(30 * MiB, 1);
  CHECK(d.mallocs == 2);
  CHECK(pool.deallocate(b));
  CHECK(pool.deallocate(c));
  CHECK(pool.emptyCache() == 30 * MiB);
  CHECK(pool.stats().reservedBytes == static_cast<int64_t>(20 * MiB));
  CHECK(pool.deallocate(a));
  CHECK(pool.emptyCache() == 20 * MiB && d.used == 0);
  std::puts("emptyCache gives back whole free segments only");
}

void outOfMemory() {
  FakeDevice d(100 * MiB);
  BlockPool pool = d.pool();
  void* a = pool.allocate(60 * MiB, 1);
  CHECK(pool.deallocate(a));
  // 70 MiB does not fit beside the cached 60 MiB: the cache is given back and the request retried.
  void* b = pool.allocate(70 * MiB, 2);
  CHECK(b != nullptr && d.failed == 1 && d.frees == 1);
  // Beyond the device: nullptr, and the pool is unchanged.
  auto before = pool.stats();
  CHECK(pool.allocate(200 * MiB, 2) == nullptr);
  CHECK(pool.stats().allocatedBytes == before.allocatedBytes && pool.stats().reservedBytes == before.reservedBytes);
  CHECK(pool.deallocate(b));
  std::puts("out of memory: the cache is emptied and the request retried once, then nullptr");
}

void peaks() {
  FakeDevice d(256 * MiB);
  BlockPool pool = d.pool();
  void* a = pool.allocate(10 * MiB, 1);
  void* b = pool.allocate(20 * MiB, 1);
  CHECK(pool.deallocate(a));
  CHECK(pool.stats().peakAllocatedBytes == static_cast<int64_t>(30 * MiB));
  pool.resetPeak();
  CHECK(pool.stats().peakAllocatedBytes == static_cast<int64_t>(20 * MiB));
  CHECK(pool.deallocate(b));
  std::puts("peak allocated bytes and their reset");
}

// Random sizes from 1 B to 48 MiB on two streams: live blocks never overlap and keep their contents, the counters
// always equal the sums over live blocks and segments, and everything goes back at the end; with and without options.
void randomTraffic(const char* conf) {
  FakeDevice d(size_t{2} << 30);
  BlockPool pool = d.pool();
  pool.configure(ssql::parseAllocConf(conf), d.capacity);
  std::mt19937 rng(7);
  struct Live {
    char* p;
    size_t n;
    unsigned char tag;
  };
  std::vector<Live> live;
  for (int step = 0; step < 4000; ++step) {
    if (live.size() < 8 || (live.size() < 40 && rng() % 2)) {
      size_t n = rng() % 4 == 0 ? 1 + rng() % (48 * MiB) : 1 + rng() % (64 * KiB);
      auto s = static_cast<BlockPool::Stream>(1 + rng() % 2);
      auto* p = static_cast<char*>(pool.allocate(n, s));
      CHECK(p != nullptr && inSegment(d, p, n));
      auto tag = static_cast<unsigned char>(rng());
      std::memset(p, tag, std::min<size_t>(n, 4096));
      std::memset(p + n - std::min<size_t>(n, 4096), tag, std::min<size_t>(n, 4096));
      live.push_back({p, n, tag});
    } else {
      size_t i = rng() % live.size();
      Live l = live[i];
      for (size_t k : {size_t{0}, l.n / 2 < 4096 ? size_t{0} : size_t{4095}, l.n - 1}) CHECK(static_cast<unsigned char>(l.p[k]) == l.tag);
      CHECK(pool.deallocate(l.p));
      live[i] = live.back();
      live.pop_back();
    }
    int64_t sum = 0;
    for (const Live& l : live) sum += static_cast<int64_t>(pool.blockSize(l.p));
    CHECK(pool.stats().allocatedBytes == sum);
    size_t reserved = 0;
    for (auto& [p, seg] : d.segments) reserved += seg.first;
    CHECK(pool.stats().reservedBytes == static_cast<int64_t>(reserved));
  }
  std::vector<std::pair<char*, char*>> ranges;
  for (const Live& l : live) ranges.push_back({l.p, l.p + pool.blockSize(l.p)});
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) CHECK(ranges[i - 1].second <= ranges[i].first);
  for (const Live& l : live) CHECK(pool.deallocate(l.p));
  CHECK(pool.stats().allocatedBytes == 0);
  pool.emptyCache();
  CHECK(d.used == 0 && d.segments.empty() && d.mallocs == d.frees);
  std::printf("random traffic ('%s'): %d segments obtained, %lld cache hits, %lld collected\n", conf, d.mallocs,
              static_cast<long long>(pool.stats().cacheHits), static_cast<long long>(pool.stats().gcSegments));
}

// The error's message for `text`, or "" when it parses.
std::string confError(const std::string& text) {
  try {
    ssql::parseAllocConf(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void allocConf() {
  AllocConf none = ssql::parseAllocConf("");
  CHECK(none.maxSplitSize == std::numeric_limits<size_t>::max() && none.gcThreshold == 0.0);
  AllocConf both = ssql::parseAllocConf(" max_split_size_mb:128 , garbage_collection_threshold:0.8,");
  CHECK(both.maxSplitSize == 128 * MiB && both.gcThreshold == 0.8);
  CHECK(contains(confError("max_split_size_mb:20"), "max_split_size_mb '20' must be a number of MiB above 20"));
  CHECK(contains(confError("max_split_size_mb:lots"), "max_split_size_mb 'lots'"));
  CHECK(contains(confError("garbage_collection_threshold:1"), "must lie strictly between 0 and 1"));
  CHECK(contains(confError("garbage_collection_threshold:0"), "garbage_collection_threshold '0'"));
  CHECK(contains(confError("expandable_segments:True"), "SSQL_CUDA_ALLOC_CONF: unknown key 'expandable_segments'"));
  CHECK(contains(confError("expandable_segments:True"), "allowed: max_split_size_mb"));
  CHECK(contains(confError("max_split_size_mb"), "'max_split_size_mb' is not key:value"));
  std::puts("SSQL_CUDA_ALLOC_CONF: PyTorch's syntax; bad keys and values name themselves and the allowed ones");
}

void maxSplitSize() {
  FakeDevice d(512 * MiB);
  BlockPool pool = d.pool();
  pool.configure(ssql::parseAllocConf("max_split_size_mb:64"), d.capacity);
  void* big = pool.allocate(100 * MiB, 1);
  CHECK(pool.deallocate(big));
  // A smaller request never cuts into the cached 100 MiB block: it gets a segment of its own.
  void* small = pool.allocate(30 * MiB, 1);
  CHECK(small != big && d.mallocs == 2);
  CHECK(pool.deallocate(small));
  // A request above max_split_size takes the block whole when it is at most 20 MiB larger...
  void* whole = pool.allocate(90 * MiB, 1);
  CHECK(whole == big && pool.blockSize(whole) == 100 * MiB && d.mallocs == 2);
  CHECK(pool.deallocate(whole));
  // ...and not when it is larger still.
  void* other = pool.allocate(70 * MiB, 1);
  CHECK(other != big && d.mallocs == 3);
  CHECK(pool.deallocate(other));
  // Blocks below max_split_size are still split.
  void* part = pool.allocate(10 * MiB, 1);
  CHECK(part == small && pool.blockSize(part) == 10 * MiB);
  CHECK(pool.deallocate(part));
  pool.emptyCache();
  CHECK(d.used == 0);
  std::puts("max_split_size: large cached blocks stay whole and serve only requests near their size");
}

void garbageCollection() {
  FakeDevice d(100 * MiB);
  BlockPool pool = d.pool();
  pool.configure(ssql::parseAllocConf("garbage_collection_threshold:0.5"), d.capacity);
  void* a = pool.allocate(30 * MiB, 1);
  void* b = pool.allocate(12 * MiB, 1);
  CHECK(pool.deallocate(a));
  CHECK(pool.deallocate(b));
  // 42 MiB cached; 16 MiB more on another stream would pass 50 MiB: the longest-free segment (a) goes first, which
  // is enough, so b stays cached.
  void* c = pool.allocate(16 * MiB, 2);
  CHECK(c != nullptr && d.frees == 1 && d.segments.count(a) == 0 && d.segments.count(b) == 1);
  CHECK(pool.stats().gcSegments == 1 && pool.stats().reservedBytes == static_cast<int64_t>(28 * MiB));
  // Segments in use are never collected: 40 MiB more frees b, and the in-use c stays.
  void* e = pool.allocate(40 * MiB, 2);
  CHECK(e != nullptr && d.segments.count(b) == 0 && d.segments.count(c) == 1 && pool.stats().gcSegments == 2);
  CHECK(pool.deallocate(c));
  CHECK(pool.deallocate(e));
  // Without the option the cache is kept until memory runs out.
  FakeDevice d2(100 * MiB);
  BlockPool keep = d2.pool();
  void* f = keep.allocate(30 * MiB, 1);
  CHECK(keep.deallocate(f));
  void* g = keep.allocate(40 * MiB, 2);
  CHECK(d2.frees == 0 && keep.stats().gcSegments == 0);
  CHECK(keep.deallocate(g));
  std::puts("garbage_collection_threshold: the oldest free segments go back before the pool passes the threshold");
}

}  // namespace

int main() {
  allocConf();
  maxSplitSize();
  garbageCollection();
  rounding();
  smallShareASegment();
  splitLargeCachedBlocks();
  bestFitAndStreams();
  emptyCacheKeepsSegmentsInUse();
  outOfMemory();
  peaks();
  randomTraffic("");
  randomTraffic("max_split_size_mb:32,garbage_collection_threshold:0.05");
  std::printf("all passed (%d checks)\n", checks);
  return 0;
}
