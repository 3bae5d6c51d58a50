// A per-tensor fake quant fused into the op that produces the tensor (batch norm's and addRelu's epilogue): the
// producer writes fake_quantize_per_tensor_affine of its output, bit for bit the op's (core/fake_quant_math.h), and
// the gradient mask of the pair (inside the grid, and positive under a fused ReLU) for its backward.
#pragma once

#include <cstdint>

#include "../core/binding.h"
#include "../core/fake_quant_math.h"
#include "../core/quant_args.h"

namespace ssql {

struct OutputFakeQuant {
  bool on = false;        // the arguments were given
  bool identity = false;  // `enabled` holds 0: the output passes unchanged (mask 1)
  bool divide = true;
  float scale = 1.0f, inv = 1.0f, zp = 0.0f, qmin = 0.0f, qmax = 0.0f;
};

// out[i] = the fake quant of y[i] (not identity), mask[i] = whether its gradient passes (and, with relu, y[i] > 0:
// y is a ReLU's output), over [0, n): the fake-quant op's own vectorized loop (fake_quant.cc). y and out must not
// overlap, so a producer writes y to a small scratch first, which stays in cache.
void fakeQuantEpilogue(const float* y, float* out, uint8_t* mask, int64_t n, const OutputFakeQuant& f, bool relu);

// (scale [1], zeroPoint [1] int32, enabled [1] int32 or null, quantMin, quantMax, rounding) from argument i; off when
// argument i is absent or null, and then none of the others may be given.
inline OutputFakeQuant outputFakeQuantArgs(const Args& a, size_t i) {
  OutputFakeQuant f;
  auto scale = a.optTensor(i, "fakeQuantScale");
  if (!scale) {
    for (size_t k = i + 1; k < a.count() && k < i + 6; ++k)
      if (!a.at(k, "fake quant").IsUndefined())
        throw TypeError(a.where(k, "fake quant") + " is given without 'fakeQuantScale'");
    return f;
  }
  requireDtype(a.op, "fakeQuantScale", *scale, DType::F32);
  quant::requireNumel(a.op, "fakeQuantScale", *scale, 1);
  auto zp = quant::i32(a, i + 1, "fakeQuantZeroPoint");
  quant::requireNumel(a.op, "fakeQuantZeroPoint", *zp, 1);
  const int32_t* enabled = quant::enabledArg(a, i + 2);
  quant::quantRangeArgs(a, i + 3, f.qmin, f.qmax);
  f.divide = quant::divideArg(a, i + 5);
  f.on = true;
  f.identity = enabled && *enabled == 0;
  f.scale = scale->f32()[0];
  f.inv = 1.0f / f.scale;
  f.zp = static_cast<float>(zp->data<int32_t>()[0]);
  return f;
}

}  // namespace ssql
