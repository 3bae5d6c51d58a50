// Batch image augmentation on the CPU: each output image is one record of per-image parameters drawn in
// TypeScript (lib/data/augment.ts). Images are read as uint8 HWC and written as normalized float32 CHW.
// The record layout and the per-pixel math are shared with the CUDA kernels (core/augment_math.h).
#pragma once

#include <cstdint>

#include "../core/augment_math.h"

namespace ssql {
namespace aug {

// Color operations on three planes of h x w float pixels in [0, 1] (augment_color.cc), in torchvision's
// functional-tensor formulas for float images.
void adjustBrightness(float* r, float* g, float* b, int64_t n, float f);
void adjustContrast(float* r, float* g, float* b, int h, int w, float f);
void adjustSaturation(float* r, float* g, float* b, int64_t n, float f);
void adjustHue(float* r, float* g, float* b, int64_t n, float f);
void toGrayscale(float* r, float* g, float* b, int64_t n);
// PIL's GaussianBlur(radius): three passes of an extended box blur per axis, edges replicated.
void gaussianBlurPil(float* plane, int h, int w, float radius);

}  // namespace aug
}  // namespace ssql
