// Batch image augmentation on the CPU: each output image is one record of per-image parameters drawn in
// TypeScript (lib/data/augment.ts). Images are read as uint8 HWC and written as normalized float32 CHW.
#pragma once

#include <cstdint>

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

// Color operations on three planes of n float pixels in [0, 1] (augment_color.cc), in torchvision's
// functional-tensor formulas for float images.
void adjustBrightness(float* r, float* g, float* b, int64_t n, float f);
void adjustContrast(float* r, float* g, float* b, int64_t n, float f);
void adjustSaturation(float* r, float* g, float* b, int64_t n, float f);
void adjustHue(float* r, float* g, float* b, int64_t n, float f);
void toGrayscale(float* r, float* g, float* b, int64_t n);
// PIL's GaussianBlur(radius): three passes of an extended box blur per axis, edges replicated.
void gaussianBlurPil(float* plane, int h, int w, float radius);

}  // namespace aug
}  // namespace ssql
