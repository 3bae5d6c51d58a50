// Creation, transfer to and from JavaScript typed arrays, views, copies and memory statistics.
#include <cstring>

#include "../core/binding.h"
#include "../core/tensor_op_args.h"
#include "parallel.h"

using namespace ssql;

SSQL_OP(fromArray) {
  parse::FromArrayArgs f = parse::fromArrayArgs(a);
  const TensorPtr& t = f.out;
  if (t->bytes()) std::memcpy(t->storage->data, parse::typedArrayData(f.data), t->bytes());
  return wrap(a.env(), t);
}

SSQL_OP(toArray) {
  auto t = a.tensor(0, "x");
  auto out = parse::newTypedArray(a.env(), t->dtype, static_cast<size_t>(t->numel()));
  if (t->bytes()) std::memcpy(parse::typedArrayData(out), t->storage->data, t->bytes());
  return out;
}

SSQL_OP(item) {
  auto t = parse::itemArg(a);
  switch (t->dtype) {
    case DType::F32: return Napi::Number::New(a.env(), t->f32()[0]);
    case DType::U8: return Napi::Number::New(a.env(), t->data<uint8_t>()[0]);
    case DType::I32: return Napi::Number::New(a.env(), t->data<int32_t>()[0]);
  }
  throw TypeError("item(): unknown dtype");
}

SSQL_OP(full) {
  parse::FullArgs f = parse::fullArgs(a);
  const TensorPtr& t = f.out;
  const double value = f.value;
  const DType dt = f.dtype;
  int64_t n = t->numel();
  switch (dt) {
    case DType::F32: { float* p = t->f32(); float v = static_cast<float>(value); parallelFor(n, [&](int64_t i) { p[i] = v; }); break; }
    case DType::U8: std::memset(t->storage->data, static_cast<int>(value), static_cast<size_t>(n)); break;
    case DType::I32: { int32_t* p = t->data<int32_t>(); int32_t v = static_cast<int32_t>(value); parallelFor(n, [&](int64_t i) { p[i] = v; }); break; }
  }
  return wrap(a.env(), t);
}

SSQL_OP(shape) { return common::shape(a); }
SSQL_OP(dtype) { return common::dtype(a); }
SSQL_OP(reshape) { return common::reshape(a); }

SSQL_OP(clone) {
  auto t = a.tensor(0, "x");
  auto out = empty(t->dtype, t->shape);
  if (t->bytes()) std::memcpy(out->storage->data, t->storage->data, t->bytes());
  return wrap(a.env(), out);
}

// copy_(dst, src): overwrite dst's elements in place (same element count and dtype).
SSQL_OP(copy_) {
  parse::CopyArgs c = parse::copyArgs(a);
  if (c.needed()) std::memcpy(c.dst->storage->data, c.src->storage->data, c.dst->bytes());
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

SSQL_OP(dispose) { return common::dispose(a); }
SSQL_OP(isDisposed) { return common::isDisposed(a); }

SSQL_OP(memoryStats) {
  auto o = Napi::Object::New(a.env());
  o.Set("storages", Napi::Number::New(a.env(), static_cast<double>(memoryCounters().storages.load())));
  o.Set("bytes", Napi::Number::New(a.env(), static_cast<double>(memoryCounters().bytes.load())));
  o.Set("peakBytes", Napi::Number::New(a.env(), static_cast<double>(memoryCounters().peakBytes.load())));
  return o;
}

SSQL_OP(resetPeakMemoryStats) {
  memoryCounters().resetPeak();
  return a.env().Undefined();
}

// The CPU computes synchronously, so the asynchronous read-back resolves at once.
SSQL_OP(toArrayAsync) {
  auto deferred = Napi::Promise::Deferred::New(a.env());
  deferred.Resolve(toArray_impl(a));
  return deferred.Promise();
}
