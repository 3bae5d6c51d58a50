// Creation, transfer between JavaScript and the device, views, copies and lifetime of CUDA tensors.
// Uploads go through pinned staging buffers so they stay asynchronous; toArrayAsync waits for its copy on a
// worker thread, never on the event loop.
#include <cstring>

#include "../core/binding.h"
#include "allocator.h"
#include "kernels.h"
#include "runtime.h"

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

Napi::TypedArray newTypedArray(Napi::Env env, DType dt, size_t n) {
  switch (dt) {
    case DType::F32: return Napi::Float32Array::New(env, n);
    case DType::U8: return Napi::Uint8Array::New(env, n);
    case DType::I32: return Napi::Int32Array::New(env, n);
  }
  throw TypeError("unknown dtype");
}

void* typedArrayData(const Napi::TypedArray& ta) {
  return static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
}

// Returns a pinned buffer to the cache even when a CUDA call in between throws.
struct PinnedLease {
  cuda::PinnedBuffer* b;
  cudaStream_t after = nullptr;
  explicit PinnedLease(size_t bytes) : b(cuda::acquirePinned(bytes)) {}
  ~PinnedLease() { cuda::releasePinned(b, after); }
};

// Copies a device tensor into host memory `dst` and waits for it.
void copyToHostSync(const Tensor& t, void* dst) {
  if (!t.bytes()) return;
  cudaStream_t s = cuda::stream();
  SSQL_CUDA(cudaMemcpyAsync(dst, t.storage->data, t.bytes(), cudaMemcpyDeviceToHost, s));
  SSQL_CUDA(cudaStreamSynchronize(s));
}

// Resolves a promise with the tensor's data once its device-to-host copy has finished.
class ReadBack : public Napi::AsyncWorker {
 public:
  ReadBack(Napi::Env env, TensorPtr t)
      : Napi::AsyncWorker(env, "ssql:toArrayAsync"), deferred_(Napi::Promise::Deferred::New(env)), t_(std::move(t)) {}

  ~ReadBack() override {
    if (event_) cudaEventDestroy(event_);
    if (pinned_) cuda::releasePinned(pinned_, nullptr);
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  // Main thread: queue the copy and an event behind it.
  void enqueue() {
    cudaStream_t s = cuda::stream();
    device_ = cuda::currentDevice();
    pinned_ = cuda::acquirePinned(t_->bytes());
    SSQL_CUDA(cudaMemcpyAsync(pinned_->data, t_->storage->data, t_->bytes(), cudaMemcpyDeviceToHost, s));
    SSQL_CUDA(cudaEventCreateWithFlags(&event_, cudaEventBlockingSync | cudaEventDisableTiming));
    SSQL_CUDA(cudaEventRecord(event_, s));
  }

  void Execute() override {
    cudaError_t e = cudaSetDevice(device_);
    if (e == cudaSuccess) e = cudaEventSynchronize(event_);
    if (e != cudaSuccess)
      SetError(std::string("toArrayAsync(): CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
               ") while waiting for the copy (or an earlier kernel) to finish");
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto out = newTypedArray(env, t_->dtype, static_cast<size_t>(t_->numel()));
    std::memcpy(typedArrayData(out), pinned_->data, t_->bytes());
    cuda::releasePinned(pinned_, nullptr);
    pinned_ = nullptr;
    t_.reset();
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    t_.reset();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  TensorPtr t_;
  cuda::PinnedBuffer* pinned_ = nullptr;
  cudaEvent_t event_ = nullptr;
  int device_ = 0;
};

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
  if (t->bytes()) {
    cudaStream_t s = cuda::stream();
    PinnedLease staging(t->bytes());
    std::memcpy(staging.b->data, typedArrayData(ta), t->bytes());
    SSQL_CUDA(cudaMemcpyAsync(t->storage->data, staging.b->data, t->bytes(), cudaMemcpyHostToDevice, s));
    staging.after = s;
  }
  return wrap(a.env(), t);
}

SSQL_OP(toArray) {
  auto t = a.tensor(0, "x");
  auto out = newTypedArray(a.env(), t->dtype, static_cast<size_t>(t->numel()));
  copyToHostSync(*t, typedArrayData(out));
  return out;
}

SSQL_OP(toArrayAsync) {
  auto t = a.tensor(0, "x");
  if (!t->bytes()) {
    auto deferred = Napi::Promise::Deferred::New(a.env());
    deferred.Resolve(newTypedArray(a.env(), t->dtype, 0));
    return deferred.Promise();
  }
  auto* worker = new ReadBack(a.env(), t);
  try {
    worker->enqueue();
  } catch (...) {
    delete worker;
    throw;
  }
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

SSQL_OP(item) {
  auto t = a.tensor(0, "x");
  if (t->numel() != 1) throw RangeError("item(): tensor of shape " + shapeStr(t->shape) + " is not a single value");
  union {
    float f;
    uint8_t u;
    int32_t i;
  } v{};
  copyToHostSync(*t, &v);
  switch (t->dtype) {
    case DType::F32: return Napi::Number::New(a.env(), v.f);
    case DType::U8: return Napi::Number::New(a.env(), v.u);
    case DType::I32: return Napi::Number::New(a.env(), v.i);
  }
  throw TypeError("item(): unknown dtype");
}

SSQL_OP(full) {
  Shape shape = a.ints(0, "shape");
  double value = a.number(1, "value");
  DType dt = a.count() > 2 ? a.dtype(2, "dtype") : DType::F32;
  auto t = empty(dt, shape);
  int64_t n = t->numel();
  if (!n) return wrap(a.env(), t);
  cudaStream_t s = cuda::stream();
  switch (dt) {
    case DType::F32: cuda::fillF32(t->f32(), static_cast<float>(value), n, s); break;
    case DType::U8: SSQL_CUDA(cudaMemsetAsync(t->storage->data, static_cast<int>(value), static_cast<size_t>(n), s)); break;
    case DType::I32: cuda::fillI32(t->data<int32_t>(), static_cast<int32_t>(value), n, s); break;
  }
  return wrap(a.env(), t);
}

SSQL_OP(shape) {
  auto t = a.tensor(0, "x");
  auto arr = Napi::Array::New(a.env(), t->shape.size());
  for (size_t i = 0; i < t->shape.size(); ++i)
    arr.Set(static_cast<uint32_t>(i), Napi::Number::New(a.env(), static_cast<double>(t->shape[i])));
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
  if (t->bytes())
    SSQL_CUDA(cudaMemcpyAsync(out->storage->data, t->storage->data, t->bytes(), cudaMemcpyDeviceToDevice, cuda::stream()));
  return wrap(a.env(), out);
}

// copy_(dst, src): overwrite dst's elements in place (same element count and dtype).
SSQL_OP(copy_) {
  auto dst = a.tensor(0, "dst");
  auto src = a.tensor(1, "src");
  if (dst->dtype != src->dtype || dst->numel() != src->numel())
    throw RangeError("copy_(): dst " + shapeStr(dst->shape) + " " + dtypeName(dst->dtype) + " and src " +
                     shapeStr(src->shape) + " " + dtypeName(src->dtype) + " differ");
  if (dst->storage->data != src->storage->data && dst->bytes())
    SSQL_CUDA(cudaMemcpyAsync(dst->storage->data, src->storage->data, dst->bytes(), cudaMemcpyDeviceToDevice,
                              cuda::stream()));
  return a.env().Undefined();
}

SSQL_OP(toFloat) {
  auto t = a.tensor(0, "x");
  auto out = empty(DType::F32, t->shape);
  int64_t n = t->numel();
  cudaStream_t s = cuda::stream();
  if (t->dtype == DType::F32) {
    if (n) SSQL_CUDA(cudaMemcpyAsync(out->f32(), t->f32(), t->bytes(), cudaMemcpyDeviceToDevice, s));
  } else if (t->dtype == DType::U8) {
    cuda::u8ToFloat(t->data<uint8_t>(), out->f32(), n, s);
  } else {
    cuda::i32ToFloat(t->data<int32_t>(), out->f32(), n, s);
  }
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
