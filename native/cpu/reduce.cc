// Reductions over dimensions: sum, mean, and max/min with indices along one dimension.
#include <cmath>
#include <limits>
#include <string>

#include "../core/binding.h"
#include "../core/reduce_args.h"
#include "parallel.h"

using namespace ssql;

namespace {

struct ReducePlan {
  Shape out;             // with keepdim applied
  int64_t outer, mid, inner;  // collapsed (outer reduced?) layout, see below
  bool general = false;
  std::vector<bool> reduced;
};

// Sum over masked dims, accumulated in double. Fast path when the layout collapses to
// [reduced A][kept B][reduced C] (covers all, leading, trailing and per-channel NCHW reductions).
void sumReduce(const float* x, const Shape& s, const std::vector<bool>& mask, double* acc, int64_t outN) {
  size_t nd = s.size();
  int64_t A = 1, B = 1, C = 1;
  int phase = 0;  // 0: leading reduced, 1: kept, 2: trailing reduced, 3: pattern broken
  for (size_t i = 0; i < nd; ++i) {
    if (s[i] == 1) continue;
    bool r = mask[i];
    if (phase == 0) { if (r) A *= s[i]; else { phase = 1; B *= s[i]; } }
    else if (phase == 1) { if (r) { phase = 2; C *= s[i]; } else B *= s[i]; }
    else if (phase == 2) { if (r) C *= s[i]; else { phase = 3; break; } }
  }
  for (int64_t o = 0; o < outN; ++o) acc[o] = 0.0;
  if (phase != 3) {
    parallelForIf(A * B * C >= 16384 && B > 1, B, [&](int64_t b) {
      double t = 0.0;
      for (int64_t a = 0; a < A; ++a) {
        const float* p = x + (a * B + b) * C;
        double u = 0.0;
        for (int64_t c = 0; c < C; ++c) u += p[c];
        t += u;
      }
      acc[b] = t;
    });
    return;
  }
  // General layout: map every input index to its output index.
  auto strides = std::vector<int64_t>(nd, 0);
  int64_t st = 1;
  for (int64_t i = static_cast<int64_t>(nd) - 1; i >= 0; --i) {
    if (!mask[i]) { strides[i] = st; st *= s[i]; }
  }
  int64_t n = numelOf(s);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, o = 0;
    for (int64_t d = static_cast<int64_t>(nd) - 1; d >= 0; --d) {
      int64_t idx = rem % s[d];
      rem /= s[d];
      o += idx * strides[d];
    }
    acc[o] += x[i];
  }
}

Napi::Value sumOrMean(const Args& a, bool mean) {
  parse::SumArgs r = parse::sumArgs(a, mean);
  const TensorPtr &x = r.x, &out = r.out;
  int64_t outN = out->numel();
  std::vector<double> acc(static_cast<size_t>(outN));
  sumReduce(x->f32(), x->shape, r.reduced, acc.data(), outN);
  float* po = out->f32();
  for (int64_t o = 0; o < outN; ++o) po[o] = static_cast<float>(acc[o] * r.scale);
  return wrap(a.env(), out);
}

Napi::Value argExtreme(const Args& a, bool isMax) {
  parse::ArgExtremeArgs r = parse::argExtremeArgs(a);
  const TensorPtr &x = r.x, &vals = r.values, &idxs = r.indices;
  const int64_t outer = r.outer, len = r.len, inner = r.inner;
  const float* px = x->f32();
  float* pv = vals->f32();
  int32_t* pi = idxs->data<int32_t>();
  parallelFor(outer * inner, [&](int64_t oi) {
    int64_t o = oi / inner, in = oi % inner;
    const float* p = px + o * len * inner + in;
    float best = p[0];
    int32_t bi = 0;
    for (int64_t j = 1; j < len; ++j) {
      float v = p[j * inner];
      if (std::isnan(best)) break;  // NaN propagates, as in PyTorch
      if (std::isnan(v) || (isMax ? v > best : v < best)) { best = v; bi = static_cast<int32_t>(j); }
    }
    pv[oi] = best;
    pi[oi] = bi;
  });
  return wrapMany(a.env(), {vals, idxs});
}

}  // namespace

SSQL_OP(sum) { return sumOrMean(a, false); }
SSQL_OP(mean) { return sumOrMean(a, true); }
SSQL_OP(maxDim) { return argExtreme(a, true); }
SSQL_OP(minDim) { return argExtreme(a, false); }

// Scatter the gradient of a max/min along `dim` back to the input positions given by `indices`.
SSQL_OP(indexGradBackward) {
  auto g = a.tensor(0, "grad");
  auto idx = a.tensor(1, "indices");
  Shape inShape = a.ints(2, "inputShape");
  int64_t d = a.integer(3, "dim");
  requireDtype(a.op, "grad", *g, DType::F32);
  requireDtype(a.op, "indices", *idx, DType::I32);
  const auto [outer, len, inner] = parse::indexGradShape(*g, *idx, inShape, d);
  auto out = empty(DType::F32, inShape);
  float* po = out->f32();
  const float* pg = g->f32();
  const int32_t* pi = idx->data<int32_t>();
  parallelFor(out->numel(), [&](int64_t i) { po[i] = 0.0f; });
  for (int64_t oi = 0; oi < outer * inner; ++oi) {
    int64_t o = oi / inner, in = oi % inner;
    int32_t j = pi[oi];
    if (j < 0 || j >= len) throw RangeError("indexGradBackward(): index out of range");
    po[(o * len + j) * inner + in] = pg[oi];
  }
  return wrap(a.env(), out);
}
