// backendInfo(): what the CPU backend runs on, for `ssql info` and bug reports.
#include <omp.h>

#include <dnnl.hpp>
#include <string>

#include "../core/binding.h"

using namespace ssql;

namespace {
const char* isaName(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
#if DNNL_VERSION_MAJOR < 3
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
#endif
    default: return "other";
  }
}
}  // namespace

SSQL_OP(backendInfo) {
  const dnnl_version_t* v = dnnl_version();
  auto o = Napi::Object::New(a.env());
  o.Set("device", "cpu");
  o.Set("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  o.Set("onednnHash", v->hash ? v->hash : "");
  o.Set("isa", isaName(dnnl_get_effective_cpu_isa()));
  o.Set("threads", omp_get_max_threads());
  o.Set("openmp", _OPENMP);
  return o;
}
