// Argument checks and outputs of uniform() and normal(), shared by both addons (native/cpu/random.cc,
// native/cuda/random.cc), which draw the same Philox-4x32-10 numbers (core/philox.h).
#pragma once

#include <cmath>
#include <string>

#include "binding.h"
#include "nn_args.h"

namespace ssql {
namespace parse {

// The counter-based generator's key and first counter, and the output shape: arguments 0, seedArg, seedArg + 1.
struct Draw {
  Shape shape;
  uint64_t seed, offset;
};

inline Draw drawArgs(const Args& a, size_t seedArg) {
  Shape s = shapeArg(a, 0, "shape");
  int64_t seed = a.integer(seedArg, "seed");
  int64_t offset = a.integer(seedArg + 1, "offset");
  constexpr int64_t kMaxSafe = (int64_t(1) << 53);
  if (seed < 0 || seed > kMaxSafe) throw RangeError(a.where(seedArg, "seed") + " must be an integer in [0, 2^53]");
  if (offset < 0 || offset > kMaxSafe) throw RangeError(a.where(seedArg + 1, "offset") + " must be an integer in [0, 2^53]");
  return {s, static_cast<uint64_t>(seed), static_cast<uint64_t>(offset)};
}

// uniform(shape, low, high, seed, offset) -> float32 tensor of shape
struct UniformArgs {
  Draw draw;
  double low, high;
  TensorPtr out;
};

inline UniformArgs uniformArgs(const Args& a) {
  UniformArgs u;
  u.draw = drawArgs(a, 3);
  u.low = a.number(1, "low");
  u.high = a.number(2, "high");
  if (!std::isfinite(u.low) || !std::isfinite(u.high) || u.low > u.high)
    throw RangeError("uniform(): need finite low <= high, got [" + std::to_string(u.low) + ", " + std::to_string(u.high) +
                     "]");
  u.out = empty(DType::F32, u.draw.shape);
  return u;
}

// normal(shape, mean, std, seed, offset) -> float32 tensor of shape
struct NormalArgs {
  Draw draw;
  double mean, std;
  TensorPtr out;
};

inline NormalArgs normalArgs(const Args& a) {
  NormalArgs n;
  n.draw = drawArgs(a, 3);
  n.mean = a.number(1, "mean");
  n.std = a.number(2, "std");
  if (!std::isfinite(n.mean) || !(n.std >= 0.0) || !std::isfinite(n.std))
    throw RangeError("normal(): need a finite mean and a finite std >= 0");
  n.out = empty(DType::F32, n.draw.shape);
  return n;
}

}  // namespace parse
}  // namespace ssql
