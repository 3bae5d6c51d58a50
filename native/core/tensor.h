// Backend-independent tensor: dtype, shape and a contiguous storage owned by a backend allocator.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ssql {

enum class DType : int { F32 = 0, U8 = 1, I32 = 2 };

inline size_t dtypeSize(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::U8: return 1;
    case DType::I32: return 4;
  }
  return 0;
}

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::U8: return "uint8";
    case DType::I32: return "int32";
  }
  return "?";
}

// Errors thrown by op bodies; the binding layer turns them into JavaScript TypeError / RangeError / Error.
struct TypeError : std::runtime_error { using std::runtime_error::runtime_error; };
struct RangeError : std::runtime_error { using std::runtime_error::runtime_error; };

using Shape = std::vector<int64_t>;

inline int64_t numelOf(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

inline std::string shapeStr(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

struct Allocator {
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) = 0;
};

// Live storage accounting, so tests can assert that training steps do not leak, and their peak (as
// torch.cuda.max_memory_allocated), so tests can bound a step's memory.
struct MemoryCounters {
  std::atomic<int64_t> storages{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> peakBytes{0};

  void add(int64_t n) {
    int64_t now = bytes.fetch_add(n) + n;
    int64_t peak = peakBytes.load();
    while (now > peak && !peakBytes.compare_exchange_weak(peak, now)) {
    }
  }
  void resetPeak() { peakBytes.store(bytes.load()); }
};
inline MemoryCounters& memoryCounters() {
  static MemoryCounters c;
  return c;
}

struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Allocator* allocator = nullptr;
  Storage(Allocator* a, size_t n) : bytes(n), allocator(a) {
    data = n ? a->allocate(n) : nullptr;
    memoryCounters().storages++;
    memoryCounters().add(static_cast<int64_t>(n));
  }
  ~Storage() {
    if (data) allocator->deallocate(data, bytes);
    memoryCounters().storages--;
    memoryCounters().bytes -= static_cast<int64_t>(bytes);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  std::shared_ptr<Storage> storage;

  int64_t numel() const { return numelOf(shape); }
  int64_t dim() const { return static_cast<int64_t>(shape.size()); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtypeSize(dtype); }
  int64_t size(int64_t d) const { return shape.at(static_cast<size_t>(d < 0 ? d + dim() : d)); }
  template <typename T> T* data() const { return static_cast<T*>(storage->data); }
  float* f32() const { return data<float>(); }
};

using TensorPtr = std::shared_ptr<Tensor>;

inline TensorPtr makeTensor(Allocator* a, DType dt, const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw RangeError("negative dimension in shape " + shapeStr(shape));
    // Reject sizes whose element or byte count would overflow (they would wrap to a small allocation).
    if (d && n > (int64_t(1) << 56) / d) throw RangeError("shape " + shapeStr(shape) + " is too large");
    n *= d;
  }
  auto t = std::make_shared<Tensor>();
  t->dtype = dt;
  t->shape = shape;
  t->storage = std::make_shared<Storage>(a, static_cast<size_t>(numelOf(shape)) * dtypeSize(dt));
  return t;
}

// A tensor sharing storage with `src` under another shape of the same element count.
inline TensorPtr viewAs(const TensorPtr& src, const Shape& shape) {
  if (numelOf(shape) != src->numel())
    throw RangeError("cannot reshape tensor of shape " + shapeStr(src->shape) + " to " + shapeStr(shape));
  auto t = std::make_shared<Tensor>(*src);
  t->shape = shape;
  return t;
}

}  // namespace ssql
