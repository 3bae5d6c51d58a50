// Argument checks and output shapes of maxPool2d / maxPool2dBackward, shared by both addons (native/cpu/pooling.cc,
// native/cuda/pooling.cc). Indices are int32 flat positions in an input plane.
#pragma once

#include <limits>
#include <string>
#include <tuple>

#include "binding.h"
#include "nn_args.h"

namespace ssql {
namespace parse {

// maxPool2d(x, kernel, stride, padding) -> [y, indices]; PyTorch's floor output size, padding <= kernel / 2.
struct MaxPool2dArgs {
  TensorPtr x;
  int64_t N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW;
  TensorPtr y, indices;
};

inline MaxPool2dArgs maxPool2dArgs(const Args& a) {
  MaxPool2dArgs m;
  m.x = a.tensor(0, "x");
  requireDtype(a.op, "x", *m.x, DType::F32);
  requireDim(a.op, "x", *m.x, 4);
  std::tie(m.KH, m.KW) = pairArg(a, 1, "kernel", 1);
  std::tie(m.SH, m.SW) = pairArg(a, 2, "stride", 1);
  std::tie(m.PH, m.PW) = pairArg(a, 3, "padding", 0);
  if (2 * m.PH > m.KH || 2 * m.PW > m.KW) throw RangeError("maxPool2d(): padding must be at most half the kernel size");
  const Shape& s = m.x->shape;
  m.N = s[0], m.C = s[1], m.H = s[2], m.W = s[3];
  if (m.H < 1 || m.W < 1) throw RangeError("maxPool2d(): input planes must be non-empty, got " + shapeStr(s));
  if (m.H + 2 * m.PH < m.KH || m.W + 2 * m.PW < m.KW)
    throw RangeError("maxPool2d(): kernel is larger than the padded input " + shapeStr(s));
  m.OH = (m.H + 2 * m.PH - m.KH) / m.SH + 1;
  m.OW = (m.W + 2 * m.PW - m.KW) / m.SW + 1;
  if (m.H * m.W > std::numeric_limits<int32_t>::max())
    throw RangeError("maxPool2d(): input plane too large for int32 indices");
  m.y = empty(DType::F32, {m.N, m.C, m.OH, m.OW});
  m.indices = empty(DType::I32, {m.N, m.C, m.OH, m.OW});
  return m;
}

// maxPool2dBackward(gy, indices, xShape) -> gx; each backend checks the indices' range its own way.
struct MaxPool2dBackwardArgs {
  TensorPtr gy, indices;
  int64_t planes, HW, OHW;  // N * C, input and output plane sizes
  TensorPtr gx;
};

inline MaxPool2dBackwardArgs maxPool2dBackwardArgs(const Args& a) {
  MaxPool2dBackwardArgs m;
  m.gy = a.tensor(0, "gy");
  m.indices = a.tensor(1, "indices");
  requireDtype(a.op, "gy", *m.gy, DType::F32);
  requireDtype(a.op, "indices", *m.indices, DType::I32);
  requireDim(a.op, "gy", *m.gy, 4);
  requireSameShape(a.op, *m.gy, *m.indices);
  Shape xs = a.ints(2, "xShape");
  if (xs.size() != 4) throw RangeError("maxPool2dBackward(): xShape must be [N, C, H, W]");
  for (int64_t d : xs)
    if (d < 0) throw RangeError("maxPool2dBackward(): xShape has a negative dimension");
  const Shape& gs = m.gy->shape;
  if (xs[0] != gs[0] || xs[1] != gs[1])
    throw RangeError("maxPool2dBackward(): gy " + shapeStr(gs) + " does not match xShape " + shapeStr(xs));
  m.HW = xs[2] * xs[3];
  m.OHW = gs[2] * gs[3];
  m.planes = xs[0] * xs[1];
  m.gx = empty(DType::F32, xs);
  return m;
}

}  // namespace parse
}  // namespace ssql
