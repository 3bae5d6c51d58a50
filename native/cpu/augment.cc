// augmentBatch: crop + resize (PIL's separable resampling, antialiased when downscaling), flips, color
// jitter, grayscale, blur and normalization for a whole batch, on the data pool, off the main thread.
// Lets GCC if-convert float compares and conversions (no code here relies on FP traps), so the loops vectorize;
// no multiply-add contraction, as the CUDA kernels (core/augment_math.h).
#pragma GCC optimize("no-trapping-math", "fp-contract=off")

#include "augment.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/augment_args.h"
#include "../core/binding.h"
#include "data_pool.h"

namespace ssql {
namespace aug {

namespace {

// PIL's precompute_coeffs for one axis: output i reads inputs [start[i], start[i] + count[i]) with weights
// k[i * ksize + t], premultiplied by `gain`.
struct Coeffs {
  int ksize = 0;
  std::vector<int> start, count;
  std::vector<float> k;
};

void computeCoeffs(Coeffs& c, int inSize, double off, double scale, int outSize, Filter f, double gain) {
  c.ksize = resampleTaps(f, scale);
  c.start.resize(outSize);
  c.count.resize(outSize);
  c.k.assign(static_cast<size_t>(outSize) * c.ksize, 0.0f);
  for (int i = 0; i < outSize; ++i)
    resampleCoeffs(f, inSize, off, scale, i, c.ksize, gain, &c.start[i], &c.count[i],
                   c.k.data() + static_cast<size_t>(i) * c.ksize);
}

// One output image: `out` is its [3, outH, outW] slice of the batch.
void processRecord(const SourceImage& s, const double* rec, const Settings& st, float* out) {
  const int oh = st.outH, ow = st.outW;
  const int64_t P = static_cast<int64_t>(oh) * ow;
  const int top = static_cast<int>(rec[kTop]), height = static_cast<int>(rec[kHeight]);
  const int left = static_cast<int>(rec[kLeft]), width = static_cast<int>(rec[kWidth]);
  const int flags = static_cast<int>(rec[kFlags]);

  thread_local Coeffs cx, cy;
  thread_local std::vector<float> tmp, acc, planes;
  computeCoeffs(cx, width, rec[kOffX], rec[kScaleX], ow, st.filter, 1.0 / 255.0);
  computeCoeffs(cy, height, rec[kOffY], rec[kScaleY], oh, st.filter, 1.0);

  int rowLo = height, rowHi = 0;
  for (int i = 0; i < oh; ++i) {
    rowLo = std::min(rowLo, cy.start[i]);
    rowHi = std::max(rowHi, cy.start[i] + cy.count[i]);
  }
  const int rowLen = ow * 3;
  tmp.resize(static_cast<size_t>(rowHi - rowLo) * rowLen);

  // Horizontal pass: uint8 HWC rows -> float rows of ow interleaved RGB pixels.
  for (int r = rowLo; r < rowHi; ++r) {
    const uint8_t* srow = s.data + (static_cast<int64_t>(top + r) * s.w + left) * s.c;
    float* trow = tmp.data() + static_cast<size_t>(r - rowLo) * rowLen;
    for (int ox = 0; ox < ow; ++ox) {
      const float* k = cx.k.data() + static_cast<size_t>(ox) * cx.ksize;
      const int n = cx.count[ox];
      const uint8_t* p = srow + static_cast<int64_t>(cx.start[ox]) * s.c;
      float a0 = 0, a1 = 0, a2 = 0;
      if (s.c == 3) {
        for (int t = 0; t < n; ++t) {
          a0 += k[t] * p[3 * t];
          a1 += k[t] * p[3 * t + 1];
          a2 += k[t] * p[3 * t + 2];
        }
      } else {
        for (int t = 0; t < n; ++t) a0 += k[t] * p[t];
        a1 = a2 = a0;
      }
      trow[3 * ox] = a0;
      trow[3 * ox + 1] = a1;
      trow[3 * ox + 2] = a2;
    }
  }

  // Vertical pass, then flips, and de-interleave into planes. Clamping mirrors PIL's uint8 output.
  acc.resize(rowLen);
  planes.resize(static_cast<size_t>(3 * P));
  float* R = planes.data();
  float* G = R + P;
  float* B = G + P;
  const bool hflip = flags & kHFlip, vflip = flags & kVFlip;
  for (int oy = 0; oy < oh; ++oy) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    const float* k = cy.k.data() + static_cast<size_t>(oy) * cy.ksize;
    for (int t = 0; t < cy.count[oy]; ++t) {
      const float kt = k[t];
      const float* trow = tmp.data() + static_cast<size_t>(cy.start[oy] + t - rowLo) * rowLen;
      for (int j = 0; j < rowLen; ++j) acc[j] += kt * trow[j];
    }
    const int64_t dy = static_cast<int64_t>(vflip ? oh - 1 - oy : oy) * ow;
    for (int ox = 0; ox < ow; ++ox) {
      const int64_t d = dy + (hflip ? ow - 1 - ox : ox);
      R[d] = clamp01(acc[3 * ox]);
      G[d] = clamp01(acc[3 * ox + 1]);
      B[d] = clamp01(acc[3 * ox + 2]);
    }
  }

  if (flags & kJitter) {
    for (int o = 0; o < 4; ++o) {
      const int which = static_cast<int>(rec[kOrder0 + o]);
      const double f = rec[kBrightness + which];
      if (std::isnan(f)) continue;
      const float ff = static_cast<float>(f);
      switch (which) {
        case 0: adjustBrightness(R, G, B, P, ff); break;
        case 1: adjustContrast(R, G, B, oh, ow, ff); break;
        case 2: adjustSaturation(R, G, B, P, ff); break;
        default: adjustHue(R, G, B, P, ff); break;
      }
    }
  }
  if (flags & kGrayscale) toGrayscale(R, G, B, P);
  if (flags & kBlur) {
    const float sigma = static_cast<float>(rec[kSigma]);
    for (float* p : {R, G, B}) gaussianBlurPil(p, oh, ow, sigma);
  }
  for (int c = 0; c < 3; ++c) {
    const float* src = planes.data() + c * P;
    float* dst = out + c * P;
    const float m = st.mean[c], is = st.invStd[c];
    for (int64_t i = 0; i < P; ++i) dst[i] = normalize(src[i], m, is);
  }
}

using Job = parse::AugmentBatchArgs;  // the inputs stay alive while the work runs

void runJob(const Job& job) {
  const int64_t per = 3LL * job.settings.outH * job.settings.outW;
  dataParallelFor(job.records, [&](int64_t r) {
    const double* rec = job.params.data() + r * kRecord;
    float* out = job.outputs[r / job.batch]->f32() + (r % job.batch) * per;
    processRecord(job.sources[static_cast<size_t>(rec[kSrc])], rec, job.settings, out);
  });
}

class AugmentWorker : public Napi::AsyncWorker {
 public:
  AugmentWorker(Napi::Env env, Job job)
      : Napi::AsyncWorker(env, "ssql.augmentBatch"), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      runJob(job_);
    } catch (const std::exception& e) {
      SetError(std::string("augmentBatch(): ") + e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(wrapMany(Env(), job_.outputs)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
};

}  // namespace
}  // namespace aug
}  // namespace ssql

using namespace ssql;
using namespace ssql::aug;

// augmentBatch(images, params, views, outSize, interpolation, mean, std) -> Promise<tensor[views]>
// (arguments: core/augment_args.h); runs on the data pool.
SSQL_OP(augmentBatch) {
  auto* worker = new AugmentWorker(a.env(), parse::augmentBatchArgs(a));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}
