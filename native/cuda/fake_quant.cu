// CUDA kernels of the quantization ops; launchers declared in fake_quant.h. Same bits as the CPU ops: the
// per-element formulas come from core/fake_quant_math.h (rintf on the device; x / scale by __fdiv_rn, IEEE
// round-to-nearest division, or x * (1 / scale) by __fmul_rn, as the op's rounding argument says).
// Elementwise kernels are grid-stride loops with float4 / uchar4 accesses where alignment and the channel layout
// allow, and 32-bit index arithmetic below 2^30 elements (the channel of an element costs a division per access).
// The range backward gives each channel one block where that fills the GPU: one launch, no atomics.
#include <climits>
#include <cstdint>

#include "../core/fake_quant_math.h"
#include "fake_quant.h"
#include "quant_reduce.cuh"

namespace ssql {
namespace cuda {

namespace {

using namespace quant_reduce;

inline int gridFor(int64_t work, int perThread = 1) {
  int64_t blocks = (work + int64_t(kThreads) * perThread - 1) / (int64_t(kThreads) * perThread);
  if (blocks < 1) blocks = 1;
  return blocks > 65535 ? 65535 : static_cast<int>(blocks);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }
inline bool aligned4(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 3) == 0; }

__device__ __forceinline__ bool isOn(const int32_t* enabled) { return enabled == nullptr || *enabled != 0; }

template <bool kPerChannel, bool kDivide>
__device__ __forceinline__ float fqOne(float x, float s, float inv, float z, float qmin, float qmax, uint8_t& m) {
  return kPerChannel ? fq::perChannel(x, s, inv, z, qmin, qmax, kDivide, m)
                     : fq::perTensor(x, s, inv, z, qmin, qmax, kDivide, m);
}

// ---- fake quant forward ----

template <bool kPerChannel, bool kMask, bool kDivide, typename I>
__global__ void fakeQuantScalarKernel(const float* __restrict__ x, float* __restrict__ out, uint8_t* __restrict__ mask,
                                      const float* __restrict__ scale, const int32_t* __restrict__ zp,
                                      const int32_t* __restrict__ enabled, I n, I channels, I inner, float qmin,
                                      float qmax) {
  const bool on = isOn(enabled);
  const I stride = I(gridDim.x) * blockDim.x;
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if (!on) {
      out[i] = x[i];
      if (kMask) mask[i] = 1;
      continue;
    }
    const I c = channels == 1 ? 0 : (i / inner) % channels;
    const float s = __ldg(scale + c), inv = 1.0f / s, z = static_cast<float>(__ldg(zp + c));
    uint8_t m;
    out[i] = fqOne<kPerChannel, kDivide>(x[i], s, inv, z, qmin, qmax, m);
    if (kMask) mask[i] = m;
  }
}

// Four elements per step; requires 16-byte aligned x/out, 4-byte aligned mask, and groups of 4 inside one channel.
template <bool kPerChannel, bool kMask, bool kDivide, typename I>
__global__ void fakeQuantVec4Kernel(const float4* __restrict__ x, float4* __restrict__ out, uchar4* __restrict__ mask,
                                    const float* __restrict__ scale, const int32_t* __restrict__ zp,
                                    const int32_t* __restrict__ enabled, I n4, I channels, I inner, float qmin,
                                    float qmax) {
  const bool on = isOn(enabled);
  const I stride = I(gridDim.x) * blockDim.x;
  for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 v = x[i];
    if (!on) {
      out[i] = v;
      if (kMask) mask[i] = make_uchar4(1, 1, 1, 1);
      continue;
    }
    const I c = channels == 1 ? 0 : ((i * 4) / inner) % channels;
    const float s = __ldg(scale + c), inv = 1.0f / s, z = static_cast<float>(__ldg(zp + c));
    uchar4 m;
    float4 r;
    r.x = fqOne<kPerChannel, kDivide>(v.x, s, inv, z, qmin, qmax, m.x);
    r.y = fqOne<kPerChannel, kDivide>(v.y, s, inv, z, qmin, qmax, m.y);
    r.z = fqOne<kPerChannel, kDivide>(v.z, s, inv, z, qmin, qmax, m.z);
    r.w = fqOne<kPerChannel, kDivide>(v.w, s, inv, z, qmin, qmax, m.w);
    out[i] = r;
    if (kMask) mask[i] = m;
  }
}

template <bool kPerChannel, bool kMask, bool kDivide, typename I>
void launchForwardAs(const float* x, float* out, uint8_t* mask, const float* scale, const int32_t* zp,
                     const int32_t* enabled, QuantLayout l, float qmin, float qmax, cudaStream_t stream) {
  const int64_t n = l.numel();
  const bool vec = (l.channels == 1 || l.inner % 4 == 0) && aligned16(x) && aligned16(out) && (!kMask || aligned4(mask));
  int64_t done = 0;
  if (vec && n >= 4) {
    const int64_t n4 = n / 4;
    fakeQuantVec4Kernel<kPerChannel, kMask, kDivide, I><<<gridFor(n4), kThreads, 0, stream>>>(
        reinterpret_cast<const float4*>(x), reinterpret_cast<float4*>(out), reinterpret_cast<uchar4*>(mask), scale, zp,
        enabled, I(n4), I(l.channels), I(l.inner), qmin, qmax);
    done = n4 * 4;
  }
  if (done < n) {
    // Per tensor: the tail after the float4 part. Per channel the float4 path needs inner % 4 == 0, which leaves no
    // tail, so here done == 0 and the scalar kernel covers everything.
    const int64_t rest = n - done;
    fakeQuantScalarKernel<kPerChannel, kMask, kDivide, I><<<gridFor(rest), kThreads, 0, stream>>>(
        x + done, out + done, kMask ? mask + done : nullptr, scale, zp, enabled, I(rest), I(l.channels),
        I(l.channels == 1 ? rest : l.inner), qmin, qmax);
  }
}

template <bool kPerChannel, bool kMask, bool kDivide>
cudaError_t launchForward(const float* x, float* out, uint8_t* mask, const float* scale, const int32_t* zp,
                          const int32_t* enabled, QuantLayout l, float qmin, float qmax, cudaStream_t stream) {
  if (l.numel() == 0) return cudaSuccess;
  // Grid-stride indices stay below n + 65535 * kThreads, so 32 bits hold them for n < 2^30.
  if (l.numel() < (int64_t{1} << 30))
    launchForwardAs<kPerChannel, kMask, kDivide, uint32_t>(x, out, mask, scale, zp, enabled, l, qmin, qmax, stream);
  else
    launchForwardAs<kPerChannel, kMask, kDivide, int64_t>(x, out, mask, scale, zp, enabled, l, qmin, qmax, stream);
  return cudaGetLastError();
}

// ---- masked backward ----

__global__ void maskedGradKernel(const float* __restrict__ g, const uint8_t* __restrict__ m, float* __restrict__ dx,
                                 int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dx[i] = g[i] * static_cast<float>(m[i]);
}

__global__ void maskedGradVec4Kernel(const float4* __restrict__ g, const uchar4* __restrict__ m, float4* __restrict__ dx,
                                     int64_t n4) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 v = g[i];
    const uchar4 k = m[i];
    dx[i] = make_float4(v.x * static_cast<float>(k.x), v.y * static_cast<float>(k.y), v.z * static_cast<float>(k.z),
                        v.w * static_cast<float>(k.w));
  }
}

// ---- range backward (SSQL's weight-scale gradient) ----

// dx of one element, with its term of the channel's scale-gradient sum added to `acc`.
template <bool kPerChannel>
__device__ __forceinline__ float rangeGradOne(float g, float x, float s, float inv, float z, float qmin, float qmax,
                                              bool divide, double& acc) {
  const float y = fq::quotient(x, s, inv, divide);
  const float v = z + fq::roundHalfEven(y);
  const float m = fq::inRange(v, qmin, qmax) ? 1.0f : 0.0f;
  const float cq = kPerChannel ? fq::clampRangeInt64(v, qmin, qmax) : fq::clampRange(v, qmin, qmax);
  acc += static_cast<double>(g * ((cq - z) - m * y));
  return g * m;
}

struct RangeRoute {
  const float* mn;
  const float* mx;
  const int32_t* argmin;
  const int32_t* argmax;
  int64_t channels, inner, n;
  double span;
  bool symmetric;
};

// Adds channel c's scale term (from its sum) to dx at the channel's argmin / argmax. An index outside channel c
// is skipped: the CPU op rejects it, and checking here would need a read-back.
template <bool kAtomic>
__device__ __forceinline__ void routeScaleGrad(float* __restrict__ dx, double sum, int64_t c, const RangeRoute& r) {
  auto add = [&](int32_t i, double v) {
    if (i < 0 || i >= r.n || (i / r.inner) % r.channels != c) return;
    if (kAtomic)
      atomicAdd(dx + i, static_cast<float>(v));
    else
      dx[i] += static_cast<float>(v);
  };
  const float mn = r.mn[c], mx = r.mx[c];
  if (r.symmetric) {
    const double t = sum / (r.span / 2.0);
    const float am = fabsf(mn), ax = fabsf(mx);
    if (am != am || ax != ax) return;
    const double wMin = am > ax ? 1.0 : (am < ax ? 0.0 : 0.5);
    const double sMin = mn > 0.0f ? 1.0 : (mn < 0.0f ? -1.0 : 0.0);
    const double sMax = mx > 0.0f ? 1.0 : (mx < 0.0f ? -1.0 : 0.0);
    if (wMin > 0.0) add(r.argmin[c], t * wMin * sMin);
    if (wMin < 1.0) add(r.argmax[c], t * (1.0 - wMin) * sMax);
  } else {
    const double t = sum / r.span;
    add(r.argmax[c], t);
    add(r.argmin[c], -t);
  }
}

// One block per channel: dx, the channel's sum and its routing in one launch. Requires g, x, dx 16-byte aligned and
// inner % 4 == 0 for vec4.
template <bool kPerChannel>
__global__ void rangeBackwardChannelKernel(const float* __restrict__ g, const float* __restrict__ x,
                                           float* __restrict__ dx, const float* __restrict__ scale,
                                           const int32_t* __restrict__ zp, const int32_t* __restrict__ enabled,
                                           RangeRoute route, int64_t outer, float qmin, float qmax, bool vec4,
                                           bool divide) {
  const int64_t c = blockIdx.x, channels = route.channels, inner = route.inner;
  const bool on = isOn(enabled);
  const float s = __ldg(scale + c), inv = 1.0f / s, z = static_cast<float>(__ldg(zp + c));
  double acc = 0.0;
  for (int64_t o = 0; o < outer; ++o) {
    const int64_t base = (o * channels + c) * inner;
    if (vec4) {
      for (int64_t k = int64_t(threadIdx.x) * 4; k < inner; k += int64_t(blockDim.x) * 4) {
        const float4 gv = *reinterpret_cast<const float4*>(g + base + k);
        float4 r = gv;
        if (on) {
          const float4 xv = __ldg(reinterpret_cast<const float4*>(x + base + k));
          r.x = rangeGradOne<kPerChannel>(gv.x, xv.x, s, inv, z, qmin, qmax, divide, acc);
          r.y = rangeGradOne<kPerChannel>(gv.y, xv.y, s, inv, z, qmin, qmax, divide, acc);
          r.z = rangeGradOne<kPerChannel>(gv.z, xv.z, s, inv, z, qmin, qmax, divide, acc);
          r.w = rangeGradOne<kPerChannel>(gv.w, xv.w, s, inv, z, qmin, qmax, divide, acc);
        }
        *reinterpret_cast<float4*>(dx + base + k) = r;
      }
    } else {
      for (int64_t k = threadIdx.x; k < inner; k += blockDim.x) {
        const int64_t i = base + k;
        dx[i] = on ? rangeGradOne<kPerChannel>(g[i], __ldg(x + i), s, inv, z, qmin, qmax, divide, acc) : g[i];
      }
    }
  }
  if (!on) return;  // the same for every thread of the block
  acc = blockSum(acc);
  if (threadIdx.x == 0) routeScaleGrad<false>(dx, acc, c, route);
}

// Several blocks per channel (grid (blocks, channels)): dx and per-channel sums by atomics; rangeRouteKernel follows.
template <bool kPerChannel>
__global__ void rangeGradKernel(const float* __restrict__ g, const float* __restrict__ x, float* __restrict__ dx,
                                const float* __restrict__ scale, const int32_t* __restrict__ zp,
                                const int32_t* __restrict__ enabled, double* __restrict__ sums, int64_t channels,
                                int64_t inner, int64_t perChannel, float qmin, float qmax, bool divide) {
  const int64_t c = blockIdx.y;
  const bool on = isOn(enabled);
  const float s = __ldg(scale + c), inv = 1.0f / s, z = static_cast<float>(__ldg(zp + c));
  double acc = 0.0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const bool contiguous = perChannel == inner;  // outer == 1: the channel is one row, no index division
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < perChannel; k += stride) {
    const int64_t i = contiguous ? c * inner + k : channelElement(k, c, channels, inner);
    dx[i] = on ? rangeGradOne<kPerChannel>(g[i], x[i], s, inv, z, qmin, qmax, divide, acc) : g[i];
  }
  acc = blockSum(acc);
  if (threadIdx.x == 0 && on) atomicAdd(sums + c, acc);
}

__global__ void rangeRouteKernel(float* __restrict__ dx, const double* __restrict__ sums,
                                 const int32_t* __restrict__ enabled, RangeRoute route) {
  if (!isOn(enabled)) return;
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c < route.channels) routeScaleGrad<true>(dx, sums[c], c, route);
}

}  // namespace

template <bool kDivide>
cudaError_t forwardAs(const float* x, float* out, uint8_t* mask, const float* scale, const int32_t* zeroPoint,
                      const int32_t* enabled, QuantLayout layout, bool perChannel, float qmin, float qmax,
                      cudaStream_t stream) {
  if (perChannel)
    return mask ? launchForward<true, true, kDivide>(x, out, mask, scale, zeroPoint, enabled, layout, qmin, qmax, stream)
                : launchForward<true, false, kDivide>(x, out, mask, scale, zeroPoint, enabled, layout, qmin, qmax, stream);
  return mask ? launchForward<false, true, kDivide>(x, out, mask, scale, zeroPoint, enabled, layout, qmin, qmax, stream)
              : launchForward<false, false, kDivide>(x, out, mask, scale, zeroPoint, enabled, layout, qmin, qmax, stream);
}

cudaError_t fakeQuantForward(const float* x, float* out, uint8_t* mask, const float* scale, const int32_t* zeroPoint,
                             const int32_t* enabled, QuantLayout layout, bool perChannel, int32_t quantMin,
                             int32_t quantMax, bool divide, cudaStream_t stream) {
  const float qmin = static_cast<float>(quantMin), qmax = static_cast<float>(quantMax);
  return divide ? forwardAs<true>(x, out, mask, scale, zeroPoint, enabled, layout, perChannel, qmin, qmax, stream)
                : forwardAs<false>(x, out, mask, scale, zeroPoint, enabled, layout, perChannel, qmin, qmax, stream);
}

cudaError_t fakeQuantBackward(const float* grad, const uint8_t* mask, float* dx, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  int64_t done = 0;
  if (n >= 4 && aligned16(grad) && aligned16(dx) && aligned4(mask)) {
    const int64_t n4 = n / 4;
    maskedGradVec4Kernel<<<gridFor(n4), kThreads, 0, stream>>>(reinterpret_cast<const float4*>(grad),
                                                                 reinterpret_cast<const uchar4*>(mask),
                                                                 reinterpret_cast<float4*>(dx), n4);
    done = n4 * 4;
  }
  if (done < n) maskedGradKernel<<<gridFor(n - done), kThreads, 0, stream>>>(grad + done, mask + done, dx + done, n - done);
  return cudaGetLastError();
}

size_t fakeQuantRangeBackwardWorkspaceBytes(QuantLayout layout) {
  if (blockPerChannel(layout.channels, layout.outer * layout.inner)) return 0;
  return static_cast<size_t>(layout.channels) * sizeof(double);
}

cudaError_t fakeQuantRangeBackward(const float* grad, const float* x, float* dx, const float* scale,
                                   const int32_t* zeroPoint, const float* min, const float* max, const int32_t* argmin,
                                   const int32_t* argmax, const int32_t* enabled, QuantLayout layout, bool perChannel,
                                   int32_t quantMin, int32_t quantMax, bool symmetric, bool divide, void* workspace,
                                   cudaStream_t stream) {
  const int64_t per = layout.outer * layout.inner;
  if (layout.numel() == 0) return cudaSuccess;
  if (layout.channels > 65535) return cudaErrorInvalidValue;
  const RangeRoute route{min,          max, argmin, argmax, layout.channels, layout.inner, layout.numel(),
                         static_cast<double>(quantMax) - static_cast<double>(quantMin), symmetric};
  const float qmin = static_cast<float>(quantMin), qmax = static_cast<float>(quantMax);
  const auto channels = static_cast<unsigned>(layout.channels);
  if (blockPerChannel(layout.channels, per)) {
    const bool vec4 = layout.inner % 4 == 0 && aligned16(grad) && aligned16(x) && aligned16(dx);
    if (perChannel)
      rangeBackwardChannelKernel<true><<<channels, kThreads, 0, stream>>>(grad, x, dx, scale, zeroPoint, enabled, route,
                                                                         layout.outer, qmin, qmax, vec4, divide);
    else
      rangeBackwardChannelKernel<false><<<channels, kThreads, 0, stream>>>(grad, x, dx, scale, zeroPoint, enabled, route,
                                                                          layout.outer, qmin, qmax, vec4, divide);
    return cudaGetLastError();
  }
  double* sums = static_cast<double*>(workspace);
  cudaError_t err = cudaMemsetAsync(sums, 0, fakeQuantRangeBackwardWorkspaceBytes(layout), stream);
  if (err != cudaSuccess) return err;
  int64_t bx = (per + kThreads * 8 - 1) / (kThreads * 8);
  const int64_t cap = layout.channels >= 256 ? 4 : 1024;
  dim3 grid(static_cast<unsigned>(bx < 1 ? 1 : (bx > cap ? cap : bx)), channels);
  if (perChannel)
    rangeGradKernel<true><<<grid, kThreads, 0, stream>>>(grad, x, dx, scale, zeroPoint, enabled, sums, layout.channels,
                                                         layout.inner, per, qmin, qmax, divide);
  else
    rangeGradKernel<false><<<grid, kThreads, 0, stream>>>(grad, x, dx, scale, zeroPoint, enabled, sums, layout.channels,
                                                          layout.inner, per, qmin, qmax, divide);
  rangeRouteKernel<<<(channels + 127) / 128, 128, 0, stream>>>(dx, sums, enabled, route);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace ssql
