// augmentBatch: crop + resize (PIL's separable resampling, antialiased when downscaling), flips, color
// jitter, grayscale, blur and normalization for a whole batch, on the data pool, off the main thread.
// Lets GCC if-convert float compares and conversions (no code here relies on FP traps), so the loops vectorize.
#pragma GCC optimize("no-trapping-math")

#include "augment.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/binding.h"
#include "data_pool.h"

namespace ssql {
namespace aug {

namespace {

struct FilterDef {
  double support;
  double (*fn)(double);
};

double bilinearFn(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}
// PIL's bicubic (a = -0.5); torch's antialiased bicubic uses the same kernel.
double bicubicFn(double x) {
  const double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}
double boxFn(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }
double hammingFn(double x) {
  x = std::fabs(x);
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x *= M_PI;
  return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}
double lanczosFn(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0; }

FilterDef filterDef(Filter f) {
  switch (f) {
    case Filter::Bilinear: return {1.0, bilinearFn};
    case Filter::Bicubic: return {2.0, bicubicFn};
    case Filter::Box: return {0.5, boxFn};
    case Filter::Hamming: return {1.0, hammingFn};
    case Filter::Lanczos: return {3.0, lanczosFn};
  }
  return {1.0, bilinearFn};
}

// PIL's precompute_coeffs (libImaging/Resample.c) for one axis: output i reads inputs
// [start[i], start[i] + count[i]) with weights k[i * ksize + t], premultiplied by `gain`.
struct Coeffs {
  int ksize = 0;
  std::vector<int> start, count;
  std::vector<float> k;
};

void computeCoeffs(Coeffs& c, int inSize, double off, double scale, int outSize, const FilterDef& f, double gain) {
  const double filterscale = std::max(scale, 1.0);
  const double support = f.support * filterscale;
  const double ss = 1.0 / filterscale;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.start.resize(outSize);
  c.count.resize(outSize);
  c.k.assign(static_cast<size_t>(outSize) * c.ksize, 0.0f);
  thread_local std::vector<double> w;
  w.resize(c.ksize);
  for (int i = 0; i < outSize; ++i) {
    const double center = off + (i + 0.5) * scale;
    int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    int xmax = std::min(static_cast<int>(center + support + 0.5), inSize) - xmin;
    // A window that misses the region entirely (only possible for odd offsets) reads its nearest edge pixel.
    if (xmax <= 0) {
      xmin = std::min(std::max(static_cast<int>(center), 0), inSize - 1);
      xmax = 1;
    }
    xmax = std::min(xmax, c.ksize);
    double total = 0.0;
    for (int t = 0; t < xmax; ++t) total += (w[t] = f.fn((t + xmin - center + 0.5) * ss));
    if (total == 0.0) {
      w[0] = 1.0, total = 1.0;
      for (int t = 1; t < xmax; ++t) w[t] = 0.0;
    }
    for (int t = 0; t < xmax; ++t) c.k[static_cast<size_t>(i) * c.ksize + t] = static_cast<float>(w[t] / total * gain);
    c.start[i] = xmin;
    c.count[i] = xmax;
  }
}

inline float clamp01(float x) { return std::min(std::max(x, 0.0f), 1.0f); }

struct Source {
  const uint8_t* data;
  int h, w, c;
};

struct Settings {
  int outH, outW;
  Filter filter;
  float mean[3], invStd[3];
};

// One output image: `out` is its [3, outH, outW] slice of the batch.
void processRecord(const Source& s, const double* rec, const Settings& st, float* out) {
  const int oh = st.outH, ow = st.outW;
  const int64_t P = static_cast<int64_t>(oh) * ow;
  const int top = static_cast<int>(rec[kTop]), height = static_cast<int>(rec[kHeight]);
  const int left = static_cast<int>(rec[kLeft]), width = static_cast<int>(rec[kWidth]);
  const int flags = static_cast<int>(rec[kFlags]);
  const FilterDef fd = filterDef(st.filter);

  thread_local Coeffs cx, cy;
  thread_local std::vector<float> tmp, acc, planes;
  computeCoeffs(cx, width, rec[kOffX], rec[kScaleX], ow, fd, 1.0 / 255.0);
  computeCoeffs(cy, height, rec[kOffY], rec[kScaleY], oh, fd, 1.0);

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
        case 1: adjustContrast(R, G, B, P, ff); break;
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
    for (int64_t i = 0; i < P; ++i) dst[i] = (src[i] - m) * is;
  }
}

Filter parseFilter(const std::string& s) {
  if (s == "bilinear") return Filter::Bilinear;
  if (s == "bicubic") return Filter::Bicubic;
  if (s == "box") return Filter::Box;
  if (s == "hamming") return Filter::Hamming;
  if (s == "lanczos") return Filter::Lanczos;
  throw TypeError("augmentBatch(): interpolation must be 'bilinear', 'bicubic', 'box', 'hamming' or 'lanczos', got '" +
                  s + "'");
}

std::vector<double> numbers(const Args& a, size_t i, const char* name, size_t n) {
  auto v = a.at(i, name);
  if (!v.IsArray()) throw TypeError(a.where(i, name) + " must be an array of " + std::to_string(n) + " numbers");
  auto arr = v.As<Napi::Array>();
  if (arr.Length() != n) throw RangeError(a.where(i, name) + " must hold " + std::to_string(n) + " numbers");
  std::vector<double> r;
  for (uint32_t k = 0; k < n; ++k) {
    Napi::Value e = arr.Get(k);
    if (!e.IsNumber()) throw TypeError(a.where(i, name) + " must hold numbers");
    r.push_back(e.As<Napi::Number>().DoubleValue());
  }
  return r;
}

bool isInt(double v) { return std::isfinite(v) && v == std::floor(v); }

void validateRecord(const double* rec, int64_t index, const std::vector<Source>& sources) {
  auto fail = [&](const std::string& what) {
    throw RangeError("augmentBatch(): record " + std::to_string(index) + ": " + what);
  };
  for (int f : {kSrc, kTop, kHeight, kLeft, kWidth, kFlags})
    if (!isInt(rec[f])) fail("field " + std::to_string(f) + " must be an integer");
  const int64_t src = static_cast<int64_t>(rec[kSrc]);
  if (src < 0 || src >= static_cast<int64_t>(sources.size()))
    fail("source index " + std::to_string(src) + " is outside [0, " + std::to_string(sources.size()) + ")");
  const Source& s = sources[src];
  if (rec[kTop] < 0 || rec[kHeight] < 1 || rec[kTop] + rec[kHeight] > s.h || rec[kLeft] < 0 || rec[kWidth] < 1 ||
      rec[kLeft] + rec[kWidth] > s.w)
    fail("region rows [" + std::to_string(rec[kTop]) + ", +" + std::to_string(rec[kHeight]) + "), columns [" +
         std::to_string(rec[kLeft]) + ", +" + std::to_string(rec[kWidth]) + ") is outside the " + std::to_string(s.h) +
         "x" + std::to_string(s.w) + " source image");
  if (!(rec[kScaleY] > 0) || !(rec[kScaleX] > 0) || !std::isfinite(rec[kScaleY]) || !std::isfinite(rec[kScaleX]) ||
      !std::isfinite(rec[kOffY]) || !std::isfinite(rec[kOffX]))
    fail("scales must be positive and offsets finite");
  const int flags = static_cast<int>(rec[kFlags]);
  if (flags < 0 || flags > 31) fail("flags must be in 0..31");
  if (flags & kJitter) {
    int seen = 0;
    for (int o = 0; o < 4; ++o) {
      const double w = rec[kOrder0 + o];
      if (!isInt(w) || w < 0 || w > 3) fail("jitter order must be a permutation of 0..3");
      seen |= 1 << static_cast<int>(w);
    }
    if (seen != 15) fail("jitter order must be a permutation of 0..3");
    for (int f = kBrightness; f <= kSaturation; ++f)
      if (!std::isnan(rec[f]) && !(rec[f] >= 0 && std::isfinite(rec[f]))) fail("jitter factors must be >= 0");
    if (!std::isnan(rec[kHue]) && !(rec[kHue] >= -0.5 && rec[kHue] <= 0.5)) fail("hue factor must be in [-0.5, 0.5]");
  }
  if ((flags & kBlur) && !(rec[kSigma] > 0 && std::isfinite(rec[kSigma]))) fail("blur radius must be positive");
}

struct Job {
  std::vector<TensorPtr> inputs;  // kept alive while the work runs
  std::vector<Source> sources;
  std::vector<double> params;
  int64_t batch = 0;
  Settings st{};
  std::vector<TensorPtr> outputs;
};

void runJob(const Job& job) {
  const int64_t records = static_cast<int64_t>(job.params.size() / kRecord);
  const int64_t per = 3LL * job.st.outH * job.st.outW;
  dataParallelFor(records, [&](int64_t r) {
    const double* rec = job.params.data() + r * kRecord;
    float* out = job.outputs[r / job.batch]->f32() + (r % job.batch) * per;
    processRecord(job.sources[static_cast<size_t>(rec[kSrc])], rec, job.st, out);
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
//   images: uint8 [N, H, W, C] (record field kSrc indexes N) or an array of uint8 [H, W, C]; C is 1 or 3.
//   params: Float64Array of views * B records; record v * B + b becomes image b of output v.
SSQL_OP(augmentBatch) {
  Job job;
  Napi::Value imgs = a.at(0, "images");
  if (imgs.IsArray()) {
    job.inputs = a.tensors(0, "images");
    for (size_t i = 0; i < job.inputs.size(); ++i) {
      const Tensor& t = *job.inputs[i];
      std::string name = "images[" + std::to_string(i) + "]";
      requireDtype("augmentBatch", name.c_str(), t, DType::U8);
      requireDim("augmentBatch", name.c_str(), t, 3);
      if (t.shape[2] != 1 && t.shape[2] != 3) throw RangeError("augmentBatch(): " + name + " must have 1 or 3 channels (HWC)");
      job.sources.push_back({t.data<uint8_t>(), static_cast<int>(t.shape[0]), static_cast<int>(t.shape[1]),
                             static_cast<int>(t.shape[2])});
    }
  } else {
    TensorPtr t = a.tensor(0, "images");
    requireDtype("augmentBatch", "images", *t, DType::U8);
    requireDim("augmentBatch", "images", *t, 4);
    if (t->shape[3] != 1 && t->shape[3] != 3) throw RangeError("augmentBatch(): 'images' must have 1 or 3 channels (NHWC)");
    const int64_t stride = t->shape[1] * t->shape[2] * t->shape[3];
    for (int64_t i = 0; i < t->shape[0]; ++i)
      job.sources.push_back({t->data<uint8_t>() + i * stride, static_cast<int>(t->shape[1]),
                             static_cast<int>(t->shape[2]), static_cast<int>(t->shape[3])});
    job.inputs.push_back(t);
  }

  Napi::Value pv = a.at(1, "params");
  if (!pv.IsTypedArray() || pv.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw TypeError(a.where(1, "params") + " must be a Float64Array");
  auto pa = pv.As<Napi::Float64Array>();
  if (pa.ElementLength() % kRecord != 0)
    throw RangeError("augmentBatch(): params length " + std::to_string(pa.ElementLength()) + " is not a multiple of " +
                     std::to_string(kRecord));
  job.params.assign(pa.Data(), pa.Data() + pa.ElementLength());
  const int64_t records = static_cast<int64_t>(job.params.size() / kRecord);

  const int64_t views = a.integer(2, "views");
  if (views < 1 || records % views != 0)
    throw RangeError("augmentBatch(): " + std::to_string(records) + " records cannot be split into " +
                     std::to_string(views) + " views");
  job.batch = records / views;
  auto size = a.ints(3, "outSize");
  if (size.size() != 2 || size[0] < 1 || size[1] < 1 || size[0] > 16384 || size[1] > 16384)
    throw RangeError("augmentBatch(): outSize must be [h, w] with positive sizes");
  job.st.outH = static_cast<int>(size[0]);
  job.st.outW = static_cast<int>(size[1]);
  job.st.filter = parseFilter(a.string(4, "interpolation"));
  auto mean = numbers(a, 5, "mean", 3), std = numbers(a, 6, "std", 3);
  for (int c = 0; c < 3; ++c) {
    if (!(std[c] != 0) || !std::isfinite(std[c]) || !std::isfinite(mean[c]))
      throw RangeError("augmentBatch(): std must be non-zero and mean/std finite");
    job.st.mean[c] = static_cast<float>(mean[c]);
    job.st.invStd[c] = static_cast<float>(1.0 / std[c]);
  }
  for (int64_t r = 0; r < records; ++r) validateRecord(job.params.data() + r * kRecord, r, job.sources);

  if (job.batch == 0) throw RangeError("augmentBatch(): no records");
  for (int64_t v = 0; v < views; ++v) job.outputs.push_back(empty(DType::F32, {job.batch, 3, size[0], size[1]}));
  auto* worker = new AugmentWorker(a.env(), std::move(job));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}
