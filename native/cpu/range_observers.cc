// The heavy parts of the original's range observers on the CPU (lib/quant/observers/*.ts): the MSE search over
// candidate ranges, the top-k of |x| behind PERCENTILE, the |x| histograms and the entropy search of KL_HISTOGRAM,
// and the moments of GAUSSIAN. Formulas in core/observer_math.h (shared with the CUDA kernels), argument checks in
// core/observer_args.h.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "../core/observer_args.h"
#include "../core/observer_math.h"
#include "quant_util.h"

// The fp32 element ops must round as torch's / numpy's separate kernels do.
#pragma GCC optimize("fp-contract=off")

using namespace ssql;
using namespace ssql::quant;

namespace {

// Calls f(p, n) for each contiguous run of channel c's elements (outer runs of `inner` values).
template <typename F>
inline void forRuns(const float* x, const ChannelLayout& l, int64_t c, F&& f) {
  for (int64_t o = 0; o < l.outer; ++o) f(x + (o * l.channels + c) * l.inner, l.inner);
}

// Mean |x - q(x)|^2.4 over the candidate grid (nmax, nmin). Per tensor (the original's torch mode) summed in
// double; per channel (its numpy mode) as numpy's float32 pairwise mean, whose ties steer the search.
double mseScore(const float* x, const ChannelLayout& l, int64_t c, float nmax, float nmin, int bits, bool perTensor,
                std::vector<float>& scratch) {
  const obs::MseGrid g = obs::mseGrid(nmax, nmin, bits);
  const int64_t per = l.outer * l.inner;
  if (perTensor) {
    const int64_t chunk = 65536, chunks = (per + chunk - 1) / chunk;
    std::vector<double> part(static_cast<size_t>(chunks), 0.0);
    parallelChunks(per, chunk, [&](int64_t b, int64_t e) {
      double s = 0.0;
      for (int64_t i = b; i < e; ++i) s += obs::mseError(x[i], g);
      part[b / chunk] = s;
    });
    double total = 0.0;
    for (double s : part) total += s;
    return total / static_cast<double>(per);
  }
  scratch.resize(static_cast<size_t>(per));
  int64_t k = 0;
  forRuns(x, l, c, [&](const float* p, int64_t n) {
    for (int64_t i = 0; i < n; ++i) scratch[k++] = obs::mseError(p[i], g);
  });
  return obs::pairwiseSumF32(scratch.data(), per) / static_cast<float>(per);
}

void channelMinMax(const float* x, const ChannelLayout& l, int64_t c, float& mn, float& mx) {
  mn = std::numeric_limits<float>::infinity();
  mx = -mn;
  bool nan = false;
  forRuns(x, l, c, [&](const float* p, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      float v = p[i];
      nan |= v != v;
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
    }
  });
  if (nan) mn = mx = NAN;
}

}  // namespace

// mseRange(x, axis, bits) -> [min, max]: the original's MSE (and HISTOGRAM) observer on one tensor, per tensor
// (axis null) or per channel: a 15-round ternary search of the shrink factor of [min, max].
SSQL_OP(mseRange) {
  MseRangeArgs q = mseRangeArgs(a);
  const ChannelLayout& l = q.layout;
  const float* px = q.x->f32();
  float* pmn = q.min->f32();
  float* pmx = q.max->f32();
  const bool perTensor = l.axis < 0;  // the original: torch over the whole tensor; per channel: numpy
  auto search = [&](int64_t c) {
    float xmin, xmax;
    channelMinMax(px, l, c, xmin, xmax);
    std::vector<float> scratch;
    obs::MseState s;
    s.bestMax = xmax;
    s.bestMin = xmin;
    for (int r = 0; r < obs::kMseRounds; ++r) {
      double mid, midmid;
      obs::mseProbes(s, mid, midmid);
      float aMax, aMin, bMax, bMin;
      obs::mseCandidate(xmax, xmin, mid, aMax, aMin);
      obs::mseCandidate(xmax, xmin, midmid, bMax, bMin);
      const double sa = mseScore(px, l, c, aMax, aMin, q.bits, perTensor, scratch);
      const double sb = mseScore(px, l, c, bMax, bMin, q.bits, perTensor, scratch);
      obs::mseStep(s, mid, midmid, sa, sb, aMax, aMin, bMax, bMin);
    }
    pmn[c] = s.bestMin;
    pmx[c] = s.bestMax;
  };
  if (perTensor) search(0);
  else parallelItems(l.channels, l.outer * l.inner * 2 * obs::kMseRounds, search);
  return wrapMany(a.env(), {q.min, q.max});
}

// topkAbs_(x, buf, axis, accumulate): buf [C, k] <- the k largest |x| of each channel (together with buf's own
// values when accumulating), in no particular order: the original's PERCENTILE top-k, merged batch by batch.
SSQL_OP(topkAbs_) {
  TopkAbsArgs q = topkAbsArgs(a);
  const ChannelLayout& l = q.layout;
  const float* px = q.x->f32();
  float* pb = q.buf->f32();
  const int64_t k = q.k, per = l.outer * l.inner;
  parallelItems(l.channels, per, [&](int64_t c) {
    std::vector<float> v;
    v.reserve(static_cast<size_t>(per + (q.accumulate ? k : 0)));
    forRuns(px, l, c, [&](const float* p, int64_t n) {
      for (int64_t i = 0; i < n; ++i) v.push_back(std::fabs(p[i]));
    });
    if (q.accumulate) v.insert(v.end(), pb + c * k, pb + (c + 1) * k);
    // NaN sorts first (largest), as torch.topk treats it.
    auto larger = [](float x, float y) { return (x != x && y == y) || x > y; };
    std::nth_element(v.begin(), v.begin() + (k - 1), v.end(), larger);
    std::copy(v.begin(), v.begin() + k, pb + c * k);
  });
  return a.env().Undefined();
}

// percentileRange(min, max, buf, cut) -> [min, max]: per channel, kth = the smallest kept |x| (the k-th largest),
// then the original's cut of [min, max] to [-kth, kth].
SSQL_OP(percentileRange) {
  PercentileRangeArgs q = percentileRangeArgs(a);
  const int64_t C = q.min->numel(), k = q.buf->shape[1];
  const float* pb = q.buf->f32();
  for (int64_t c = 0; c < C; ++c) {
    float kth = std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < k; ++j) kth = pb[c * k + j] < kth ? pb[c * k + j] : kth;
    obs::percentileCut(q.min->f32()[c], q.max->f32()[c], kth, q.cut, q.outMin->f32()[c], q.outMax->f32()[c]);
  }
  return wrapMany(a.env(), {q.outMin, q.outMax});
}

// absHistogram_(x, hist, min, max, axis): hist[c] += torch.histc(|x_c|, bins, min=-th_c, max=th_c), th_c the larger
// of |min_c|, |max_c| (the calibration range); values outside are not counted. A channel with th_c = 0 is skipped
// (its range is empty: klRange keeps it as is).
SSQL_OP(absHistogram_) {
  AbsHistogramArgs q = absHistogramArgs(a);
  const ChannelLayout& l = q.layout;
  const float* px = q.x->f32();
  int32_t* ph = q.hist->data<int32_t>();
  const int64_t bins = q.bins;
  parallelItems(l.channels, l.outer * l.inner, [&](int64_t c) {
    const float th = std::max(std::fabs(q.min->f32()[c]), std::fabs(q.max->f32()[c]));
    if (!(th > 0.0f) || std::isinf(th)) return;
    int32_t* h = ph + c * bins;
    forRuns(px, l, c, [&](const float* p, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        int64_t b = obs::histcBin(std::fabs(p[i]), th, bins);
        if (b >= 0) ++h[b];
      }
    });
  });
  return a.env().Undefined();
}

// klRange(hist, min, max, bits) -> [min, max]: the original's KL_HISTOGRAM threshold per channel from its |x|
// histogram: the slot of the smallest divergence (see obs::KlPlan) times the bin width, [0, th] for a non-negative
// range, else [-th, th].
SSQL_OP(klRange) {
  KlRangeArgs q = klRangeArgs(a);
  const int64_t C = q.min->numel(), bins = q.bins;
  const int32_t* ph = q.hist->data<int32_t>();
  for (int64_t c = 0; c < C; ++c) {
    const float mn = q.min->f32()[c], mx = q.max->f32()[c];
    float* omn = q.outMin->f32() + c;
    float* omx = q.outMax->f32() + c;
    if (mx - mn < 1e-10f) {
      *omn = mn;
      *omx = mx;
      continue;
    }
    const int64_t target = mn >= 0.0f ? 2 * ((int64_t(1) << q.bits) - 1) + 1 : (int64_t(1) << q.bits) - 1;
    const obs::KlPlan plan = obs::klPlan(bins, target);
    if (!obs::klPlanValid(plan))
      throw RangeError(std::string(a.op) + "(): " + std::to_string(bins) + " bins cannot calibrate " + std::to_string(target) +
                       " quantized bins (the original fails: it needs bins / 2 >= 2 * (quantized bins / 2))");
    std::vector<double> div(static_cast<size_t>(plan.slots), 0.0);
    const int64_t first = plan.half, count = plan.zeroBin - plan.half;
    parallelItems(count > 0 ? count : 0, bins, [&](int64_t t) {
      const int64_t i = first + t;
      div[static_cast<size_t>(obs::klSlot(plan, i))] = obs::klDivergence(ph + c * bins, plan, i);
    });
    int64_t best = 0;
    for (int64_t s = 1; s < plan.slots; ++s)
      if (div[s] < div[best]) best = s;
    const float width = (2.0f * std::max(std::fabs(mn), std::fabs(mx))) / static_cast<float>(bins);
    const float th = width * static_cast<float>(best);
    *omn = mn >= 0.0f ? 0.0f : -th;
    *omx = th;
  }
  return wrapMany(a.env(), {q.outMin, q.outMax});
}

// gaussianRange(x, axis, alpha) -> [min, max]: mean -/+ alpha * std (unbiased) per tensor or per channel, the
// moments in double (torch's accumulation type for float std).
SSQL_OP(gaussianRange) {
  GaussianRangeArgs q = gaussianRangeArgs(a);
  const ChannelLayout& l = q.layout;
  const float* px = q.x->f32();
  const int64_t per = l.outer * l.inner;
  parallelItems(l.channels, per, [&](int64_t c) {
    double s = 0.0;
    forRuns(px, l, c, [&](const float* p, int64_t n) {
      for (int64_t i = 0; i < n; ++i) s += p[i];
    });
    const double mean = s / static_cast<double>(per);
    double ss = 0.0;
    forRuns(px, l, c, [&](const float* p, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        double d = p[i] - mean;
        ss += d * d;
      }
    });
    const double var = per > 1 ? ss / static_cast<double>(per - 1) : NAN;
    obs::gaussianRange(mean, var, q.alpha, q.min->f32()[c], q.max->f32()[c]);
  });
  return wrapMany(a.env(), {q.min, q.max});
}
