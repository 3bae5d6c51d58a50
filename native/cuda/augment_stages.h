// The bodies of the CUDA augmentation stages (augment_plan.h): element i of one stage, on the arithmetic of
// core/augment_math.h in the CPU op's order. The kernels (augment_kernels.cu) run each stage as a grid-stride loop;
// test/native/augment_stages.cc runs the same bodies in plain loops against the CPU op.
#pragma once

#include "augment_plan.h"

namespace ssql {
namespace aug {

// i over records * (outW + outH): one output column's or row's taps.
SSQL_HD void coefficientsAt(const StageData& d, int64_t i) {
  const int64_t per = windowEntries(d.st);
  const RecordPlan& p = d.recs[i / per];
  const int j = static_cast<int>(i % per);
  int* win = d.windows + 2 * i;
  if (j < d.st.outW)
    resampleCoeffs(d.st.filter, p.width, p.offX, p.scaleX, j, p.tapsX, 1.0 / 255.0, &win[0], &win[1],
                   d.weights + p.coefX + static_cast<int64_t>(j) * p.tapsX);
  else
    resampleCoeffs(d.st.filter, p.height, p.offY, p.scaleY, j - d.st.outW, p.tapsY, 1.0, &win[0], &win[1],
                   d.weights + p.coefY + static_cast<int64_t>(j - d.st.outW) * p.tapsY);
}

// i over records * outH * outW: one output pixel, resampled, clamped as PIL's uint8 result, written flipped.
// The horizontal sum of each source row, then the vertical sum of those, as the CPU's two passes.
SSQL_HD void resizeAt(const StageData& d, int64_t i) {
  const int oh = d.st.outH, ow = d.st.outW;
  const int64_t P = static_cast<int64_t>(oh) * ow;
  const int64_t r = i / P;
  const int oy = static_cast<int>(i % P / ow), ox = static_cast<int>(i % ow);
  const RecordPlan& p = d.recs[r];
  const int* wx = d.windows + 2 * (r * windowEntries(d.st) + ox);
  const int* wy = d.windows + 2 * (r * windowEntries(d.st) + ow + oy);
  const float* kx = d.weights + p.coefX + static_cast<int64_t>(ox) * p.tapsX;
  const float* ky = d.weights + p.coefY + static_cast<int64_t>(oy) * p.tapsY;
  float a0 = 0, a1 = 0, a2 = 0;
  for (int ty = 0; ty < wy[1]; ++ty) {
    const uint8_t* q = p.src + (static_cast<int64_t>(p.top + wy[0] + ty) * p.srcW + p.left + wx[0]) * p.srcC;
    float h0 = 0, h1 = 0, h2 = 0;
    if (p.srcC == 3) {
      for (int t = 0; t < wx[1]; ++t) {
        h0 += kx[t] * q[3 * t];
        h1 += kx[t] * q[3 * t + 1];
        h2 += kx[t] * q[3 * t + 2];
      }
    } else {
      for (int t = 0; t < wx[1]; ++t) h0 += kx[t] * q[t];
      h1 = h2 = h0;
    }
    a0 += ky[ty] * h0;
    a1 += ky[ty] * h1;
    a2 += ky[ty] * h2;
  }
  const int64_t at = static_cast<int64_t>(p.flags & kVFlip ? oh - 1 - oy : oy) * ow + (p.flags & kHFlip ? ow - 1 - ox : ox);
  p.out[at] = clamp01(a0);
  p.out[P + at] = clamp01(a1);
  p.out[2 * P + at] = clamp01(a2);
}

// i over records * outH: the luma sum of one row, for records adjusting contrast in jitter slot `slot`.
SSQL_HD void contrastRowsAt(const StageData& d, int slot, int64_t i) {
  const int oh = d.st.outH, ow = d.st.outW;
  const int64_t r = i / oh;
  const RecordPlan& p = d.recs[r];
  if (p.jitter[slot] != kContrastOp) return;
  const int64_t P = static_cast<int64_t>(oh) * ow, o = (i % oh) * ow;
  d.rowSums[i] = lumaRowSum(p.out + o, p.out + P + o, p.out + 2 * P + o, ow);
}

// i over records: the mean luma from the row sums, top to bottom.
SSQL_HD void contrastMeanAt(const StageData& d, int slot, int64_t r) {
  if (d.recs[r].jitter[slot] != kContrastOp) return;
  d.means[r] = meanOfRows(d.rowSums + r * d.st.outH, d.st.outH, d.st.outW);
}

// i over records * outH * outW: jitter slot `slot` of one pixel.
SSQL_HD void jitterAt(const StageData& d, int slot, int64_t i) {
  const int64_t P = static_cast<int64_t>(d.st.outH) * d.st.outW;
  const int64_t r = i / P;
  const RecordPlan& p = d.recs[r];
  const int op = p.jitter[slot];
  if (op < 0) return;
  const float f = p.factor[slot];
  float* R = p.out + i % P;
  float* G = R + P;
  float* B = G + P;
  switch (op) {
    case kBrightnessOp:
      *R = brightness(*R, f), *G = brightness(*G, f), *B = brightness(*B, f);
      break;
    case kContrastOp: {
      const float bias = contrastBias(f, d.means[r]);
      *R = contrast(*R, f, bias), *G = contrast(*G, f, bias), *B = contrast(*B, f, bias);
      break;
    }
    case kSaturationOp: saturation(*R, *G, *B, f); break;
    default: hue(*R, *G, *B, f); break;
  }
}

SSQL_HD void grayscaleAt(const StageData& d, int64_t i) {
  const int64_t P = static_cast<int64_t>(d.st.outH) * d.st.outW;
  const RecordPlan& p = d.recs[i / P];
  if (!(p.flags & kGrayscale)) return;
  float* R = p.out + i % P;
  R[0] = R[P] = R[2 * P] = luma(R[0], R[P], R[2 * P]);
}

// i over records * 3 * outH * outW: pass `pass` of the blur (three horizontal, then three vertical), alternating
// between the record's output planes and its blur scratch, so the sixth pass ends in the output.
SSQL_HD void blurAt(const StageData& d, int pass, int64_t i) {
  const int oh = d.st.outH, ow = d.st.outW;
  const int64_t P = static_cast<int64_t>(oh) * ow;
  const RecordPlan& p = d.recs[i / (3 * P)];
  if (p.blurSlot < 0) return;
  const int64_t e = i % (3 * P);  // channel * P + pixel
  float* planes = p.out;
  float* tmp = d.blurTmp + p.blurSlot * 3 * P;
  const float* src = (pass % 2 == 0 ? planes : tmp) + e / P * P;
  float* dst = pass % 2 == 0 ? tmp : planes;
  const int y = static_cast<int>(e % P / ow), x = static_cast<int>(e % ow);
  dst[e] = pass < kBlurPasses ? blurSample(p.blur, src + static_cast<int64_t>(y) * ow, ow, 1, x)
                              : blurSample(p.blur, src + x, oh, ow, y);
}

SSQL_HD void normalizeAt(const StageData& d, int64_t i) {
  const int64_t P = static_cast<int64_t>(d.st.outH) * d.st.outW;
  const RecordPlan& p = d.recs[i / (3 * P)];
  const int64_t e = i % (3 * P);
  const int c = static_cast<int>(e / P);
  p.out[e] = normalize(p.out[e], d.st.mean[c], d.st.invStd[c]);
}

SSQL_HD void stageAt(StageKind kind, const StageData& d, int arg, int64_t i) {
  switch (kind) {
    case StageKind::Coefficients: coefficientsAt(d, i); break;
    case StageKind::Resize: resizeAt(d, i); break;
    case StageKind::ContrastRows: contrastRowsAt(d, arg, i); break;
    case StageKind::ContrastMean: contrastMeanAt(d, arg, i); break;
    case StageKind::Jitter: jitterAt(d, arg, i); break;
    case StageKind::Grayscale: grayscaleAt(d, i); break;
    case StageKind::Blur: blurAt(d, arg, i); break;
    case StageKind::Normalize: normalizeAt(d, i); break;
  }
}

}  // namespace aug
}  // namespace ssql
