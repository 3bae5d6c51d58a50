// Argument checks and outputs of the elementwise float32 ops, shared by both addons (native/cpu/elementwise.cc,
// native/cuda/elementwise.cc): broadcasting binary ops, unary ops, same-shape pairs and expand.
#pragma once

#include "binding.h"
#include "broadcast.h"
#include "nn_args.h"

namespace ssql {
namespace parse {

// add(a, b) and the other broadcasting binary ops.
struct BinaryArgs {
  TensorPtr a, b;
  BroadcastPlan plan;
  TensorPtr out;
};

inline BinaryArgs binaryArgs(const Args& a) {
  BinaryArgs r;
  r.a = f32Arg(a, 0, "a");
  r.b = f32Arg(a, 1, "b");
  r.plan = planBroadcast(a.op, r.a->shape, r.b->shape);
  r.out = empty(DType::F32, r.plan.out);
  return r;
}

// relu(x) and the other unary ops (a scalar operand is read by the op itself).
struct UnaryArgs {
  TensorPtr x, out;
};

inline UnaryArgs unaryArgs(const Args& a) {
  UnaryArgs r;
  r.x = f32Arg(a, 0, "x");
  r.out = empty(DType::F32, r.x->shape);
  return r;
}

// Same-shape pairs without broadcasting (backward helpers): (first, second[, scalar at argument 2]) -> out.
struct ZipArgs {
  TensorPtr a, b;
  float scalar = 0.0f;
  TensorPtr out;
};

inline ZipArgs zipArgs(const Args& a, const char* first, const char* second, const char* scalar = nullptr) {
  ZipArgs r;
  r.a = f32Arg(a, 0, first);
  r.b = f32Arg(a, 1, second);
  if (scalar) r.scalar = static_cast<float>(a.number(2, scalar));
  requireSameShape(a.op, *r.a, *r.b);
  r.out = empty(DType::F32, r.a->shape);
  return r;
}

// addRelu(a, b, withRange, fake quant?) -> [max(a + b, 0), range or null, mask or null]: a residual block's closing
// add and ReLU in one pass; withRange and the fake quant (arguments 3-8, CPU) as batchNorm's.
struct AddReluArgs {
  ZipArgs zip;
  bool withRange;
};

inline AddReluArgs addReluArgs(const Args& a) {
  AddReluArgs r{zipArgs(a, "a", "b"), a.boolean(2, "withRange")};
  return r;
}

// addScaled_(dst, src, alpha): in place, same shape.
struct AddScaledArgs {
  TensorPtr dst, src;
  float alpha;
};

inline AddScaledArgs addScaledArgs(const Args& a) {
  AddScaledArgs r;
  r.dst = f32Arg(a, 0, "dst");
  r.src = f32Arg(a, 1, "src");
  r.alpha = static_cast<float>(a.number(2, "alpha"));
  requireSameShape(a.op, *r.dst, *r.src);
  return r;
}

// expand(x, shape): x broadcast to shape (plan.strideB indexes x).
struct ExpandArgs {
  TensorPtr x;
  BroadcastPlan plan;
  TensorPtr out;
};

inline ExpandArgs expandArgs(const Args& a) {
  ExpandArgs r;
  r.x = f32Arg(a, 0, "x");
  Shape shape = a.ints(1, "shape");
  r.plan = planBroadcast(a.op, shape, r.x->shape);
  if (r.plan.out != shape) throw RangeError("expand(): cannot expand " + shapeStr(r.x->shape) + " to " + shapeStr(shape));
  r.out = empty(DType::F32, shape);
  return r;
}

}  // namespace parse
}  // namespace ssql
