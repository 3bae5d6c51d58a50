// Creation, transfer to and from JavaScript typed arrays, views, copies and memory statistics.
#include <cstring>

#include "../core/binding.h"
#include "parallel.h"

using namespace ssql;

namespace {
DType dtypeOfTypedArray(const Napi::TypedArray& ta, const std::string& where) {
  switch (ta.TypedArrayType()) {
    case napi_float32_array: return DType::F32;
    case napi_uint8_array: return DType::U8;
    case napi_int32_array: return DType::I32;
    default: throw TypeError(where + " must be a Float32Array, Uint8Array or Int32Array");
  }
}
}  // namespace

SSQL_OP(fromArray) {
  auto v = a.at(0, "data");
  if (!v.IsTypedArray()) throw TypeError(a.where(0, "data") + " must be a Float32Array, Uint8Array or Int32Array");
  auto ta = v.As<Napi::TypedArray>();
  DType dt = dtypeOfTypedArray(ta, a.where(0, "data"));
  Shape shape = a.ints(1, "shape");
  auto t = empty(dt, shape);
  if (static_cast<size_t>(t->numel()) != ta.ElementLength())
    throw RangeError("fromArray(): shape " + shapeStr(shape) + " holds " + std::to_string(t->numel()) +
                     " elements, data has " + std::to_string(ta.ElementLength()));
  const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (t->bytes()) std::memcpy(t->storage->data, src, t->bytes());
  return wrap(a.env(), t);
}

SSQL_OP(toArray) {
  auto t = a.tensor(0, "x");
  size_t n = static_cast<size_t>(t->numel());
  switch (t->dtype) {
    case DType::F32: {
      auto out = Napi::Float32Array::New(a.env(), n);
      if (n) std::memcpy(out.Data(), t->storage->data, t->bytes());
      return out;
    }
    case DType::U8: {
      auto out = Napi::Uint8Array::New(a.env(), n);
      if (n) std::memcpy(out.Data(), t->storage->data, t->bytes());
      return out;
    }
    case DType::I32: {
      auto out = Napi::Int32Array::New(a.env(), n);
      if (n) std::memcpy(out.Data(), t->storage->data, t->bytes());
      return out;
    }
  }
  throw TypeError("toArray(): unknown dtype");
}

SSQL_OP(item) {
  auto t = a.tensor(0, "x");
  if (t->numel() != 1) throw RangeError("item(): tensor of shape " + shapeStr(t->shape) + " is not a single value");
  switch (t->dtype) {
    case DType::F32: return Napi::Number::New(a.env(), t->f32()[0]);
    case DType::U8: return Napi::Number::New(a.env(), t->data<uint8_t>()[0]);
    case DType::I32: return Napi::Number::New(a.env(), t->data<int32_t>()[0]);
  }
  throw TypeError("item(): unknown dtype");
}

SSQL_OP(full) {
  Shape shape = a.ints(0, "shape");
  double value = a.number(1, "value");
  DType dt = a.count() > 2 ? a.dtype(2, "dtype") : DType::F32;
  auto t = empty(dt, shape);
  int64_t n = t->numel();
  switch (dt) {
    case DType::F32: { float* p = t->f32(); float v = static_cast<float>(value); parallelFor(n, [&](int64_t i) { p[i] = v; }); break; }
    case DType::U8: std::memset(t->storage->data, static_cast<int>(value), static_cast<size_t>(n)); break;
    case DType::I32: { int32_t* p = t->data<int32_t>(); int32_t v = static_cast<int32_t>(value); parallelFor(n, [&](int64_t i) { p[i] = v; }); break; }
  }
  return wrap(a.env(), t);
}

SSQL_OP(shape) {
  auto t = a.tensor(0, "x");
  auto arr = Napi::Array::New(a.env(), t->shape.size());
  for (size_t i = 0; i < t->shape.size(); ++i) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(a.env(), static_cast<double>(t->shape[i])));
  return arr;
}

SSQL_OP(dtype) { return Napi::String::New(a.env(), dtypeName(a.tensor(0, "x")->dtype)); }

SSQL_OP(reshape) {
  auto t = a.tensor(0, "x");
  return wrap(a.env(), viewAs(t, a.ints(1, "shape")));
}

SSQL_OP(clone) {
  auto t = a.tensor(0, "x");
  auto out = empty(t->dtype, t->shape);
  if (t->bytes()) std::memcpy(out->storage->data, t->storage->data, t->bytes());
  return wrap(a.env(), out);
}

// copy_(dst, src): overwrite dst's elements in place (same element count and dtype).
SSQL_OP(copy_) {
  auto dst = a.tensor(0, "dst");
  auto src = a.tensor(1, "src");
  if (dst->dtype != src->dtype || dst->numel() != src->numel())
    throw RangeError("copy_(): dst " + shapeStr(dst->shape) + " " + dtypeName(dst->dtype) + " and src " +
                     shapeStr(src->shape) + " " + dtypeName(src->dtype) + " differ");
  if (dst->storage->data != src->storage->data && dst->bytes()) std::memcpy(dst->storage->data, src->storage->data, dst->bytes());
  return a.env().Undefined();
}

SSQL_OP(toFloat) {
  auto t = a.tensor(0, "x");
  auto out = empty(DType::F32, t->shape);
  float* o = out->f32();
  if (t->dtype == DType::F32) std::memcpy(o, t->f32(), t->bytes());
  else if (t->dtype == DType::U8) { const uint8_t* p = t->data<uint8_t>(); parallelFor(t->numel(), [&](int64_t i) { o[i] = p[i]; }); }
  else { const int32_t* p = t->data<int32_t>(); parallelFor(t->numel(), [&](int64_t i) { o[i] = static_cast<float>(p[i]); }); }
  return wrap(a.env(), out);
}

SSQL_OP(dispose) {
  Box* b = unwrapBox(a.env(), a.at(0, "x"), a.where(0, "x"));
  int64_t n = uniqueBytes(b->t);
  if (n) Napi::MemoryManagement::AdjustExternalMemory(a.env(), -n);
  b->t.reset();
  return a.env().Undefined();
}

SSQL_OP(isDisposed) {
  Box* b = unwrapBox(a.env(), a.at(0, "x"), a.where(0, "x"));
  return Napi::Boolean::New(a.env(), !b->t);
}

SSQL_OP(memoryStats) {
  auto o = Napi::Object::New(a.env());
  o.Set("storages", Napi::Number::New(a.env(), static_cast<double>(memoryCounters().storages.load())));
  o.Set("bytes", Napi::Number::New(a.env(), static_cast<double>(memoryCounters().bytes.load())));
  return o;
}

// The CPU computes synchronously, so the asynchronous read-back resolves at once.
SSQL_OP(toArrayAsync) {
  auto deferred = Napi::Promise::Deferred::New(a.env());
  deferred.Resolve(toArray_impl(a));
  return deferred.Promise();
}
