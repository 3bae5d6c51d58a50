// Argument checks and loop helpers shared by the CPU quantization ops (fake_quant.cc, observers.cc).
#pragma once

#include <omp.h>

#include <algorithm>
#include <string>

#include "../core/binding.h"
#include "../core/nn_args.h"

// Inner loops are compiled twice, for AVX2 and for the baseline ISA, and picked at load time (GCC target_clones).
// Both give the same bits: only IEEE mul/add/compare/select are used, and FMA is not enabled.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SSQL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SSQL_CLONES
#endif

namespace ssql {
namespace quant {

// x viewed as [outer, channels, inner] around the channel axis; per-tensor is channels = 1, inner = numel.
struct ChannelLayout {
  int64_t outer = 1, channels = 1, inner = 1;
  int64_t axis = -1;  // -1: per tensor
};

inline ChannelLayout perTensorLayout(const Tensor& x) {
  ChannelLayout l;
  l.inner = x.numel();
  return l;
}

inline ChannelLayout channelLayout(const char* op, const Tensor& x, int64_t axis) {
  int64_t nd = x.dim();
  int64_t k = axis < 0 ? axis + nd : axis;
  if (nd == 0 || k < 0 || k >= nd)
    throw RangeError(std::string(op) + "(): axis " + std::to_string(axis) + " out of range for shape " + shapeStr(x.shape));
  ChannelLayout l;
  l.axis = k;
  l.channels = x.shape[k];
  for (int64_t i = 0; i < k; ++i) l.outer *= x.shape[i];
  for (int64_t i = k + 1; i < nd; ++i) l.inner *= x.shape[i];
  return l;
}

// Argument i is either null (per tensor) or an integer axis.
inline ChannelLayout layoutArg(const Args& a, size_t i, const Tensor& x) {
  auto v = a.at(i, "axis");
  if (v.IsNull() || v.IsUndefined()) return perTensorLayout(x);
  return channelLayout(a.op, x, a.integer(i, "axis"));
}

inline TensorPtr i32(const Args& a, size_t i, const char* name) {
  auto t = a.tensor(i, name);
  requireDtype(a.op, name, *t, DType::I32);
  return t;
}

inline void requireNumel(const char* op, const char* name, const Tensor& t, int64_t n) {
  if (t.numel() != n)
    throw RangeError(std::string(op) + "(): '" + name + "' must hold " + std::to_string(n) + " value(s), got shape " +
                     shapeStr(t.shape));
}

// Optional int32 [1] flag: 0 makes the op the identity (PyTorch's fake_quant_enabled), read on the device side.
inline const int32_t* enabledArg(const Args& a, size_t i) {
  auto t = a.optTensor(i, "enabled");
  if (!t) return nullptr;
  requireDtype(a.op, "enabled", *t, DType::I32);
  requireNumel(a.op, "enabled", *t, 1);
  return t->data<int32_t>();
}

inline void quantRangeArgs(const Args& a, size_t i, float& qmin, float& qmax) {
  int64_t lo = a.integer(i, "quantMin"), hi = a.integer(i + 1, "quantMax");
  if (lo > hi) throw RangeError(std::string(a.op) + "(): quantMin " + std::to_string(lo) + " exceeds quantMax " + std::to_string(hi));
  if (lo < -(int64_t(1) << 24) || hi > (int64_t(1) << 24))
    throw RangeError(std::string(a.op) + "(): quantMin/quantMax must lie within +-2^24");
  qmin = static_cast<float>(lo);
  qmax = static_cast<float>(hi);
}

constexpr int64_t kMinParallel = 32768;  // elements below which threads cost more than they save

// f(begin, end) over [0, n) in chunks, in parallel when the work is large enough.
template <typename F>
inline void parallelChunks(int64_t n, int64_t chunk, F&& f) {
  int64_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1) if (n >= kMinParallel && chunks > 1)
  for (int64_t k = 0; k < chunks; ++k) f(k * chunk, std::min(n, (k + 1) * chunk));
}

// f(i) for i in [0, count) where each item touches `work` elements.
template <typename F>
inline void parallelItems(int64_t count, int64_t work, F&& f) {
#pragma omp parallel for schedule(dynamic, 1) if (count * work >= kMinParallel && count > 1)
  for (int64_t i = 0; i < count; ++i) f(i);
}

}  // namespace quant
}  // namespace ssql
