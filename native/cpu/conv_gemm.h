// Convolution as one GEMM over a chunk of images (im2col/col2im around dnnl_sgemm), groups == 1. Unlike oneDNN's
// own GEMM convolution, which multiplies image by image, the GEMM's pixel dimension spans several images, so the
// deep layers' small feature maps (4x4 to 8x8) still give GEMMs large enough to run near the sgemm rate.
#pragma once

#include "../core/nn_args.h"

namespace ssql {

void gemmConvForward(const ConvGeometry& q, const float* x, const float* w, const float* bias, float* y);
void gemmConvBackwardData(const ConvGeometry& q, const float* gy, const float* w, float* gx);
// accumulate: gw += the weight gradient (gb is written either way).
void gemmConvBackwardWeights(const ConvGeometry& q, const float* gy, const float* x, float* gw, float* gb,
                             bool accumulate = false);

}  // namespace ssql
