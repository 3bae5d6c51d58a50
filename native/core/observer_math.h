// Formulas of the original's range observers (quant_tools/observers/{mse,percentile,kl_histogram,gaussian}.py),
// shared by the CPU ops (native/cpu/range_observers.cc) and the CUDA kernels (native/cuda/range_observers.cu) so
// that both compute the same bits. Plain inline functions, no N-API, no allocation.
#pragma once

#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace ssql {
namespace obs {

// ---- MSE (the original's HISTOGRAM observer is the same code) ----
// Ternary search over p in [0, 80] (15 rounds) for the range x_{max,min} * (1 - p / 100) with the smallest mean
// |x - q(x)|^2.4, q an asymmetric 2^bits-level grid; every element op in fp32 as torch / numpy do it.
constexpr int kMseRounds = 15;

SSQL_HD float floorf_(float v) {
#ifdef __CUDA_ARCH__
  return floorf(v);
#else
  return std::floor(v);
#endif
}

// The candidate range at p: (x_max * fl(1 - p/100), x_min * fl(1 - p/100)), the factor a double rounded to fp32.
SSQL_HD void mseCandidate(float xmax, float xmin, double p, float& nmax, float& nmin) {
  const float f = static_cast<float>(1.0 - p / 100.0);
  nmax = xmax * f;
  nmin = xmin * f;
}

struct MseGrid {
  float delta, zp, qmax;
};

// delta = (max - min) / (2^bits - 1), zero_point = floor(-min / delta + 0.5) (the original's `// 1`).
SSQL_HD MseGrid mseGrid(float nmax, float nmin, int bits) {
  MseGrid g;
  g.qmax = static_cast<float>((1 << bits) - 1);
  g.delta = (nmax - nmin) / g.qmax;
  g.zp = floorf_(-nmin / g.delta + 0.5f);
  return g;
}

// |x - dequant(clamp(floor(x / delta + 0.5) + zp, 0, qmax))|^2.4, NaN propagating as torch.clamp does.
SSQL_HD float mseError(float x, const MseGrid& g) {
  float v = floorf_(x / g.delta + 0.5f) + g.zp;
  float c = v != v ? v : (v < 0.0f ? 0.0f : (v > g.qmax ? g.qmax : v));
  float d = x - (c - g.zp) * g.delta;
#ifdef __CUDA_ARCH__
  return powf(fabsf(d), 2.4f);
#else
  return std::pow(std::fabs(d), 2.4f);
#endif
}

// numpy's float32 add.reduce of a contiguous run (pairwise_sum: 8 accumulators up to 128 values, halves above),
// which the original's per-channel search (numpy mode) takes the mean with; equal scores decide its branches.
#ifdef __CUDACC__
__host__ __device__
#endif
inline float pairwiseSumF32(const float* a, int64_t n) {  // recursive: not force-inlined on the device
  if (n < 8) {
    float r = 0.0f;
    for (int64_t i = 0; i < n; ++i) r += a[i];
    return r;
  }
  if (n <= 128) {
    float r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwiseSumF32(a, n2) + pairwiseSumF32(a + n2, n - n2);
}

// One round of the search: given the two scores, moves [L, R] and the best range as the original does (a NaN score
// compares false: the `else` branch).
struct MseState {
  double L = 0.0, R = 80.0;
  double best = 1e10;
  float bestMax, bestMin;
};

SSQL_HD void mseProbes(const MseState& s, double& mid, double& midmid) {
  mid = (s.L + s.L + s.R) / 3.0;
  midmid = (s.L + s.R + s.R) / 3.0;
}

SSQL_HD void mseStep(MseState& s, double mid, double midmid, double midScore, double midmidScore, float midMax,
                     float midMin, float mmMax, float mmMin) {
  if (midScore < midmidScore) {
    s.R = midmid;
    if (midScore < s.best) {
      s.best = midScore;
      s.bestMax = midMax;
      s.bestMin = midMin;
    }
  } else {
    s.L = mid;
    if (midmidScore < s.best) {
      s.best = midmidScore;
      s.bestMax = mmMax;
      s.bestMin = mmMin;
    }
  }
}

// ---- PERCENTILE ----
// From the calibration range [mn, mx] and kth, the k-th largest |x|: max is cut to kth when above it (and positive),
// min to -kth when below it (and negative); an (almost) empty range or k = 0 ("isnt_cut") keeps [mn, mx].
SSQL_HD void percentileCut(float mn, float mx, float kth, bool cut, float& outMin, float& outMax) {
  outMin = mn;
  outMax = mx;
  if (mx - mn < 1e-10f || !cut) return;
  if (mx > 0.0f && mx > kth) outMax = kth;
  if (mn < 0.0f && mn < -kth) outMin = -kth;
}

// ---- KL_HISTOGRAM ----
// torch.histc(|x|, bins, min=-th, max=th) bin of one value (LINEAR_INTERPOLATION in fp32), or -1 outside [-th, th].
SSQL_HD int64_t histcBin(float v, float th, int64_t bins) {
  const float left = -th, right = th;
  if (!(v >= left && v <= right)) return -1;
  int64_t pos = static_cast<int64_t>((v - left) * static_cast<float>(bins) / (right - left));
  return pos == bins ? bins - 1 : pos;
}

// The original's calibrate_entropy stores divergence i at index (i - num_quantized_bins) of an array of
// bins/2 + 1 - num_quantized_bins/2 zeros (Python wraps negative indices), so one slot stays 0.
struct KlPlan {
  int64_t bins, zeroBin, quantized, half, slots;
};

SSQL_HD KlPlan klPlan(int64_t bins, int64_t quantizedBins) {
  KlPlan k;
  k.bins = bins;
  k.zeroBin = bins / 2;
  k.quantized = quantizedBins;
  k.half = quantizedBins / 2;
  k.slots = k.zeroBin + 1 - k.half;
  return k;
}

// Whether the original runs without an IndexError / negative array size for this plan.
SSQL_HD bool klPlanValid(const KlPlan& k) { return k.slots >= 1 && (k.half >= k.zeroBin || 2 * k.half <= k.zeroBin); }

SSQL_HD int64_t klSlot(const KlPlan& k, int64_t i) {
  int64_t s = i - k.quantized;
  return s < 0 ? s + k.slots : s;
}

// scipy.stats.entropy(p, q) of the original's candidate i (p: the sliced distribution with the outliers folded into
// its end bins, q: its expansion from num_quantized_bins merged bins), smoothed as the original does. `dist` holds
// the histogram's `bins` counts.
SSQL_HD double klDivergence(const int32_t* dist, const KlPlan& k, int64_t i) {
  const int64_t start = k.zeroBin - i, stop = k.zeroBin + i + 1, len = stop - start;
  double left = 0.0, right = 0.0;
  for (int64_t b = 0; b < start; ++b) left += dist[b];
  for (int64_t b = stop; b < k.bins; ++b) right += dist[b];
  const int64_t merged = len / k.quantized;
  // p[j] without materialising it: the sliced counts, left outliers added to p[0], the right ones replacing p[len-1].
  auto pAt = [&](int64_t j) -> double {
    double v = dist[start + j];
    if (j == 0) v += left;
    if (j == len - 1) v = right;
    return v;
  };
  // Pass 1: totals of p and q after smoothing (for scipy's normalisation).
  double sumP = 0.0, sumQ = 0.0;
  for (int pass = 0; pass < 2; ++pass) {
    double kl = 0.0;
    for (int64_t j = 0; j < k.quantized; ++j) {
      const int64_t qs = j * merged;
      // quantized_bins[j]: the merged slice counts; the last also takes the remainder.
      const int64_t sumStop = j == k.quantized - 1 ? len : qs + merged;
      double qb = 0.0;
      for (int64_t b = qs; b < sumStop; ++b) qb += dist[start + b];
      // q over [qs, qstop): the last merged bin stops one short of the end (the original's `stop = -1`).
      const int64_t qstop = j == k.quantized - 1 ? len - 1 : qs + merged;
      int64_t norm = 0;
      for (int64_t b = qs; b < qstop; ++b) norm += pAt(b) != 0.0;
      for (int64_t b = qs; b < qstop; ++b) {
        const double p = pAt(b);
        double q = norm != 0 ? qb / static_cast<double>(norm) : 0.0;
        if (p == 0.0) q = 0.0;
        const double ps = p == 0.0 ? 0.0001 : p, qsm = q == 0.0 ? 0.0001 : q;
        if (pass == 0) {
          sumP += ps;
          sumQ += qsm;
        } else {
          const double pn = ps / sumP, qn = qsm / sumQ;
          kl += pn * log(pn / qn);
        }
      }
    }
    // The last element: no q slice covers it (q = 0, then smoothed).
    {
      const double p = pAt(len - 1);
      const double ps = p == 0.0 ? 0.0001 : p, qsm = 0.0001;
      if (pass == 0) {
        sumP += ps;
        sumQ += qsm;
      } else {
        const double pn = ps / sumP, qn = qsm / sumQ;
        kl += pn * log(pn / qn);
      }
    }
    if (pass == 1) return kl;
  }
  return 0.0;
}

// ---- GAUSSIAN ----
// mean -/+ alpha * std (unbiased), mean and std rounded to fp32 as torch returns them, the rest in fp32.
SSQL_HD void gaussianRange(double mean, double var, float alpha, float& mn, float& mx) {
  const float m = static_cast<float>(mean);
#ifdef __CUDA_ARCH__
  const float s = static_cast<float>(sqrt(var));
#else
  const float s = static_cast<float>(std::sqrt(var));
#endif
  const float w = alpha * s;
  mn = m - w;
  mx = m + w;
}

}  // namespace obs
}  // namespace ssql
