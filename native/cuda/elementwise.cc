// Elementwise float32 ops on CUDA: argument checks as native/cpu/elementwise.cc, kernels in elementwise_kernels.cu.
#include "../core/binding.h"
#include "../core/elementwise_args.h"
#include "../core/quant_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;
using cuda::Binary;
using cuda::GradZip;
using cuda::Unary;

namespace {

Napi::Value binaryOp(const Args& a, Binary op) {
  parse::BinaryArgs r = parse::binaryArgs(a);
  const TensorPtr &x = r.a, &y = r.b, &out = r.out;
  const BroadcastPlan& plan = r.plan;
  if (plan.kind == BroadcastPlan::Same) {
    cuda::binary(op, x->f32(), y->f32(), out->f32(), out->numel(), nullptr, cuda::stream());
  } else {
    auto bc = cuda::makeBroadcastIndex(plan.out, plan.strideA, plan.strideB, a.op);
    cuda::binary(op, x->f32(), y->f32(), out->f32(), out->numel(), &bc, cuda::stream());
  }
  return wrap(a.env(), out);
}

Napi::Value unaryOp(const Args& a, Unary op, float scalar = 0.0f) {
  parse::UnaryArgs r = parse::unaryArgs(a);
  cuda::unary(op, r.x->f32(), r.out->f32(), r.x->numel(), scalar, cuda::stream());
  return wrap(a.env(), r.out);
}

// (first, second[, scalar]) -> op(first, second, scalar), same shape.
Napi::Value gradOp(const Args& a, GradZip op, const char* first, const char* second, const char* scalar = nullptr) {
  parse::ZipArgs r = parse::zipArgs(a, first, second, scalar);
  cuda::gradZip(op, r.a->f32(), r.b->f32(), r.out->f32(), r.a->numel(), r.scalar, cuda::stream());
  return wrap(a.env(), r.out);
}

float scalarArg(const Args& a, size_t i, const char* name) { return static_cast<float>(a.number(i, name)); }

}  // namespace

SSQL_OP(add) { return binaryOp(a, Binary::Add); }
SSQL_OP(sub) { return binaryOp(a, Binary::Sub); }
SSQL_OP(mul) { return binaryOp(a, Binary::Mul); }
SSQL_OP(div) { return binaryOp(a, Binary::Div); }
SSQL_OP(maximum) { return binaryOp(a, Binary::Maximum); }
// The output range is a CPU-side fusion; here the observer runs its own reduction (range null).
SSQL_OP(addRelu) {
  quant::rejectFusedFakeQuant(a, 3);
  parse::AddReluArgs r = parse::addReluArgs(a);
  cuda::binary(Binary::AddRelu, r.zip.a->f32(), r.zip.b->f32(), r.zip.out->f32(), r.zip.out->numel(), nullptr,
               cuda::stream());
  return wrapMany(a.env(), {r.zip.out, nullptr, nullptr});
}

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
SSQL_OP(sigmoid) { return unaryOp(a, Unary::Sigmoid); }
SSQL_OP(floor) { return unaryOp(a, Unary::Floor); }
SSQL_OP(clampMax) { return unaryOp(a, Unary::ClampMax, scalarArg(a, 1, "max")); }
// sigmoidBackward(grad, output): grad * y * (1 - y).
SSQL_OP(sigmoidBackward) { return gradOp(a, GradZip::SigmoidBackward, "a", "b"); }
// clampMaxBackward(grad, input, max): grad where the input was not clamped (x <= max, as PyTorch).
SSQL_OP(clampMaxBackward) { return gradOp(a, GradZip::ClampMaxBackward, "grad", "input", "max"); }

// reluBackward(grad, output): grad where the ReLU output is positive.
SSQL_OP(reluBackward) { return gradOp(a, GradZip::ReluBackward, "a", "b"); }
// absBackward(grad, input): grad * sign(input), zero at zero as in PyTorch.
SSQL_OP(absBackward) { return gradOp(a, GradZip::AbsBackward, "a", "b"); }
// clampMinBackward(grad, input, min): grad where the input was not clamped.
SSQL_OP(clampMinBackward) { return gradOp(a, GradZip::ClampMinBackward, "grad", "input", "min"); }

// In place: dst += alpha * src (same shape).
SSQL_OP(addScaled_) {
  parse::AddScaledArgs r = parse::addScaledArgs(a);
  const TensorPtr &dst = r.dst, &src = r.src;
  const float alpha = r.alpha;
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
  parse::ExpandArgs r = parse::expandArgs(a);
  const TensorPtr &x = r.x, &out = r.out;
  const BroadcastPlan& plan = r.plan;
  int64_t n = out->numel();
  if (plan.kind == BroadcastPlan::Same) {
    if (n) SSQL_CUDA(cudaMemcpyAsync(out->f32(), x->f32(), x->bytes(), cudaMemcpyDeviceToDevice, cuda::stream()));
  } else {
    auto bc = cuda::makeBroadcastIndex(plan.out, plan.strideA, plan.strideB, a.op);
    cuda::expand(x->f32(), out->f32(), n, bc, cuda::stream());
  }
  return wrap(a.env(), out);
}
