// CUDA kernels of the quantization ops; launchers declared in fake_quant.h. Same bits as the CPU ops: the
// per-element formulas come from core/fake_quant_math.h (rintf on the device, fp32 reciprocal of the scale).
// Elementwise kernels are grid-stride loops with float4 / uchar4 accesses where alignment and the channel layout
// allow; reductions use warp shuffles, then one partial per block.
#include <climits>
#include <cstdint>

#include "../core/fake_quant_math.h"
#include "fake_quant.h"

namespace ssql {
namespace cuda {

namespace {

constexpr int kThreads = 256;

inline int gridFor(int64_t work, int perThread = 1) {
  int64_t blocks = (work + int64_t(kThreads) * perThread - 1) / (int64_t(kThreads) * perThread);
  if (blocks < 1) blocks = 1;
  return blocks > 65535 ? 65535 : static_cast<int>(blocks);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }
inline bool aligned4(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 3) == 0; }

__device__ __forceinline__ bool isOn(const int32_t* enabled) { return enabled == nullptr || *enabled != 0; }

template <bool kPerChannel>
__device__ __forceinline__ float fqOne(float x, float s, float inv, float z, float qmin, float qmax, uint8_t& m) {
  return kPerChannel ? fq::perChannel(x, s, inv, z, qmin, qmax, m) : fq::perTensor(x, s, inv, z, qmin, qmax, m);
}

// ---- fake quant forward ----

template <bool kPerChannel, bool kMask>
__global__ void fakeQuantScalarKernel(const float* __restrict__ x, float* __restrict__ out, uint8_t* __restrict__ mask,
                                      const float* __restrict__ scale, const int32_t* __restrict__ zp,
                                      const int32_t* __restrict__ enabled, int64_t n, int64_t channels, int64_t inner,
                                      float qmin, float qmax) {
  const bool on = isOn(enabled);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if (!on) {
      out[i] = x[i];
      if (kMask) mask[i] = 1;
      continue;
    }
    const int64_t c = channels == 1 ? 0 : (i / inner) % channels;
    const float s = __ldg(scale + c), inv = 1.0f / s, z = static_cast<float>(__ldg(zp + c));
    uint8_t m;
    out[i] = fqOne<kPerChannel>(x[i], s, inv, z, qmin, qmax, m);
    if (kMask) mask[i] = m;
  }
}

// Four elements per step; requires 16-byte aligned x/out, 4-byte aligned mask, and groups of 4 inside one channel.
template <bool kPerChannel, bool kMask>
__global__ void fakeQuantVec4Kernel(const float4* __restrict__ x, float4* __restrict__ out, uchar4* __restrict__ mask,
                                    const float* __restrict__ scale, const int32_t* __restrict__ zp,
                                    const int32_t* __restrict__ enabled, int64_t n4, int64_t channels, int64_t inner,
                                    float qmin, float qmax) {
  const bool on = isOn(enabled);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 v = x[i];
    if (!on) {
      out[i] = v;
      if (kMask) mask[i] = make_uchar4(1, 1, 1, 1);
      continue;
    }
    const int64_t c = channels == 1 ? 0 : ((i * 4) / inner) % channels;
    const float s = __ldg(scale + c), inv = 1.0f / s, z = static_cast<float>(__ldg(zp + c));
    uchar4 m;
    float4 r;
    r.x = fqOne<kPerChannel>(v.x, s, inv, z, qmin, qmax, m.x);
    r.y = fqOne<kPerChannel>(v.y, s, inv, z, qmin, qmax, m.y);
    r.z = fqOne<kPerChannel>(v.z, s, inv, z, qmin, qmax, m.z);
    r.w = fqOne<kPerChannel>(v.w, s, inv, z, qmin, qmax, m.w);
    out[i] = r;
    if (kMask) mask[i] = m;
  }
}

template <bool kPerChannel, bool kMask>
cudaError_t launchForward(const float* x, float* out, uint8_t* mask, const float* scale, const int32_t* zp,
                          const int32_t* enabled, QuantLayout l, float qmin, float qmax, cudaStream_t stream) {
  const int64_t n = l.numel();
  if (n == 0) return cudaSuccess;
  const bool vec = (l.channels == 1 || l.inner % 4 == 0) && aligned16(x) && aligned16(out) && (!kMask || aligned4(mask));
  int64_t done = 0;
  if (vec && n >= 4) {
    const int64_t n4 = n / 4;
    fakeQuantVec4Kernel<kPerChannel, kMask><<<gridFor(n4), kThreads, 0, stream>>>(
        reinterpret_cast<const float4*>(x), reinterpret_cast<float4*>(out), reinterpret_cast<uchar4*>(mask), scale, zp,
        enabled, n4, l.channels, l.inner, qmin, qmax);
    done = n4 * 4;
  }
  if (done < n) {
    // Per tensor: the tail after the float4 part. Per channel the float4 path needs inner % 4 == 0, which leaves no
    // tail, so here done == 0 and the scalar kernel covers everything.
    const int64_t rest = n - done;
    fakeQuantScalarKernel<kPerChannel, kMask><<<gridFor(rest), kThreads, 0, stream>>>(
        x + done, out + done, kMask ? mask + done : nullptr, scale, zp, enabled, rest, l.channels,
        l.channels == 1 ? rest : l.inner, qmin, qmax);
  }
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

// ---- warp / block reductions ----

__device__ __forceinline__ double warpSum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

__device__ double blockSum(double v) {
  __shared__ double part[kThreads / 32];
  v = warpSum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) part[warp] = v;
  __syncthreads();
  v = threadIdx.x < blockDim.x / 32 ? part[lane] : 0.0;
  if (warp == 0) v = warpSum(v);
  return v;
}

// Element k of channel c in the [outer, channels, inner] layout (k runs over outer * inner in flat order).
__device__ __forceinline__ int64_t channelElement(int64_t k, int64_t c, int64_t channels, int64_t inner) {
  return ((k / inner) * channels + c) * inner + k % inner;
}

// ---- range backward (SSQL's weight-scale gradient) ----

template <bool kPerChannel>
__global__ void rangeGradKernel(const float* __restrict__ g, const float* __restrict__ x, float* __restrict__ dx,
                                const float* __restrict__ scale, const int32_t* __restrict__ zp,
                                const int32_t* __restrict__ enabled, double* __restrict__ sums, int64_t channels,
                                int64_t inner, int64_t perChannel, float qmin, float qmax) {
  const int64_t c = blockIdx.y;
  const bool on = isOn(enabled);
  const float s = __ldg(scale + c), inv = 1.0f / s, z = static_cast<float>(__ldg(zp + c));
  double acc = 0.0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < perChannel; k += stride) {
    const int64_t i = channelElement(k, c, channels, inner);
    if (!on) {
      dx[i] = g[i];
      continue;
    }
    const float y = __fmul_rn(x[i], inv);
    const float v = z + fq::roundHalfEven(y);
    const float m = fq::inRange(v, qmin, qmax) ? 1.0f : 0.0f;
    const float cq = kPerChannel ? fq::clampRangeInt64(v, qmin, qmax) : fq::clampRange(v, qmin, qmax);
    dx[i] = g[i] * m;
    acc += static_cast<double>(g[i] * ((cq - z) - m * y));
  }
  acc = blockSum(acc);
  if (threadIdx.x == 0 && on) atomicAdd(sums + c, acc);
}

__global__ void rangeRouteKernel(float* __restrict__ dx, const double* __restrict__ sums, const float* __restrict__ mn,
                                 const float* __restrict__ mx, const int32_t* __restrict__ argmin,
                                 const int32_t* __restrict__ argmax, const int32_t* __restrict__ enabled,
                                 int64_t channels, int64_t n, double span, bool symmetric) {
  if (!isOn(enabled)) return;
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  // Indices come from JavaScript; checking them on the host would need a read-back, so bad ones are skipped here
  // (the CPU op throws) rather than written out of bounds.
  const int32_t imin = argmin[c], imax = argmax[c];
  const bool okMin = imin >= 0 && imin < n, okMax = imax >= 0 && imax < n;
  if (symmetric) {
    const double t = sums[c] / (span / 2.0);
    const float am = fabsf(mn[c]), ax = fabsf(mx[c]);
    if (am != am || ax != ax) return;
    const double wMin = am > ax ? 1.0 : (am < ax ? 0.0 : 0.5);
    const double sMin = mn[c] > 0.0f ? 1.0 : (mn[c] < 0.0f ? -1.0 : 0.0);
    const double sMax = mx[c] > 0.0f ? 1.0 : (mx[c] < 0.0f ? -1.0 : 0.0);
    if (wMin > 0.0 && okMin) atomicAdd(dx + imin, static_cast<float>(t * wMin * sMin));
    if (wMin < 1.0 && okMax) atomicAdd(dx + imax, static_cast<float>(t * (1.0 - wMin) * sMax));
  } else {
    const double t = sums[c] / span;
    if (okMax) atomicAdd(dx + imax, static_cast<float>(t));
    if (okMin) atomicAdd(dx + imin, static_cast<float>(-t));
  }
}

// ---- min / max with first indices ----

struct Extreme {
  float mn;
  int32_t imn;
  float mx;
  int32_t imx;
  int32_t inan;  // first NaN position, INT_MAX if none
};

__device__ __forceinline__ Extreme emptyExtreme() {
  return {__int_as_float(0x7f800000), INT_MAX, __int_as_float(0xff800000), INT_MAX, INT_MAX};
}

__device__ __forceinline__ void combine(Extreme& a, const Extreme& b) {
  if (b.mn < a.mn || (b.mn == a.mn && b.imn < a.imn)) {
    a.mn = b.mn;
    a.imn = b.imn;
  }
  if (b.mx > a.mx || (b.mx == a.mx && b.imx < a.imx)) {
    a.mx = b.mx;
    a.imx = b.imx;
  }
  a.inan = min(a.inan, b.inan);
}

__device__ __forceinline__ void warpCombine(Extreme& e) {
  for (int o = 16; o > 0; o >>= 1) {
    Extreme b;
    b.mn = __shfl_down_sync(0xffffffffu, e.mn, o);
    b.imn = __shfl_down_sync(0xffffffffu, e.imn, o);
    b.mx = __shfl_down_sync(0xffffffffu, e.mx, o);
    b.imx = __shfl_down_sync(0xffffffffu, e.imx, o);
    b.inan = __shfl_down_sync(0xffffffffu, e.inan, o);
    combine(e, b);
  }
}

__device__ Extreme blockCombine(Extreme e) {
  __shared__ Extreme part[kThreads / 32];
  warpCombine(e);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) part[warp] = e;
  __syncthreads();
  e = threadIdx.x < blockDim.x / 32 ? part[lane] : emptyExtreme();
  if (warp == 0) warpCombine(e);
  return e;
}

// Grid (blocksPerChannel, channels): each block scans a strided slice of one channel; partial [c][b].
__global__ void aminmaxPartialKernel(const float* __restrict__ x, Extreme* __restrict__ partial, int64_t channels,
                                     int64_t inner, int64_t perChannel, bool vec4) {
  const int64_t c = blockIdx.y;
  Extreme e = emptyExtreme();
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  auto visit = [&](float v, int64_t i) {
    if (v != v) {
      e.inan = min(e.inan, static_cast<int32_t>(i));
      return;
    }
    if (v < e.mn || (v == e.mn && i < e.imn)) {
      e.mn = v;
      e.imn = static_cast<int32_t>(i);
    }
    if (v > e.mx || (v == e.mx && i < e.imx)) {
      e.mx = v;
      e.imx = static_cast<int32_t>(i);
    }
  };
  if (vec4) {  // inner % 4 == 0 and x 16-byte aligned: groups of 4 stay in one channel row
    for (int64_t k4 = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k4 < perChannel / 4; k4 += stride) {
      const int64_t i = channelElement(k4 * 4, c, channels, inner);
      const float4 v = __ldg(reinterpret_cast<const float4*>(x + i));
      visit(v.x, i);
      visit(v.y, i + 1);
      visit(v.z, i + 2);
      visit(v.w, i + 3);
    }
  } else {
    for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < perChannel; k += stride)
      visit(__ldg(x + channelElement(k, c, channels, inner)), channelElement(k, c, channels, inner));
  }
  e = blockCombine(e);
  if (threadIdx.x == 0) partial[c * gridDim.x + blockIdx.x] = e;
}

// One warp per channel folds the block partials, then merges with the buffers as the CPU op does.
__global__ void aminmaxFinalKernel(const Extreme* __restrict__ partial, int blocksPerChannel, float* __restrict__ mn,
                                   float* __restrict__ mx, int32_t* __restrict__ argmin, int32_t* __restrict__ argmax,
                                   int64_t channels, bool accumulate) {
  const int64_t c = blockIdx.x;
  Extreme e = emptyExtreme();
  for (int b = threadIdx.x; b < blocksPerChannel; b += 32) combine(e, partial[c * blocksPerChannel + b]);
  warpCombine(e);
  if (threadIdx.x != 0) return;
  const float nan = __int_as_float(0x7fc00000);
  const bool hasNan = e.inan != INT_MAX;
  const float nmn = hasNan ? nan : e.mn, nmx = hasNan ? nan : e.mx;
  const int32_t imn = hasNan ? e.inan : e.imn, imx = hasNan ? e.inan : e.imx;
  const float omn = mn[c], omx = mx[c];
  if (!accumulate || (omn == omn && (nmn != nmn || nmn < omn))) {
    mn[c] = nmn;
    if (argmin) argmin[c] = imn;
  }
  if (!accumulate || (omx == omx && (nmx != nmx || nmx > omx))) {
    mx[c] = nmx;
    if (argmax) argmax[c] = imx;
  }
}

int blocksPerChannel(QuantLayout l) {
  const int64_t per = l.outer * l.inner;
  int64_t cap = 2048 / (l.channels > 0 ? l.channels : 1);
  if (cap < 1) cap = 1;
  if (cap > 1024) cap = 1024;
  int64_t want = (per + 4 * kThreads * 4 - 1) / (4 * kThreads * 4);
  if (want < 1) want = 1;
  return static_cast<int>(want < cap ? want : cap);
}

// ---- EMA and qparams ----

__global__ void emaKernel(float* __restrict__ dst, const float* __restrict__ src, int64_t n, float km, float kr) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = __fadd_rn(__fmul_rn(km, dst[i]), __fmul_rn(kr, src[i]));
}

__global__ void calcQParamsKernel(const float* __restrict__ mn, const float* __restrict__ mx, float* __restrict__ scale,
                                  int32_t* __restrict__ zp, int32_t* __restrict__ enabled, int64_t channels, int bits,
                                  bool symmetric) {
  int anyNan = 0, anyZero = 0;
  for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) {
    const float s = symmetric ? fq::symmetricScale(mn[c], mx[c], bits) : fq::asymmetricScale(mn[c], mx[c], bits);
    scale[c] = s;
    zp[c] = symmetric ? 0 : fq::asymmetricZeroPoint(mn[c], s);
    anyNan |= s != s;
    anyZero |= s == 0.0f;
  }
  anyNan = __syncthreads_or(anyNan);
  anyZero = __syncthreads_or(anyZero);
  if (threadIdx.x == 0) enabled[0] = (anyNan || !anyZero) ? 1 : 0;
}

}  // namespace

cudaError_t fakeQuantForward(const float* x, float* out, uint8_t* mask, const float* scale, const int32_t* zeroPoint,
                             const int32_t* enabled, QuantLayout layout, bool perChannel, int32_t quantMin,
                             int32_t quantMax, cudaStream_t stream) {
  const float qmin = static_cast<float>(quantMin), qmax = static_cast<float>(quantMax);
  if (perChannel)
    return mask ? launchForward<true, true>(x, out, mask, scale, zeroPoint, enabled, layout, qmin, qmax, stream)
                : launchForward<true, false>(x, out, mask, scale, zeroPoint, enabled, layout, qmin, qmax, stream);
  return mask ? launchForward<false, true>(x, out, mask, scale, zeroPoint, enabled, layout, qmin, qmax, stream)
              : launchForward<false, false>(x, out, mask, scale, zeroPoint, enabled, layout, qmin, qmax, stream);
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
  return static_cast<size_t>(layout.channels) * sizeof(double);
}

cudaError_t fakeQuantRangeBackward(const float* grad, const float* x, float* dx, const float* scale,
                                   const int32_t* zeroPoint, const float* min, const float* max, const int32_t* argmin,
                                   const int32_t* argmax, const int32_t* enabled, QuantLayout layout, bool perChannel,
                                   int32_t quantMin, int32_t quantMax, bool symmetric, void* workspace,
                                   cudaStream_t stream) {
  const int64_t per = layout.outer * layout.inner;
  if (layout.numel() == 0) return cudaSuccess;
  if (layout.channels > 65535) return cudaErrorInvalidValue;
  double* sums = static_cast<double*>(workspace);
  cudaError_t err = cudaMemsetAsync(sums, 0, fakeQuantRangeBackwardWorkspaceBytes(layout), stream);
  if (err != cudaSuccess) return err;
  int64_t bx = (per + kThreads * 8 - 1) / (kThreads * 8);
  const int64_t cap = layout.channels >= 256 ? 4 : 1024;
  dim3 grid(static_cast<unsigned>(bx < 1 ? 1 : (bx > cap ? cap : bx)), static_cast<unsigned>(layout.channels));
  const float qmin = static_cast<float>(quantMin), qmax = static_cast<float>(quantMax);
  if (perChannel)
    rangeGradKernel<true><<<grid, kThreads, 0, stream>>>(grad, x, dx, scale, zeroPoint, enabled, sums, layout.channels,
                                                         layout.inner, per, qmin, qmax);
  else
    rangeGradKernel<false><<<grid, kThreads, 0, stream>>>(grad, x, dx, scale, zeroPoint, enabled, sums, layout.channels,
                                                          layout.inner, per, qmin, qmax);
  rangeRouteKernel<<<static_cast<unsigned>((layout.channels + 127) / 128), 128, 0, stream>>>(
      dx, sums, min, max, argmin, argmax, enabled, layout.channels, layout.numel(),
      static_cast<double>(quantMax) - static_cast<double>(quantMin), symmetric);
  return cudaGetLastError();
}

size_t aminmaxWorkspaceBytes(QuantLayout layout) {
  return static_cast<size_t>(layout.channels) * static_cast<size_t>(blocksPerChannel(layout)) * sizeof(Extreme);
}

cudaError_t aminmax(const float* x, float* min, float* max, int32_t* argmin, int32_t* argmax, QuantLayout layout,
                    bool accumulate, void* workspace, cudaStream_t stream) {
  const int64_t per = layout.outer * layout.inner;
  if (per == 0 || layout.numel() >= INT_MAX || layout.channels > 65535) return cudaErrorInvalidValue;
  const int bpc = blocksPerChannel(layout);
  const bool vec4 = layout.inner % 4 == 0 && aligned16(x);
  Extreme* partial = static_cast<Extreme*>(workspace);
  aminmaxPartialKernel<<<dim3(bpc, static_cast<unsigned>(layout.channels)), kThreads, 0, stream>>>(
      x, partial, layout.channels, layout.inner, per, vec4);
  aminmaxFinalKernel<<<static_cast<unsigned>(layout.channels), 32, 0, stream>>>(partial, bpc, min, max, argmin, argmax,
                                                                                  layout.channels, accumulate);
  return cudaGetLastError();
}

cudaError_t emaUpdate(float* dst, const float* src, int64_t n, double momentum, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  emaKernel<<<gridFor(n), kThreads, 0, stream>>>(dst, src, n, static_cast<float>(momentum),
                                                 static_cast<float>(1.0 - momentum));
  return cudaGetLastError();
}

cudaError_t calcQParams(const float* min, const float* max, float* scale, int32_t* zeroPoint, int32_t* enabled,
                        int64_t channels, int bits, bool symmetric, cudaStream_t stream) {
  if (bits < 1 || bits > 16) return cudaErrorInvalidValue;
  calcQParamsKernel<<<1, kThreads, 0, stream>>>(min, max, scale, zeroPoint, enabled, channels, bits, symmetric);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace ssql
