// 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016): each 2x2 output tile
// takes 16 multiplies per channel pair instead of 36, as 16 GEMMs over the transformed tiles. Backward-data of such a
// convolution is one too (flipped kernel, channels swapped), so it runs the same way; backward-weights sums the
// products of transformed input and output-gradient tiles. oneDNN 2.6 has Winograd
// kernels for AVX-512 only; these run on any x86-64.
#pragma once

#include "../core/nn_args.h"

namespace ssql {

bool winogradApplies(const ConvGeometry& q);
void winogradConvForward(const ConvGeometry& q, const float* x, const float* w, const float* bias, float* y);
void winogradConvBackwardData(const ConvGeometry& q, const float* gy, const float* w, float* gx);
// accumulate: gw += the weight gradient (gb is written either way).
void winogradConvBackwardWeights(const ConvGeometry& q, const float* gy, const float* x, float* gw, float* gb,
                                 bool accumulate = false);

}  // namespace ssql
