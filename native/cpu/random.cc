// uniform() and normal() on the CPU: Philox-4x32-10 draws (the recipe in core/philox.h), one counter per four
// elements, counters spread over the threads.
#include <cstdint>

#include "../core/binding.h"
#include "../core/philox.h"
#include "../core/random_args.h"
#include "parallel.h"

using namespace ssql;

namespace {

using parse::Draw;

// Calls f(i, lanes) for each group of four elements starting at i = 4 * g.
template <typename F>
void forEachCounter(const Draw& d, int64_t numel, F&& f) {
  int64_t groups = (numel + 3) / 4;
  parallelForIf(groups >= 4096, groups,
                [&](int64_t g) { f(g * 4, philox::philox4x32_10(d.offset + static_cast<uint64_t>(g), d.seed)); });
}

}  // namespace

SSQL_OP(uniform) {
  parse::UniformArgs u = parse::uniformArgs(a);
  int64_t n = u.out->numel();
  float* p = u.out->f32();
  const double low = u.low, range = u.high - u.low;
  forEachCounter(u.draw, n, [&](int64_t i, const philox::Lanes& x) { philox::uniformLanes(x, p, i, n, low, range); });
  return wrap(a.env(), u.out);
}

SSQL_OP(normal) {
  parse::NormalArgs g = parse::normalArgs(a);
  int64_t n = g.out->numel();
  float* p = g.out->f32();
  const double mean = g.mean, stdev = g.std;
  forEachCounter(g.draw, n, [&](int64_t i, const philox::Lanes& x) { philox::normalLanes(x, p, i, n, mean, stdev); });
  return wrap(a.env(), g.out);
}
