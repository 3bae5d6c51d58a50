// N-API glue shared by both addons (header-only, so no file is compiled twice): tensor handles,
// argument parsing with JavaScript errors for every bad input, and the op registry.
#pragma once

#include <napi.h>

#include <functional>
#include <new>
#include <string>
#include <vector>

#include "tensor.h"

namespace ssql {

enum DeviceKind : int { kCPU = 0, kCUDA = 1 };

inline const char* deviceName(int d) { return d == kCPU ? "cpu" : "cuda"; }

// Implemented once per addon.
struct Backend {
  int device;
  Allocator* allocator;
};
Backend& backend();

inline TensorPtr empty(DType dt, const Shape& s) { return makeTensor(backend().allocator, dt, s); }

// A JavaScript handle owns one reference to a tensor until dispose() or garbage collection.
struct Box {
  int device;
  TensorPtr t;
};

inline const napi_type_tag& tensorTag() {
  static const napi_type_tag tag = {0x55a1c0de7e115011ULL, 0x0b0e5e1f2a3b4c5dULL};
  return tag;
}

// Host bytes only: V8's external-memory accounting is host memory pressure, and counting device memory there
// makes it run full garbage collections for allocations that do not touch the host heap.
inline int64_t uniqueBytes(const TensorPtr& t) {
  if (backend().device != kCPU) return 0;
  return t && t->storage && t->storage.use_count() == 1 ? static_cast<int64_t>(t->storage->bytes) : 0;
}

// A handle is an empty object, type-tagged, that wraps its Box. dispose() removes the wrap at once, so the
// garbage collector only finalizes handles that were dropped without dispose() (a weak reference per live handle
// costs GC time on every scavenge, which dominated the cost of ops on small tensors).
inline void finalizeBox(napi_env env, void* data, void*) {
  auto* b = static_cast<Box*>(data);
  int64_t n = uniqueBytes(b->t);
  if (n) napi_adjust_external_memory(env, -n, &n);
  delete b;
}

inline Napi::Value wrap(Napi::Env env, TensorPtr t) {
  int64_t bytes = uniqueBytes(t);
  auto* box = new Box{backend().device, std::move(t)};
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok || napi_type_tag_object(env, obj, &tensorTag()) != napi_ok ||
      napi_wrap(env, obj, box, finalizeBox, nullptr, nullptr) != napi_ok) {
    delete box;
    throw Napi::Error::New(env, "could not create a tensor handle");
  }
  if (bytes) Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  return Napi::Value(env, obj);
}

inline Napi::Value wrapMany(Napi::Env env, const std::vector<TensorPtr>& ts) {
  auto arr = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); ++i) arr.Set(static_cast<uint32_t>(i), ts[i] ? wrap(env, ts[i]) : env.Null());
  return arr;
}

inline bool isTensorHandle(Napi::Env env, const Napi::Value& v) {
  bool tagged = false;
  if (v.IsObject()) napi_check_object_type_tag(env, v, &tensorTag(), &tagged);
  return tagged;
}

// The Box of a tensor handle; a disposed handle (tagged, no longer wrapping) gives an empty Box.
inline Box* boxOf(Napi::Env env, const Napi::Value& handle) {
  void* data = nullptr;
  if (napi_unwrap(env, handle, &data) != napi_ok || !data) {
    static Box disposed{kCPU, nullptr};
    return &disposed;
  }
  return static_cast<Box*>(data);
}

inline Box* unwrapBox(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (!isTensorHandle(env, v)) throw TypeError(what + ": expected a tensor handle");
  return boxOf(env, v);
}

struct Args {
  const Napi::CallbackInfo& info;
  const char* op;

  Napi::Env env() const { return info.Env(); }
  size_t count() const { return info.Length(); }

  std::string where(size_t i, const char* name) const {
    return std::string(op) + "(): argument " + std::to_string(i) + " '" + name + "'";
  }
  Napi::Value at(size_t i, const char* name) const {
    if (i >= info.Length()) throw TypeError(where(i, name) + " is missing");
    return info[i];
  }
  // The error text is built only on failure: this runs for every tensor argument of every op.
  TensorPtr tensor(size_t i, const char* name) const {
    Napi::Value v = at(i, name);
    if (!isTensorHandle(info.Env(), v)) throw TypeError(where(i, name) + ": expected a tensor handle");
    Box* b = boxOf(info.Env(), v);
    if (!b->t) throw TypeError(where(i, name) + " is a disposed tensor");
    if (b->device != backend().device)
      throw TypeError(where(i, name) + " lives on " + deviceName(b->device) + ", this op runs on " +
                      deviceName(backend().device));
    return b->t;
  }
  TensorPtr optTensor(size_t i, const char* name) const {
    if (i >= info.Length() || info[i].IsNull() || info[i].IsUndefined()) return nullptr;
    return tensor(i, name);
  }
  std::vector<TensorPtr> tensors(size_t i, const char* name) const {
    auto v = at(i, name);
    if (!v.IsArray()) throw TypeError(where(i, name) + " must be an array of tensors");
    auto a = v.As<Napi::Array>();
    std::vector<TensorPtr> r;
    for (uint32_t k = 0; k < a.Length(); ++k) {
      Napi::Value e = a.Get(k);
      if (!isTensorHandle(info.Env(), e))
        throw TypeError(where(i, name) + "[" + std::to_string(k) + "]: expected a tensor handle");
      Box* b = boxOf(info.Env(), e);
      if (!b->t) throw TypeError(where(i, name) + "[" + std::to_string(k) + "] is a disposed tensor");
      if (b->device != backend().device) throw TypeError(where(i, name) + " holds a tensor on another device");
      r.push_back(b->t);
    }
    return r;
  }
  double number(size_t i, const char* name) const {
    auto v = at(i, name);
    if (!v.IsNumber()) throw TypeError(where(i, name) + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
  }
  int64_t integer(size_t i, const char* name) const {
    double d = number(i, name);
    if (d != static_cast<double>(static_cast<int64_t>(d))) throw TypeError(where(i, name) + " must be an integer");
    return static_cast<int64_t>(d);
  }
  bool boolean(size_t i, const char* name) const {
    auto v = at(i, name);
    if (!v.IsBoolean()) throw TypeError(where(i, name) + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  std::string string(size_t i, const char* name) const {
    auto v = at(i, name);
    if (!v.IsString()) throw TypeError(where(i, name) + " must be a string");
    return v.As<Napi::String>().Utf8Value();
  }
  std::vector<int64_t> ints(size_t i, const char* name) const {
    auto v = at(i, name);
    if (!v.IsArray()) throw TypeError(where(i, name) + " must be an array of integers");
    auto a = v.As<Napi::Array>();
    std::vector<int64_t> r;
    for (uint32_t k = 0; k < a.Length(); ++k) {
      Napi::Value e = a.Get(k);
      if (!e.IsNumber()) throw TypeError(where(i, name) + " must be an array of integers");
      double d = e.As<Napi::Number>().DoubleValue();
      if (d != static_cast<double>(static_cast<int64_t>(d))) throw TypeError(where(i, name) + " must hold integers");
      r.push_back(static_cast<int64_t>(d));
    }
    return r;
  }
  DType dtype(size_t i, const char* name) const {
    std::string s = string(i, name);
    if (s == "float32") return DType::F32;
    if (s == "uint8") return DType::U8;
    if (s == "int32") return DType::I32;
    throw TypeError(where(i, name) + " must be 'float32', 'uint8' or 'int32', got '" + s + "'");
  }
};

// Shape and dtype checks used by op bodies; each names the op and the argument.
inline void requireDtype(const char* op, const char* name, const Tensor& t, DType dt) {
  if (t.dtype != dt)
    throw TypeError(std::string(op) + "(): '" + name + "' must be " + dtypeName(dt) + ", got " + dtypeName(t.dtype));
}
inline void requireDim(const char* op, const char* name, const Tensor& t, int64_t d) {
  if (t.dim() != d)
    throw RangeError(std::string(op) + "(): '" + name + "' must have " + std::to_string(d) + " dimensions, got shape " +
                     shapeStr(t.shape));
}
inline void requireShape(const char* op, const char* name, const Tensor& t, const Shape& s) {
  if (t.shape != s)
    throw RangeError(std::string(op) + "(): '" + name + "' must have shape " + shapeStr(s) + ", got " + shapeStr(t.shape));
}
inline void requireSameShape(const char* op, const Tensor& a, const Tensor& b) {
  if (a.shape != b.shape)
    throw RangeError(std::string(op) + "(): shapes " + shapeStr(a.shape) + " and " + shapeStr(b.shape) + " differ");
}

using OpFn = Napi::Value (*)(const Napi::CallbackInfo&);
struct OpEntry {
  const char* name;
  OpFn fn;
};
inline std::vector<OpEntry>& opRegistry() {
  static std::vector<OpEntry> r;
  return r;
}
struct OpRegistrar {
  OpRegistrar(const char* n, OpFn f) { opRegistry().push_back({n, f}); }
};

// Every op body runs inside guard(): C++ errors become JavaScript errors, never a crash.
inline Napi::Value guard(const Napi::CallbackInfo& info, const std::function<Napi::Value(const Napi::CallbackInfo&)>& fn) {
  try {
    return fn(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const TypeError& e) {
    throw Napi::TypeError::New(info.Env(), e.what());
  } catch (const RangeError& e) {
    throw Napi::RangeError::New(info.Env(), e.what());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

inline void exportOps(Napi::Env env, Napi::Object exports) {
  for (const auto& e : opRegistry()) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
}

}  // namespace ssql

// Defines and registers an op; the body sees `const ssql::Args& a`: SSQL_OP(relu) { auto x = a.tensor(0, "x"); ... }
#define SSQL_OP(name)                                                                  \
  static Napi::Value name##_impl(const ssql::Args& a);                                \
  static Napi::Value name##_entry(const Napi::CallbackInfo& info) {                   \
    return ssql::guard(info, [](const Napi::CallbackInfo& i) { return name##_impl(ssql::Args{i, #name}); }); \
  }                                                                                   \
  static ssql::OpRegistrar name##_registrar(#name, name##_entry);                     \
  static Napi::Value name##_impl(const ssql::Args& a)
