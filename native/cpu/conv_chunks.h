// Images a chunk at a time, for the convolutions built on sgemm (conv_gemm.cc, conv_winograd.cc): their scratch
// grows with a chunk's images, so a chunk takes as many as keep it under 16 MiB (at least one), chunks evened out.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ssql {

// The row stride of a [rows, columns] GEMM operand: sgemm slows down by up to 2x on strides that are multiples of
// 128 floats (cache-set conflicts while it packs), so those get 16 floats of padding.
inline int64_t paddedStride(int64_t columns) { return columns % 128 == 0 ? columns + 16 : columns; }

struct ImageChunks {
  static constexpr int64_t kBudgetFloats = int64_t{1} << 22;
  int64_t N, images, columnsPerImage;

  // floatsPerImage: the largest scratch one image needs; columnsPerImage: its columns in the GEMMs.
  ImageChunks(int64_t n, int64_t floatsPerImage, int64_t columns) : N(n), images(1), columnsPerImage(columns) {
    const int64_t most = std::max<int64_t>(1, std::min<int64_t>(N, kBudgetFloats / std::max<int64_t>(floatsPerImage, 1)));
    const int64_t count = (N + most - 1) / most;
    images = (N + count - 1) / count;
  }

  // Floats per row of a [rows, chunk columns] operand, room for the padding included.
  int64_t rowCapacity() const { return images * columnsPerImage + 16; }

  // f(n0, images, columns, ld) for each chunk.
  template <typename F>
  void forEach(F&& f) const {
    for (int64_t n0 = 0; n0 < N; n0 += images) {
      const int64_t k = std::min(images, N - n0), columns = k * columnsPerImage;
      f(n0, k, columns, paddedStride(columns));
    }
  }
};

}  // namespace ssql
