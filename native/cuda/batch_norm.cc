// Batch norm over [N, C] or [N, C, H, W] on CUDA with PyTorch's semantics (argument checks as the CPU backend's).
// Own kernels rather than cuDNN's: eval-mode backward, optional affine parameters and 2-D inputs need no special
// cases, and per-channel sums accumulate in double as on the CPU.
#include <string>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

namespace {

// x viewed as [N, C, S] with S = H * W (1 for 2-D input).
struct Planes {
  int64_t N, C, S;
};

Planes planesOf(const char* op, const Tensor& x) {
  if (x.dim() != 2 && x.dim() != 4)
    throw RangeError(std::string(op) + "(): input must be [N, C] or [N, C, H, W], got " + shapeStr(x.shape));
  return {x.shape[0], x.shape[1], x.dim() == 4 ? x.shape[2] * x.shape[3] : 1};
}

TensorPtr channelVector(const Args& a, size_t i, const char* name, int64_t C, bool optional) {
  auto t = optional ? a.optTensor(i, name) : a.tensor(i, name);
  if (!t) return t;
  requireDtype(a.op, name, *t, DType::F32);
  requireShape(a.op, name, *t, {C});
  return t;
}

float* ptr(const TensorPtr& t) { return t ? t->f32() : nullptr; }

// Per-channel sums (2 doubles per channel) and the scratch their kernel needs.
struct ChannelSums {
  TensorPtr sums, scratch;
  double* data() const { return static_cast<double*>(sums->storage->data); }
};

ChannelSums channelSums(cuda::ChannelSums mode, const float* x, const float* gy, const float* mean, const Planes& p) {
  ChannelSums r;
  r.sums = empty(DType::U8, {p.C * 2 * static_cast<int64_t>(sizeof(double))});
  size_t scratchBytes = cuda::channelSumsScratchBytes(p.N, p.C, p.S);
  if (scratchBytes) r.scratch = empty(DType::U8, {static_cast<int64_t>(scratchBytes)});
  cuda::channelSums(mode, x, gy, mean, p.N, p.C, p.S, r.data(), r.scratch ? r.scratch->storage->data : nullptr,
                    cuda::stream());
  return r;
}

}  // namespace

SSQL_OP(batchNorm) {
  auto x = f32Arg(a, 0, "x");
  Planes p = planesOf(a.op, *x);
  auto weight = channelVector(a, 1, "weight", p.C, true);
  auto bias = channelVector(a, 2, "bias", p.C, true);
  auto runMean = channelVector(a, 3, "runningMean", p.C, true);
  auto runVar = channelVector(a, 4, "runningVar", p.C, true);
  bool training = a.boolean(5, "training");
  double momentum = a.number(6, "momentum");
  double eps = a.number(7, "eps");
  if (!runMean != !runVar) throw TypeError("batchNorm(): runningMean and runningVar must be given together");
  if (!(eps >= 0.0)) throw RangeError("batchNorm(): eps must be >= 0");
  if (!(momentum >= 0.0 && momentum <= 1.0)) throw RangeError("batchNorm(): momentum must be in [0, 1]");
  if (!training && !runMean) throw RangeError("batchNorm(): eval mode needs runningMean and runningVar");
  int64_t M = p.N * p.S;
  if (training && M <= 1)
    throw RangeError("batchNorm(): expected more than 1 value per channel when training, got input " + shapeStr(x->shape));

  auto y = empty(DType::F32, x->shape);
  auto mean = empty(DType::F32, {p.C});
  auto invStd = empty(DType::F32, {p.C});
  auto coef = empty(DType::F32, {2, p.C});  // scale, shift
  float* scale = coef->f32();
  float* shift = scale + p.C;
  cudaStream_t s = cuda::stream();
  if (training) {
    ChannelSums sums = channelSums(cuda::ChannelSums::Moments, x->f32(), nullptr, nullptr, p);
    cuda::batchNormFinalizeTrain(sums.data(), p.C, M, static_cast<float>(eps), static_cast<float>(momentum), ptr(runMean),
                                 ptr(runVar), ptr(weight), ptr(bias), mean->f32(), invStd->f32(), scale, shift, s);
  } else {
    cuda::batchNormFinalizeEval(runMean->f32(), runVar->f32(), p.C, static_cast<float>(eps), ptr(weight), ptr(bias),
                                mean->f32(), invStd->f32(), scale, shift, s);
  }
  cuda::channelAffine(x->f32(), mean->f32(), scale, shift, y->f32(), p.N, p.C, p.S, s);
  return wrapMany(a.env(), {y, mean, invStd});
}

// dx = w * invStd * (gy - mean(gy) - xhat * mean(gy * xhat)) when the statistics came from the batch, else
// w * invStd * gy; dWeight = sum(gy * xhat), dBias = sum(gy).
SSQL_OP(batchNormBackward) {
  auto gy = f32Arg(a, 0, "gy");
  auto x = f32Arg(a, 1, "x");
  Planes p = planesOf(a.op, *x);
  requireSameShape(a.op, *gy, *x);
  auto weight = channelVector(a, 2, "weight", p.C, true);
  auto mean = channelVector(a, 3, "mean", p.C, false);
  auto invStd = channelVector(a, 4, "invStd", p.C, false);
  bool training = a.boolean(5, "training");
  bool withAffine = a.boolean(6, "withAffine");

  auto dx = empty(DType::F32, x->shape);
  auto dw = withAffine ? empty(DType::F32, {p.C}) : nullptr;
  auto db = withAffine ? empty(DType::F32, {p.C}) : nullptr;
  cudaStream_t s = cuda::stream();
  ChannelSums sums;
  if (training || withAffine) {
    sums = channelSums(cuda::ChannelSums::BackwardTerms, x->f32(), gy->f32(), mean->f32(), p);
    cuda::batchNormBackwardParams(sums.data(), invStd->f32(), ptr(dw), ptr(db), p.C, s);
  }
  cuda::batchNormBackwardData(gy->f32(), x->f32(), ptr(weight), mean->f32(), invStd->f32(),
                              sums.sums ? sums.data() : nullptr, p.N, p.C, p.S, training, dx->f32(), s);
  return wrapMany(a.env(), {dx, dw, db});
}
