// log_softmax, mean cross-entropy with label smoothing (PyTorch's formula), and top-k correct counts on CUDA.
// Unlike the CPU backend, target values are not checked on the host (that would wait for the device): an
// out-of-range target makes the loss NaN and counts for no k.
#include <string>

#include "../core/binding.h"
#include "../core/loss_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

SSQL_OP(logSoftmax) {
  auto x = f32Arg(a, 0, "x", 2);
  auto y = empty(DType::F32, x->shape);
  cuda::logSoftmax(x->f32(), y->f32(), x->shape[0], x->shape[1], cuda::stream());
  return wrap(a.env(), y);
}

// gx = gy - exp(y) * sum(gy) per row.
SSQL_OP(logSoftmaxBackward) {
  auto gy = f32Arg(a, 0, "gy", 2);
  auto y = f32Arg(a, 1, "y", 2);
  requireSameShape(a.op, *gy, *y);
  auto gx = empty(DType::F32, y->shape);
  cuda::logSoftmaxBackward(gy->f32(), y->f32(), gx->f32(), y->shape[0], y->shape[1], cuda::stream());
  return wrap(a.env(), gx);
}

// loss = mean_n [ -(1 - ls) * lp[n, t_n] - ls / C * sum_c lp[n, c] ]
SSQL_OP(crossEntropy) {
  auto x = f32Arg(a, 0, "logits", 2);
  auto t = parse::targetArg(a, 1, *x);
  double ls = parse::labelSmoothingArg(a, 2);
  int64_t N = x->shape[0], C = x->shape[1];
  auto lp = empty(DType::F32, x->shape);
  auto loss = empty(DType::F32, {});
  auto rowLoss = empty(DType::F32, {N});
  cuda::crossEntropy(x->f32(), t->data<int32_t>(), lp->f32(), loss->f32(), rowLoss->f32(), N, C, static_cast<float>(ls),
                     cuda::stream());
  return wrapMany(a.env(), {loss, lp});
}

// gx[n, c] = gLoss / N * (softmax[n, c] - (1 - ls) * [c == t_n] - ls / C)
SSQL_OP(crossEntropyBackward) {
  auto g = parse::lossGradArg(a, 0);
  auto lp = f32Arg(a, 1, "logProbs", 2);
  auto t = parse::targetArg(a, 2, *lp);
  double ls = parse::labelSmoothingArg(a, 3);
  auto gx = empty(DType::F32, lp->shape);
  cuda::crossEntropyBackward(g->f32(), lp->f32(), t->data<int32_t>(), gx->f32(), lp->shape[0], lp->shape[1],
                             static_cast<float>(ls), cuda::stream());
  return wrap(a.env(), gx);
}

// A sample counts for k when fewer than k classes rank above its target; NaN ranks highest and ties go to the
// lower class index.
SSQL_OP(topkCorrect) {
  auto x = f32Arg(a, 0, "logits", 2);
  auto t = parse::targetArg(a, 1, *x);
  int64_t C = x->shape[1];
  auto ks = parse::topkArg(a, 2, C, cuda::kMaxTopK);
  cuda::TopKList list;
  list.n = static_cast<int>(ks.size());
  for (size_t j = 0; j < ks.size(); ++j) list.k[j] = static_cast<int32_t>(ks[j]);
  auto out = empty(DType::I32, {static_cast<int64_t>(ks.size())});
  cuda::topkCorrect(x->f32(), t->data<int32_t>(), out->data<int32_t>(), x->shape[0], C, list, cuda::stream());
  return wrap(a.env(), out);
}
