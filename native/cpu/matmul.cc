// Matrix products through oneDNN's sgemm (row-major, transposes folded into the call, no copies).
#include <cstring>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "onednn.h"
#include "parallel.h"

using namespace ssql;

namespace {

// C[M, N] = op(A) @ op(B) + beta * C, with A and B stored row-major as given.
void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float beta, float* C) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (beta == 0.0f) std::memset(C, 0, static_cast<size_t>(M * N) * sizeof(float));
    return;
  }
  dnnl_status_t st = dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', M, N, K, 1.0f, A, lda > 0 ? lda : 1, B,
                                ldb > 0 ? ldb : 1, beta, C, N);
  if (st != dnnl_success) throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(st));
}

}  // namespace

SSQL_OP(matmul) {
  auto x = f32Arg(a, 0, "a", 2);
  auto y = f32Arg(a, 1, "b", 2);
  bool ta = a.boolean(2, "transA");
  bool tb = a.boolean(3, "transB");
  int64_t M = ta ? x->shape[1] : x->shape[0], K = ta ? x->shape[0] : x->shape[1];
  int64_t Kb = tb ? y->shape[1] : y->shape[0], N = tb ? y->shape[0] : y->shape[1];
  if (K != Kb)
    throw RangeError("matmul(): inner dimensions differ: op(a) is [" + std::to_string(M) + ", " + std::to_string(K) +
                     "], op(b) is [" + std::to_string(Kb) + ", " + std::to_string(N) + "]");
  auto out = empty(DType::F32, {M, N});
  sgemm(ta, tb, M, N, K, x->f32(), x->shape[1], y->f32(), y->shape[1], 0.0f, out->f32());
  return wrap(a.env(), out);
}

SSQL_OP(linear) {
  auto x = f32Arg(a, 0, "x", 2);
  auto w = f32Arg(a, 1, "w", 2);
  auto b = a.optTensor(2, "bias");
  int64_t N = x->shape[0], in = x->shape[1], outF = w->shape[0];
  if (w->shape[1] != in)
    throw RangeError("linear(): input " + shapeStr(x->shape) + " does not match weight " + shapeStr(w->shape));
  if (b) {
    requireDtype(a.op, "bias", *b, DType::F32);
    requireShape(a.op, "bias", *b, {outF});
  }
  auto out = empty(DType::F32, {N, outF});
  float* po = out->f32();
  if (b) {
    const float* pb = b->f32();
    parallelFor(N, [&](int64_t n) { std::memcpy(po + n * outF, pb, static_cast<size_t>(outF) * sizeof(float)); });
  }
  sgemm(false, true, N, outF, in, x->f32(), in, w->f32(), in, b ? 1.0f : 0.0f, po);
  return wrap(a.env(), out);
}
