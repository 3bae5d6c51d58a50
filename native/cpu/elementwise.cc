// Elementwise float32 ops: broadcasting binary ops, scalar ops, unary ops and their backward helpers.
// No trapping math: GCC then if-converts the ReLU selects so that those loops vectorize (results unchanged).
#pragma GCC optimize("no-trapping-math")

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "../core/binding.h"
#include "../core/elementwise_args.h"
#include "extremes.h"
#include "output_fake_quant.h"
#include "parallel.h"
#include "simd.h"

using namespace ssql;

namespace {

template <typename F>
Napi::Value binary(const Args& a, F f) {
  parse::BinaryArgs r = parse::binaryArgs(a);
  const TensorPtr &x = r.a, &y = r.b, &out = r.out;
  const BroadcastPlan& plan = r.plan;
  const float* px = x->f32();
  const float* py = y->f32();
  float* po = out->f32();
  if (plan.kind == BroadcastPlan::Same) {
    parallelFor(out->numel(), [&](int64_t i) { po[i] = f(px[i], py[i]); });
  } else {
    forEachBroadcast(plan, [&](int64_t o, int64_t ia, int64_t ib) { po[o] = f(px[ia], py[ib]); });
  }
  return wrap(a.env(), out);
}

template <typename F>
Napi::Value unary(const Args& a, F f) {
  parse::UnaryArgs r = parse::unaryArgs(a);
  const TensorPtr &x = r.x, &out = r.out;
  const float* px = x->f32();
  float* po = out->f32();
  parallelFor(x->numel(), [&](int64_t i) { po[i] = f(px[i]); });
  return wrap(a.env(), out);
}

// Same-shape binary op without broadcasting (backward helpers).
template <typename F>
Napi::Value zip(const Args& a, F f) {
  parse::ZipArgs r = parse::zipArgs(a, "a", "b");
  const TensorPtr &x = r.a, &y = r.b, &out = r.out;
  const float* px = x->f32();
  const float* py = y->f32();
  float* po = out->f32();
  parallelFor(x->numel(), [&](int64_t i) { po[i] = f(px[i], py[i]); });
  return wrap(a.env(), out);
}

// y = max(a + b, 0) over [0, n), as add then relu round it.
SSQL_VECTORIZED void addReluRun(const float* a, const float* b, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float v = a[i] + b[i];
    y[i] = v > 0.0f ? v : 0.0f;
  }
}

}  // namespace

SSQL_OP(addRelu) {
  parse::AddReluArgs r = parse::addReluArgs(a);
  const TensorPtr &x = r.zip.a, &y = r.zip.b, &out = r.zip.out;
  const int64_t n = out->numel(), chunk = 16384, chunks = (n + chunk - 1) / chunk;
  const OutputFakeQuant f = outputFakeQuantArgs(a, 3);
  if (f.on && r.withRange) throw RangeError("addRelu(): withRange and a fused fake quant exclude each other");
  TensorPtr mask = f.on ? empty(DType::U8, out->shape) : nullptr;
  uint8_t* pm = mask ? mask->data<uint8_t>() : nullptr;
  TensorPtr range = r.withRange ? empty(DType::F32, {2}) : nullptr;
  std::vector<Extremes> part(range ? static_cast<size_t>(chunks) : 0);
  const float* px = x->f32();
  const float* py = y->f32();
  float* po = out->f32();
  // Chunks small enough that each one's range is scanned while it is still in cache.
  parallelForIf(n >= kParallelGrain && chunks > 1, chunks, [&](int64_t k) {
    int64_t b = k * chunk, e = std::min(n, b + chunk);
    if (f.on && !f.identity) {
      // Through a chunk-sized scratch that stays in cache (output_fake_quant.h).
      thread_local std::vector<float> scratch;
      scratch.resize(static_cast<size_t>(chunk));
      addReluRun(px + b, py + b, scratch.data(), e - b);
      fakeQuantEpilogue(scratch.data(), po + b, pm + b, e - b, f, true);
    } else {
      addReluRun(px + b, py + b, po + b, e - b);
      if (f.on)
        for (int64_t i = b; i < e; ++i) pm[i] = po[i] > 0.0f;  // fake quant off: the ReLU's mask alone
    }
    if (range) scanRun(po + b, e - b, part[static_cast<size_t>(k)]);
  });
  if (range) {
    Extremes all;
    for (const Extremes& e : part) merge(all, e);
    range->f32()[0] = all.min();
    range->f32()[1] = all.max();
  }
  return wrapMany(a.env(), {out, range, mask});
}

SSQL_OP(add) { return binary(a, [](float x, float y) { return x + y; }); }
SSQL_OP(sub) { return binary(a, [](float x, float y) { return x - y; }); }
SSQL_OP(mul) { return binary(a, [](float x, float y) { return x * y; }); }
SSQL_OP(div) { return binary(a, [](float x, float y) { return x / y; }); }
SSQL_OP(maximum) { return binary(a, [](float x, float y) { return std::isnan(x) || x > y ? x : y; }); }

SSQL_OP(addScalar) {
  float s = static_cast<float>(a.number(1, "s"));
  return unary(a, [s](float x) { return x + s; });
}
SSQL_OP(mulScalar) {
  float s = static_cast<float>(a.number(1, "s"));
  return unary(a, [s](float x) { return x * s; });
}
SSQL_OP(powScalar) {
  float s = static_cast<float>(a.number(1, "s"));
  if (s == 2.0f) return unary(a, [](float x) { return x * x; });
  return unary(a, [s](float x) { return std::pow(x, s); });
}
SSQL_OP(clampMin) {
  float lo = static_cast<float>(a.number(1, "min"));
  return unary(a, [lo](float x) { return std::isnan(x) ? x : (x < lo ? lo : x); });
}
SSQL_OP(neg) { return unary(a, [](float x) { return -x; }); }
SSQL_OP(exp) { return unary(a, [](float x) { return std::exp(x); }); }
SSQL_OP(log) { return unary(a, [](float x) { return std::log(x); }); }
SSQL_OP(sqrt) { return unary(a, [](float x) { return std::sqrt(x); }); }
SSQL_OP(abs) { return unary(a, [](float x) { return std::fabs(x); }); }
SSQL_OP(relu) { return unary(a, [](float x) { return x > 0.0f ? x : 0.0f; }); }
SSQL_OP(sigmoid) { return unary(a, [](float x) { return 1.0f / (1.0f + std::exp(-x)); }); }
SSQL_OP(floor) { return unary(a, [](float x) { return std::floor(x); }); }
SSQL_OP(clampMax) {
  float hi = static_cast<float>(a.number(1, "max"));
  return unary(a, [hi](float x) { return std::isnan(x) ? x : (x > hi ? hi : x); });
}
// sigmoidBackward(grad, output): grad * y * (1 - y).
SSQL_OP(sigmoidBackward) { return zip(a, [](float g, float y) { return g * y * (1.0f - y); }); }
// clampMaxBackward(grad, input, max): grad where the input was not clamped (x <= max, as PyTorch).
SSQL_OP(clampMaxBackward) {
  parse::ZipArgs r = parse::zipArgs(a, "grad", "input", "max");
  const TensorPtr &g = r.a, &x = r.b, &out = r.out;
  const float hi = r.scalar;
  const float* pg = g->f32();
  const float* px = x->f32();
  float* po = out->f32();
  parallelFor(g->numel(), [&](int64_t i) { po[i] = px[i] <= hi ? pg[i] : 0.0f; });
  return wrap(a.env(), out);
}

// reluBackward(grad, output): grad where the ReLU output is positive.
SSQL_OP(reluBackward) { return zip(a, [](float g, float y) { return y > 0.0f ? g : 0.0f; }); }
// clampMinBackward(grad, input, min): grad where the input was not clamped.
SSQL_OP(clampMinBackward) {
  parse::ZipArgs r = parse::zipArgs(a, "grad", "input", "min");
  const TensorPtr &g = r.a, &x = r.b, &out = r.out;
  const float lo = r.scalar;
  const float* pg = g->f32();
  const float* px = x->f32();
  float* po = out->f32();
  parallelFor(g->numel(), [&](int64_t i) { po[i] = px[i] >= lo ? pg[i] : 0.0f; });
  return wrap(a.env(), out);
}

// In place: dst += alpha * src (same shape). Used by gradient accumulation and optimizers.
SSQL_OP(addScaled_) {
  parse::AddScaledArgs r = parse::addScaledArgs(a);
  const TensorPtr &dst = r.dst, &src = r.src;
  const float alpha = r.alpha;
  float* pd = dst->f32();
  const float* ps = src->f32();
  parallelFor(dst->numel(), [&](int64_t i) { pd[i] += alpha * ps[i]; });
  return a.env().Undefined();
}

SSQL_OP(mulScalar_) {
  auto dst = f32Arg(a, 0, "dst");
  float s = static_cast<float>(a.number(1, "s"));
  float* pd = dst->f32();
  parallelFor(dst->numel(), [&](int64_t i) { pd[i] *= s; });
  return a.env().Undefined();
}

SSQL_OP(fill_) {
  auto dst = f32Arg(a, 0, "dst");
  float v = static_cast<float>(a.number(1, "value"));
  float* pd = dst->f32();
  parallelFor(dst->numel(), [&](int64_t i) { pd[i] = v; });
  return a.env().Undefined();
}

// expand(x, shape): materialise x broadcast to shape.
SSQL_OP(expand) {
  parse::ExpandArgs r = parse::expandArgs(a);
  const TensorPtr &x = r.x, &out = r.out;
  const BroadcastPlan& plan = r.plan;
  const float* px = x->f32();
  float* po = out->f32();
  if (plan.kind == BroadcastPlan::Same) {
    parallelFor(out->numel(), [&](int64_t i) { po[i] = px[i]; });
  } else {
    forEachBroadcast(plan, [&](int64_t o, int64_t, int64_t ib) { po[o] = px[ib]; });
  }
  return wrap(a.env(), out);
}

// absBackward(grad, input): grad * sign(input), zero at zero as in PyTorch.
SSQL_OP(absBackward) {
  return zip(a, [](float g, float x) { return x > 0.0f ? g : (x < 0.0f ? -g : 0.0f); });
}
