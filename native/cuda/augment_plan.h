// The CUDA augmentation as a plan: one table row per record (what its kernels read) and the list of stages, each a
// kernel over the whole batch. Host code only, no CUDA API, so test/native/augment_stages.cc runs the same plan
// and stages on the CPU. The stage bodies are in augment_stages.h.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/augment_math.h"

namespace ssql {
namespace aug {

// One record as the kernels read it.
struct RecordPlan {
  const uint8_t* src;  // the source image (uint8 HWC)
  int srcW, srcC;
  float* out;  // its [3, outH, outW] planes in its view's output
  int top, left, height, width;
  double offY, scaleY, offX, scaleX;
  int flags;
  int jitter[4];     // per jitter slot: the adjustment (enum Jitter), -1 where the slot does nothing
  float factor[4];   // per jitter slot: its factor
  int tapsX, tapsY;  // weights per output column / row
  int64_t coefX, coefY;  // first weight of its column and row tables
  int64_t blurSlot;      // its planes in the blur scratch, -1 without blur
  BoxBlur blur;
};

// What the stages read and write: device pointers on the GPU.
struct StageData {
  const RecordPlan* recs;
  int64_t records;
  Settings st;
  float* weights;    // coefficient tables
  int* windows;      // (start, count) per output column, then per output row, of each record
  double* rowSums;   // records * outH luma row sums (contrast)
  float* means;      // records contrast means
  float* blurTmp;    // blurred records' planes, ping-pong partner of the outputs
};

// Entries of one record in StageData::windows: its output columns, then its output rows.
SSQL_HD int64_t windowEntries(const Settings& st) { return static_cast<int64_t>(st.outW) + st.outH; }

enum class StageKind : int { Coefficients, Resize, ContrastRows, ContrastMean, Jitter, Grayscale, Blur, Normalize };

// One kernel: `n` elements of `kind`; `arg` is the jitter slot or the blur pass.
struct Stage {
  StageKind kind;
  int arg;
  int64_t n;
};

struct Plan {
  std::vector<RecordPlan> recs;
  int64_t weightCount = 0;  // floats of all coefficient tables
  int64_t blurImages = 0;   // records blurred
  bool contrast = false;    // whether any record adjusts contrast (rowSums is needed)
  std::vector<Stage> stages;
};

// The CPU op's order: resample (flips applied on write), jitter in each record's order, grayscale, blur, normalize.
// `params` holds `records` checked records (core/augment_args.h); record r writes into outputs[r / batch].
inline Plan makePlan(const std::vector<SourceImage>& sources, const double* params, int64_t records, int64_t batch,
                     const Settings& st, const std::vector<float*>& outputs) {
  Plan plan;
  plan.recs.resize(static_cast<size_t>(records));
  const int64_t P = static_cast<int64_t>(st.outH) * st.outW;
  bool slotUsed[4] = {false, false, false, false}, slotContrast[4] = {false, false, false, false};
  bool gray = false;
  for (int64_t r = 0; r < records; ++r) {
    const double* rec = params + r * kRecord;
    const SourceImage& s = sources[static_cast<size_t>(rec[kSrc])];
    RecordPlan& p = plan.recs[static_cast<size_t>(r)];
    p.src = s.data;
    p.srcW = s.w;
    p.srcC = s.c;
    p.out = outputs[static_cast<size_t>(r / batch)] + (r % batch) * 3 * P;
    p.top = static_cast<int>(rec[kTop]);
    p.height = static_cast<int>(rec[kHeight]);
    p.left = static_cast<int>(rec[kLeft]);
    p.width = static_cast<int>(rec[kWidth]);
    p.offY = rec[kOffY];
    p.scaleY = rec[kScaleY];
    p.offX = rec[kOffX];
    p.scaleX = rec[kScaleX];
    p.flags = static_cast<int>(rec[kFlags]);
    for (int o = 0; o < 4; ++o) {
      const int which = (p.flags & kJitter) ? static_cast<int>(rec[kOrder0 + o]) : 0;  // checked only with the flag
      const bool on = (p.flags & kJitter) && !std::isnan(rec[kBrightness + which]);
      p.jitter[o] = on ? which : -1;
      p.factor[o] = on ? static_cast<float>(rec[kBrightness + which]) : 0.0f;
      slotUsed[o] |= on;
      slotContrast[o] |= on && which == kContrastOp;
    }
    gray |= (p.flags & kGrayscale) != 0;
    p.tapsX = resampleTaps(st.filter, p.scaleX);
    p.tapsY = resampleTaps(st.filter, p.scaleY);
    p.coefX = plan.weightCount;
    plan.weightCount += static_cast<int64_t>(st.outW) * p.tapsX;
    p.coefY = plan.weightCount;
    plan.weightCount += static_cast<int64_t>(st.outH) * p.tapsY;
    p.blur = (p.flags & kBlur) ? boxBlur(static_cast<float>(rec[kSigma])) : BoxBlur{false, 0, 0.0f, 0.0f};
    p.blurSlot = p.blur.active ? plan.blurImages++ : -1;
  }

  auto add = [&](StageKind k, int arg, int64_t n) { plan.stages.push_back({k, arg, n}); };
  add(StageKind::Coefficients, 0, records * (st.outW + st.outH));
  add(StageKind::Resize, 0, records * P);
  for (int o = 0; o < 4; ++o) {
    if (!slotUsed[o]) continue;
    if (slotContrast[o]) {
      plan.contrast = true;
      add(StageKind::ContrastRows, o, records * st.outH);
      add(StageKind::ContrastMean, o, records);
    }
    add(StageKind::Jitter, o, records * P);
  }
  if (gray) add(StageKind::Grayscale, 0, records * P);
  if (plan.blurImages)
    for (int pass = 0; pass < 2 * kBlurPasses; ++pass) add(StageKind::Blur, pass, records * 3 * P);
  add(StageKind::Normalize, 0, records * 3 * P);
  return plan;
}

}  // namespace aug
}  // namespace ssql
