// Color and blur steps of the augmentation, on float planes in [0, 1]. The formulas are torchvision's
// functional-tensor ones for float images (transforms/_functional_tensor.py); the blur is PIL's. The arithmetic
// is core/augment_math.h's, shared with the CUDA kernels; the loops here are laid out for the CPU's vector units.
// Lets GCC if-convert float compares and conversions (no code here relies on FP traps), so the loops vectorize;
// no multiply-add contraction, as the CUDA build (--fmad=false).
#pragma GCC optimize("no-trapping-math", "fp-contract=off")

#include <algorithm>
#include <vector>

#include "augment.h"

namespace ssql {
namespace aug {

void adjustBrightness(float* r, float* g, float* b, int64_t n, float f) {
  for (float* p : {r, g, b})
    for (int64_t i = 0; i < n; ++i) p[i] = brightness(p[i], f);
}

void adjustContrast(float* r, float* g, float* b, int h, int w, float f) {
  thread_local std::vector<double> rows;
  rows.resize(h);
  for (int y = 0; y < h; ++y) {
    const int64_t o = static_cast<int64_t>(y) * w;
    rows[y] = lumaRowSum(r + o, g + o, b + o, w);
  }
  const float bias = contrastBias(f, meanOfRows(rows.data(), h, w));
  const int64_t n = static_cast<int64_t>(h) * w;
  for (float* p : {r, g, b})
    for (int64_t i = 0; i < n; ++i) p[i] = contrast(p[i], f, bias);
}

void adjustSaturation(float* r, float* g, float* b, int64_t n, float f) {
  for (int64_t i = 0; i < n; ++i) saturation(r[i], g[i], b[i], f);
}

void adjustHue(float* r, float* g, float* b, int64_t n, float f) {
  for (int64_t i = 0; i < n; ++i) hue(r[i], g[i], b[i], f);
}

void toGrayscale(float* r, float* g, float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) r[i] = g[i] = b[i] = luma(r[i], g[i], b[i]);
}

// Same sums as blurSample (taps in order from 0), with the tap loop outside so the pixel loop vectorizes.
void gaussianBlurPil(float* plane, int h, int w, float radius) {
  const BoxBlur bb = boxBlur(radius);
  if (!bb.active) return;
  const int taps = blurTaps(bb), pad = bb.r + 1;
  std::vector<float> k(taps);
  for (int t = 0; t < taps; ++t) k[t] = blurTap(bb, t);

  thread_local std::vector<float> tmp, line;
  tmp.resize(static_cast<size_t>(h) * w);
  line.resize(static_cast<size_t>(std::max(w, h)) + 2 * pad);
  float* src = plane;
  float* dst = tmp.data();

  for (int pass = 0; pass < kBlurPasses; ++pass) {  // horizontal
    for (int y = 0; y < h; ++y) {
      const float* in = src + static_cast<size_t>(y) * w;
      float* out = dst + static_cast<size_t>(y) * w;
      for (int x = 0; x < pad; ++x) line[x] = in[0];
      std::copy(in, in + w, line.data() + pad);
      for (int x = 0; x < pad; ++x) line[pad + w + x] = in[w - 1];
      for (int x = 0; x < w; ++x) out[x] = 0;
      for (int t = 0; t < taps; ++t) {
        const float kt = k[t];
        const float* l = line.data() + t;
        for (int x = 0; x < w; ++x) out[x] += kt * l[x];
      }
    }
    std::swap(src, dst);
  }
  for (int pass = 0; pass < kBlurPasses; ++pass) {  // vertical
    for (int y = 0; y < h; ++y) {
      float* out = dst + static_cast<size_t>(y) * w;
      for (int x = 0; x < w; ++x) out[x] = 0;
      for (int t = 0; t < taps; ++t) {
        const int yy = std::min(std::max(y - pad + t, 0), h - 1);
        const float kt = k[t];
        const float* in = src + static_cast<size_t>(yy) * w;
        for (int x = 0; x < w; ++x) out[x] += kt * in[x];
      }
    }
    std::swap(src, dst);
  }
  // Six passes: the result is back in `plane`.
  if (src != plane) std::copy(src, src + static_cast<size_t>(h) * w, plane);
}

}  // namespace aug
}  // namespace ssql
