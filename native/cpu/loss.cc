// log_softmax, mean cross-entropy with label smoothing (PyTorch's formula), and top-k correct counts.
#include <cmath>
#include <limits>
#include <string>

#include "../core/binding.h"
#include "../core/loss_args.h"
#include "parallel.h"

using namespace ssql;

namespace {

// The shared checks, and every target must name a class (the values are on the host here).
TensorPtr targetsFor(const Args& a, size_t i, const Tensor& logits) {
  auto t = parse::targetArg(a, i, logits);
  const int32_t* p = t->data<int32_t>();
  int64_t C = logits.shape[1];
  for (int64_t n = 0; n < t->numel(); ++n)
    if (p[n] < 0 || p[n] >= C)
      throw RangeError(std::string(a.op) + "(): target " + std::to_string(p[n]) + " at " + std::to_string(n) +
                       " is out of range for " + std::to_string(C) + " classes");
  return t;
}

void logSoftmaxRows(const float* x, float* y, int64_t N, int64_t C) {
  parallelFor(N, [&](int64_t n) {
    const float* xr = x + n * C;
    float* yr = y + n * C;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < C; ++c) m = std::max(m, xr[c]);
    double s = 0.0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(static_cast<double>(xr[c]) - m);
    float lse = static_cast<float>(m + std::log(s));
    for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] - lse;
  });
}

}  // namespace

SSQL_OP(logSoftmax) {
  auto x = f32Arg(a, 0, "x", 2);
  auto y = empty(DType::F32, x->shape);
  logSoftmaxRows(x->f32(), y->f32(), x->shape[0], x->shape[1]);
  return wrap(a.env(), y);
}

// gx = gy - exp(y) * sum(gy) per row.
SSQL_OP(logSoftmaxBackward) {
  auto gy = f32Arg(a, 0, "gy", 2);
  auto y = f32Arg(a, 1, "y", 2);
  requireSameShape(a.op, *gy, *y);
  int64_t C = y->shape[1];
  auto gx = empty(DType::F32, y->shape);
  const float* pg = gy->f32();
  const float* py = y->f32();
  float* po = gx->f32();
  parallelFor(y->shape[0], [&](int64_t n) {
    double s = 0.0;
    for (int64_t c = 0; c < C; ++c) s += pg[n * C + c];
    float sf = static_cast<float>(s);
    for (int64_t c = 0; c < C; ++c) po[n * C + c] = pg[n * C + c] - std::exp(py[n * C + c]) * sf;
  });
  return wrap(a.env(), gx);
}

// loss = mean_n [ -(1 - ls) * lp[n, t_n] - ls / C * sum_c lp[n, c] ]
SSQL_OP(crossEntropy) {
  auto x = f32Arg(a, 0, "logits", 2);
  auto t = targetsFor(a, 1, *x);
  double ls = parse::labelSmoothingArg(a, 2);
  int64_t N = x->shape[0], C = x->shape[1];
  auto lp = empty(DType::F32, x->shape);
  logSoftmaxRows(x->f32(), lp->f32(), N, C);
  const float* p = lp->f32();
  const int32_t* pt = t->data<int32_t>();
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    double row = 0.0;
    if (ls > 0.0)
      for (int64_t c = 0; c < C; ++c) row += p[n * C + c];
    total += -(1.0 - ls) * p[n * C + pt[n]] - ls / static_cast<double>(C) * row;
  }
  auto loss = empty(DType::F32, {});
  loss->f32()[0] = N ? static_cast<float>(total / static_cast<double>(N)) : std::numeric_limits<float>::quiet_NaN();
  return wrapMany(a.env(), {loss, lp});
}

// gx[n, c] = gLoss / N * (softmax[n, c] - (1 - ls) * [c == t_n] - ls / C)
SSQL_OP(crossEntropyBackward) {
  auto g = parse::lossGradArg(a, 0);
  auto lp = f32Arg(a, 1, "logProbs", 2);
  auto t = targetsFor(a, 2, *lp);
  double ls = parse::labelSmoothingArg(a, 3);
  int64_t N = lp->shape[0], C = lp->shape[1];
  auto gx = empty(DType::F32, lp->shape);
  float scale = N ? g->f32()[0] / static_cast<float>(N) : 0.0f;
  float onTarget = static_cast<float>(1.0 - ls), uniform = static_cast<float>(ls / static_cast<double>(C));
  const float* p = lp->f32();
  const int32_t* pt = t->data<int32_t>();
  float* po = gx->f32();
  parallelFor(N, [&](int64_t n) {
    for (int64_t c = 0; c < C; ++c) po[n * C + c] = scale * (std::exp(p[n * C + c]) - uniform);
    po[n * C + pt[n]] -= scale * onTarget;
  });
  return wrap(a.env(), gx);
}

// A sample counts for k when fewer than k classes rank above its target; NaN ranks highest and ties go to the
// lower class index.
SSQL_OP(topkCorrect) {
  auto x = f32Arg(a, 0, "logits", 2);
  auto t = targetsFor(a, 1, *x);
  int64_t N = x->shape[0], C = x->shape[1];
  auto ks = parse::topkArg(a, 2, C);
  const float* p = x->f32();
  const int32_t* pt = t->data<int32_t>();
  auto out = empty(DType::I32, {static_cast<int64_t>(ks.size())});
  int32_t* po = out->data<int32_t>();
  for (size_t j = 0; j < ks.size(); ++j) po[j] = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* r = p + n * C;
    float v = r[pt[n]];
    bool vn = std::isnan(v);
    int64_t rank = 0;
    for (int64_t c = 0; c < C; ++c) {
      bool cn = std::isnan(r[c]);
      bool above = vn ? (cn && c < pt[n]) : (cn || r[c] > v || (r[c] == v && c < pt[n]));
      rank += above;
    }
    for (size_t j = 0; j < ks.size(); ++j) po[j] += rank < ks[j];
  }
  return wrap(a.env(), out);
}
