// Argument checks and output shapes of matmul and linear, shared by both addons (native/cpu/matmul.cc,
// native/cuda/matmul.cc).
#pragma once

#include <string>

#include "binding.h"
#include "nn_args.h"

namespace ssql {
namespace parse {

// matmul(a, b, transA, transB) -> op(a) @ op(b), [M, K] @ [K, N]
// matmul(a, b, transA, transB, accumulate?) -> op(a) @ op(b), or null after adding it into accumulate ([M, N]) in
// place where the backend does so in its GEMM (the CPU's).
struct MatmulArgs {
  TensorPtr a, b;
  bool transA, transB;
  int64_t M, N, K;
  TensorPtr out, accumulate;
};

inline MatmulArgs matmulArgs(const Args& a) {
  MatmulArgs m;
  m.a = f32Arg(a, 0, "a", 2);
  m.b = f32Arg(a, 1, "b", 2);
  m.transA = a.boolean(2, "transA");
  m.transB = a.boolean(3, "transB");
  const Shape &sa = m.a->shape, &sb = m.b->shape;
  m.M = m.transA ? sa[1] : sa[0];
  m.K = m.transA ? sa[0] : sa[1];
  int64_t Kb = m.transB ? sb[1] : sb[0];
  m.N = m.transB ? sb[0] : sb[1];
  if (m.K != Kb)
    throw RangeError("matmul(): inner dimensions differ: op(a) is [" + std::to_string(m.M) + ", " + std::to_string(m.K) +
                     "], op(b) is [" + std::to_string(Kb) + ", " + std::to_string(m.N) + "]");
  m.accumulate = a.optTensor(4, "accumulate");
  if (m.accumulate) {
    requireDtype(a.op, "accumulate", *m.accumulate, DType::F32);
    requireShape(a.op, "accumulate", *m.accumulate, {m.M, m.N});
  }
  m.out = empty(DType::F32, {m.M, m.N});
  return m;
}

// linear(x, w, bias?) -> x @ w^T + bias, x [N, in], w [out, in]
struct LinearArgs {
  TensorPtr x, w, bias;
  int64_t N, in, out;
  TensorPtr y;
};

inline LinearArgs linearArgs(const Args& a) {
  LinearArgs l;
  l.x = f32Arg(a, 0, "x", 2);
  l.w = f32Arg(a, 1, "w", 2);
  l.bias = a.optTensor(2, "bias");
  l.N = l.x->shape[0];
  l.in = l.x->shape[1];
  l.out = l.w->shape[0];
  if (l.w->shape[1] != l.in)
    throw RangeError("linear(): input " + shapeStr(l.x->shape) + " does not match weight " + shapeStr(l.w->shape));
  if (l.bias) {
    requireDtype(a.op, "bias", *l.bias, DType::F32);
    requireShape(a.op, "bias", *l.bias, {l.out});
  }
  l.y = empty(DType::F32, {l.N, l.out});
  return l;
}

}  // namespace parse
}  // namespace ssql
