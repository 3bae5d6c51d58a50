// Counter-based random numbers (Philox-4x32-10), the one definition both backends draw from (native/cpu/random.cc,
// native/cuda/random_kernels.cu), so that a seed gives the same values bit for bit on every device.
//
// The recipe:
//   key     = (k0, k1) = (low 32 bits of seed, high 32 bits of seed)
//   counter = (c0, c1, c2, c3) = (low 32 bits of ctr, high 32 bits of ctr, 0, 0), ctr = offset + floor(i / 4)
//   (x0, x1, x2, x3) = Philox-4x32-10(counter, key) as in Random123 (10 rounds, key bumped between rounds);
//   element i takes lane i % 4 of its counter's output.
//   uniform: u = (x >> 8) * 2^-24 in [0, 1); value = float(low + (high - low) * u), computed in double.
//   normal:  Box-Muller on the lane pairs (x0, x1) and (x2, x3) of the same counter:
//            u1 = ((xa >> 8) + 1) * 2^-24 in (0, 1], u2 = (xb >> 8) * 2^-24,
//            r = sqrt(-2 ln u1), lane a (even) = r cos(2 pi u2), lane b (odd) = r sin(2 pi u2);
//            value = float(mean + std * z), all in double, rounded once to float.
#pragma once

#include <math.h>
#include <stdint.h>

#include "host_device.h"

namespace ssql {
namespace philox {

struct Lanes {
  uint32_t v[4];
};

SSQL_HD Lanes philox4x32_10(uint64_t ctr, uint64_t seed) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(ctr), c1 = static_cast<uint32_t>(ctr >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
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

SSQL_HD double unit(uint32_t x) { return static_cast<double>(x >> 8) * kTwoPow24Inv; }

// Elements i .. i + 3 (those below n) of a uniform draw, from the lanes of counter offset + i / 4.
SSQL_HD void uniformLanes(const Lanes& x, float* out, int64_t i, int64_t n, double low, double range) {
  for (int lane = 0; lane < 4 && i + lane < n; ++lane) out[i + lane] = static_cast<float>(low + range * unit(x.v[lane]));
}

// Elements i .. i + 3 (those below n) of a normal draw, from the lanes of counter offset + i / 4.
SSQL_HD void normalLanes(const Lanes& x, float* out, int64_t i, int64_t n, double mean, double stdev) {
  for (int pair = 0; pair < 2; ++pair) {
    double u1 = (static_cast<double>(x.v[2 * pair] >> 8) + 1.0) * kTwoPow24Inv;
    double u2 = unit(x.v[2 * pair + 1]);
    double r = sqrt(-2.0 * log(u1));
    int64_t e = i + 2 * pair;
    if (e < n) out[e] = static_cast<float>(mean + stdev * (r * cos(kTwoPi * u2)));
    if (e + 1 < n) out[e + 1] = static_cast<float>(mean + stdev * (r * sin(kTwoPi * u2)));
  }
}

}  // namespace philox
}  // namespace ssql
