// Row-major single-precision GEMM through oneDNN's dnnl_sgemm, transposes folded into the call.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include <dnnl.h>

namespace ssql {

// C[M, N] = op(A) @ op(B) + beta * C, with A and B stored row-major as given (leading dimensions lda, ldb, ldc).
inline void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (beta == 0.0f)
      for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, static_cast<size_t>(N) * sizeof(float));
    return;
  }
  dnnl_status_t st = dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', M, N, K, 1.0f, A, lda > 0 ? lda : 1, B,
                                ldb > 0 ? ldb : 1, beta, C, ldc);
  if (st != dnnl_success) throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(st));
}

inline void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C) {
  sgemm(transA, transB, M, N, K, A, lda, B, ldb, beta, C, N);
}

}  // namespace ssql
