#include "conv_winograd.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../core/binding.h"
#include "conv_chunks.h"
#include "sgemm.h"

namespace ssql {
namespace {

// One F(2x2, 3x3) problem: `in` channels of H x W padded by (PH, PW) into `out` channels of OH x OW.
struct Problem {
  int64_t N, in, H, W, out, PH, PW, OH, OW;
  int64_t th() const { return (OH + 1) / 2; }
  int64_t tw() const { return (OW + 1) / 2; }
  // Transformed tiles of one image, the larger side (16 per tile and channel), and its tiles.
  ImageChunks chunks() const { return ImageChunks(N, 16 * std::max(in, out) * th() * tw(), th() * tw()); }
};

// U[e, o, i] = (G g G^T)[e] for the 3x3 kernel g of output channel o and input channel i.
void transformKernel(const float* g, float* u, int64_t ld) {
  float t[4][3];
  for (int k = 0; k < 3; ++k) {
    t[0][k] = g[k];
    t[1][k] = 0.5f * (g[k] + g[3 + k] + g[6 + k]);
    t[2][k] = 0.5f * (g[k] - g[3 + k] + g[6 + k]);
    t[3][k] = g[6 + k];
  }
  for (int r = 0; r < 4; ++r) {
    u[(r * 4 + 0) * ld] = t[r][0];
    u[(r * 4 + 1) * ld] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
    u[(r * 4 + 2) * ld] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
    u[(r * 4 + 3) * ld] = t[r][2];
  }
}

// Tiles overlap by two columns, so tile tx's columns are the even and odd elements k = tx and tx + 1 of its rows:
// splitting each row into even and odd halves turns every transform into loops over tx that the compiler vectorizes.

// V[e, i, t] = (B^T d B)[e] for each 4x4 input tile d (zero outside the image) of images [n0, n0 + images).
void transformInput(const Problem& p, const float* x, int64_t n0, int64_t images, float* v, int64_t ld) {
  const int64_t th = p.th(), tw = p.tw(), wp = 2 * tw + 2, tiles = th * tw, plane = p.in * ld;
  // Channels outer, images inner: each of the 16 rows a thread writes then runs front to back.
#pragma omp parallel
  {
    std::vector<float> buf(wp + 8 * (tw + 1) + 8 * (tw + 1));
    float* row = buf.data();
    float* ev = row + wp;            // [4][tw + 1] even elements of the tile row's 4 input rows
    float* od = ev + 4 * (tw + 1);   // [4][tw + 1] odd elements
#pragma omp for schedule(static)
    for (int64_t i = 0; i < p.in; ++i)
      for (int64_t j = 0; j < images; ++j) {
        const float* src = x + ((n0 + j) * p.in + i) * p.H * p.W;
        float* dst = v + i * ld + j * tiles;
        const int64_t lo = std::max<int64_t>(0, p.PW), hi = std::min<int64_t>(wp, p.PW + p.W);
        for (int64_t ty = 0; ty < th; ++ty) {
          for (int r = 0; r < 4; ++r) {
            const int64_t ih = 2 * ty + r - p.PH;
            std::fill(row, row + wp, 0.0f);
            if (ih >= 0 && ih < p.H && hi > lo) std::memcpy(row + lo, src + ih * p.W + (lo - p.PW), (hi - lo) * sizeof(float));
            float* e = ev + r * (tw + 1);
            float* o = od + r * (tw + 1);
            for (int64_t k = 0; k <= tw; ++k) {
              e[k] = row[2 * k];
              o[k] = row[2 * k + 1];
            }
          }
          // B^T over the 4 rows, for the even and odd halves at once, in place into rows 0..3.
          for (float* h : {ev, od}) {
            float *d0 = h, *d1 = h + (tw + 1), *d2 = h + 2 * (tw + 1), *d3 = h + 3 * (tw + 1);
            for (int64_t k = 0; k <= tw; ++k) {
              const float a0 = d0[k], a1 = d1[k], a2 = d2[k], a3 = d3[k];
              d0[k] = a0 - a2;
              d1[k] = a1 + a2;
              d2[k] = a2 - a1;
              d3[k] = a1 - a3;
            }
          }
          // B on the columns: tile tx's columns are even[tx], odd[tx], even[tx + 1], odd[tx + 1].
          for (int r = 0; r < 4; ++r) {
            const float *e = ev + r * (tw + 1), *o = od + r * (tw + 1);
            float* out0 = dst + (r * 4 + 0) * plane + ty * tw;
            float* out1 = dst + (r * 4 + 1) * plane + ty * tw;
            float* out2 = dst + (r * 4 + 2) * plane + ty * tw;
            float* out3 = dst + (r * 4 + 3) * plane + ty * tw;
            for (int64_t tx = 0; tx < tw; ++tx) {
              const float c0 = e[tx], c1 = o[tx], c2 = e[tx + 1], c3 = o[tx + 1];
              out0[tx] = c0 - c2;
              out1[tx] = c1 + c2;
              out2[tx] = c2 - c1;
              out3[tx] = c1 - c3;
            }
          }
        }
      }
  }
}

// y tile = A^T m A (+ bias) for each output channel and tile of the chunk.
void transformOutput(const Problem& p, const float* m, int64_t ld, const float* bias, int64_t n0, int64_t images, float* y) {
  const int64_t th = p.th(), tw = p.tw(), tiles = th * tw, plane = p.out * ld;
#pragma omp parallel
  {
    std::vector<float> buf(8 * tw);
    float* a = buf.data();  // [2 rows][4 columns][tw]: A^T applied over the tile's rows
#pragma omp for schedule(static)
    for (int64_t o = 0; o < p.out; ++o)
      for (int64_t j = 0; j < images; ++j) {
        const float* src = m + o * ld + j * tiles;
        float* dst = y + ((n0 + j) * p.out + o) * p.OH * p.OW;
        const float b = bias ? bias[o] : 0.0f;
        for (int64_t ty = 0; ty < th; ++ty) {
          for (int c = 0; c < 4; ++c) {
            const float *s0 = src + c * plane + ty * tw, *s1 = src + (4 + c) * plane + ty * tw;
            const float *s2 = src + (8 + c) * plane + ty * tw, *s3 = src + (12 + c) * plane + ty * tw;
            float *a0 = a + c * tw, *a1 = a + (4 + c) * tw;
            for (int64_t tx = 0; tx < tw; ++tx) {
              a0[tx] = s0[tx] + s1[tx] + s2[tx];
              a1[tx] = s1[tx] - s2[tx] - s3[tx];
            }
          }
          for (int r = 0; r < 2; ++r) {
            const int64_t oh = 2 * ty + r;
            if (oh >= p.OH) break;
            const float *c0 = a + (4 * r) * tw, *c1 = c0 + tw, *c2 = c1 + tw, *c3 = c2 + tw;
            float* out = dst + oh * p.OW;
            const int64_t full = p.OW / 2;
            for (int64_t tx = 0; tx < full; ++tx) {
              out[2 * tx] = c0[tx] + c1[tx] + c2[tx] + b;
              out[2 * tx + 1] = c1[tx] - c2[tx] - c3[tx] + b;
            }
            if (p.OW % 2) out[2 * full] = c0[full] + c1[full] + c2[full] + b;
          }
        }
      }
  }
}

// DY[e, o, t] = (A dy A^T)[e] for each 2x2 output-gradient tile dy (zero past the output's edge).
void transformGradOutput(const Problem& p, const float* gy, int64_t n0, int64_t images, float* dy, int64_t ld) {
  const int64_t th = p.th(), tw = p.tw(), tiles = th * tw, plane = p.out * ld;
#pragma omp parallel
  {
    std::vector<float> buf(4 * tw);
    float* h = buf.data();  // even and odd elements of the tile's two rows: [row][even/odd][tw]
#pragma omp for schedule(static)
    for (int64_t o = 0; o < p.out; ++o)
      for (int64_t j = 0; j < images; ++j) {
        const float* src = gy + ((n0 + j) * p.out + o) * p.OH * p.OW;
        float* dst = dy + o * ld + j * tiles;
        for (int64_t ty = 0; ty < th; ++ty) {
          for (int r = 0; r < 2; ++r) {
            float *e = h + (2 * r) * tw, *od = e + tw;
            const int64_t oh = 2 * ty + r;
            if (oh >= p.OH) {
              std::fill(e, e + 2 * tw, 0.0f);
              continue;
            }
            const float* row = src + oh * p.OW;
            const int64_t full = p.OW / 2;
            for (int64_t tx = 0; tx < full; ++tx) {
              e[tx] = row[2 * tx];
              od[tx] = row[2 * tx + 1];
            }
            if (full < tw) {
              e[full] = row[2 * full];
              od[full] = 0.0f;
            }
          }
          const float *e0 = h, *o0 = h + tw, *e1 = h + 2 * tw, *o1 = h + 3 * tw;
          // Rows of A dy: g0, g0 + g1, g0 - g1, -g1; then the same on the columns.
          for (int r = 0; r < 4; ++r) {
            float* out0 = dst + (r * 4 + 0) * plane + ty * tw;
            float* out1 = dst + (r * 4 + 1) * plane + ty * tw;
            float* out2 = dst + (r * 4 + 2) * plane + ty * tw;
            float* out3 = dst + (r * 4 + 3) * plane + ty * tw;
            const float s0 = r == 3 ? 0.0f : 1.0f, s1 = r == 0 ? 0.0f : (r == 2 || r == 3 ? -1.0f : 1.0f);
            for (int64_t tx = 0; tx < tw; ++tx) {
              const float a = s0 * e0[tx] + s1 * e1[tx], b = s0 * o0[tx] + s1 * o1[tx];
              out0[tx] = a;
              out1[tx] = a + b;
              out2[tx] = a - b;
              out3[tx] = -b;
            }
          }
        }
      }
  }
}

// y = conv(x) with the transformed kernels u [16, out, in].
void run(const Problem& p, const float* x, const float* u, const float* bias, float* y) {
  const ImageChunks chunks = p.chunks();
  TensorPtr vT = empty(DType::F32, {16 * p.in * chunks.rowCapacity()});
  TensorPtr mT = empty(DType::F32, {16 * p.out * chunks.rowCapacity()});
  float *v = vT->f32(), *m = mT->f32();
  chunks.forEach([&](int64_t n0, int64_t k, int64_t cols, int64_t ld) {
    transformInput(p, x, n0, k, v, ld);
    for (int e = 0; e < 16; ++e)
      sgemm(false, false, p.out, cols, p.in, u + e * p.out * p.in, p.in, v + e * p.in * ld, ld, 0.0f, m + e * p.out * ld, ld);
    transformOutput(p, m, ld, bias, n0, k, y);
  });
}

// dg = G^T dU G: the 3x3 kernel gradient from the gradient of its transform (added to g with `add`).
void kernelGradient(const float* du, int64_t ld, float* g, bool add) {
  float t[3][4];
  for (int c = 0; c < 4; ++c) {
    const float u0 = du[c * ld], u1 = du[(4 + c) * ld], u2 = du[(8 + c) * ld], u3 = du[(12 + c) * ld];
    t[0][c] = u0 + 0.5f * (u1 + u2);
    t[1][c] = 0.5f * (u1 - u2);
    t[2][c] = 0.5f * (u1 + u2) + u3;
  }
  for (int r = 0; r < 3; ++r) {
    const float v[3] = {t[r][0] + 0.5f * (t[r][1] + t[r][2]), 0.5f * (t[r][1] - t[r][2]), 0.5f * (t[r][1] + t[r][2]) + t[r][3]};
    for (int k = 0; k < 3; ++k) g[r * 3 + k] = add ? g[r * 3 + k] + v[k] : v[k];
  }
}

}  // namespace

bool winogradApplies(const ConvGeometry& q) {
  return q.G == 1 && q.KH == 3 && q.KW == 3 && q.SH == 1 && q.SW == 1 && q.DH == 1 && q.DW == 1 && q.PH <= 2 &&
         q.PW <= 2 && q.OH > 0 && q.OW > 0;
}

void winogradConvForward(const ConvGeometry& q, const float* x, const float* w, const float* bias, float* y) {
  TensorPtr uT = empty(DType::F32, {16 * q.O * q.C});
  float* u = uT->f32();
  const int64_t ld = q.O * q.C;
#pragma omp parallel for schedule(static)
  for (int64_t oc = 0; oc < q.O * q.C; ++oc) transformKernel(w + oc * 9, u + oc, ld);
  run({q.N, q.C, q.H, q.W, q.O, q.PH, q.PW, q.OH, q.OW}, x, u, bias, y);
}

// The input gradient is the correlation of gy, padded by 2 - P, with the kernel flipped in both axes and its
// channel axes swapped.
void winogradConvBackwardData(const ConvGeometry& q, const float* gy, const float* w, float* gx) {
  TensorPtr uT = empty(DType::F32, {16 * q.C * q.O});
  float* u = uT->f32();
  const int64_t ld = q.C * q.O;
#pragma omp parallel for schedule(static)
  for (int64_t co = 0; co < q.C * q.O; ++co) {
    const int64_t c = co / q.O, o = co % q.O;
    const float* g = w + (o * q.C + c) * 9;
    float flipped[9];
    for (int k = 0; k < 9; ++k) flipped[k] = g[8 - k];
    transformKernel(flipped, u + co, ld);
  }
  run({q.N, q.O, q.OH, q.OW, q.C, 2 - q.PH, 2 - q.PW, q.H, q.W}, gy, u, nullptr, gx);
}

}  // namespace ssql

namespace ssql {

// y = A^T (U . V) A per tile is linear in U, so dU[e] = sum over tiles of (A dy A^T)[e] . V[e]: 16 GEMMs of the
// transformed output gradient with the transformed input tiles, summed over the chunks, then dg = G^T dU G.
void winogradConvBackwardWeights(const ConvGeometry& q, const float* gy, const float* x, float* gw, float* gb,
                                 bool accumulate) {
  const Problem p{q.N, q.C, q.H, q.W, q.O, q.PH, q.PW, q.OH, q.OW};
  const ImageChunks chunks = p.chunks();
  const int64_t ldu = q.O * q.C;
  TensorPtr vT = empty(DType::F32, {16 * p.in * chunks.rowCapacity()});
  TensorPtr dyT = empty(DType::F32, {16 * p.out * chunks.rowCapacity()});
  TensorPtr duT = empty(DType::F32, {16 * ldu});
  float *v = vT->f32(), *dy = dyT->f32(), *du = duT->f32();
  chunks.forEach([&](int64_t n0, int64_t k, int64_t cols, int64_t ld) {
    transformInput(p, x, n0, k, v, ld);
    transformGradOutput(p, gy, n0, k, dy, ld);
    for (int e = 0; e < 16; ++e)
      sgemm(false, true, q.O, q.C, cols, dy + e * p.out * ld, ld, v + e * p.in * ld, ld, n0 == 0 ? 0.0f : 1.0f,
            du + e * ldu);
  });
#pragma omp parallel for schedule(static)
  for (int64_t oc = 0; oc < ldu; ++oc) kernelGradient(du + oc, ldu, gw + oc * 9, accumulate);
  if (!gb) return;
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < q.O; ++o) {
    double s = 0;
    for (int64_t n = 0; n < q.N; ++n) {
      const float* plane = gy + (n * q.O + o) * q.OH * q.OW;
      for (int64_t i = 0; i < q.OH * q.OW; ++i) s += plane[i];
    }
    gb[o] = static_cast<float>(s);
  }
}

}  // namespace ssql
