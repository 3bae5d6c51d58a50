// 2-D max pooling over NCHW with argmax indices (int32, flat index into each input plane), as PyTorch's
// max_pool2d_with_indices: implicit -inf padding, floor output size, NaN wins.
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "../core/binding.h"
#include "../core/pooling_args.h"
#include "parallel.h"

using namespace ssql;

SSQL_OP(maxPool2d) {
  parse::MaxPool2dArgs m = parse::maxPool2dArgs(a);
  const TensorPtr &x = m.x, &y = m.y, &idx = m.indices;
  const int64_t N = m.N, C = m.C, H = m.H, W = m.W, OH = m.OH, OW = m.OW;
  const int64_t kh = m.KH, kw = m.KW, sh = m.SH, sw = m.SW, ph = m.PH, pw = m.PW;
  const float* px = x->f32();
  float* py = y->f32();
  int32_t* pi = idx->data<int32_t>();
  parallelForIf(N * C * OH * OW * kh * kw >= 16384, N * C, [&](int64_t plane) {
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
  });
  return wrapMany(a.env(), {y, idx});
}

SSQL_OP(maxPool2dBackward) {
  parse::MaxPool2dBackwardArgs m = parse::maxPool2dBackwardArgs(a);
  const TensorPtr &gy = m.gy, &idx = m.indices, &gx = m.gx;
  const int64_t HW = m.HW, OHW = m.OHW, planes = m.planes;
  float* pgx = gx->f32();
  const float* pg = gy->f32();
  const int32_t* pi = idx->data<int32_t>();
  if (gx->bytes()) std::memset(pgx, 0, gx->bytes());
  std::atomic<bool> bad{false};
  parallelForIf(planes * OHW >= 16384, planes, [&](int64_t plane) {
    float* dst = pgx + plane * HW;
    for (int64_t o = 0; o < OHW; ++o) {
      int32_t j = pi[plane * OHW + o];
      if (j < 0 || j >= HW) {
        bad.store(true, std::memory_order_relaxed);
        continue;
      }
      dst[j] += pg[plane * OHW + o];
    }
  });
  if (bad) throw RangeError("maxPool2dBackward(): an index lies outside the input plane");
  return wrap(a.env(), gx);
}
