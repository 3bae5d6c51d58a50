// Counter-based random numbers (Philox-4x32-10), defined bit for bit so that every backend draws the same values.
//
// The recipe (a CUDA kernel must follow it exactly):
//   key     = (k0, k1) = (low 32 bits of seed, high 32 bits of seed)
//   counter = (c0, c1, c2, c3) = (low 32 bits of ctr, high 32 bits of ctr, 0, 0), ctr = offset + floor(i / 4)
//   (x0, x1, x2, x3) = Philox-4x32-10(counter, key) as in Random123 (10 rounds, key bumped between rounds);
//   element i takes lane i % 4 of its counter's output.
//   uniform: u = (x >> 8) * 2^-24 in [0, 1); value = float(low + (high - low) * u), computed in double.
//   normal:  Box-Muller on the lane pairs (x0, x1) and (x2, x3) of the same counter:
//            u1 = ((xa >> 8) + 1) * 2^-24 in (0, 1], u2 = (xb >> 8) * 2^-24,
//            r = sqrt(-2 ln u1), lane a (even) = r cos(2 pi u2), lane b (odd) = r sin(2 pi u2);
//            value = float(mean + std * z), all in double, rounded once to float.
#include <cmath>
#include <cstdint>
#include <string>

#include "../core/binding.h"
#include "../core/random_args.h"
#include "parallel.h"

using namespace ssql;

namespace {

struct U32x4 {
  uint32_t v[4];
};

inline U32x4 philox4x32_10(uint64_t ctr, uint64_t seed) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(ctr), c1 = static_cast<uint32_t>(ctr >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round) {
      k0 += W0;
      k1 += W1;
    }
    uint64_t p0 = static_cast<uint64_t>(M0) * c0, p1 = static_cast<uint64_t>(M1) * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0, n1 = static_cast<uint32_t>(p1);
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1, n3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
  }
  return {{c0, c1, c2, c3}};
}

constexpr double kTwoPow24Inv = 1.0 / 16777216.0;
constexpr double kTwoPi = 6.283185307179586476925286766559;

inline double unit(uint32_t x) { return static_cast<double>(x >> 8) * kTwoPow24Inv; }

using parse::Draw;

// Calls f(i, lanes) for each group of four elements starting at i = 4 * g.
template <typename F>
void forEachCounter(const Draw& d, int64_t numel, F&& f) {
  int64_t groups = (numel + 3) / 4;
  parallelForIf(groups >= 4096, groups,
                [&](int64_t g) { f(g * 4, philox4x32_10(d.offset + static_cast<uint64_t>(g), d.seed)); });
}

}  // namespace

SSQL_OP(uniform) {
  parse::UniformArgs u = parse::uniformArgs(a);
  const Draw& d = u.draw;
  const TensorPtr& out = u.out;
  const double low = u.low, high = u.high;
  int64_t n = out->numel();
  float* p = out->f32();
  double range = high - low;
  forEachCounter(d, n, [&](int64_t i, const U32x4& x) {
    for (int lane = 0; lane < 4 && i + lane < n; ++lane) p[i + lane] = static_cast<float>(low + range * unit(x.v[lane]));
  });
  return wrap(a.env(), out);
}

SSQL_OP(normal) {
  parse::NormalArgs g = parse::normalArgs(a);
  const Draw& d = g.draw;
  const TensorPtr& out = g.out;
  const double mean = g.mean, stdev = g.std;
  int64_t n = out->numel();
  float* p = out->f32();
  forEachCounter(d, n, [&](int64_t i, const U32x4& x) {
    for (int pair = 0; pair < 2; ++pair) {
      double u1 = (static_cast<double>(x.v[2 * pair] >> 8) + 1.0) * kTwoPow24Inv;
      double u2 = unit(x.v[2 * pair + 1]);
      double r = std::sqrt(-2.0 * std::log(u1));
      int64_t e = i + 2 * pair;
      if (e < n) p[e] = static_cast<float>(mean + stdev * (r * std::cos(kTwoPi * u2)));
      if (e + 1 < n) p[e + 1] = static_cast<float>(mean + stdev * (r * std::sin(kTwoPi * u2)));
    }
  });
  return wrap(a.env(), out);
}
