// Per-pixel, per-row and per-coefficient math of the batch augmentation (augmentBatch), shared by the CPU op
// (native/cpu/augment*.cc) and the CUDA kernels (native/cuda/augment_kernels.cu), so both compute the same bits.
// No N-API, no allocation: plain inline functions and the parameter-record layout.
//
// Bit-identical results need the same float operations in the same order on both sides:
//   - no multiply-add contraction: the CPU files set fp-contract=off, augment_kernels.cu is compiled with
//     --fmad=false (native/CMakeLists.txt, scripts/build-cuda-plain.sh);
//   - sums in a fixed order: resampling taps left to right from 0.0f; the contrast mean (a per-image reduction) in
//     double, each row left to right, then the row sums top to bottom (lumaRowSum, then meanOfRows);
//   - IEEE division and square root (nvcc's defaults, no --use_fast_math).
// Hamming and Lanczos weights call sin/cos, whose last bit may differ between glibc and CUDA's libdevice; the
// other filters are plain arithmetic.
#pragma once

#include <math.h>
#include <stdint.h>

#include "host_device.h"

namespace ssql {
namespace aug {

// Layout of one parameter record (float64); lib/tensor/native/data.ts mirrors these indices.
enum Field : int {
  kSrc = 0,        // index of the source image
  kTop, kHeight,   // source rows that may be read: [top, top + height)
  kLeft, kWidth,   // source columns that may be read
  kOffY, kScaleY,  // output row i samples around offY + (i + 0.5) * scaleY, relative to top
  kOffX, kScaleX,
  kFlags,          // bit set of Flag
  kBrightness, kContrast, kSaturation, kHue,  // jitter factors (NaN: that adjustment is off)
  kOrder0, kOrder1, kOrder2, kOrder3,         // jitter order: 0 brightness, 1 contrast, 2 saturation, 3 hue
  kSigma,          // blur radius (PIL ImageFilter.GaussianBlur(radius))
  kRecord = 20
};

enum Flag : int { kHFlip = 1, kVFlip = 2, kJitter = 4, kGrayscale = 8, kBlur = 16 };

enum class Filter : int { Bilinear, Bicubic, Box, Hamming, Lanczos };

enum Jitter : int { kBrightnessOp = 0, kContrastOp = 1, kSaturationOp = 2, kHueOp = 3 };

// One source image, uint8 HWC with c = 1 or 3 (a host or a device pointer, as the backend's tensors).
struct SourceImage {
  const uint8_t* data;
  int h, w, c;
};

// What every record of a batch shares.
struct Settings {
  int outH, outW;
  Filter filter;
  float mean[3], invStd[3];
};

// As std::min / std::max (the second argument wins only when strictly smaller / larger).
SSQL_HD float minf(float a, float b) { return b < a ? b : a; }
SSQL_HD float maxf(float a, float b) { return a < b ? b : a; }
SSQL_HD float clamp01(float x) { return minf(maxf(x, 0.0f), 1.0f); }

// ---- resampling (PIL's precompute_coeffs, libImaging/Resample.c)

SSQL_HD double filterSupport(Filter f) {
  switch (f) {
    case Filter::Bicubic: return 2.0;
    case Filter::Box: return 0.5;
    case Filter::Lanczos: return 3.0;
    default: return 1.0;  // bilinear, hamming
  }
}

SSQL_HD double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= 3.14159265358979323846;
  return sin(x) / x;
}

SSQL_HD double filterWeight(Filter f, double x) {
  switch (f) {
    case Filter::Bilinear:
      x = fabs(x);
      return x < 1.0 ? 1.0 - x : 0.0;
    case Filter::Bicubic: {  // PIL's a = -0.5; torch's antialiased bicubic uses the same kernel
      const double a = -0.5;
      x = fabs(x);
      if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
      if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
      return 0.0;
    }
    case Filter::Box:
      return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
    case Filter::Hamming:
      x = fabs(x);
      if (x == 0.0) return 1.0;
      if (x >= 1.0) return 0.0;
      x *= 3.14159265358979323846;
      return sin(x) / x * (0.54 + 0.46 * cos(x));
    case Filter::Lanczos:
      return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0;
  }
  return 0.0;
}

// Taps per output sample when resampling with `scale` input pixels per output pixel.
SSQL_HD int resampleTaps(Filter f, double scale) {
  const double filterscale = scale > 1.0 ? scale : 1.0;
  return static_cast<int>(ceil(filterSupport(f) * filterscale)) * 2 + 1;
}

// Output sample i of one axis reads inputs [*start, *start + *count) with weights k[0 .. *count), premultiplied by
// `gain`; `taps` is resampleTaps(f, scale), which bounds *count.
SSQL_HD void resampleCoeffs(Filter f, int inSize, double off, double scale, int i, int taps, double gain, int* start,
                            int* count, float* k) {
  const double filterscale = scale > 1.0 ? scale : 1.0;
  const double support = filterSupport(f) * filterscale;
  const double ss = 1.0 / filterscale;
  const double center = off + (i + 0.5) * scale;
  int lo = static_cast<int>(center - support + 0.5);
  lo = lo > 0 ? lo : 0;
  int hi = static_cast<int>(center + support + 0.5);
  int n = (hi < inSize ? hi : inSize) - lo;
  // A window that misses the region entirely (only possible for odd offsets) reads its nearest edge pixel.
  if (n <= 0) {
    lo = static_cast<int>(center);
    lo = lo > 0 ? lo : 0;
    lo = lo < inSize - 1 ? lo : inSize - 1;
    n = 1;
  }
  n = n < taps ? n : taps;
  double total = 0.0;
  for (int t = 0; t < n; ++t) total += filterWeight(f, (t + lo - center + 0.5) * ss);
  if (total == 0.0) {  // no weight inside the window: the first pixel alone
    k[0] = static_cast<float>(gain);
    for (int t = 1; t < n; ++t) k[t] = 0.0f;
  } else {
    for (int t = 0; t < n; ++t) k[t] = static_cast<float>(filterWeight(f, (t + lo - center + 0.5) * ss) / total * gain);
  }
  *start = lo;
  *count = n;
}

// ---- color (torchvision's functional-tensor formulas for float images)

// torchvision's rgb_to_grayscale weights (not PIL's 0.299).
SSQL_HD float luma(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }

SSQL_HD float brightness(float x, float f) { return clamp01(f * x); }

// Contrast blends with the image's mean luma: x -> clamp(f x + (1 - f) mean).
SSQL_HD double lumaRowSum(const float* r, const float* g, const float* b, int w) {
  double s = 0;
  for (int x = 0; x < w; ++x) s += luma(r[x], g[x], b[x]);
  return s;
}
SSQL_HD float meanOfRows(const double* rowSums, int h, int w) {
  double s = 0;
  for (int y = 0; y < h; ++y) s += rowSums[y];
  return static_cast<float>(s / (static_cast<double>(h) * w));
}
SSQL_HD float contrastBias(float f, float mean) { return (1.0f - f) * mean; }
SSQL_HD float contrast(float x, float f, float bias) { return clamp01(f * x + bias); }

SSQL_HD void saturation(float& r, float& g, float& b, float f) {
  const float l = (1.0f - f) * luma(r, g, b);
  r = clamp01(f * r + l);
  g = clamp01(f * g + l);
  b = clamp01(f * b + l);
}

// torchvision's _hsv2rgb channel as the equivalent branch-free v - v s clamp(min(k, 4 - k), 0, 1).
SSQL_HD float hsvChannel(float v, float vs, float h6, float n) {
  float k = n + h6;
  k = k >= 6.0f ? k - 6.0f : k;
  return v - vs * maxf(minf(minf(k, 4.0f - k), 1.0f), 0.0f);
}

// torchvision's _rgb2hsv, the hue shift modulo 1, and _hsv2rgb.
SSQL_HD void hue(float& r, float& g, float& b, float f) {
  const float R = r, G = g, B = b;
  const float maxc = maxf(R, maxf(G, B));
  const float minc = minf(R, minf(G, B));
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
  float x = h / 6.0f + 1.0f;  // in (5/6, 2): fmod(x, 1) = x - trunc(x)
  x -= static_cast<float>(static_cast<int>(x));
  x += f;  // in [-0.5, 1.5): Python's % 1.0 = x - floor(x)
  const float tx = static_cast<float>(static_cast<int>(x));
  x -= tx > x ? tx - 1.0f : tx;
  const float h6 = x * 6.0f;
  const float vs = maxc * s;
  r = hsvChannel(maxc, vs, h6, 5.0f);
  g = hsvChannel(maxc, vs, h6, 3.0f);
  b = hsvChannel(maxc, vs, h6, 1.0f);
}

// ---- blur (PIL's GaussianBlur(radius), libImaging/BoxBlur.c): three passes of an extended box per axis

constexpr int kBlurPasses = 3;

// The extended box: 2r+1 full taps of weight ww and one tap of weight fw at each end (taps = 2r+3, centred).
struct BoxBlur {
  bool active;
  int r;
  float ww, fw;
};

// PIL's _gaussian_blur_radius: the box radius whose three repetitions have the variance of a Gaussian of
// standard deviation `radius`.
SSQL_HD BoxBlur boxBlur(float radius) {
  const float sigma2 = radius * radius / kBlurPasses;
  const float L = static_cast<float>(sqrt(12.0 * sigma2 + 1.0));
  const float l = static_cast<float>(floor((L - 1.0) / 2.0));
  float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  const float R = l + a;
  BoxBlur b{R > 0, 0, 0.0f, 0.0f};
  if (!b.active) return b;
  b.r = static_cast<int>(R);
  b.ww = 1.0f / (2.0f * R + 1.0f);
  b.fw = (1.0f - (2 * b.r + 1) * b.ww) / 2.0f;
  return b;
}
SSQL_HD int blurTaps(const BoxBlur& b) { return 2 * b.r + 3; }
SSQL_HD float blurTap(const BoxBlur& b, int t) { return t == 0 || t == 2 * b.r + 2 ? b.fw : b.ww; }

// One output sample of one pass along a line of n samples spaced `stride` apart, edges replicated.
SSQL_HD float blurSample(const BoxBlur& b, const float* line, int n, int64_t stride, int i) {
  const int taps = blurTaps(b), pad = b.r + 1;
  float acc = 0;
  for (int t = 0; t < taps; ++t) {
    int j = i - pad + t;
    j = j < 0 ? 0 : (j > n - 1 ? n - 1 : j);
    acc += blurTap(b, t) * line[j * stride];
  }
  return acc;
}

// ToTensor then Normalize.
SSQL_HD float normalize(float x, float mean, float invStd) { return (x - mean) * invStd; }

}  // namespace aug
}  // namespace ssql
