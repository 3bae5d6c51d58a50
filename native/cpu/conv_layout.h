// Which layout a convolution runs in. oneDNN's preferred (blocked) layouts with reorders from and to NCHW beat its
// plain-NCHW (im2col + GEMM) kernels on every CIFAR/ImageNet ResNet shape measured (bench/conv2d.ts), reorders
// included, except backward-data with very few input channels (the network's first layer, whose input gradient a
// training step never needs anyway), where the reorder of the gradient costs more than the kernel saves.
#pragma once

#include <cstdint>

namespace ssql {

enum class ConvLayout : int { Plain = 0, Blocked = 1 };
enum class ConvPass : int { Forward = 0, BackwardData = 1, BackwardWeights = 2 };

inline ConvLayout chooseConvLayout(ConvPass pass, int64_t inChannels) {
  return pass == ConvPass::BackwardData && inChannels < 8 ? ConvLayout::Plain : ConvLayout::Blocked;
}

}  // namespace ssql
