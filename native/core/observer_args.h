// Argument checks of the range-observer ops (MSE, PERCENTILE, KL_HISTOGRAM, GAUSSIAN), shared by both addons
// (native/cpu/range_observers.cc, native/cuda/range_observer_ops.cc) so that a bad call gets the same error.
#pragma once

#include <string>

#include "quant_args.h"

namespace ssql {
namespace quant {

inline void requireObservable(const char* op, const Tensor& x, const ChannelLayout& l) {
  if (x.numel() == 0 || l.outer * l.inner == 0)
    throw RangeError(std::string(op) + "(): cannot observe an empty tensor of shape " + shapeStr(x.shape));
  if (x.numel() > (int64_t(1) << 31) - 2) throw RangeError(std::string(op) + "(): tensors above 2^31 elements are not supported");
}

// mseRange(x, axis, bits) -> [min f32 [C], max f32 [C]]
struct MseRangeArgs {
  TensorPtr x, min, max;
  ChannelLayout layout;
  int bits;
};

inline MseRangeArgs mseRangeArgs(const Args& a) {
  MseRangeArgs q;
  q.x = f32Arg(a, 0, "x");
  q.layout = layoutArg(a, 1, *q.x);
  requireObservable(a.op, *q.x, q.layout);
  q.bits = bitsArg(a, 2);
  q.min = empty(DType::F32, {q.layout.channels});
  q.max = empty(DType::F32, {q.layout.channels});
  return q;
}

// topkAbs_(x, buf, axis, accumulate): buf f32 [C, k] keeps the k largest |x| of each channel (with its own when
// accumulating).
struct TopkAbsArgs {
  TensorPtr x, buf;
  ChannelLayout layout;
  int64_t k;
  bool accumulate;
};

inline TopkAbsArgs topkAbsArgs(const Args& a) {
  TopkAbsArgs q;
  q.x = f32Arg(a, 0, "x");
  q.buf = f32Arg(a, 1, "buf", 2);
  q.layout = layoutArg(a, 2, *q.x);
  requireObservable(a.op, *q.x, q.layout);
  q.accumulate = a.boolean(3, "accumulate");
  if (q.buf->shape[0] != q.layout.channels)
    throw RangeError(std::string(a.op) + "(): 'buf' must have " + std::to_string(q.layout.channels) + " rows, got shape " + shapeStr(q.buf->shape));
  q.k = q.buf->shape[1];
  const int64_t per = q.layout.outer * q.layout.inner;
  if (q.k < 1 || q.k > per)
    throw RangeError(std::string(a.op) + "(): k = " + std::to_string(q.k) + " must lie in 1.." + std::to_string(per) +
                     " (the values per channel of this tensor)");
  return q;
}

// percentileRange(min, max, buf, cut) -> [min, max]
struct PercentileRangeArgs {
  TensorPtr min, max, buf, outMin, outMax;
  bool cut;
};

inline PercentileRangeArgs percentileRangeArgs(const Args& a) {
  PercentileRangeArgs q;
  q.min = f32Arg(a, 0, "min");
  q.max = f32Arg(a, 1, "max");
  requireSameShape(a.op, *q.min, *q.max);
  q.buf = f32Arg(a, 2, "buf", 2);
  if (q.buf->shape[0] != q.min->numel() || q.buf->shape[1] < 1)
    throw RangeError(std::string(a.op) + "(): 'buf' must be [" + std::to_string(q.min->numel()) + ", k >= 1], got " + shapeStr(q.buf->shape));
  q.cut = a.boolean(3, "cut");
  q.outMin = empty(DType::F32, q.min->shape);
  q.outMax = empty(DType::F32, q.min->shape);
  return q;
}

// absHistogram_(x, hist, min, max, axis): hist i32 [C, bins] += torch.histc(|x_c|, bins, -th_c, th_c) with
// th_c = max(|min_c|, |max_c|).
struct AbsHistogramArgs {
  TensorPtr x, hist, min, max;
  ChannelLayout layout;
  int64_t bins;
};

inline AbsHistogramArgs absHistogramArgs(const Args& a) {
  AbsHistogramArgs q;
  q.x = f32Arg(a, 0, "x");
  q.hist = i32(a, 1, "hist");
  requireDim(a.op, "hist", *q.hist, 2);
  q.min = f32Arg(a, 2, "min");
  q.max = f32Arg(a, 3, "max");
  q.layout = layoutArg(a, 4, *q.x);
  requireObservable(a.op, *q.x, q.layout);
  const int64_t C = q.layout.channels;
  if (q.hist->shape[0] != C || q.hist->shape[1] < 1)
    throw RangeError(std::string(a.op) + "(): 'hist' must be [" + std::to_string(C) + ", bins >= 1], got " + shapeStr(q.hist->shape));
  requireNumel(a.op, "min", *q.min, C);
  requireNumel(a.op, "max", *q.max, C);
  q.bins = q.hist->shape[1];
  return q;
}

// klRange(hist, min, max, bits) -> [min, max]
struct KlRangeArgs {
  TensorPtr hist, min, max, outMin, outMax;
  int bits;
  int64_t bins;
};

inline KlRangeArgs klRangeArgs(const Args& a) {
  KlRangeArgs q;
  q.hist = i32(a, 0, "hist");
  requireDim(a.op, "hist", *q.hist, 2);
  q.min = f32Arg(a, 1, "min");
  q.max = f32Arg(a, 2, "max");
  requireSameShape(a.op, *q.min, *q.max);
  if (q.hist->shape[0] != q.min->numel() || q.hist->shape[1] < 1)
    throw RangeError(std::string(a.op) + "(): 'hist' must be [" + std::to_string(q.min->numel()) + ", bins >= 1], got " + shapeStr(q.hist->shape));
  q.bits = bitsArg(a, 3);
  if (q.bits > 14) throw RangeError(std::string(a.op) + "(): bits must lie in 1..14, got " + std::to_string(q.bits));
  q.bins = q.hist->shape[1];
  q.outMin = empty(DType::F32, q.min->shape);
  q.outMax = empty(DType::F32, q.min->shape);
  return q;
}

// gaussianRange(x, axis, alpha) -> [min, max]
struct GaussianRangeArgs {
  TensorPtr x, min, max;
  ChannelLayout layout;
  float alpha;
};

inline GaussianRangeArgs gaussianRangeArgs(const Args& a) {
  GaussianRangeArgs q;
  q.x = f32Arg(a, 0, "x");
  q.layout = layoutArg(a, 1, *q.x);
  requireObservable(a.op, *q.x, q.layout);
  q.alpha = static_cast<float>(a.number(2, "alpha"));
  q.min = empty(DType::F32, {q.layout.channels});
  q.max = empty(DType::F32, {q.layout.channels});
  return q;
}

}  // namespace quant
}  // namespace ssql
