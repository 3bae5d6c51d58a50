// Kernels of 2-D max pooling (native/cpu/pooling.cc): the forward with argmax indices and the backward scatter.
#include <cmath>
#include <cstdint>

#include "grid.cuh"
#include "kernels.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

__global__ void maxPool2dKernel(const float* __restrict__ x, float* __restrict__ y, int32_t* __restrict__ indices,
                                int64_t total, int64_t h, int64_t w, int64_t oh, int64_t ow, int kh, int kw, int sh,
                                int sw, int ph, int pw) {
  for (int64_t o = globalIndex(); o < total; o += globalStride()) {
    int64_t plane = o / (oh * ow);
    int64_t r = o % (oh * ow);
    int64_t oy = r / ow, ox = r % ow;
    int64_t hs = oy * sh - ph, ws = ox * sw - pw;
    int64_t he = min(hs + kh, h), we = min(ws + kw, w);
    hs = max(hs, int64_t(0));
    ws = max(ws, int64_t(0));
    const float* xp = x + plane * h * w;
    float best = -INFINITY;
    int64_t bi = hs * w + ws;
    // First maximum wins; the first NaN wins outright (as the CPU backend).
    for (int64_t yy = hs; yy < he && !isnan(best); ++yy)
      for (int64_t xx = ws; xx < we; ++xx) {
        float v = xp[yy * w + xx];
        if (v > best || isnan(v)) {
          best = v;
          bi = yy * w + xx;
          if (isnan(v)) break;
        }
      }
    y[o] = best;
    indices[o] = static_cast<int32_t>(bi);
  }
}

__global__ void maxPool2dBackwardKernel(const float* __restrict__ gy, const int32_t* __restrict__ indices,
                                        float* __restrict__ dx, int64_t total, int64_t inPlane, int64_t outPlane) {
  for (int64_t o = globalIndex(); o < total; o += globalStride()) {
    int32_t j = indices[o];
    if (j >= 0 && j < inPlane) atomicAdd(&dx[(o / outPlane) * inPlane + j], gy[o]);
  }
}

}  // namespace

void maxPool2d(const float* x, float* y, int32_t* indices, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
               int kh, int kw, int sh, int sw, int ph, int pw, cudaStream_t s) {
  int64_t total = planes * oh * ow;
  if (total <= 0) return;
  maxPool2dKernel<<<blocksFor(total), kThreads, 0, s>>>(x, y, indices, total, h, w, oh, ow, kh, kw, sh, sw, ph, pw);
  checkCuda(cudaGetLastError(), "maxPool2d kernel");
}

void maxPool2dBackward(const float* gy, const int32_t* indices, float* dx, int64_t planes, int64_t inPlane,
                       int64_t outPlane, cudaStream_t s) {
  fillF32(dx, 0.0f, planes * inPlane, s);
  int64_t total = planes * outPlane;
  if (total <= 0) return;
  maxPool2dBackwardKernel<<<blocksFor(total), kThreads, 0, s>>>(gy, indices, dx, total, inPlane, outPlane);
  checkCuda(cudaGetLastError(), "maxPool2dBackward kernel");
}

}  // namespace cuda
}  // namespace ssql
