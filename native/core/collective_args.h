// Argument checks of the collective ops (lib/tensor/native/collective.ts), shared by the Gloo process groups
// (native/cpu/gloo.cc) and the NCCL ones (native/cuda/process_group.cc), so that a bad call gets the same error on
// either device. The group handle is a tagged External holding a shared_ptr to the backend's group type.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "binding.h"

namespace ssql {
namespace parse {

// processGroupCreate({rank, size, storeHost, storePort, prefix, timeoutMs, hostname?, iface?})
struct GroupOptions {
  int64_t rank, size, storePort, timeoutMs;
  std::string storeHost, prefix, hostname, iface;
};

// hostname and iface are read (optional strings) only where the backend uses them (Gloo's transport).
inline GroupOptions groupOptions(const Args& a, bool withInterfaces) {
  Napi::Value v = a.at(0, "options");
  if (!v.IsObject()) throw TypeError(a.where(0, "options") + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  auto num = [&](const char* k) {
    Napi::Value x = o.Get(k);
    if (!x.IsNumber()) throw TypeError(std::string("processGroupCreate(): options.") + k + " must be a number");
    double d = x.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d)))
      throw TypeError(std::string("processGroupCreate(): options.") + k + " must be an integer");
    return static_cast<int64_t>(d);
  };
  auto str = [&](const char* k, bool required) {
    Napi::Value x = o.Get(k);
    if (x.IsUndefined() && !required) return std::string();
    if (!x.IsString()) throw TypeError(std::string("processGroupCreate(): options.") + k + " must be a string");
    return x.As<Napi::String>().Utf8Value();
  };
  GroupOptions g;
  g.rank = num("rank");
  g.size = num("size");
  g.storePort = num("storePort");
  g.timeoutMs = num("timeoutMs");
  if (g.size < 1 || g.rank < 0 || g.rank >= g.size)
    throw RangeError("processGroupCreate(): rank " + std::to_string(g.rank) + " is not in a group of size " +
                     std::to_string(g.size));
  if (g.storePort < 1 || g.storePort > 65535) throw RangeError("processGroupCreate(): storePort must be in 1..65535");
  if (g.timeoutMs < 1) throw RangeError("processGroupCreate(): timeoutMs must be positive");
  g.storeHost = str("storeHost", true);
  g.prefix = str("prefix", true);
  if (withInterfaces) {
    g.hostname = str("hostname", false);
    g.iface = str("iface", false);
  }
  return g;
}

template <typename Group>
std::shared_ptr<Group> groupArg(const Args& a, size_t i, const napi_type_tag& tag) {
  Napi::Value v = a.at(i, "group");
  bool tagged = false;
  if (v.IsExternal()) napi_check_object_type_tag(a.env(), v, &tag, &tagged);
  if (!tagged) throw TypeError(a.where(i, "group") + " must be a process group handle");
  auto g = *v.As<Napi::External<std::shared_ptr<Group>>>().Data();
  if (g->destroyed) throw TypeError(a.where(i, "group") + " is a destroyed process group");
  return g;
}

// The handle stops the group when JavaScript drops it.
template <typename Group>
Napi::Value wrapGroup(Napi::Env env, const std::shared_ptr<Group>& g, const napi_type_tag& tag) {
  auto ext = Napi::External<std::shared_ptr<Group>>::New(env, new std::shared_ptr<Group>(g),
                                                         [](Napi::Env, std::shared_ptr<Group>* p) {
                                                           (*p)->stop();
                                                           delete p;
                                                         });
  napi_type_tag_object(env, ext, &tag);
  return ext;
}

enum class ReduceOp { Sum, Avg, Max, Min };

inline ReduceOp reduceOp(const std::string& op, const std::string& name, DType dt) {
  if (dt != DType::F32 && dt != DType::I32)
    throw TypeError(op + "(): tensors must be float32 or int32, got " + dtypeName(dt));
  if (name == "sum") return ReduceOp::Sum;
  if (name == "avg") {
    if (dt != DType::F32) throw TypeError(op + "(): 'avg' needs float32 tensors (int32 would truncate)");
    return ReduceOp::Avg;
  }
  if (name == "max") return ReduceOp::Max;
  if (name == "min") return ReduceOp::Min;
  throw TypeError(op + "(): op must be 'sum', 'avg', 'max' or 'min', got '" + name + "'");
}

// A non-empty list of tensors of one dtype (one message, e.g. a gradient bucket).
inline std::vector<TensorPtr> sameDtypeTensors(const Args& a, size_t i, const char* name) {
  auto xs = a.tensors(i, name);
  if (xs.empty()) throw RangeError(a.where(i, name) + " holds no tensors");
  for (const auto& x : xs)
    if (x->dtype != xs[0]->dtype)
      throw TypeError(a.where(i, name) + " mixes " + dtypeName(xs[0]->dtype) + " and " + dtypeName(x->dtype));
  return xs;
}

// allGather's output: the ranks' tensors stacked along dimension 0 (a scalar becomes [size]).
inline TensorPtr gatherOutput(const TensorPtr& x, int size) {
  Shape s = x->shape;
  if (s.empty()) s = {size};
  else s[0] *= size;
  return empty(x->dtype, s);
}

inline int rootArg(const Args& a, size_t i, int size) {
  int64_t r = a.integer(i, "root");
  if (r < 0 || r >= size)
    throw RangeError(a.where(i, "root") + " must be in 0.." + std::to_string(size - 1) + ", got " + std::to_string(r));
  return static_cast<int>(r);
}

}  // namespace parse
}  // namespace ssql
