// cuDNN and cuBLAS handles bound to the current device's stream, and checked calls with each library's message.
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include "runtime.h"

namespace ssql {
namespace cuda {

[[noreturn]] void throwCublas(cublasStatus_t s, const char* expr);
[[noreturn]] void throwCudnn(cudnnStatus_t s, const char* expr);

inline void checkCublas(cublasStatus_t s, const char* expr) {
  if (s != CUBLAS_STATUS_SUCCESS) throwCublas(s, expr);
}
inline void checkCudnn(cudnnStatus_t s, const char* expr) {
  if (s != CUDNN_STATUS_SUCCESS) throwCudnn(s, expr);
}

#define SSQL_CUBLAS(expr) ::ssql::cuda::checkCublas((expr), #expr)
#define SSQL_CUDNN(expr) ::ssql::cuda::checkCudnn((expr), #expr)

// Created on first use per device; math mode follows tf32Enabled().
cublasHandle_t cublas();
cudnnHandle_t cudnn();

}  // namespace cuda
}  // namespace ssql
