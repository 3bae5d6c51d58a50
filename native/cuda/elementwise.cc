// Elementwise float32 ops on CUDA: argument checks as native/cpu/elementwise.cc, kernels in elementwise_kernels.cu.
#include "../core/binding.h"
#include "../core/broadcast.h"
#include "../core/nn_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;
using cuda::Binary;
using cuda::GradZip;
using cuda::Unary;

namespace {

Napi::Value binaryOp(const Args& a, Binary op) {
  auto x = f32Arg(a, 0, "a");
  auto y = f32Arg(a, 1, "b");
  BroadcastPlan plan = planBroadcast(a.op, x->shape, y->shape);
  auto out = empty(DType::F32, plan.out);
  if (plan.kind == BroadcastPlan::Same) {
    cuda::binary(op, x->f32(), y->f32(), out->f32(), out->numel(), nullptr, cuda::stream());
  } else {
    auto bc = cuda::makeBroadcastIndex(plan.out, plan.strideA, plan.strideB, a.op);
    cuda::binary(op, x->f32(), y->f32(), out->f32(), out->numel(), &bc, cuda::stream());
  }
  return wrap(a.env(), out);
}

Napi::Value unaryOp(const Args& a, Unary op, float scalar = 0.0f) {
  auto x = f32Arg(a, 0, "x");
  auto out = empty(DType::F32, x->shape);
  cuda::unary(op, x->f32(), out->f32(), x->numel(), scalar, cuda::stream());
  return wrap(a.env(), out);
}

Napi::Value gradOp(const Args& a, GradZip op, const char* second, float scalar = 0.0f) {
  auto g = f32Arg(a, 0, "grad");
  auto x = f32Arg(a, 1, second);
  requireSameShape(a.op, *g, *x);
  auto out = empty(DType::F32, g->shape);
  cuda::gradZip(op, g->f32(), x->f32(), out->f32(), g->numel(), scalar, cuda::stream());
  return wrap(a.env(), out);
}

float scalarArg(const Args& a, size_t i, const char* name) { return static_cast<float>(a.number(i, name)); }

}  // namespace

SSQL_OP(add) { return binaryOp(a, Binary::Add); }
SSQL_OP(sub) { return binaryOp(a, Binary::Sub); }
SSQL_OP(mul) { return binaryOp(a, Binary::Mul); }
SSQL_OP(div) { return binaryOp(a, Binary::Div); }
SSQL_OP(maximum) { return binaryOp(a, Binary::Maximum); }

SSQL_OP(addScalar) { return unaryOp(a, Unary::AddScalar, scalarArg(a, 1, "s")); }
SSQL_OP(mulScalar) { return unaryOp(a, Unary::MulScalar, scalarArg(a, 1, "s")); }
SSQL_OP(powScalar) {
  float s = scalarArg(a, 1, "s");
  return s == 2.0f ? unaryOp(a, Unary::Square) : unaryOp(a, Unary::PowScalar, s);
}
SSQL_OP(clampMin) { return unaryOp(a, Unary::ClampMin, scalarArg(a, 1, "min")); }
SSQL_OP(neg) { return unaryOp(a, Unary::Neg); }
SSQL_OP(exp) { return unaryOp(a, Unary::Exp); }
SSQL_OP(log) { return unaryOp(a, Unary::Log); }
SSQL_OP(sqrt) { return unaryOp(a, Unary::Sqrt); }
SSQL_OP(abs) { return unaryOp(a, Unary::Abs); }
SSQL_OP(relu) { return unaryOp(a, Unary::Relu); }

// reluBackward(grad, output): grad where the ReLU output is positive.
SSQL_OP(reluBackward) {
  auto g = f32Arg(a, 0, "a");
  auto y = f32Arg(a, 1, "b");
  requireSameShape(a.op, *g, *y);
  auto out = empty(DType::F32, g->shape);
  cuda::gradZip(GradZip::ReluBackward, g->f32(), y->f32(), out->f32(), g->numel(), 0.0f, cuda::stream());
  return wrap(a.env(), out);
}
// absBackward(grad, input): grad * sign(input), zero at zero as in PyTorch.
SSQL_OP(absBackward) {
  auto g = f32Arg(a, 0, "a");
  auto x = f32Arg(a, 1, "b");
  requireSameShape(a.op, *g, *x);
  auto out = empty(DType::F32, g->shape);
  cuda::gradZip(GradZip::AbsBackward, g->f32(), x->f32(), out->f32(), g->numel(), 0.0f, cuda::stream());
  return wrap(a.env(), out);
}
// clampMinBackward(grad, input, min): grad where the input was not clamped.
SSQL_OP(clampMinBackward) { return gradOp(a, GradZip::ClampMinBackward, "input", scalarArg(a, 2, "min")); }

// In place: dst += alpha * src (same shape).
SSQL_OP(addScaled_) {
  auto dst = f32Arg(a, 0, "dst");
  auto src = f32Arg(a, 1, "src");
  float alpha = scalarArg(a, 2, "alpha");
  requireSameShape(a.op, *dst, *src);
  cuda::addScaled(dst->f32(), src->f32(), alpha, dst->numel(), cuda::stream());
  return a.env().Undefined();
}

SSQL_OP(mulScalar_) {
  auto dst = f32Arg(a, 0, "dst");
  float s = scalarArg(a, 1, "s");
  cuda::unary(Unary::MulScalar, dst->f32(), dst->f32(), dst->numel(), s, cuda::stream());
  return a.env().Undefined();
}

SSQL_OP(fill_) {
  auto dst = f32Arg(a, 0, "dst");
  cuda::fillF32(dst->f32(), scalarArg(a, 1, "value"), dst->numel(), cuda::stream());
  return a.env().Undefined();
}

// expand(x, shape): materialise x broadcast to shape.
SSQL_OP(expand) {
  auto x = f32Arg(a, 0, "x");
  Shape shape = a.ints(1, "shape");
  BroadcastPlan plan = planBroadcast(a.op, shape, x->shape);
  if (plan.out != shape) throw RangeError("expand(): cannot expand " + shapeStr(x->shape) + " to " + shapeStr(shape));
  auto out = empty(DType::F32, shape);
  int64_t n = out->numel();
  if (plan.kind == BroadcastPlan::Same) {
    if (n) SSQL_CUDA(cudaMemcpyAsync(out->f32(), x->f32(), x->bytes(), cudaMemcpyDeviceToDevice, cuda::stream()));
  } else {
    auto bc = cuda::makeBroadcastIndex(plan.out, plan.strideA, plan.strideB, a.op);
    cuda::expand(x->f32(), out->f32(), n, bc, cuda::stream());
  }
  return wrap(a.env(), out);
}
