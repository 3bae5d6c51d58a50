// Batch norm over [N, C] or [N, C, H, W] on CUDA with PyTorch's semantics (argument checks as the CPU backend's).
// Own kernels rather than cuDNN's: eval-mode backward, optional affine parameters and 2-D inputs need no special
// cases, and per-channel sums accumulate in double as on the CPU.
#include <string>

#include "../core/batch_norm_args.h"
#include "../core/binding.h"
#include "../core/quant_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

namespace {

using parse::Planes;

float* ptr(const TensorPtr& t) { return t ? t->f32() : nullptr; }

// Per-channel sums (2 doubles per channel) and the scratch their kernel needs.
struct ChannelSums {
  TensorPtr sums, scratch;
  double* data() const { return static_cast<double*>(sums->storage->data); }
};

ChannelSums channelSums(cuda::ChannelSums mode, const float* x, const float* gy, const float* reluOut, const float* mean,
                        const Planes& p) {
  ChannelSums r;
  r.sums = empty(DType::U8, {p.C * 2 * static_cast<int64_t>(sizeof(double))});
  size_t scratchBytes = cuda::channelSumsScratchBytes(p.N, p.C, p.S);
  if (scratchBytes) r.scratch = empty(DType::U8, {static_cast<int64_t>(scratchBytes)});
  cuda::channelSums(mode, x, gy, reluOut, mean, p.N, p.C, p.S, r.data(), r.scratch ? r.scratch->storage->data : nullptr,
                    cuda::stream());
  return r;
}

}  // namespace

SSQL_OP(batchNorm) {
  quant::rejectFusedFakeQuant(a, 10);
  parse::BatchNormArgs b = parse::batchNormArgs(a);
  const Planes& p = b.p;
  const TensorPtr &x = b.x, &mean = b.mean, &invStd = b.invStd;
  auto coef = empty(DType::F32, {2, p.C});  // scale, shift
  float* scale = coef->f32();
  float* shift = scale + p.C;
  cudaStream_t s = cuda::stream();
  if (b.training) {
    ChannelSums sums = channelSums(cuda::ChannelSums::Moments, x->f32(), nullptr, nullptr, nullptr, p);
    cuda::batchNormFinalizeTrain(sums.data(), p.C, p.count(), static_cast<float>(b.eps), static_cast<float>(b.momentum),
                                 ptr(b.runningMean), ptr(b.runningVar), ptr(b.weight), ptr(b.bias), mean->f32(),
                                 invStd->f32(), scale, shift, s);
  } else {
    cuda::batchNormFinalizeEval(b.runningMean->f32(), b.runningVar->f32(), p.C, static_cast<float>(b.eps), ptr(b.weight),
                                ptr(b.bias), mean->f32(), invStd->f32(), scale, shift, s);
  }
  cuda::channelAffine(x->f32(), mean->f32(), scale, shift, b.y->f32(), p.N, p.C, p.S, b.relu, s);
  // The output range is a CPU-side fusion; here the observer runs its own reduction (range null).
  return wrapMany(a.env(), {b.y, mean, invStd, nullptr, nullptr});
}

// dx = w * invStd * (gy - mean(gy) - xhat * mean(gy * xhat)) when the statistics came from the batch, else
// w * invStd * gy; dWeight = sum(gy * xhat), dBias = sum(gy).
SSQL_OP(batchNormBackward) {
  parse::BatchNormBackwardArgs b = parse::batchNormBackwardArgs(a);
  if (b.reluOut && b.reluOut->dtype != DType::F32)
    throw RangeError("batchNormBackward(): a fused fake quant's mask as the gate runs on the CPU only");
  const Planes& p = b.p;
  cudaStream_t s = cuda::stream();
  ChannelSums sums;
  if (b.training || b.withAffine) {
    sums = channelSums(cuda::ChannelSums::BackwardTerms, b.x->f32(), b.gy->f32(), ptr(b.reluOut), b.mean->f32(), p);
    cuda::batchNormBackwardParams(sums.data(), b.invStd->f32(), ptr(b.dw), ptr(b.db), p.C, s);
  }
  cuda::batchNormBackwardData(b.gy->f32(), ptr(b.reluOut), b.x->f32(), ptr(b.weight), b.mean->f32(), b.invStd->f32(),
                              sums.sums ? sums.data() : nullptr, p.N, p.C, p.S, b.training, b.dx->f32(), s);
  return wrapMany(a.env(), {b.dx, b.dw, b.db});
}
