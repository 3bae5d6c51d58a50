// Weighted k-nearest-neighbour class scores (the InstDisc / SimSiam kNN monitor): for each row of a similarity
// matrix, the k largest similarities, each weighted by exp(sim / T), summed per class of the neighbour.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "parallel.h"

using namespace ssql;

// knnClassScores(sim [B, N] f32, bankLabels [N] i32, k, temperature, classes) -> scores [B, classes] f32.
// Neighbours are ranked by similarity, ties to the lower bank index (deterministic, as one process and several);
// each row's votes are summed in double, in rank order, then rounded to float32.
SSQL_OP(knnClassScores) {
  auto sim = f32Arg(a, 0, "sim", 2);
  auto labels = a.tensor(1, "bankLabels");
  requireDtype(a.op, "bankLabels", *labels, DType::I32);
  const int64_t B = sim->shape[0], N = sim->shape[1];
  requireShape(a.op, "bankLabels", *labels, {N});
  const int64_t k = a.integer(2, "k");
  const double T = a.number(3, "temperature");
  const int64_t C = a.integer(4, "classes");
  if (k < 1 || k > N)
    throw RangeError(std::string(a.op) + "(): k = " + std::to_string(k) + " must be in 1.." + std::to_string(N) + " (the bank's size)");
  if (!(T > 0.0) || !std::isfinite(T)) throw RangeError(std::string(a.op) + "(): temperature must be a positive number, got " + std::to_string(T));
  if (C < 1) throw RangeError(std::string(a.op) + "(): classes must be at least 1, got " + std::to_string(C));
  const int32_t* pl = labels->data<int32_t>();
  for (int64_t n = 0; n < N; ++n)
    if (pl[n] < 0 || pl[n] >= C)
      throw RangeError(std::string(a.op) + "(): bank label " + std::to_string(pl[n]) + " at " + std::to_string(n) +
                       " is outside 0.." + std::to_string(C - 1));
  auto out = empty(DType::F32, {B, C});
  const float Tf = static_cast<float>(T);  // torch divides float32 by the temperature as float32
  const float* ps = sim->f32();
  float* po = out->f32();
  // One row per iteration: each sorts N indices, so rows are coarse enough to split across threads from B = 2.
  parallelForDynamicIf(B > 1, B, [&](int64_t b) {
    const float* row = ps + b * N;
    std::vector<int32_t> idx(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) idx[n] = static_cast<int32_t>(n);
    // NaN ranks last, so a broken feature never outvotes real neighbours.
    auto before = [row](int32_t i, int32_t j) {
      float x = row[i], y = row[j];
      bool xn = std::isnan(x), yn = std::isnan(y);
      if (xn != yn) return yn;
      if (!xn && x != y) return x > y;
      return i < j;
    };
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), before);
    std::vector<double> votes(static_cast<size_t>(C), 0.0);
    for (int64_t j = 0; j < k; ++j) {
      float s = row[idx[j]];
      if (std::isnan(s)) continue;
      votes[pl[idx[j]]] += std::exp(static_cast<double>(s / Tf));
    }
    for (int64_t c = 0; c < C; ++c) po[b * C + c] = static_cast<float>(votes[c]);
  });
  return wrap(a.env(), out);
}
