// The tensor ops' argument checks shared by both addons (native/cpu/tensor_ops.cc, native/cuda/tensor_ops.cc):
// typed-array conversion, creation and copy arguments, and the ops that never touch tensor data (shape, dtype,
// reshape, dispose, isDisposed), whole.
#pragma once

#include <string>

#include "binding.h"

namespace ssql {
namespace parse {

inline DType dtypeOfTypedArray(const Napi::TypedArray& ta, const std::string& where) {
  switch (ta.TypedArrayType()) {
    case napi_float32_array: return DType::F32;
    case napi_uint8_array: return DType::U8;
    case napi_int32_array: return DType::I32;
    default: throw TypeError(where + " must be a Float32Array, Uint8Array or Int32Array");
  }
}

inline Napi::TypedArray newTypedArray(Napi::Env env, DType dt, size_t n) {
  switch (dt) {
    case DType::F32: return Napi::Float32Array::New(env, n);
    case DType::U8: return Napi::Uint8Array::New(env, n);
    case DType::I32: return Napi::Int32Array::New(env, n);
  }
  throw TypeError("unknown dtype");
}

inline void* typedArrayData(const Napi::TypedArray& ta) {
  return static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
}

// fromArray(data, shape): out (uninitialised) has data's dtype and shape's element count.
struct FromArrayArgs {
  Napi::TypedArray data;
  TensorPtr out;
};

inline FromArrayArgs fromArrayArgs(const Args& a) {
  auto v = a.at(0, "data");
  if (!v.IsTypedArray()) throw TypeError(a.where(0, "data") + " must be a Float32Array, Uint8Array or Int32Array");
  FromArrayArgs f;
  f.data = v.As<Napi::TypedArray>();
  DType dt = dtypeOfTypedArray(f.data, a.where(0, "data"));
  Shape shape = a.ints(1, "shape");
  f.out = empty(dt, shape);
  if (static_cast<size_t>(f.out->numel()) != f.data.ElementLength())
    throw RangeError("fromArray(): shape " + shapeStr(shape) + " holds " + std::to_string(f.out->numel()) +
                     " elements, data has " + std::to_string(f.data.ElementLength()));
  return f;
}

// item(x): x must hold a single value.
inline TensorPtr itemArg(const Args& a) {
  auto t = a.tensor(0, "x");
  if (t->numel() != 1) throw RangeError("item(): tensor of shape " + shapeStr(t->shape) + " is not a single value");
  return t;
}

// full(shape, value, dtype = float32): out (uninitialised) is to be filled with value.
struct FullArgs {
  double value;
  DType dtype;
  TensorPtr out;
};

inline FullArgs fullArgs(const Args& a) {
  FullArgs f;
  Shape shape = a.ints(0, "shape");
  f.value = a.number(1, "value");
  f.dtype = a.count() > 2 ? a.dtype(2, "dtype") : DType::F32;
  f.out = empty(f.dtype, shape);
  return f;
}

// copy_(dst, src): same element count and dtype; the copy is needed unless they share storage.
struct CopyArgs {
  TensorPtr dst, src;
  bool needed() const { return dst->storage->data != src->storage->data && dst->bytes(); }
};

inline CopyArgs copyArgs(const Args& a) {
  CopyArgs c{a.tensor(0, "dst"), a.tensor(1, "src")};
  const Tensor &dst = *c.dst, &src = *c.src;
  if (dst.dtype != src.dtype || dst.numel() != src.numel())
    throw RangeError("copy_(): dst " + shapeStr(dst.shape) + " " + dtypeName(dst.dtype) + " and src " +
                     shapeStr(src.shape) + " " + dtypeName(src.dtype) + " differ");
  return c;
}

}  // namespace parse

// Op bodies that only look at handles and metadata, the same on every backend.
namespace common {

inline Napi::Value shape(const Args& a) {
  auto t = a.tensor(0, "x");
  auto arr = Napi::Array::New(a.env(), t->shape.size());
  for (size_t i = 0; i < t->shape.size(); ++i)
    arr.Set(static_cast<uint32_t>(i), Napi::Number::New(a.env(), static_cast<double>(t->shape[i])));
  return arr;
}

inline Napi::Value dtype(const Args& a) { return Napi::String::New(a.env(), dtypeName(a.tensor(0, "x")->dtype)); }

inline Napi::Value reshape(const Args& a) {
  auto t = a.tensor(0, "x");
  return wrap(a.env(), viewAs(t, a.ints(1, "shape")));
}

inline Napi::Value dispose(const Args& a) {
  Napi::Value h = a.at(0, "x");
  if (!isTensorHandle(a.env(), h)) throw TypeError(a.where(0, "x") + ": expected a tensor handle");
  void* data = nullptr;
  if (napi_remove_wrap(a.env(), h, &data) != napi_ok || !data) return a.env().Undefined();  // disposed before
  auto* b = static_cast<Box*>(data);
  int64_t n = uniqueBytes(b->t);
  if (n) Napi::MemoryManagement::AdjustExternalMemory(a.env(), -n);
  delete b;
  return a.env().Undefined();
}

inline Napi::Value isDisposed(const Args& a) {
  Box* b = unwrapBox(a.env(), a.at(0, "x"), a.where(0, "x"));
  return Napi::Boolean::New(a.env(), !b->t);
}

}  // namespace common
}  // namespace ssql
