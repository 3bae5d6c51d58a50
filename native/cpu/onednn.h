// oneDNN glue: the CPU engine and stream, a cache of primitives keyed by shapes (so each is created once), and
// operands that reorder between the PyTorch layouts of our tensors and the layouts a primitive prefers.
#pragma once

#include <omp.h>

#include <dnnl.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../core/binding.h"

namespace ssql::onednn {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

inline dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

inline dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

inline memory::dims dims(const Shape& s) { return memory::dims(s.begin(), s.end()); }

inline memory::desc plainDesc(const memory::dims& d, tag t) { return memory::desc(d, memory::data_type::f32, t); }
inline memory::desc anyDesc(const memory::dims& d) { return memory::desc(d, memory::data_type::f32, tag::any); }

// Cache key: op name, the integers that define the problem, and the thread count (oneDNN's JIT kernels split work
// for the thread count they were created with).
inline std::string cacheKey(const char* op, std::initializer_list<int64_t> ints) {
  std::string k(op);
  for (int64_t v : ints) k += ',' + std::to_string(v);
  return k + ";t" + std::to_string(omp_get_max_threads());
}

template <typename Plan>
class PlanCache {
 public:
  template <typename Make>
  std::shared_ptr<Plan> get(const std::string& key, Make make) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    auto p = std::make_shared<Plan>(make());
    plans_.emplace(key, p);
    return p;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Plan>> plans_;
};

// One tensor argument of a primitive: the layout of our tensor (`user`) and the one the primitive runs on (`inner`).
// When they differ, a reorder primitive (created once, with the plan) converts on the way in or out.
struct Operand {
  memory::desc user, inner;
  bool reordered = false;
  dnnl::reorder toInner, toUser;

  Operand() = default;
  Operand(const memory::desc& u, const memory::desc& i, bool isOutput) : user(u), inner(i), reordered(u != i) {
    if (!reordered) return;
    auto& e = engine();
    if (isOutput)
      toUser = dnnl::reorder(dnnl::reorder::primitive_desc(e, inner, e, user));
    else
      toInner = dnnl::reorder(dnnl::reorder::primitive_desc(e, user, e, inner));
  }
};

// Memory for one call: wraps the tensor's storage, or a temporary in the inner layout (freed with this object).
struct Bound {
  memory userMem, innerMem;
  TensorPtr scratch;
};

// Wraps `data` in the operand's user layout and, when the primitive runs on another layout, allocates the inner one.
inline Bound bind(const Operand& op, void* data) {
  Bound b;
  b.userMem = memory(op.user, engine(), data);
  if (!op.reordered) {
    b.innerMem = b.userMem;
    return b;
  }
  b.scratch = empty(DType::U8, {static_cast<int64_t>(op.inner.get_size())});
  b.innerMem = memory(op.inner, engine(), b.scratch->storage->data);
  return b;
}

inline Bound bindInput(const Operand& op, void* data) {
  Bound b = bind(op, data);
  if (op.reordered) op.toInner.execute(stream(), b.userMem, b.innerMem);
  return b;
}

inline Bound bindOutput(const Operand& op, void* data) { return bind(op, data); }

inline void finishOutput(const Operand& op, Bound& b) {
  if (op.reordered) op.toUser.execute(stream(), b.innerMem, b.userMem);
}

}  // namespace ssql::onednn
