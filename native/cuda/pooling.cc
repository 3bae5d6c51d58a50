// 2-D max pooling over NCHW with argmax indices (int32, flat index into each input plane), as PyTorch's
// max_pool2d_with_indices: implicit -inf padding, floor output size, NaN wins. Checks as the CPU backend's.
#include "../core/binding.h"
#include "../core/pooling_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

SSQL_OP(maxPool2d) {
  parse::MaxPool2dArgs m = parse::maxPool2dArgs(a);
  cuda::maxPool2d(m.x->f32(), m.y->f32(), m.indices->data<int32_t>(), m.N * m.C, m.H, m.W, m.OH, m.OW,
                  static_cast<int>(m.KH), static_cast<int>(m.KW), static_cast<int>(m.SH), static_cast<int>(m.SW),
                  static_cast<int>(m.PH), static_cast<int>(m.PW), cuda::stream());
  return wrapMany(a.env(), {m.y, m.indices});
}

// Indices outside the input plane cannot be reported without a device sync; they are skipped.
SSQL_OP(maxPool2dBackward) {
  parse::MaxPool2dBackwardArgs m = parse::maxPool2dBackwardArgs(a);
  cuda::maxPool2dBackward(m.gy->f32(), m.indices->data<int32_t>(), m.gx->f32(), m.planes, m.HW, m.OHW, cuda::stream());
  return wrap(a.env(), m.gx);
}
