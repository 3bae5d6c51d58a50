// Backend-independent argument checks of the nn ops: pairs, shapes, convolution and pooling geometry, and the
// reduced-dimension mask of sum/mean. Errors name the op and the argument, as the CPU backend's do.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "binding.h"

namespace ssql {

inline std::pair<int64_t, int64_t> pairArg(const Args& a, size_t i, const char* name, int64_t min) {
  auto v = a.ints(i, name);
  if (v.size() != 2) throw TypeError(a.where(i, name) + " must be a pair [h, w]");
  if (v[0] < min || v[1] < min || v[0] > (1 << 20) || v[1] > (1 << 20))
    throw RangeError(a.where(i, name) + " must hold values >= " + std::to_string(min));
  return {v[0], v[1]};
}

inline Shape shapeArg(const Args& a, size_t i, const char* name) {
  Shape s = a.ints(i, name);
  for (int64_t d : s)
    if (d < 0) throw RangeError(a.where(i, name) + " has a negative dimension");
  return s;
}

inline TensorPtr f32Arg(const Args& a, size_t i, const char* name) {
  auto t = a.tensor(i, name);
  requireDtype(a.op, name, *t, DType::F32);
  return t;
}

// A float32 tensor argument with `dim` dimensions.
inline TensorPtr f32Arg(const Args& a, size_t i, const char* name, int64_t dim) {
  auto t = f32Arg(a, i, name);
  requireDim(a.op, name, *t, dim);
  return t;
}

inline TensorPtr optF32Arg(const Args& a, size_t i, const char* name, const Shape* shape = nullptr) {
  auto t = a.optTensor(i, name);
  if (!t) return t;
  requireDtype(a.op, name, *t, DType::F32);
  if (shape) requireShape(a.op, name, *t, *shape);
  return t;
}

struct ConvGeometry {
  int64_t N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW;
  Shape xShape() const { return {N, C, H, W}; }
  Shape wShape() const { return {O, C / G, KH, KW}; }
  Shape yShape() const { return {N, O, OH, OW}; }
};

// Parses stride, padding, dilation and groups at argument `first` onwards and checks them against x and w shapes.
inline ConvGeometry convGeometry(const Args& a, const Shape& x, const Shape& w, size_t first) {
  if (x.size() != 4) throw RangeError(std::string(a.op) + "(): input must be [N, C, H, W], got " + shapeStr(x));
  if (w.size() != 4) throw RangeError(std::string(a.op) + "(): weight must be [Cout, Cin/groups, kh, kw], got " + shapeStr(w));
  auto [sh, sw] = pairArg(a, first, "stride", 1);
  auto [ph, pw] = pairArg(a, first + 1, "padding", 0);
  auto [dh, dw] = pairArg(a, first + 2, "dilation", 1);
  int64_t g = a.integer(first + 3, "groups");
  if (g < 1) throw RangeError(a.where(first + 3, "groups") + " must be >= 1");
  ConvGeometry q{x[0], x[1], x[2], x[3], w[0], w[2], w[3], sh, sw, ph, pw, dh, dw, g, 0, 0};
  for (int64_t d : x)
    if (d < 0) throw RangeError(std::string(a.op) + "(): negative dimension in input shape " + shapeStr(x));
  if (q.C % g || q.O % g || q.O == 0 || q.C == 0)
    throw RangeError(std::string(a.op) + "(): channels in " + std::to_string(q.C) + " and out " + std::to_string(q.O) +
                     " must be positive multiples of groups " + std::to_string(g));
  if (w[1] != q.C / g)
    throw RangeError(std::string(a.op) + "(): weight " + shapeStr(w) + " expects " + std::to_string(w[1] * g) +
                     " input channels, input " + shapeStr(x) + " has " + std::to_string(q.C));
  if (q.KH < 1 || q.KW < 1) throw RangeError(std::string(a.op) + "(): kernel size must be positive, got " + shapeStr(w));
  int64_t extH = dh * (q.KH - 1) + 1, extW = dw * (q.KW - 1) + 1;
  if (q.H + 2 * ph < extH || q.W + 2 * pw < extW)
    throw RangeError(std::string(a.op) + "(): kernel " + shapeStr(w) + " (dilated) is larger than the padded input " +
                     shapeStr(x));
  q.OH = (q.H + 2 * ph - extH) / sh + 1;
  q.OW = (q.W + 2 * pw - extW) / sw + 1;
  return q;
}

// Which dimensions sum/mean reduce (all of them when dims is empty), with the CPU backend's errors.
inline std::vector<bool> reducedMask(const char* op, const Shape& s, const std::vector<int64_t>& dims) {
  std::vector<bool> mask(s.size(), false);
  if (dims.empty()) mask.assign(s.size(), true);
  for (int64_t d : dims) {
    int64_t nd = static_cast<int64_t>(s.size());
    int64_t k = d < 0 ? d + nd : d;
    if (k < 0 || k >= nd)
      throw RangeError(std::string(op) + "(): dimension " + std::to_string(d) + " out of range for shape " + shapeStr(s));
    if (mask[k]) throw RangeError(std::string(op) + "(): dimension " + std::to_string(d) + " repeated");
    mask[k] = true;
  }
  return mask;
}

inline Shape reducedShape(const Shape& s, const std::vector<bool>& mask, bool keepdim) {
  Shape o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!mask[i]) o.push_back(s[i]);
    else if (keepdim) o.push_back(1);
  }
  return o;
}

inline int64_t normalizeDim(const char* op, int64_t d, int64_t nd) {
  int64_t k = d < 0 ? d + nd : d;
  if (k < 0 || k >= nd) throw RangeError(std::string(op) + "(): dimension " + std::to_string(d) + " out of range");
  return k;
}

}  // namespace ssql
