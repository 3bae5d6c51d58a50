// Matrix products through cuBLAS SGEMM. cuBLAS is column-major, so row-major C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T: the row-major buffers read as column-major are already the transposes, no copies.
#include <climits>
#include <string>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "kernels.h"
#include "libs.h"
#include "runtime.h"

using namespace ssql;

namespace {

TensorPtr matrix(const Args& a, size_t i, const char* name) {
  auto t = f32Arg(a, i, name);
  requireDim(a.op, name, *t, 2);
  return t;
}

int blasInt(int64_t v, const char* op) {
  if (v > INT_MAX) throw RangeError(std::string(op) + "(): dimension " + std::to_string(v) + " exceeds cuBLAS's int range");
  return static_cast<int>(v);
}

// C[M, N] = op(A) @ op(B) + beta * C with A, B, C row-major; lda/ldb are the stored row lengths.
void sgemm(const char* op, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (beta == 0.0f) cuda::fillF32(C, 0.0f, M * N, cuda::stream());
    return;
  }
  const float alpha = 1.0f;
  SSQL_CUBLAS(cublasSgemm(cuda::cublas(), transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
                          blasInt(N, op), blasInt(M, op), blasInt(K, op), &alpha, B, blasInt(ldb, op), A,
                          blasInt(lda, op), &beta, C, blasInt(N, op)));
}

}  // namespace

SSQL_OP(matmul) {
  auto x = matrix(a, 0, "a");
  auto y = matrix(a, 1, "b");
  bool ta = a.boolean(2, "transA");
  bool tb = a.boolean(3, "transB");
  int64_t M = ta ? x->shape[1] : x->shape[0], K = ta ? x->shape[0] : x->shape[1];
  int64_t Kb = tb ? y->shape[1] : y->shape[0], N = tb ? y->shape[0] : y->shape[1];
  if (K != Kb)
    throw RangeError("matmul(): inner dimensions differ: op(a) is [" + std::to_string(M) + ", " + std::to_string(K) +
                     "], op(b) is [" + std::to_string(Kb) + ", " + std::to_string(N) + "]");
  auto out = empty(DType::F32, {M, N});
  sgemm(a.op, ta, tb, M, N, K, x->f32(), std::max<int64_t>(x->shape[1], 1), y->f32(), std::max<int64_t>(y->shape[1], 1),
        0.0f, out->f32());
  return wrap(a.env(), out);
}

SSQL_OP(linear) {
  auto x = matrix(a, 0, "x");
  auto w = matrix(a, 1, "w");
  auto b = a.optTensor(2, "bias");
  int64_t N = x->shape[0], in = x->shape[1], outF = w->shape[0];
  if (w->shape[1] != in)
    throw RangeError("linear(): input " + shapeStr(x->shape) + " does not match weight " + shapeStr(w->shape));
  if (b) {
    requireDtype(a.op, "bias", *b, DType::F32);
    requireShape(a.op, "bias", *b, {outF});
  }
  auto out = empty(DType::F32, {N, outF});
  if (b) cuda::fillRows(out->f32(), b->f32(), N, outF, cuda::stream());
  sgemm(a.op, false, true, N, outF, in, x->f32(), std::max<int64_t>(in, 1), w->f32(), std::max<int64_t>(in, 1),
        b ? 1.0f : 0.0f, out->f32());
  return wrap(a.env(), out);
}
