// Argument checks and outputs of augmentBatch, shared by both addons (native/cpu/augment.cc,
// native/cuda/augment.cc): the source images, the parameter records (each validated against its source), the
// output size, filter and normalization.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "augment_math.h"
#include "binding.h"

namespace ssql {
namespace parse {

// augmentBatch(images, params, views, outSize, interpolation, mean, std)
//   images: uint8 [N, H, W, C] (record field kSrc indexes N), an array of uint8 [H, W, C], or packed images
//           { data: uint8 [total], shapes: Int32Array [N * 3] } (image i is [h, w, c] = shapes[3i ..], stored
//           back to back); C is 1 or 3.
//   params: Float64Array of views * B records; record v * B + b becomes image b of output v.
struct AugmentBatchArgs {
  std::vector<TensorPtr> inputs;  // owners of the sources' pixels
  std::vector<aug::SourceImage> sources;
  std::vector<double> params;     // records * aug::kRecord
  int64_t records = 0, views = 0, batch = 0;
  aug::Settings settings{};
  std::vector<TensorPtr> outputs;  // views float32 [batch, 3, outH, outW]
};

inline aug::Filter augmentFilter(const std::string& s) {
  if (s == "bilinear") return aug::Filter::Bilinear;
  if (s == "bicubic") return aug::Filter::Bicubic;
  if (s == "box") return aug::Filter::Box;
  if (s == "hamming") return aug::Filter::Hamming;
  if (s == "lanczos") return aug::Filter::Lanczos;
  throw TypeError("augmentBatch(): interpolation must be 'bilinear', 'bicubic', 'box', 'hamming' or 'lanczos', got '" +
                  s + "'");
}

inline std::vector<double> augmentNumbers(const Args& a, size_t i, const char* name, size_t n) {
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

inline void checkImageChannels(const std::string& name, int64_t c) {
  if (c != 1 && c != 3) throw RangeError("augmentBatch(): " + name + " must have 1 or 3 channels (HWC)");
}

inline void checkImageSize(const std::string& name, int64_t h, int64_t w) {
  if (h < 1 || w < 1 || h > (1 << 24) || w > (1 << 24))
    throw RangeError("augmentBatch(): " + name + " must have between 1 and 2^24 rows and columns");
}

inline aug::SourceImage sourceImage(const uint8_t* data, int64_t h, int64_t w, int64_t c) {
  return {data, static_cast<int>(h), static_cast<int>(w), static_cast<int>(c)};
}

inline void augmentImages(const Args& a, AugmentBatchArgs& m) {
  Napi::Value imgs = a.at(0, "images");
  if (imgs.IsArray()) {
    m.inputs = a.tensors(0, "images");
    for (size_t i = 0; i < m.inputs.size(); ++i) {
      const Tensor& t = *m.inputs[i];
      std::string name = "images[" + std::to_string(i) + "]";
      requireDtype("augmentBatch", name.c_str(), t, DType::U8);
      requireDim("augmentBatch", name.c_str(), t, 3);
      checkImageSize(name, t.shape[0], t.shape[1]);
      checkImageChannels(name, t.shape[2]);
      m.sources.push_back(sourceImage(t.data<uint8_t>(), t.shape[0], t.shape[1], t.shape[2]));
    }
  } else if (imgs.IsObject() && !isTensorHandle(a.env(), imgs)) {
    auto o = imgs.As<Napi::Object>();
    Napi::Value data = o.Get("data"), shapes = o.Get("shapes");
    if (!isTensorHandle(a.env(), data) || !shapes.IsTypedArray() || shapes.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw TypeError(a.where(0, "images") + " must be a tensor, an array of tensors or { data: tensor, shapes: Int32Array }");
    Box* box = unwrapBox(a.env(), data, a.where(0, "images") + ".data");
    if (!box->t) throw TypeError(a.where(0, "images") + ".data is a disposed tensor");
    if (box->device != backend().device)
      throw TypeError(a.where(0, "images") + ".data lives on " + deviceName(box->device) + ", this op runs on " +
                      deviceName(backend().device));
    TensorPtr t = box->t;
    requireDtype("augmentBatch", "images.data", *t, DType::U8);
    requireDim("augmentBatch", "images.data", *t, 1);
    auto s = shapes.As<Napi::Int32Array>();
    if (s.ElementLength() % 3 != 0) throw RangeError("augmentBatch(): images.shapes must hold [h, w, c] per image");
    int64_t offset = 0;
    for (size_t i = 0; i < s.ElementLength() / 3; ++i) {
      const int64_t h = s[3 * i], w = s[3 * i + 1], c = s[3 * i + 2];
      std::string name = "packed image " + std::to_string(i);
      checkImageSize(name, h, w);
      checkImageChannels(name, c);
      if (h * w * c > t->numel() - offset)
        throw RangeError("augmentBatch(): images.shapes describe more than the " + std::to_string(t->numel()) +
                         " bytes of images.data");
      m.sources.push_back(sourceImage(t->data<uint8_t>() + offset, h, w, c));
      offset += h * w * c;
    }
    m.inputs.push_back(t);
  } else {
    TensorPtr t = a.tensor(0, "images");
    requireDtype("augmentBatch", "images", *t, DType::U8);
    requireDim("augmentBatch", "images", *t, 4);
    checkImageSize("'images'", t->shape[1], t->shape[2]);
    if (t->shape[3] != 1 && t->shape[3] != 3) throw RangeError("augmentBatch(): 'images' must have 1 or 3 channels (NHWC)");
    const int64_t stride = t->shape[1] * t->shape[2] * t->shape[3];
    for (int64_t i = 0; i < t->shape[0]; ++i)
      m.sources.push_back(sourceImage(t->data<uint8_t>() + i * stride, t->shape[1], t->shape[2], t->shape[3]));
    m.inputs.push_back(t);
  }
}

inline bool isWhole(double v) { return std::isfinite(v) && v == std::floor(v); }

inline void checkAugmentRecord(const double* rec, int64_t index, const std::vector<aug::SourceImage>& sources) {
  using namespace aug;
  auto fail = [&](const std::string& what) {
    throw RangeError("augmentBatch(): record " + std::to_string(index) + ": " + what);
  };
  for (int f : {kSrc, kTop, kHeight, kLeft, kWidth, kFlags})
    if (!isWhole(rec[f])) fail("field " + std::to_string(f) + " must be an integer");
  const int64_t src = static_cast<int64_t>(rec[kSrc]);
  if (src < 0 || src >= static_cast<int64_t>(sources.size()))
    fail("source index " + std::to_string(src) + " is outside [0, " + std::to_string(sources.size()) + ")");
  const SourceImage& s = sources[src];
  if (rec[kTop] < 0 || rec[kHeight] < 1 || rec[kTop] + rec[kHeight] > s.h || rec[kLeft] < 0 || rec[kWidth] < 1 ||
      rec[kLeft] + rec[kWidth] > s.w)
    fail("region rows [" + std::to_string(rec[kTop]) + ", +" + std::to_string(rec[kHeight]) + "), columns [" +
         std::to_string(rec[kLeft]) + ", +" + std::to_string(rec[kWidth]) + ") is outside the " + std::to_string(s.h) +
         "x" + std::to_string(s.w) + " source image");
  if (!(rec[kScaleY] > 0) || !(rec[kScaleX] > 0) || !std::isfinite(rec[kScaleY]) || !std::isfinite(rec[kScaleX]) ||
      !std::isfinite(rec[kOffY]) || !std::isfinite(rec[kOffX]))
    fail("scales must be positive and offsets finite");
  // Bounds the taps per output sample (resampleTaps), so a record cannot ask for an unbounded table or loop.
  if (rec[kScaleY] > s.h || rec[kScaleX] > s.w) fail("scales must not exceed the source size");
  const int flags = static_cast<int>(rec[kFlags]);
  if (flags < 0 || flags > 31) fail("flags must be in 0..31");
  if (flags & kJitter) {
    int seen = 0;
    for (int o = 0; o < 4; ++o) {
      const double w = rec[kOrder0 + o];
      if (!isWhole(w) || w < 0 || w > 3) fail("jitter order must be a permutation of 0..3");
      seen |= 1 << static_cast<int>(w);
    }
    if (seen != 15) fail("jitter order must be a permutation of 0..3");
    for (int f = kBrightness; f <= kSaturation; ++f)
      if (!std::isnan(rec[f]) && !(rec[f] >= 0 && std::isfinite(rec[f]))) fail("jitter factors must be >= 0");
    if (!std::isnan(rec[kHue]) && !(rec[kHue] >= -0.5 && rec[kHue] <= 0.5)) fail("hue factor must be in [-0.5, 0.5]");
  }
  if ((flags & kBlur) && !(rec[kSigma] > 0 && std::isfinite(rec[kSigma]))) fail("blur radius must be positive");
}

inline AugmentBatchArgs augmentBatchArgs(const Args& a) {
  AugmentBatchArgs m;
  augmentImages(a, m);

  Napi::Value pv = a.at(1, "params");
  if (!pv.IsTypedArray() || pv.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw TypeError(a.where(1, "params") + " must be a Float64Array");
  auto pa = pv.As<Napi::Float64Array>();
  if (pa.ElementLength() % aug::kRecord != 0)
    throw RangeError("augmentBatch(): params length " + std::to_string(pa.ElementLength()) + " is not a multiple of " +
                     std::to_string(aug::kRecord));
  m.params.assign(pa.Data(), pa.Data() + pa.ElementLength());
  m.records = static_cast<int64_t>(m.params.size() / aug::kRecord);

  m.views = a.integer(2, "views");
  if (m.views < 1 || m.records % m.views != 0)
    throw RangeError("augmentBatch(): " + std::to_string(m.records) + " records cannot be split into " +
                     std::to_string(m.views) + " views");
  m.batch = m.records / m.views;
  auto size = a.ints(3, "outSize");
  if (size.size() != 2 || size[0] < 1 || size[1] < 1 || size[0] > 16384 || size[1] > 16384)
    throw RangeError("augmentBatch(): outSize must be [h, w] with positive sizes");
  m.settings.outH = static_cast<int>(size[0]);
  m.settings.outW = static_cast<int>(size[1]);
  m.settings.filter = augmentFilter(a.string(4, "interpolation"));
  auto mean = augmentNumbers(a, 5, "mean", 3), std = augmentNumbers(a, 6, "std", 3);
  for (int c = 0; c < 3; ++c) {
    if (!(std[c] != 0) || !std::isfinite(std[c]) || !std::isfinite(mean[c]))
      throw RangeError("augmentBatch(): std must be non-zero and mean/std finite");
    m.settings.mean[c] = static_cast<float>(mean[c]);
    m.settings.invStd[c] = static_cast<float>(1.0 / std[c]);
  }
  for (int64_t r = 0; r < m.records; ++r) checkAugmentRecord(m.params.data() + r * aug::kRecord, r, m.sources);

  if (m.batch == 0) throw RangeError("augmentBatch(): no records");
  for (int64_t v = 0; v < m.views; ++v) m.outputs.push_back(empty(DType::F32, {m.batch, 3, size[0], size[1]}));
  return m;
}

}  // namespace parse
}  // namespace ssql
