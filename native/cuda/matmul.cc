// Matrix products through cuBLAS SGEMM. cuBLAS is column-major, so row-major C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T: the row-major buffers read as column-major are already the transposes, no copies.
#include <climits>
#include <string>

#include "../core/binding.h"
#include "../core/matmul_args.h"
#include "kernels.h"
#include "libs.h"
#include "runtime.h"

using namespace ssql;

namespace {

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
  parse::MatmulArgs m = parse::matmulArgs(a);
  sgemm(a.op, m.transA, m.transB, m.M, m.N, m.K, m.a->f32(), std::max<int64_t>(m.a->shape[1], 1), m.b->f32(),
        std::max<int64_t>(m.b->shape[1], 1), 0.0f, m.out->f32());
  return wrap(a.env(), m.out);
}

SSQL_OP(linear) {
  parse::LinearArgs l = parse::linearArgs(a);
  const TensorPtr &x = l.x, &w = l.w, &b = l.bias, &out = l.y;
  const int64_t N = l.N, in = l.in, outF = l.out;
  if (b) cuda::fillRows(out->f32(), b->f32(), N, outF, cuda::stream());
  sgemm(a.op, false, true, N, outF, in, x->f32(), std::max<int64_t>(in, 1), w->f32(), std::max<int64_t>(in, 1),
        b ? 1.0f : 0.0f, out->f32());
  return wrap(a.env(), out);
}
