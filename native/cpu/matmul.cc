// Matrix products through oneDNN's sgemm (sgemm.h: row-major, transposes folded into the call, no copies).
#include <algorithm>
#include <cstring>
#include <vector>

#include "../core/binding.h"
#include "../core/matmul_args.h"
#include "onednn.h"
#include "parallel.h"
#include "sgemm.h"

using namespace ssql;

SSQL_OP(matmul) {
  parse::MatmulArgs m = parse::matmulArgs(a);
  const TensorPtr& c = m.accumulate ? m.accumulate : m.out;
  sgemm(m.transA, m.transB, m.M, m.N, m.K, m.a->f32(), m.a->shape[1], m.b->f32(), m.b->shape[1], m.accumulate ? 1.0f : 0.0f,
        c->f32());
  return m.accumulate ? a.env().Null() : wrap(a.env(), m.out);
}

// y = x @ w^T + b. oneDNN 2.6's sgemm is several times slower with a transposed B when x has few rows (the usual
// batch of a projector), so compute y^T = w @ x^T instead and transpose it back while adding the bias.
SSQL_OP(linear) {
  parse::LinearArgs l = parse::linearArgs(a);
  const TensorPtr &x = l.x, &w = l.w, &b = l.bias, &out = l.y;
  const int64_t N = l.N, in = l.in, outF = l.out;
  float* po = out->f32();
  if (N == 0 || outF == 0) return wrap(a.env(), out);
  std::vector<float> yt(static_cast<size_t>(outF * N));
  sgemm(false, true, outF, N, in, w->f32(), in, x->f32(), in, 0.0f, yt.data());
  const float* pb = b ? b->f32() : nullptr;
  constexpr int64_t kTile = 64;  // output features per task: rows of y are written in 256-byte runs
  const int64_t tiles = (outF + kTile - 1) / kTile;
  parallelForIf(N * outF >= kParallelGrain, tiles, [&](int64_t tile) {
    const int64_t o0 = tile * kTile, o1 = std::min(outF, o0 + kTile);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = o0; o < o1; ++o) po[n * outF + o] = yt[o * N + n] + (pb ? pb[o] : 0.0f);
  });
  return wrap(a.env(), out);
}
