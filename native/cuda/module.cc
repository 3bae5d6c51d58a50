// Entry point of ssql_cuda.node: the CUDA backend's allocator, device management, versions and memory statistics.
// Loading the addon touches no CUDA API, so a machine without a driver can load it and ask cudaAvailable() why.
#include <cudnn.h>
#include <nccl.h>

#include <string>

#include "../core/binding.h"
#include "allocator.h"
#include "libs.h"
#include "runtime.h"

namespace ssql {

Backend& backend() {
  static Backend b{kCUDA, &cuda::deviceAllocator()};
  return b;
}

}  // namespace ssql

using namespace ssql;

namespace {

std::string versionString(int v, int majorDiv, int minorDiv) {
  return std::to_string(v / majorDiv) + "." + std::to_string((v % majorDiv) / minorDiv);
}

// null when a device can be used, else why not (never throws: this is what binding.ts asks before anything else).
std::string unavailableReason() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    std::string why = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    cudaGetLastError();
    if (e == cudaErrorInsufficientDriver && driver > 0)
      why += "; the driver supports CUDA " + versionString(driver, 1000, 10) + ", this addon needs CUDA " +
             versionString(runtime, 1000, 10) + " (rebuild it with an older toolkit or update the driver)";
    else if (driver == 0)
      why += "; no NVIDIA driver was found";
    return why;
  }
  if (count == 0) return "no CUDA device is visible (check CUDA_VISIBLE_DEVICES)";
  return "";
}

}  // namespace

SSQL_OP(cudaAvailable) {
  std::string why = unavailableReason();
  if (why.empty()) return a.env().Null();
  return Napi::String::New(a.env(), why);
}

// Versions and the current device, for `ssql info` and bug reports; fields that cannot be read say why.
SSQL_OP(cudaInfo) {
  Napi::Env env = a.env();
  auto o = Napi::Object::New(env);
  o.Set("device", "cuda");
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  cudaGetLastError();
  o.Set("driverCuda", driver ? versionString(driver, 1000, 10) : std::string("none"));
  o.Set("runtimeCuda", versionString(runtime, 1000, 10) + " (static)");
  size_t cudnnV = cudnnGetVersion();
  o.Set("cudnn", std::to_string(cudnnV / 10000) + "." + std::to_string((cudnnV % 10000) / 100) + "." +
                     std::to_string(cudnnV % 100) + " (built with " + std::to_string(CUDNN_MAJOR) + "." +
                     std::to_string(CUDNN_MINOR) + "." + std::to_string(CUDNN_PATCHLEVEL) + ")");
  int major = 0, minor = 0, patch = 0;
  if (cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
      cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
      cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS)
    o.Set("cublas", std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch));
  int ncclV = 0;
  if (ncclGetVersion(&ncclV) == ncclSuccess)
    o.Set("nccl", std::to_string(ncclV / 10000) + "." + std::to_string((ncclV % 10000) / 100) + "." +
                      std::to_string(ncclV % 100));
  o.Set("tf32", cuda::tf32Enabled());
  std::string why = unavailableReason();
  o.Set("available", why.empty());
  if (!why.empty()) {
    o.Set("reason", why);
    return o;
  }
  int count = 0, dev = cuda::currentDevice();
  cudaGetDeviceCount(&count);
  o.Set("deviceCount", count);
  o.Set("deviceIndex", dev);
  cudaDeviceProp prop{};
  cudaError_t e = cudaGetDeviceProperties(&prop, dev);
  if (e != cudaSuccess) {
    cudaGetLastError();
    o.Set("deviceError", std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")");
    return o;
  }
  o.Set("name", prop.name);
  o.Set("computeCapability", std::to_string(prop.major) + "." + std::to_string(prop.minor));
  o.Set("memoryBytes", static_cast<double>(prop.totalGlobalMem));
  o.Set("multiprocessors", prop.multiProcessorCount);
  return o;
}

SSQL_OP(backendInfo) { return cudaInfo_impl(a); }

SSQL_OP(setDevice) {
  int64_t n = a.integer(0, "device");
  cuda::selectDevice(static_cast<int>(n));
  return a.env().Undefined();
}

SSQL_OP(getDevice) { return Napi::Number::New(a.env(), cuda::currentDevice()); }

// Waits for every op queued so far (errors of earlier kernels surface here).
SSQL_OP(synchronize) {
  SSQL_CUDA(cudaStreamSynchronize(cuda::stream()));
  return a.env().Undefined();
}

SSQL_OP(emptyCache) {
  cuda::emptyCache();
  return a.env().Undefined();
}

SSQL_OP(setTf32) {
  cuda::setTf32Enabled(a.boolean(0, "enabled"));
  return a.env().Undefined();
}

SSQL_OP(memoryStats) {
  auto s = cuda::deviceMemoryStats();
  auto o = Napi::Object::New(a.env());
  auto num = [&](const char* k, double v) { o.Set(k, Napi::Number::New(a.env(), v)); };
  num("storages", static_cast<double>(memoryCounters().storages.load()));
  num("bytes", static_cast<double>(memoryCounters().bytes.load()));
  num("allocatedBytes", static_cast<double>(s.allocatedBytes));
  num("reservedBytes", static_cast<double>(s.reservedBytes));
  num("cachedBytes", static_cast<double>(s.reservedBytes - s.allocatedBytes));
  num("peakBytes", static_cast<double>(s.peakAllocatedBytes));
  num("peakReservedBytes", static_cast<double>(s.peakReservedBytes));
  num("mallocs", static_cast<double>(s.mallocs));
  num("cacheHits", static_cast<double>(s.cacheHits));
  num("gcSegments", static_cast<double>(s.gcSegments));
  return o;
}

SSQL_OP(resetPeakMemoryStats) {
  cuda::resetPeakMemoryStats();
  return a.env().Undefined();
}

// Host threads do not apply to the CUDA backend; the ops exist so that both addons export one table.
SSQL_OP(setNumThreads) {
  int64_t n = a.integer(0, "threads");
  if (n < 1 || n > 1024) throw RangeError("setNumThreads(): threads must be in 1..1024");
  return a.env().Undefined();
}

SSQL_OP(getNumThreads) { return Napi::Number::New(a.env(), 1); }

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exportOps(env, exports);
  exports.Set("device", Napi::String::New(env, "cuda"));
  return exports;
}

NODE_API_MODULE(ssql_cuda, Init)
