// Color and blur steps of the augmentation, on float planes in [0, 1]. The formulas are torchvision's
// functional-tensor ones for float images (transforms/_functional_tensor.py); the blur is PIL's.
// Lets GCC if-convert float compares and conversions (no code here relies on FP traps), so the loops vectorize.
#pragma GCC optimize("no-trapping-math")

#include <algorithm>
#include <cmath>
#include <vector>

#include "augment.h"

namespace ssql {
namespace aug {

namespace {
inline float clamp01(float x) { return std::min(std::max(x, 0.0f), 1.0f); }
// torchvision's rgb_to_grayscale weights (not PIL's 0.299).
inline float luma(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }
}  // namespace

void adjustBrightness(float* r, float* g, float* b, int64_t n, float f) {
  for (float* p : {r, g, b})
    for (int64_t i = 0; i < n; ++i) p[i] = clamp01(f * p[i]);
}

void adjustContrast(float* r, float* g, float* b, int64_t n, float f) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += luma(r[i], g[i], b[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float bias = (1.0f - f) * mean;
  for (float* p : {r, g, b})
    for (int64_t i = 0; i < n; ++i) p[i] = clamp01(f * p[i] + bias);
}

void adjustSaturation(float* r, float* g, float* b, int64_t n, float f) {
  const float k = 1.0f - f;
  for (int64_t i = 0; i < n; ++i) {
    const float l = k * luma(r[i], g[i], b[i]);
    r[i] = clamp01(f * r[i] + l);
    g[i] = clamp01(f * g[i] + l);
    b[i] = clamp01(f * b[i] + l);
  }
}

// torchvision's _rgb2hsv, the shift modulo 1, and _hsv2rgb written as the equivalent branch-free
// v - v s clamp(min(k, 4 - k), 0, 1) per channel, so the loop vectorizes.
void adjustHue(float* r, float* g, float* b, int64_t n, float f) {
  for (int64_t i = 0; i < n; ++i) {
    const float R = r[i], G = g[i], B = b[i];
    const float maxc = std::max(R, std::max(G, B));
    const float minc = std::min(R, std::min(G, B));
    // Masks as numbers, as torchvision writes them; where maxc == minc, cr = 0 and s and h come out 0.
    const float eqc = static_cast<float>(maxc == minc);
    const float cr = maxc - minc;
    const float s = cr / (maxc + eqc);
    const float inv = 1.0f / (cr + eqc);
    const float rc = (maxc - R) * inv, gc = (maxc - G) * inv, bc = (maxc - B) * inv;
    const float isR = static_cast<float>(maxc == R);
    const float isG = static_cast<float>(maxc == G) * (1.0f - isR);
    const float isB = (1.0f - isR) * (1.0f - static_cast<float>(maxc == G));
    const float h = isR * (bc - gc) + isG * (2.0f + rc - bc) + isB * (4.0f + gc - rc);
    float x = h / 6.0f + 1.0f;                  // in (5/6, 2): fmod(x, 1) = x - trunc(x)
    x -= static_cast<float>(static_cast<int>(x));
    x += f;                                      // in [-0.5, 1.5): Python's % 1.0 = x - floor(x)
    const float tx = static_cast<float>(static_cast<int>(x));
    x -= tx > x ? tx - 1.0f : tx;
    const float h6 = x * 6.0f;
    const float vs = maxc * s;
    float k = 5.0f + h6;
    k = k >= 6.0f ? k - 6.0f : k;
    float m = std::max(std::min(std::min(k, 4.0f - k), 1.0f), 0.0f);
    r[i] = maxc - vs * m;
    k = 3.0f + h6;
    k = k >= 6.0f ? k - 6.0f : k;
    m = std::max(std::min(std::min(k, 4.0f - k), 1.0f), 0.0f);
    g[i] = maxc - vs * m;
    k = 1.0f + h6;
    k = k >= 6.0f ? k - 6.0f : k;
    m = std::max(std::min(std::min(k, 4.0f - k), 1.0f), 0.0f);
    b[i] = maxc - vs * m;
  }
}

void toGrayscale(float* r, float* g, float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float l = luma(r[i], g[i], b[i]);
    r[i] = g[i] = b[i] = l;
  }
}

namespace {

// PIL's _gaussian_blur_radius (libImaging/BoxBlur.c): the box radius whose `passes` repetitions have
// the variance of a Gaussian of standard deviation `radius`.
float boxRadius(float radius, int passes) {
  float sigma2 = radius * radius / passes;
  float L = static_cast<float>(std::sqrt(12.0 * sigma2 + 1.0));
  float l = static_cast<float>(std::floor((L - 1.0) / 2.0));
  float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  return l + a;
}

}  // namespace

void gaussianBlurPil(float* plane, int h, int w, float radius) {
  constexpr int kPasses = 3;
  const float R = boxRadius(radius, kPasses);
  if (!(R > 0)) return;
  const int r = static_cast<int>(R);
  // Extended box: 2r+1 full taps and one fractional tap at each end (PIL's ww and fw).
  const float ww = 1.0f / (2.0f * R + 1.0f);
  const float fw = (1.0f - (2 * r + 1) * ww) / 2.0f;
  const int taps = 2 * r + 3, pad = r + 1;
  std::vector<float> k(taps, ww);
  k.front() = k.back() = fw;

  thread_local std::vector<float> tmp, line;
  tmp.resize(static_cast<size_t>(h) * w);
  line.resize(static_cast<size_t>(std::max(w, h)) + 2 * pad);
  float* src = plane;
  float* dst = tmp.data();

  for (int pass = 0; pass < kPasses; ++pass) {  // horizontal
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
  for (int pass = 0; pass < kPasses; ++pass) {  // vertical
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
