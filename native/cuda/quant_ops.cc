// The quantization ops (lib/tensor/native/quant.ts) on CUDA: the argument checks of the CPU ops (core/quant_args.h)
// in front of the stream-ordered launchers of fake_quant.cu. Nothing is read back: the `enabled` flag, scales and
// zero points stay on the device. One difference from the CPU (which would need a read-back to check): argmin/argmax
// indices outside x in fakeQuantRangeBackward are skipped instead of raising a RangeError.
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
  // perTensor: (x, scale, zeroPoint, quantMin, quantMax, enabled, withMask)
  // perChannel: (x, scale, zeroPoint, axis, quantMin, quantMax, enabled, withMask)
  auto x = f32Arg(a, 0, "x");
  auto scale = f32Arg(a, 1, "scale");
  auto zp = i32(a, 2, "zeroPoint");
  size_t k = perChannel ? 4 : 3;
  ChannelLayout l = perChannel ? channelLayout(a.op, *x, a.integer(3, "axis")) : perTensorLayout(*x);
  requireNumel(a.op, "scale", *scale, l.channels);
  requireNumel(a.op, "zeroPoint", *zp, l.channels);
  float qmin, qmax;
  quantRangeArgs(a, k, qmin, qmax);
  const int32_t* enabled = enabledArg(a, k + 2);
  bool withMask = a.boolean(k + 3, "withMask");

  auto out = empty(DType::F32, x->shape);
  TensorPtr mask = withMask ? empty(DType::U8, x->shape) : nullptr;
  SSQL_CUDA(cuda::fakeQuantForward(x->f32(), out->f32(), withMask ? mask->data<uint8_t>() : nullptr, scale->f32(),
                                   zp->data<int32_t>(), enabled, {l.outer, l.channels, l.inner}, perChannel,
                                   static_cast<int32_t>(qmin), static_cast<int32_t>(qmax), cuda::stream()));
  return wrapMany(a.env(), {out, mask});
}

}  // namespace

SSQL_OP(fakeQuantPerTensor) { return fakeQuant(a, false); }
SSQL_OP(fakeQuantPerChannel) { return fakeQuant(a, true); }

SSQL_OP(fakeQuantBackward) {
  auto g = f32Arg(a, 0, "grad");
  auto mask = a.tensor(1, "mask");
  requireDtype(a.op, "mask", *mask, DType::U8);
  requireSameShape(a.op, *g, *mask);
  auto out = empty(DType::F32, g->shape);
  SSQL_CUDA(cuda::fakeQuantBackward(g->f32(), mask->data<uint8_t>(), out->f32(), g->numel(), cuda::stream()));
  return wrap(a.env(), out);
}

// fakeQuantRangeBackward(grad, x, scale, zeroPoint, min, max, argmin, argmax, axis, quantMin, quantMax, symmetric, enabled)
SSQL_OP(fakeQuantRangeBackward) {
  auto g = f32Arg(a, 0, "grad");
  auto x = f32Arg(a, 1, "x");
  requireSameShape(a.op, *g, *x);
  auto scale = f32Arg(a, 2, "scale");
  auto zp = i32(a, 3, "zeroPoint");
  auto mn = f32Arg(a, 4, "min");
  auto mx = f32Arg(a, 5, "max");
  auto amin = i32(a, 6, "argmin");
  auto amax = i32(a, 7, "argmax");
  ChannelLayout l = layoutArg(a, 8, *x);
  float qmin, qmax;
  quantRangeArgs(a, 9, qmin, qmax);
  bool symmetric = a.boolean(11, "symmetric");
  const int32_t* enabled = enabledArg(a, 12);
  const int64_t C = l.channels;
  for (auto* t : {scale.get(), mn.get(), mx.get()}) requireNumel(a.op, "scale/min/max", *t, C);
  for (auto* t : {zp.get(), amin.get(), amax.get()}) requireNumel(a.op, "zeroPoint/argmin/argmax", *t, C);
  if (x->numel() > INT32_MAX)
    throw RangeError(std::string(a.op) + "(): tensors above 2^31 elements are not supported (int32 argmin/argmax)");
  // Every index is out of range in an empty x: the CPU's error, without reading the indices.
  if (x->numel() == 0 && C > 0)
    throw RangeError(std::string(a.op) + "(): argmin/argmax index out of range for " + shapeStr(x->shape));
  cuda::QuantLayout layout = deviceLayout(a.op, l);

  auto out = empty(DType::F32, x->shape);
  TensorPtr ws = workspace(cuda::fakeQuantRangeBackwardWorkspaceBytes(layout));
  SSQL_CUDA(cuda::fakeQuantRangeBackward(g->f32(), x->f32(), out->f32(), scale->f32(), zp->data<int32_t>(), mn->f32(),
                                         mx->f32(), amin->data<int32_t>(), amax->data<int32_t>(), enabled, layout,
                                         l.axis >= 0, static_cast<int32_t>(qmin), static_cast<int32_t>(qmax), symmetric,
                                         dataOf(ws), cuda::stream()));
  return wrap(a.env(), out);
}

// aminmax_(x, min, max, argmin, argmax, axis, accumulate)
SSQL_OP(aminmax_) {
  auto x = f32Arg(a, 0, "x");
  auto mnT = f32Arg(a, 1, "min");
  auto mxT = f32Arg(a, 2, "max");
  auto aminT = a.optTensor(3, "argmin");
  auto amaxT = a.optTensor(4, "argmax");
  ChannelLayout l = layoutArg(a, 5, *x);
  bool accumulate = a.boolean(6, "accumulate");
  const int64_t C = l.channels, n = x->numel();
  if (n == 0 || l.outer * l.inner == 0)
    throw RangeError(std::string(a.op) + "(): cannot observe an empty tensor of shape " + shapeStr(x->shape));
  // The kernels keep flat indices in int32 and need n < INT32_MAX (the CPU op accepts n == INT32_MAX).
  if (n >= INT32_MAX) throw RangeError(std::string(a.op) + "(): tensors above 2^31 elements are not supported");
  requireNumel(a.op, "min", *mnT, C);
  requireNumel(a.op, "max", *mxT, C);
  if (static_cast<bool>(aminT) != static_cast<bool>(amaxT))
    throw TypeError(std::string(a.op) + "(): give both argmin and argmax, or neither");
  if (aminT) {
    requireDtype(a.op, "argmin", *aminT, DType::I32);
    requireDtype(a.op, "argmax", *amaxT, DType::I32);
    requireNumel(a.op, "argmin", *aminT, C);
    requireNumel(a.op, "argmax", *amaxT, C);
  }
  cuda::QuantLayout layout = deviceLayout(a.op, l);
  TensorPtr ws = workspace(cuda::aminmaxWorkspaceBytes(layout));
  SSQL_CUDA(cuda::aminmax(x->f32(), mnT->f32(), mxT->f32(), aminT ? aminT->data<int32_t>() : nullptr,
                          amaxT ? amaxT->data<int32_t>() : nullptr, layout, accumulate, dataOf(ws), cuda::stream()));
  return a.env().Undefined();
}

SSQL_OP(emaUpdate_) {
  auto dst = f32Arg(a, 0, "dst");
  auto src = f32Arg(a, 1, "src");
  requireSameShape(a.op, *dst, *src);
  double m = momentumArg(a, 2);
  SSQL_CUDA(cuda::emaUpdate(dst->f32(), src->f32(), dst->numel(), m, cuda::stream()));
  return a.env().Undefined();
}

// calcQParams(min, max, bits, symmetric) -> [scale f32, zeroPoint i32, enabled i32 [1]]
SSQL_OP(calcQParams) {
  auto mnT = f32Arg(a, 0, "min");
  auto mxT = f32Arg(a, 1, "max");
  requireSameShape(a.op, *mnT, *mxT);
  const int bits = bitsArg(a, 2);
  bool symmetric = a.boolean(3, "symmetric");
  auto scale = empty(DType::F32, mnT->shape);
  auto zp = empty(DType::I32, mnT->shape);
  auto enabled = empty(DType::I32, {1});
  SSQL_CUDA(cuda::calcQParams(mnT->f32(), mxT->f32(), scale->f32(), zp->data<int32_t>(), enabled->data<int32_t>(),
                              mnT->numel(), bits, symmetric, cuda::stream()));
  return wrapMany(a.env(), {scale, zp, enabled});
}
