#include "conv_gemm.h"

#include <algorithm>
#include <cstring>
#include "../core/binding.h"
#include "conv_chunks.h"
#include "sgemm.h"

namespace ssql {
namespace {

// Scratch from the caching allocator: no zero fill, no fresh pages per call.
TensorPtr scratch(int64_t floats) { return empty(DType::F32, {floats}); }

// The valid output columns [lo, hi) of one kernel column kw: those whose input column lies inside the image.
void validRange(int64_t outSize, int64_t inSize, int64_t stride, int64_t offset, int64_t& lo, int64_t& hi) {
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = inSize - offset <= 0 ? 0 : std::min<int64_t>(outSize, (inSize - offset + stride - 1) / stride);
  if (hi < lo) hi = lo;
}

// col[r, j * OHW + p] for rows r = (c, kh, kw) and pixels p of image j of the chunk starting at n0.
void im2col(const ConvGeometry& q, const float* x, int64_t n0, int64_t images, float* col, int64_t ld) {
  const int64_t rows = q.C * q.KH * q.KW, ohw = q.OH * q.OW;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / (q.KH * q.KW), kh = (r / q.KW) % q.KH, kw = r % q.KW;
    const int64_t colOffset = kw * q.DW - q.PW;
    int64_t lo, hi;
    validRange(q.OW, q.W, q.SW, colOffset, lo, hi);
    for (int64_t j = 0; j < images; ++j) {
      const float* plane = x + ((n0 + j) * q.C + c) * q.H * q.W;
      float* out = col + r * ld + j * ohw;
      // Plain loops, not memcpy/fill: rows of a small feature map are a few floats, where calls cost more than copies.
      for (int64_t oh = 0; oh < q.OH; ++oh) {
        float* o = out + oh * q.OW;
        const int64_t ih = oh * q.SH - q.PH + kh * q.DH;
        if (ih < 0 || ih >= q.H) {
          for (int64_t ow = 0; ow < q.OW; ++ow) o[ow] = 0.0f;
          continue;
        }
        const float* in = plane + ih * q.W + colOffset;
        for (int64_t ow = 0; ow < lo; ++ow) o[ow] = 0.0f;
        if (q.SW == 1)
          for (int64_t ow = lo; ow < hi; ++ow) o[ow] = in[ow];
        else
          for (int64_t ow = lo; ow < hi; ++ow) o[ow] = in[ow * q.SW];
        for (int64_t ow = hi; ow < q.OW; ++ow) o[ow] = 0.0f;
      }
    }
  }
}

// gx[n0 + j] = the columns of image j, summed back onto the pixels they were taken from. Each thread owns whole
// channels (their rows and input planes), so no two threads write the same element.
void col2im(const ConvGeometry& q, const float* col, int64_t n0, int64_t images, float* gx, int64_t ld) {
  const int64_t ohw = q.OH * q.OW;
// Channels outer: a thread then reads each of its rows front to back (images inner), instead of one cache line per
// row and image, which left small feature maps (4x4) bound by memory latency.
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < q.C; ++c)
    for (int64_t j = 0; j < images; ++j) {
      float* plane = gx + ((n0 + j) * q.C + c) * q.H * q.W;
      std::memset(plane, 0, q.H * q.W * sizeof(float));
      for (int64_t kh = 0; kh < q.KH; ++kh)
        for (int64_t kw = 0; kw < q.KW; ++kw) {
          const int64_t r = (c * q.KH + kh) * q.KW + kw, colOffset = kw * q.DW - q.PW;
          int64_t lo, hi;
          validRange(q.OW, q.W, q.SW, colOffset, lo, hi);
          const float* in = col + r * ld + j * ohw;
          for (int64_t oh = 0; oh < q.OH; ++oh) {
            const int64_t ih = oh * q.SH - q.PH + kh * q.DH;
            if (ih < 0 || ih >= q.H) continue;
            float* o = plane + ih * q.W + colOffset;
            const float* g = in + oh * q.OW;
            if (q.SW == 1)
              for (int64_t ow = lo; ow < hi; ++ow) o[ow] += g[ow];
            else
              for (int64_t ow = lo; ow < hi; ++ow) o[ow * q.SW] += g[ow];
          }
        }
    }
}

// Between NCHW images [images, O, OHW] and the GEMM's [O, images * OHW].
void gatherChannels(const ConvGeometry& q, const float* t, int64_t n0, int64_t images, float* out, int64_t ld) {
  const int64_t ohw = q.OH * q.OW;
#pragma omp parallel for schedule(static) collapse(2)
  for (int64_t o = 0; o < q.O; ++o)
    for (int64_t j = 0; j < images; ++j)
      std::memcpy(out + o * ld + j * ohw, t + ((n0 + j) * q.O + o) * ohw, ohw * sizeof(float));
}

void scatterChannels(const ConvGeometry& q, const float* in, int64_t ld, const float* bias, int64_t n0, int64_t images,
                     float* t) {
  const int64_t ohw = q.OH * q.OW;
#pragma omp parallel for schedule(static) collapse(2)
  for (int64_t j = 0; j < images; ++j)
    for (int64_t o = 0; o < q.O; ++o) {
      const float* src = in + o * ld + j * ohw;
      float* dst = t + ((n0 + j) * q.O + o) * ohw;
      const float b = bias ? bias[o] : 0.0f;
      for (int64_t p = 0; p < ohw; ++p) dst[p] = src[p] + b;
    }
}

// Scratch of one call: the column matrix [rows, chunk pixels] and the output (gradient) by channel [O, chunk pixels].
struct Workspace {
  ImageChunks chunks;
  int64_t rows;
  TensorPtr colT, chanT;
  float *col, *chan;

  explicit Workspace(const ConvGeometry& q)
      : chunks(q.N, q.C * q.KH * q.KW * q.OH * q.OW, q.OH * q.OW), rows(q.C * q.KH * q.KW),
        colT(scratch(rows * chunks.rowCapacity())), chanT(scratch(q.O * chunks.rowCapacity())),
        col(colT->f32()), chan(chanT->f32()) {}
};

}  // namespace

void gemmConvForward(const ConvGeometry& q, const float* x, const float* w, const float* bias, float* y) {
  const Workspace ws(q);
  ws.chunks.forEach([&](int64_t n0, int64_t k, int64_t pixels, int64_t ld) {
    im2col(q, x, n0, k, ws.col, ld);
    sgemm(false, false, q.O, pixels, ws.rows, w, ws.rows, ws.col, ld, 0.0f, ws.chan, ld);
    scatterChannels(q, ws.chan, ld, bias, n0, k, y);
  });
}

void gemmConvBackwardData(const ConvGeometry& q, const float* gy, const float* w, float* gx) {
  const Workspace ws(q);
  ws.chunks.forEach([&](int64_t n0, int64_t k, int64_t pixels, int64_t ld) {
    gatherChannels(q, gy, n0, k, ws.chan, ld);
    sgemm(true, false, ws.rows, pixels, q.O, w, ws.rows, ws.chan, ld, 0.0f, ws.col, ld);
    col2im(q, ws.col, n0, k, gx, ld);
  });
}

void gemmConvBackwardWeights(const ConvGeometry& q, const float* gy, const float* x, float* gw, float* gb, bool accumulate) {
  const Workspace ws(q);
  if (gb) std::fill(gb, gb + q.O, 0.0f);
  ws.chunks.forEach([&](int64_t n0, int64_t k, int64_t pixels, int64_t ld) {
    gatherChannels(q, gy, n0, k, ws.chan, ld);
    im2col(q, x, n0, k, ws.col, ld);
    sgemm(false, true, q.O, ws.rows, pixels, ws.chan, ld, ws.col, ld, n0 == 0 && !accumulate ? 0.0f : 1.0f, gw);
    if (gb)
      for (int64_t o = 0; o < q.O; ++o) {
        double s = 0;
        for (int64_t p = 0; p < pixels; ++p) s += ws.chan[o * ld + p];
        gb[o] += static_cast<float>(s);
      }
  });
}

}  // namespace ssql
