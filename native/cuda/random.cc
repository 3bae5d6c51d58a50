// uniform() and normal(): Philox-4x32-10 draws identical to the CPU backend's (recipe in random_kernels.cu).
#include <cmath>
#include <string>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

namespace {

struct Draw {
  Shape shape;
  uint64_t seed, offset;
};

Draw drawArgs(const Args& a, size_t seedArg) {
  Shape s = shapeArg(a, 0, "shape");
  int64_t seed = a.integer(seedArg, "seed");
  int64_t offset = a.integer(seedArg + 1, "offset");
  constexpr int64_t kMaxSafe = (int64_t(1) << 53);
  if (seed < 0 || seed > kMaxSafe) throw RangeError(a.where(seedArg, "seed") + " must be an integer in [0, 2^53]");
  if (offset < 0 || offset > kMaxSafe) throw RangeError(a.where(seedArg + 1, "offset") + " must be an integer in [0, 2^53]");
  return {s, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)};
}

}  // namespace

SSQL_OP(uniform) {
  Draw d = drawArgs(a, 3);
  double low = a.number(1, "low"), high = a.number(2, "high");
  if (!std::isfinite(low) || !std::isfinite(high) || low > high)
    throw RangeError("uniform(): need finite low <= high, got [" + std::to_string(low) + ", " + std::to_string(high) + "]");
  auto out = empty(DType::F32, d.shape);
  cuda::philoxUniform(out->f32(), out->numel(), low, high, d.seed, d.offset, cuda::stream());
  return wrap(a.env(), out);
}

SSQL_OP(normal) {
  Draw d = drawArgs(a, 3);
  double mean = a.number(1, "mean"), stdev = a.number(2, "std");
  if (!std::isfinite(mean) || !(stdev >= 0.0) || !std::isfinite(stdev))
    throw RangeError("normal(): need a finite mean and a finite std >= 0");
  auto out = empty(DType::F32, d.shape);
  cuda::philoxNormal(out->f32(), out->numel(), mean, stdev, d.seed, d.offset, cuda::stream());
  return wrap(a.env(), out);
}
