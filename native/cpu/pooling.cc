// 2-D max pooling over NCHW with argmax indices (int32, flat index into each input plane), as PyTorch's
// max_pool2d_with_indices: implicit -inf padding, floor output size, NaN wins.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "../core/binding.h"
#include "../core/nn_args.h"

using namespace ssql;

SSQL_OP(maxPool2d) {
  auto x = a.tensor(0, "x");
  requireDtype(a.op, "x", *x, DType::F32);
  requireDim(a.op, "x", *x, 4);
  auto [kh, kw] = pairArg(a, 1, "kernel", 1);
  auto [sh, sw] = pairArg(a, 2, "stride", 1);
  auto [ph, pw] = pairArg(a, 3, "padding", 0);
  if (2 * ph > kh || 2 * pw > kw) throw RangeError("maxPool2d(): padding must be at most half the kernel size");
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (H < 1 || W < 1) throw RangeError("maxPool2d(): input planes must be non-empty, got " + shapeStr(x->shape));
  if (H + 2 * ph < kh || W + 2 * pw < kw)
    throw RangeError("maxPool2d(): kernel is larger than the padded input " + shapeStr(x->shape));
  int64_t OH = (H + 2 * ph - kh) / sh + 1, OW = (W + 2 * pw - kw) / sw + 1;
  if (H * W > std::numeric_limits<int32_t>::max()) throw RangeError("maxPool2d(): input plane too large for int32 indices");
  auto y = empty(DType::F32, {N, C, OH, OW});
  auto idx = empty(DType::I32, {N, C, OH, OW});
  const float* px = x->f32();
  float* py = y->f32();
  int32_t* pi = idx->data<int32_t>();
#pragma omp parallel for schedule(static) if (N * C * OH * OW * kh * kw >= 16384)
  for (int64_t plane = 0; plane < N * C; ++plane) {
    const float* xp = px + plane * H * W;
    for (int64_t oh = 0; oh < OH; ++oh) {
      int64_t h0 = oh * sh - ph, h1 = std::min(h0 + kh, H);
      h0 = std::max<int64_t>(h0, 0);
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t w0 = ow * sw - pw, w1 = std::min(w0 + kw, W);
        w0 = std::max<int64_t>(w0, 0);
        float best = -std::numeric_limits<float>::infinity();
        int64_t bi = h0 * W + w0;
        for (int64_t h = h0; h < h1 && !std::isnan(best); ++h)
          for (int64_t w = w0; w < w1; ++w) {
            float v = xp[h * W + w];
            if (v > best || std::isnan(v)) {
              best = v;
              bi = h * W + w;
              if (std::isnan(v)) break;
            }
          }
        int64_t o = (plane * OH + oh) * OW + ow;
        py[o] = best;
        pi[o] = static_cast<int32_t>(bi);
      }
    }
  }
  return wrapMany(a.env(), {y, idx});
}

SSQL_OP(maxPool2dBackward) {
  auto gy = a.tensor(0, "gy");
  auto idx = a.tensor(1, "indices");
  requireDtype(a.op, "gy", *gy, DType::F32);
  requireDtype(a.op, "indices", *idx, DType::I32);
  requireDim(a.op, "gy", *gy, 4);
  requireSameShape(a.op, *gy, *idx);
  Shape xs = a.ints(2, "xShape");
  if (xs.size() != 4) throw RangeError("maxPool2dBackward(): xShape must be [N, C, H, W]");
  for (int64_t d : xs)
    if (d < 0) throw RangeError("maxPool2dBackward(): xShape has a negative dimension");
  if (xs[0] != gy->shape[0] || xs[1] != gy->shape[1])
    throw RangeError("maxPool2dBackward(): gy " + shapeStr(gy->shape) + " does not match xShape " + shapeStr(xs));
  int64_t HW = xs[2] * xs[3], OHW = gy->shape[2] * gy->shape[3], planes = xs[0] * xs[1];
  auto gx = empty(DType::F32, xs);
  float* pgx = gx->f32();
  const float* pg = gy->f32();
  const int32_t* pi = idx->data<int32_t>();
  if (gx->bytes()) std::memset(pgx, 0, gx->bytes());
  bool bad = false;
#pragma omp parallel for schedule(static) reduction(|| : bad) if (planes * OHW >= 16384)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* dst = pgx + plane * HW;
    for (int64_t o = 0; o < OHW; ++o) {
      int32_t j = pi[plane * OHW + o];
      if (j < 0 || j >= HW) {
        bad = true;
        continue;
      }
      dst[j] += pg[plane * OHW + o];
    }
  }
  if (bad) throw RangeError("maxPool2dBackward(): an index lies outside the input plane");
  return wrap(a.env(), gx);
}
