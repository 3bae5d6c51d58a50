// The range-observer ops (lib/tensor/native/quant.ts: mseRange, topkAbs_, percentileRange, absHistogram_, klRange,
// gaussianRange) on CUDA: the CPU ops' argument checks (core/observer_args.h) in front of the launchers of
// range_observers.cu. Nothing is read back; klRange's bins-versus-bits check needs the range's sign, which the
// caller (lib/quant/observers/kl_histogram.ts) checks before calling (the CPU op also raises).
#include <string>

#include "../core/binding.h"
#include "../core/observer_args.h"
#include "range_observers.h"
#include "runtime.h"

using namespace ssql;
using namespace ssql::quant;

namespace {

cuda::QuantLayout layoutOf(const ChannelLayout& l) { return {l.outer, l.channels, l.inner}; }
TensorPtr scratch(size_t bytes) { return bytes ? empty(DType::U8, {static_cast<int64_t>(bytes)}) : nullptr; }
void* dataOf(const TensorPtr& t) { return t ? t->storage->data : nullptr; }

}  // namespace

SSQL_OP(mseRange) {
  MseRangeArgs q = mseRangeArgs(a);
  const bool perTensor = q.layout.axis < 0;
  TensorPtr ws = scratch(cuda::mseRangeWorkspaceBytes(layoutOf(q.layout), perTensor));
  SSQL_CUDA(cuda::mseRange(q.x->f32(), layoutOf(q.layout), perTensor, q.bits, q.min->f32(), q.max->f32(), dataOf(ws),
                           cuda::stream()));
  return wrapMany(a.env(), {q.min, q.max});
}

SSQL_OP(topkAbs_) {
  TopkAbsArgs q = topkAbsArgs(a);
  TensorPtr ws = scratch(cuda::topkAbsWorkspaceBytes(layoutOf(q.layout), q.k));
  SSQL_CUDA(cuda::topkAbs(q.x->f32(), q.buf->f32(), layoutOf(q.layout), q.k, q.accumulate, dataOf(ws), cuda::stream()));
  return a.env().Undefined();
}

SSQL_OP(percentileRange) {
  PercentileRangeArgs q = percentileRangeArgs(a);
  SSQL_CUDA(cuda::percentileRange(q.min->f32(), q.max->f32(), q.buf->f32(), q.min->numel(), q.buf->shape[1], q.cut,
                                  q.outMin->f32(), q.outMax->f32(), cuda::stream()));
  return wrapMany(a.env(), {q.outMin, q.outMax});
}

SSQL_OP(absHistogram_) {
  AbsHistogramArgs q = absHistogramArgs(a);
  SSQL_CUDA(cuda::absHistogram(q.x->f32(), q.hist->data<int32_t>(), q.min->f32(), q.max->f32(), layoutOf(q.layout), q.bins,
                               cuda::stream()));
  return a.env().Undefined();
}

SSQL_OP(klRange) {
  KlRangeArgs q = klRangeArgs(a);
  const int64_t C = q.min->numel();
  TensorPtr ws = scratch(cuda::klRangeWorkspaceBytes(C, q.bins, q.bits));
  SSQL_CUDA(cuda::klRange(q.hist->data<int32_t>(), q.min->f32(), q.max->f32(), C, q.bins, q.bits, q.outMin->f32(),
                          q.outMax->f32(), dataOf(ws), cuda::stream()));
  return wrapMany(a.env(), {q.outMin, q.outMax});
}

SSQL_OP(gaussianRange) {
  GaussianRangeArgs q = gaussianRangeArgs(a);
  SSQL_CUDA(cuda::gaussianRange(q.x->f32(), layoutOf(q.layout), q.alpha, q.min->f32(), q.max->f32(), cuda::stream()));
  return wrapMany(a.env(), {q.min, q.max});
}
