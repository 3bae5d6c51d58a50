// Elementwise float32 kernels: broadcasting binary ops, scalar/unary ops, backward helpers, fills, casts, and the
// bias broadcasts of conv2d and linear.
// Semantics match native/cpu/elementwise.cc expression for expression (NaN handling included).
#include <cstdint>

#include "grid.cuh"
#include "kernels.h"
#include "runtime.h"

namespace ssql {
namespace cuda {

namespace {

struct AddOp { __device__ float operator()(float x, float y) const { return x + y; } };
struct SubOp { __device__ float operator()(float x, float y) const { return x - y; } };
struct MulOp { __device__ float operator()(float x, float y) const { return x * y; } };
struct DivOp { __device__ float operator()(float x, float y) const { return x / y; } };
struct AddReluOp {
  __device__ float operator()(float x, float y) const {
    float v = x + y;
    return v > 0.0f ? v : 0.0f;
  }
};
struct MaximumOp {
  __device__ float operator()(float x, float y) const { return isnan(x) || x > y ? x : y; }
};

// Offsets of output element i in both operands; Index is 32-bit when every offset fits.
template <typename Index>
__device__ inline void broadcastOffsets(Index i, const BroadcastIndex& bc, Index& oa, Index& ob) {
  Index rem = i;
  oa = 0;
  ob = 0;
  for (int d = bc.nd - 1; d >= 0; --d) {
    Index size = static_cast<Index>(bc.shape[d]);
    Index idx = rem % size;
    rem /= size;
    oa += idx * static_cast<Index>(bc.strideA[d]);
    ob += idx * static_cast<Index>(bc.strideB[d]);
  }
}

template <typename Index, typename Op>
__global__ void binaryBroadcastKernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out,
                                      Index n, BroadcastIndex bc, Op op) {
  for (Index i = blockIdx.x * static_cast<Index>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<Index>(blockDim.x) * gridDim.x) {
    Index oa, ob;
    broadcastOffsets(i, bc, oa, ob);
    out[i] = op(a[oa], b[ob]);
  }
}

template <typename Op>
void binaryWith(Op op, const float* a, const float* b, float* out, int64_t n, const BroadcastIndex* bc, cudaStream_t s) {
  if (n <= 0) return;
  if (!bc) {
    launchMap(n, [=] __device__(int64_t i) { out[i] = op(a[i], b[i]); }, s, "binary elementwise kernel");
    return;
  }
  if (n < (int64_t(1) << 31)) {
    binaryBroadcastKernel<uint32_t><<<blocksFor(n), kThreads, 0, s>>>(a, b, out, static_cast<uint32_t>(n), *bc, op);
  } else {
    binaryBroadcastKernel<int64_t><<<blocksFor(n), kThreads, 0, s>>>(a, b, out, n, *bc, op);
  }
  checkCuda(cudaGetLastError(), "broadcast elementwise kernel");
}

__global__ void expandKernel(const float* __restrict__ x, float* __restrict__ out, int64_t n, BroadcastIndex bc) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t oa, ob;
    broadcastOffsets<int64_t>(i, bc, oa, ob);
    out[i] = x[ob];
  }
}

}  // namespace

void binary(Binary op, const float* a, const float* b, float* out, int64_t n, const BroadcastIndex* bc, cudaStream_t s) {
  switch (op) {
    case Binary::Add: return binaryWith(AddOp{}, a, b, out, n, bc, s);
    case Binary::Sub: return binaryWith(SubOp{}, a, b, out, n, bc, s);
    case Binary::Mul: return binaryWith(MulOp{}, a, b, out, n, bc, s);
    case Binary::Div: return binaryWith(DivOp{}, a, b, out, n, bc, s);
    case Binary::Maximum: return binaryWith(MaximumOp{}, a, b, out, n, bc, s);
    case Binary::AddRelu: return binaryWith(AddReluOp{}, a, b, out, n, bc, s);
  }
}

void unary(Unary op, const float* x, float* out, int64_t n, float c, cudaStream_t s) {
  const char* name = "unary elementwise kernel";
  switch (op) {
    case Unary::AddScalar: return launchMap(n, [=] __device__(int64_t i) { out[i] = x[i] + c; }, s, name);
    case Unary::MulScalar: return launchMap(n, [=] __device__(int64_t i) { out[i] = x[i] * c; }, s, name);
    case Unary::PowScalar: return launchMap(n, [=] __device__(int64_t i) { out[i] = powf(x[i], c); }, s, name);
    case Unary::Square: return launchMap(n, [=] __device__(int64_t i) { out[i] = x[i] * x[i]; }, s, name);
    case Unary::ClampMin:
      return launchMap(n, [=] __device__(int64_t i) {
        float v = x[i];
        out[i] = isnan(v) ? v : (v < c ? c : v);
      }, s, name);
    case Unary::Neg: return launchMap(n, [=] __device__(int64_t i) { out[i] = -x[i]; }, s, name);
    case Unary::Exp: return launchMap(n, [=] __device__(int64_t i) { out[i] = expf(x[i]); }, s, name);
    case Unary::Log: return launchMap(n, [=] __device__(int64_t i) { out[i] = logf(x[i]); }, s, name);
    case Unary::Sqrt: return launchMap(n, [=] __device__(int64_t i) { out[i] = sqrtf(x[i]); }, s, name);
    case Unary::Abs: return launchMap(n, [=] __device__(int64_t i) { out[i] = fabsf(x[i]); }, s, name);
    case Unary::Relu: return launchMap(n, [=] __device__(int64_t i) { out[i] = x[i] > 0.0f ? x[i] : 0.0f; }, s, name);
    case Unary::ClampMax:
      return launchMap(n, [=] __device__(int64_t i) {
        float v = x[i];
        out[i] = isnan(v) ? v : (v > c ? c : v);
      }, s, name);
    case Unary::Sigmoid: return launchMap(n, [=] __device__(int64_t i) { out[i] = 1.0f / (1.0f + expf(-x[i])); }, s, name);
    case Unary::Floor: return launchMap(n, [=] __device__(int64_t i) { out[i] = floorf(x[i]); }, s, name);
  }
}

void gradZip(GradZip op, const float* g, const float* x, float* out, int64_t n, float c, cudaStream_t s) {
  const char* name = "backward elementwise kernel";
  switch (op) {
    case GradZip::ReluBackward:
      return launchMap(n, [=] __device__(int64_t i) { out[i] = x[i] > 0.0f ? g[i] : 0.0f; }, s, name);
    case GradZip::AbsBackward:
      return launchMap(n, [=] __device__(int64_t i) {
        float v = x[i];
        out[i] = v > 0.0f ? g[i] : (v < 0.0f ? -g[i] : 0.0f);
      }, s, name);
    case GradZip::ClampMinBackward:
      return launchMap(n, [=] __device__(int64_t i) { out[i] = x[i] >= c ? g[i] : 0.0f; }, s, name);
    case GradZip::ClampMaxBackward:
      return launchMap(n, [=] __device__(int64_t i) { out[i] = x[i] <= c ? g[i] : 0.0f; }, s, name);
    case GradZip::SigmoidBackward:
      return launchMap(n, [=] __device__(int64_t i) { out[i] = g[i] * x[i] * (1.0f - x[i]); }, s, name);
  }
}

void addScaled(float* dst, const float* src, float alpha, int64_t n, cudaStream_t s) {
  launchMap(n, [=] __device__(int64_t i) { dst[i] += alpha * src[i]; }, s, "addScaled_ kernel");
}

void fillF32(float* dst, float v, int64_t n, cudaStream_t s) {
  launchMap(n, [=] __device__(int64_t i) { dst[i] = v; }, s, "fill kernel");
}

void fillI32(int32_t* dst, int32_t v, int64_t n, cudaStream_t s) {
  launchMap(n, [=] __device__(int64_t i) { dst[i] = v; }, s, "fill kernel");
}

void u8ToFloat(const uint8_t* x, float* out, int64_t n, cudaStream_t s) {
  launchMap(n, [=] __device__(int64_t i) { out[i] = static_cast<float>(x[i]); }, s, "toFloat kernel");
}

void i32ToFloat(const int32_t* x, float* out, int64_t n, cudaStream_t s) {
  launchMap(n, [=] __device__(int64_t i) { out[i] = static_cast<float>(x[i]); }, s, "toFloat kernel");
}

void expand(const float* x, float* out, int64_t n, const BroadcastIndex& bc, cudaStream_t s) {
  if (n <= 0) return;
  expandKernel<<<blocksFor(n), kThreads, 0, s>>>(x, out, n, bc);
  checkCuda(cudaGetLastError(), "expand kernel");
}

void addChannelBias(float* y, const float* bias, int64_t n, int64_t c, int64_t hw, cudaStream_t s) {
  launchMap(n * c * hw, [=] __device__(int64_t i) { y[i] += bias[(i / hw) % c]; }, s, "bias kernel");
}

void fillRows(float* y, const float* row, int64_t rows, int64_t cols, cudaStream_t s) {
  launchMap(rows * cols, [=] __device__(int64_t i) { y[i] = row[i % cols]; }, s, "bias rows kernel");
}

}  // namespace cuda
}  // namespace ssql
