// Entry point of ssql_cpu.node: the CPU backend's allocator and the export of every registered op.
#include <omp.h>

#include <cstdlib>
#include <cstring>

#include "../core/binding.h"
#include "caching_allocator.h"

namespace ssql {

Backend& backend() {
  static auto* alloc = new CachingAllocator;  // never destroyed: tensors may still be freed during shutdown
  static Backend b{kCPU, alloc};
  return b;
}

}  // namespace ssql

SSQL_OP(setNumThreads) {
  int64_t n = a.integer(0, "threads");
  if (n < 1 || n > 1024) throw ssql::RangeError("setNumThreads(): threads must be in 1..1024");
  omp_set_num_threads(static_cast<int>(n));
  return a.env().Undefined();
}

SSQL_OP(getNumThreads) { return Napi::Number::New(a.env(), omp_get_max_threads()); }

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ssql::exportOps(env, exports);
  exports.Set("device", Napi::String::New(env, "cpu"));
  return exports;
}

NODE_API_MODULE(ssql_cpu, Init)
