// Per-device state: one non-blocking stream, the cuBLAS and cuDNN handles bound to it, and error messages.
#include <string>

#include "../core/tensor.h"
#include "libs.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {
struct DeviceState {
  cudaStream_t stream = nullptr;
  int sms = 0;
  cublasHandle_t cublas = nullptr;
  bool cublasTf32 = false;
  cudnnHandle_t cudnn = nullptr;
};

constexpr int kMaxDevices = 64;
DeviceState g_states[kMaxDevices];
int g_device = 0;
bool g_selected = false;
bool g_tf32 = false;

DeviceState& state() {
  if (!g_selected) {
    SSQL_CUDA(cudaSetDevice(g_device));
    g_selected = true;
  }
  DeviceState& s = g_states[g_device];
  if (!s.stream) {
    SSQL_CUDA(cudaDeviceGetAttribute(&s.sms, cudaDevAttrMultiProcessorCount, g_device));
    SSQL_CUDA(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  }
  return s;
}
}  // namespace

void throwCuda(cudaError_t e, const char* expr) {
  cudaGetLastError();  // clear a non-sticky error so later calls start clean
  throw CudaError(std::string("CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") in " + expr);
}

void throwCublas(cublasStatus_t s, const char* expr) {
  throw CudaError(std::string("cuBLAS error ") + cublasGetStatusName(s) + " (" + cublasGetStatusString(s) + ") in " + expr);
}

void throwCudnn(cudnnStatus_t s, const char* expr) {
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));
  std::string msg = std::string("cuDNN error ") + cudnnGetErrorString(s) + " in " + expr;
  if (detail[0]) msg += ": " + std::string(detail);
  throw CudaError(msg);
}

int currentDevice() { return g_device; }

void selectDevice(int device) {
  int count = 0;
  SSQL_CUDA(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count || device >= kMaxDevices)
    throw RangeError("setDevice(): device " + std::to_string(device) + " does not exist (" + std::to_string(count) +
                            " CUDA devices)");
  SSQL_CUDA(cudaSetDevice(device));
  g_device = device;
  g_selected = true;
}

cudaStream_t stream() { return state().stream; }

int multiprocessorCount() { return state().sms; }

bool tf32Enabled() { return g_tf32; }
void setTf32Enabled(bool on) { g_tf32 = on; }

cublasHandle_t cublas() {
  DeviceState& s = state();
  if (!s.cublas) {
    SSQL_CUBLAS(cublasCreate(&s.cublas));
    SSQL_CUBLAS(cublasSetStream(s.cublas, s.stream));
    SSQL_CUBLAS(cublasSetMathMode(s.cublas, CUBLAS_DEFAULT_MATH));
    s.cublasTf32 = false;
  }
  if (s.cublasTf32 != g_tf32) {
    // Default math is strict FP32 for SGEMM; TF32 rounds the inputs to a 10-bit mantissa on tensor cores.
    SSQL_CUBLAS(cublasSetMathMode(s.cublas, g_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    s.cublasTf32 = g_tf32;
  }
  return s.cublas;
}

cudnnHandle_t cudnn() {
  DeviceState& s = state();
  if (!s.cudnn) {
    SSQL_CUDNN(cudnnCreate(&s.cudnn));
    SSQL_CUDNN(cudnnSetStream(s.cudnn, s.stream));
  }
  return s.cudnn;
}

}  // namespace cuda
}  // namespace ssql
