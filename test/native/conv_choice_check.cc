// Checks native/cuda/conv_choice.h (when a cuDNN graph-API engine replaces the legacy convolution algorithm) on the
// CPU. Built and run by test/native/conv-choice.test.ts; prints one line per check group and "all passed", exits
// non-zero on the first failure.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "check.h"
#include "cuda/conv_choice.h"

using namespace ssql::cuda;

namespace {

double difference(const std::vector<float>& ref, const std::vector<float>& other) {
  return maxRelativeDifference(ref.data(), other.data(), ref.size());
}

void relativeDifference() {
  CHECK(difference({1, -2, 4}, {1, -2, 4}) == 0);
  // The largest deviation over the largest reference magnitude, wherever each lies.
  CHECK(std::fabs(difference({1, -8, 2}, {1.5f, -8, 2}) - 0.5 / 8) < 1e-12);
  CHECK(std::fabs(difference({-4, 1}, {-4, 1.001f}) - std::fabs(1.001f - 1.0f) / 4) < 1e-12);
  // All-zero references: exact zeros match, anything else is infinitely far off (divided by 1e-30).
  CHECK(difference({0, 0}, {0, 0}) == 0);
  CHECK(difference({0, 0}, {0, 1e-20f}) > 1e9);
  CHECK(difference({}, {}) == 0);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  CHECK(std::isinf(difference({1, 2}, {1, nan})));
  CHECK(std::isinf(difference({nan, 2}, {nan, 2})));
  CHECK(std::isinf(difference({1, inf}, {1, inf})));
  std::puts("relative difference: max |a - b| / max |ref|, non-finite values never match");
}

void tolerance() {
  CHECK(engineMatches(0));
  CHECK(engineMatches(1e-5));
  CHECK(!engineMatches(1.1e-5));
  // One float32 rounding step of the largest value passes; TF32's 10-bit mantissa does not.
  CHECK(engineMatches(std::ldexp(1.0, -23)));
  CHECK(!engineMatches(std::ldexp(1.0, -10)));
  CHECK(!engineMatches(std::numeric_limits<double>::infinity()));
  CHECK(!engineMatches(std::numeric_limits<double>::quiet_NaN()));
  std::puts("tolerance: 1e-5 of the largest legacy output");
}

void speed() {
  CHECK(engineIsFaster(1.0, 0.97));
  CHECK(engineIsFaster(1.0, 0.5));
  CHECK(!engineIsFaster(1.0, 0.975));
  CHECK(!engineIsFaster(1.0, 1.0));
  CHECK(!engineIsFaster(1.0, 1.2));
  // Unmeasured times (negative) never adopt an engine.
  CHECK(!engineIsFaster(-1, 0.5));
  CHECK(!engineIsFaster(1.0, -1));
  std::puts("speed: the engine must take at most 97% of the legacy time");
}

void adoption() {
  CHECK(adoptEngine(1.0, 0.9, 1e-6));
  CHECK(!adoptEngine(1.0, 0.99, 0));   // not faster by the margin
  CHECK(!adoptEngine(1.0, 0.5, 1e-3)); // faster but different (e.g. TF32)
  CHECK(!adoptEngine(1.0, 0.5, std::numeric_limits<double>::infinity()));
  std::puts("adoption: faster by the margin and the same output");
}

}  // namespace

int main() {
  relativeDifference();
  tolerance();
  speed();
  adoption();
  std::printf("all passed (%d checks)\n", checks);
  return 0;
}
