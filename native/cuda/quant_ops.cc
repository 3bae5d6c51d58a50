// The quantization ops (lib/tensor/native/quant.ts) on CUDA: the argument checks of the CPU ops (core/quant_args.h)
// in front of the stream-ordered launchers of fake_quant.cu. Nothing is read back: the `enabled` flag, scales and
// zero points stay on the device. One difference from the CPU (which would need a read-back to check): argmin/argmax
// indices outside x or outside their channel in fakeQuantRangeBackward are skipped instead of raising a RangeError.
#include <climits>
#include <string>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "../core/quant_args.h"
#include "fake_quant.h"
#include "runtime.h"

using namespace ssql;
using namespace ssql::quant;

namespace {

// Grid rows of the per-channel kernels are channels (gridDim.y <= 65535).
constexpr int64_t kMaxChannels = 65535;

cuda::QuantLayout deviceLayout(const char* op, const ChannelLayout& l) {
  if (l.channels > kMaxChannels)
    throw RangeError(std::string(op) + "(): more than " + std::to_string(kMaxChannels) + " channels (" +
                     std::to_string(l.channels) + ") are not supported on CUDA");
  return {l.outer, l.channels, l.inner};
}

TensorPtr workspace(size_t bytes) { return bytes ? empty(DType::U8, {static_cast<int64_t>(bytes)}) : nullptr; }
void* dataOf(const TensorPtr& t) { return t ? t->storage->data : nullptr; }

Napi::Value fakeQuant(const Args& a, bool perChannel) {
  FakeQuantArgs q = fakeQuantArgs(a, perChannel);
  const ChannelLayout& l = q.layout;
  SSQL_CUDA(cuda::fakeQuantForward(q.x->f32(), q.out->f32(), q.withMask ? q.mask->data<uint8_t>() : nullptr,
                                   q.scale->f32(), q.zeroPoint->data<int32_t>(), q.enabled,
                                   {l.outer, l.channels, l.inner}, perChannel, static_cast<int32_t>(q.qmin),
                                   static_cast<int32_t>(q.qmax), q.divide, cuda::stream()));
  return wrapMany(a.env(), {q.out, q.mask});
}

}  // namespace

SSQL_OP(fakeQuantPerTensor) { return fakeQuant(a, false); }
SSQL_OP(fakeQuantPerChannel) { return fakeQuant(a, true); }

SSQL_OP(fakeQuantBackward) {
  FakeQuantBackwardArgs q = fakeQuantBackwardArgs(a);
  SSQL_CUDA(cuda::fakeQuantBackward(q.grad->f32(), q.mask->data<uint8_t>(), q.out->f32(), q.grad->numel(),
                                    cuda::stream()));
  return wrap(a.env(), q.out);
}

// fakeQuantRangeBackward(grad, x, scale, zeroPoint, min, max, argmin, argmax, axis, quantMin, quantMax, symmetric, enabled,
// rounding)
SSQL_OP(fakeQuantRangeBackward) {
  RangeBackwardArgs q = rangeBackwardArgs(a);
  const TensorPtr& x = q.x;
  const ChannelLayout& l = q.layout;
  const int64_t C = l.channels;
  if (x->numel() > INT32_MAX)
    throw RangeError(std::string(a.op) + "(): tensors above 2^31 elements are not supported (int32 argmin/argmax)");
  // Every index is out of range in an empty x: the CPU's error, without reading the indices.
  if (x->numel() == 0 && C > 0)
    throw RangeError(std::string(a.op) + "(): argmin/argmax index out of range for " + shapeStr(x->shape));
  cuda::QuantLayout layout = deviceLayout(a.op, l);

  auto out = empty(DType::F32, x->shape);
  TensorPtr ws = workspace(cuda::fakeQuantRangeBackwardWorkspaceBytes(layout));
  SSQL_CUDA(cuda::fakeQuantRangeBackward(q.grad->f32(), x->f32(), out->f32(), q.scale->f32(),
                                         q.zeroPoint->data<int32_t>(), q.min->f32(), q.max->f32(),
                                         q.argmin->data<int32_t>(), q.argmax->data<int32_t>(), q.enabled, layout,
                                         l.axis >= 0, static_cast<int32_t>(q.qmin), static_cast<int32_t>(q.qmax),
                                         q.symmetric, q.divide, dataOf(ws), cuda::stream()));
  return wrap(a.env(), out);
}

// aminmax_(x, min, max, argmin, argmax, axis, accumulate)
SSQL_OP(aminmax_) {
  // The kernels keep flat indices in int32 and need n < INT32_MAX (the CPU op accepts n == INT32_MAX).
  AminmaxArgs q = aminmaxArgs(a, INT32_MAX - 1);
  cuda::QuantLayout layout = deviceLayout(a.op, q.layout);
  TensorPtr ws = workspace(cuda::aminmaxWorkspaceBytes(layout));
  SSQL_CUDA(cuda::aminmax(q.x->f32(), q.min->f32(), q.max->f32(), q.argmin ? q.argmin->data<int32_t>() : nullptr,
                          q.argmax ? q.argmax->data<int32_t>() : nullptr, layout, q.accumulate, dataOf(ws),
                          cuda::stream()));
  return a.env().Undefined();
}

SSQL_OP(emaUpdate_) {
  EmaUpdateArgs q = emaUpdateArgs(a);
  SSQL_CUDA(cuda::emaUpdate(q.dst->f32(), q.src->f32(), q.dst->numel(), q.momentum, cuda::stream()));
  return a.env().Undefined();
}

// calcQParams(min, max, bits, symmetric) -> [scale f32, zeroPoint i32, enabled i32 [1]]
SSQL_OP(calcQParams) {
  CalcQParamsArgs q = calcQParamsArgs(a);
  SSQL_CUDA(cuda::calcQParams(q.min->f32(), q.max->f32(), q.scale->f32(), q.zeroPoint->data<int32_t>(),
                              q.enabled->data<int32_t>(), q.min->numel(), q.bits, q.symmetric, cuda::stream()));
  return wrapMany(a.env(), {q.scale, q.zeroPoint, q.enabled});
}
