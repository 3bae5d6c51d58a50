// 2-D max pooling over NCHW with argmax indices (int32, flat index into each input plane), as PyTorch's
// max_pool2d_with_indices: implicit -inf padding, floor output size, NaN wins. Checks as the CPU backend's.
#include <limits>
#include <string>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

SSQL_OP(maxPool2d) {
  auto x = f32Arg(a, 0, "x");
  requireDim(a.op, "x", *x, 4);
  auto [kh, kw] = pairArg(a, 1, "kernel", 1);
  auto [sh, sw] = pairArg(a, 2, "stride", 1);
  auto [ph, pw] = pairArg(a, 3, "padding", 0);
  if (2 * ph > kh || 2 * pw > kw) throw RangeError("maxPool2d(): padding must be at most half the kernel size");
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (H < 1 || W < 1) throw RangeError("maxPool2d(): input planes must be non-empty, got " + shapeStr(x->shape));
  if (H + 2 * ph < kh || W + 2 * pw < kw)
    throw RangeError("maxPool2d(): kernel is larger than the padded input " + shapeStr(x->shape));
  int64_t OH = (H + 2 * ph - kh) / sh + 1, OW = (W + 2 * pw - kw) / sw + 1;
  if (H * W > std::numeric_limits<int32_t>::max()) throw RangeError("maxPool2d(): input plane too large for int32 indices");
  auto y = empty(DType::F32, {N, C, OH, OW});
  auto idx = empty(DType::I32, {N, C, OH, OW});
  cuda::maxPool2d(x->f32(), y->f32(), idx->data<int32_t>(), N * C, H, W, OH, OW, static_cast<int>(kh),
                  static_cast<int>(kw), static_cast<int>(sh), static_cast<int>(sw), static_cast<int>(ph),
                  static_cast<int>(pw), cuda::stream());
  return wrapMany(a.env(), {y, idx});
}

// Indices outside the input plane cannot be reported without a device sync; they are skipped.
SSQL_OP(maxPool2dBackward) {
  auto gy = f32Arg(a, 0, "gy");
  auto idx = a.tensor(1, "indices");
  requireDtype(a.op, "indices", *idx, DType::I32);
  requireDim(a.op, "gy", *gy, 4);
  requireSameShape(a.op, *gy, *idx);
  Shape xs = a.ints(2, "xShape");
  if (xs.size() != 4) throw RangeError("maxPool2dBackward(): xShape must be [N, C, H, W]");
  for (int64_t d : xs)
    if (d < 0) throw RangeError("maxPool2dBackward(): xShape has a negative dimension");
  if (xs[0] != gy->shape[0] || xs[1] != gy->shape[1])
    throw RangeError("maxPool2dBackward(): gy " + shapeStr(gy->shape) + " does not match xShape " + shapeStr(xs));
  int64_t HW = xs[2] * xs[3], OHW = gy->shape[2] * gy->shape[3], planes = xs[0] * xs[1];
  auto gx = empty(DType::F32, xs);
  cuda::maxPool2dBackward(gy->f32(), idx->data<int32_t>(), gx->f32(), planes, HW, OHW, cuda::stream());
  return wrap(a.env(), gx);
}
