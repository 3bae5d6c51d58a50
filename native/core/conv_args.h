// Argument checks and output shapes of conv2d and its backward ops, shared by both addons (native/cpu/conv.cc,
// native/cuda/conv.cc); the geometry itself is convGeometry (nn_args.h).
#pragma once

#include "binding.h"
#include "nn_args.h"

namespace ssql {
namespace parse {

// conv2d(x, w, bias?, stride, padding, dilation, groups) -> y
struct Conv2dArgs {
  TensorPtr x, w, bias;
  ConvGeometry q;
  TensorPtr y;
};

inline Conv2dArgs conv2dArgs(const Args& a) {
  Conv2dArgs c;
  c.x = f32Arg(a, 0, "x");
  c.w = f32Arg(a, 1, "w");
  c.bias = a.optTensor(2, "bias");
  c.q = convGeometry(a, c.x->shape, c.w->shape, 3);
  if (c.bias) {
    requireDtype(a.op, "bias", *c.bias, DType::F32);
    requireShape(a.op, "bias", *c.bias, {c.q.O});
  }
  c.y = empty(DType::F32, c.q.yShape());
  return c;
}

// conv2dBackwardData(gy, w, xShape, stride, padding, dilation, groups) -> gx
struct Conv2dBackwardDataArgs {
  TensorPtr gy, w;
  ConvGeometry q;
  TensorPtr gx;
};

inline Conv2dBackwardDataArgs conv2dBackwardDataArgs(const Args& a) {
  Conv2dBackwardDataArgs c;
  c.gy = f32Arg(a, 0, "gy");
  c.w = f32Arg(a, 1, "w");
  Shape xs = shapeArg(a, 2, "xShape");
  c.q = convGeometry(a, xs, c.w->shape, 3);
  requireShape(a.op, "gy", *c.gy, c.q.yShape());
  c.gx = empty(DType::F32, xs);
  return c;
}

// conv2dBackwardWeight(gy, x, wShape, stride, padding, dilation, groups, withBias) -> [gw, gb?]
// conv2dBackwardWeight(gy, x, wShape, stride, padding, dilation, groups, withBias, accumulate?) -> [gw or null, gb?]
// accumulate: a weight gradient (float32, wShape) that the result is added into in place; gw is then null.
struct Conv2dBackwardWeightArgs {
  TensorPtr gy, x;
  ConvGeometry q;
  TensorPtr gw, gb;  // gb: null unless withBias
  TensorPtr accumulate;
};

inline Conv2dBackwardWeightArgs conv2dBackwardWeightArgs(const Args& a) {
  Conv2dBackwardWeightArgs c;
  c.gy = f32Arg(a, 0, "gy");
  c.x = f32Arg(a, 1, "x");
  Shape ws = shapeArg(a, 2, "wShape");
  c.q = convGeometry(a, c.x->shape, ws, 3);
  bool withBias = a.boolean(7, "withBias");
  requireShape(a.op, "gy", *c.gy, c.q.yShape());
  c.accumulate = a.optTensor(8, "accumulate");
  if (c.accumulate) {
    requireDtype(a.op, "accumulate", *c.accumulate, DType::F32);
    requireShape(a.op, "accumulate", *c.accumulate, ws);
  }
  c.gw = empty(DType::F32, ws);
  if (withBias) c.gb = empty(DType::F32, {c.q.O});
  return c;
}

}  // namespace parse
}  // namespace ssql
