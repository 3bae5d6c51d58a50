// Creation, transfer between JavaScript and the device, views, copies and lifetime of CUDA tensors.
// Uploads go through pinned staging buffers so they stay asynchronous; toArrayAsync waits for its copy on a
// worker thread, never on the event loop.
#include <cstring>

#include "../core/binding.h"
#include "../core/tensor_op_args.h"
#include "allocator.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

namespace {

using parse::newTypedArray;
using parse::typedArrayData;

using cuda::PinnedLease;

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
  parse::FromArrayArgs f = parse::fromArrayArgs(a);
  const TensorPtr& t = f.out;
  if (t->bytes()) {
    cudaStream_t s = cuda::stream();
    PinnedLease staging(t->bytes());
    std::memcpy(staging.b->data, typedArrayData(f.data), t->bytes());
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
  auto t = parse::itemArg(a);
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
  parse::FullArgs f = parse::fullArgs(a);
  const TensorPtr& t = f.out;
  const double value = f.value;
  const DType dt = f.dtype;
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

SSQL_OP(shape) { return common::shape(a); }
SSQL_OP(dtype) { return common::dtype(a); }
SSQL_OP(reshape) { return common::reshape(a); }

SSQL_OP(clone) {
  auto t = a.tensor(0, "x");
  auto out = empty(t->dtype, t->shape);
  if (t->bytes())
    SSQL_CUDA(cudaMemcpyAsync(out->storage->data, t->storage->data, t->bytes(), cudaMemcpyDeviceToDevice, cuda::stream()));
  return wrap(a.env(), out);
}

// copy_(dst, src): overwrite dst's elements in place (same element count and dtype).
SSQL_OP(copy_) {
  parse::CopyArgs c = parse::copyArgs(a);
  if (c.needed())
    SSQL_CUDA(cudaMemcpyAsync(c.dst->storage->data, c.src->storage->data, c.dst->bytes(), cudaMemcpyDeviceToDevice,
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

SSQL_OP(dispose) { return common::dispose(a); }
SSQL_OP(isDisposed) { return common::isDisposed(a); }
