// Device check of the CUDA quantization kernels through their plain launchers (native/cuda/fake_quant.h), against
// host references built from the same per-element formulas (native/core/fake_quant_math.h) that the CPU ops use.
// Needs no N-API:
//   nvcc -std=c++17 -arch=sm_90 -I native native/cuda/fake_quant.cu native/cuda/observers.cu \
//        test/gpu/fake_quant_check.cu -o /tmp/fq_check
//   /tmp/fq_check      (prints one line per check, exits 1 on any failure)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/fake_quant_math.h"
#include "cuda/fake_quant.h"

using namespace ssql;

static int failures = 0;

#define CUDA_OK(x)                                                                       \
  do {                                                                                   \
    cudaError_t e_ = (x);                                                                \
    if (e_ != cudaSuccess) {                                                             \
      std::printf("FAIL %s: %s (%s:%d)\n", #x, cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count, size_t pad = 0) : n(count) { CUDA_OK(cudaMalloc(&p, (count + pad) * sizeof(T) + 16)); }
  Dev(const std::vector<T>& h, size_t offset = 0) : n(h.size()) {
    CUDA_OK(cudaMalloc(&p, (h.size() + offset) * sizeof(T) + 16));
    p += offset;
    if (!h.empty()) CUDA_OK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    base = offset;
  }
  std::vector<T> get() const {
    std::vector<T> h(n);
    if (n) CUDA_OK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  ~Dev() { cudaFree(p - base); }
  size_t base = 0;
};

static void report(const char* what, bool ok, const char* detail = "") {
  std::printf("%s %s %s\n", ok ? "ok  " : "FAIL", what, detail);
  if (!ok) ++failures;
}

static bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

static std::vector<float> values(size_t n, float scale, std::mt19937& rng) {
  std::uniform_int_distribution<int> k(-140, 140), kind(0, 3);
  std::uniform_real_distribution<float> frac(-0.5f, 0.5f);
  std::vector<float> x(n);
  for (auto& v : x) {
    int t = kind(rng);
    v = t == 0 ? (k(rng) + 0.5f) * scale : t == 1 ? k(rng) * scale : (k(rng) + frac(rng)) * scale;
  }
  return x;
}

static void checkForward(const char* name, cuda::QuantLayout l, bool perChannel, int qmin, int qmax, size_t offset,
                         bool withMask, int enabledValue, std::mt19937& rng, bool divide = false) {
  const size_t n = static_cast<size_t>(l.numel()), C = static_cast<size_t>(l.channels);
  std::vector<float> scale(C);
  std::vector<int32_t> zp(C);
  for (size_t c = 0; c < C; ++c) {
    scale[c] = c == 0 ? 0.125f : 0.01f + 0.001f * static_cast<float>(c % 17);
    zp[c] = qmin + static_cast<int32_t>(c % static_cast<size_t>(qmax - qmin + 1));
  }
  std::vector<float> x = values(n, 0.05f, rng);
  if (n > 3) x[1] = std::numeric_limits<float>::quiet_NaN(), x[2] = INFINITY, x[3] = -1e30f;
  std::vector<float> want(n);
  std::vector<uint8_t> wantMask(n);
  for (size_t i = 0; i < n; ++i) {
    size_t c = C == 1 ? 0 : (i / static_cast<size_t>(l.inner)) % C;
    float s = scale[c], inv = 1.0f / s, z = static_cast<float>(zp[c]);
    uint8_t m;
    want[i] = perChannel ? fq::perChannel(x[i], s, inv, z, float(qmin), float(qmax), divide, m)
                         : fq::perTensor(x[i], s, inv, z, float(qmin), float(qmax), divide, m);
    wantMask[i] = m;
    if (enabledValue == 0) want[i] = x[i], wantMask[i] = 1;
  }
  Dev<float> dx(x, offset), ds(scale), dout(n + 4);
  Dev<int32_t> dz(zp), den(std::vector<int32_t>{enabledValue});
  Dev<uint8_t> dm(n + 4);
  dout.n = n;
  dm.n = n;
  CUDA_OK(cuda::fakeQuantForward(dx.p, dout.p, withMask ? dm.p : nullptr, ds.p, dz.p, den.p, l, perChannel, qmin, qmax,
                                 divide, 0));
  CUDA_OK(cudaDeviceSynchronize());
  bool ok = sameBits(dout.get(), want) && (!withMask || dm.get() == wantMask);
  report(name, ok, divide ? "(x / scale)" : "(x * (1 / scale))");
}

// SSQL's weight quantizer: symmetric per-channel min-max puts every channel's extreme weight on the tie
// +-(2^(b-1) - 1/2), where x / scale and x * (1 / scale) round apart. Both rules must match the host bit for bit
// (the host divides with IEEE division, as the CPU op), and the two rules must disagree somewhere.
static void checkWeightTies(int bits, std::mt19937& rng) {
  const int64_t C = 512, K = 1152;
  const cuda::QuantLayout l{1, C, K};
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> w(C * K), s(C);
  for (auto& v : w) v = nd(rng);
  for (int64_t c = 0; c < C; ++c) {
    float mn = INFINITY, mx = -INFINITY;
    for (int64_t k = 0; k < K; ++k) mn = std::min(mn, w[c * K + k]), mx = std::max(mx, w[c * K + k]);
    s[c] = fq::symmetricScale(mn, mx, bits);
  }
  const int qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
  Dev<float> dw(w), ds(s), dout(w.size());
  Dev<int32_t> dz(std::vector<int32_t>(C, 0));
  Dev<uint8_t> dm(w.size());
  std::vector<float> got[2];
  int64_t differ = 0;
  bool ok = true;
  for (int divide = 0; divide < 2; ++divide) {
    CUDA_OK(cuda::fakeQuantForward(dw.p, dout.p, dm.p, ds.p, dz.p, nullptr, l, true, qmin, qmax, divide != 0, 0));
    CUDA_OK(cudaDeviceSynchronize());
    got[divide] = dout.get();
    std::vector<float> want(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      uint8_t m;
      const float sc = s[i / K];
      want[i] = fq::perChannel(w[i], sc, 1.0f / sc, 0.0f, float(qmin), float(qmax), divide != 0, m);
    }
    ok = ok && sameBits(got[divide], want);
  }
  for (size_t i = 0; i < w.size(); ++i) differ += got[0][i] != got[1][i];
  char buf[96];
  std::snprintf(buf, sizeof buf, "%lld of %lld weights round apart between the rules", (long long)differ, (long long)(C * K));
  char name[64];
  std::snprintf(name, sizeof name, "weight ties, per-channel [512, 1152] %d-bit, both rules", bits);
  report(name, ok && differ > 0, buf);
}

static void checkBackward(std::mt19937& rng) {
  for (size_t n : {size_t(1), size_t(7), size_t(4096), size_t(1000003)}) {
    std::vector<float> g = values(n, 0.3f, rng);
    std::vector<uint8_t> m(n);
    for (size_t i = 0; i < n; ++i) m[i] = (i * 2654435761u) % 3 != 0;
    std::vector<float> want(n);
    for (size_t i = 0; i < n; ++i) want[i] = g[i] * static_cast<float>(m[i]);
    Dev<float> dg(g), dd(n);
    Dev<uint8_t> dm(m);
    CUDA_OK(cuda::fakeQuantBackward(dg.p, dm.p, dd.p, static_cast<int64_t>(n), 0));
    CUDA_OK(cudaDeviceSynchronize());
    char buf[64];
    std::snprintf(buf, sizeof buf, "n=%zu", n);
    report("fakeQuantBackward", sameBits(dd.get(), want), buf);
  }
}

struct HostExt {
  std::vector<float> mn, mx;
  std::vector<int32_t> imn, imx;
};

static HostExt hostAminmax(const std::vector<float>& x, cuda::QuantLayout l) {
  const int64_t C = l.channels;
  HostExt h{std::vector<float>(C, INFINITY), std::vector<float>(C, -INFINITY), std::vector<int32_t>(C, -1), std::vector<int32_t>(C, -1)};
  std::vector<int32_t> nanAt(C, -1);
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < l.inner; ++i) {
        int64_t k = (o * C + c) * l.inner + i;
        float v = x[k];
        if (v != v) {
          if (nanAt[c] < 0) nanAt[c] = static_cast<int32_t>(k);
          continue;
        }
        if (h.imn[c] < 0 || v < h.mn[c]) h.mn[c] = v, h.imn[c] = static_cast<int32_t>(k);
        if (h.imx[c] < 0 || v > h.mx[c]) h.mx[c] = v, h.imx[c] = static_cast<int32_t>(k);
      }
  for (int64_t c = 0; c < C; ++c)
    if (nanAt[c] >= 0) h.mn[c] = h.mx[c] = NAN, h.imn[c] = h.imx[c] = nanAt[c];
  return h;
}

static void checkAminmax(const char* name, cuda::QuantLayout l, bool withNan, std::mt19937& rng) {
  const size_t n = static_cast<size_t>(l.numel()), C = static_cast<size_t>(l.channels);
  std::vector<float> x = values(n, 0.01f, rng);
  x[n / 3] = 7.0f;
  x[n - 1] = 7.0f;  // duplicated maximum: the first position must win
  if (withNan) x[n / 2] = NAN;
  HostExt want = hostAminmax(x, l);
  Dev<float> dx(x), dmn(C), dmx(C);
  Dev<int32_t> dimn(C), dimx(C);
  Dev<char> ws(cuda::aminmaxWorkspaceBytes(l));
  CUDA_OK(cuda::aminmax(dx.p, dmn.p, dmx.p, dimn.p, dimx.p, l, false, ws.p, 0));
  CUDA_OK(cudaDeviceSynchronize());
  bool ok = sameBits(dmn.get(), want.mn) && sameBits(dmx.get(), want.mx) && dimn.get() == want.imn && dimx.get() == want.imx;
  // Accumulate a second tensor scaled by 2: the buffers keep the wider range (old wins ties).
  std::vector<float> x2(x);
  for (auto& v : x2) v *= 2.0f;
  HostExt w2 = hostAminmax(x2, l);
  for (size_t c = 0; c < C; ++c) {
    float nmn = w2.mn[c], omn = want.mn[c];
    if (omn == omn && (nmn != nmn || nmn < omn)) want.mn[c] = nmn, want.imn[c] = w2.imn[c];
    float nmx = w2.mx[c], omx = want.mx[c];
    if (omx == omx && (nmx != nmx || nmx > omx)) want.mx[c] = nmx, want.imx[c] = w2.imx[c];
  }
  Dev<float> dx2(x2);
  CUDA_OK(cuda::aminmax(dx2.p, dmn.p, dmx.p, dimn.p, dimx.p, l, true, ws.p, 0));
  CUDA_OK(cudaDeviceSynchronize());
  ok = ok && sameBits(dmn.get(), want.mn) && sameBits(dmx.get(), want.mx) && dimn.get() == want.imn && dimx.get() == want.imx;
  report(name, ok);
}

static void checkQParamsAndEma() {
  std::vector<float> mn = {-1.0f, 0.0f, -0.3f, 0.25f, NAN}, mx = {2.0f, 0.0f, 0.7f, 3.0f, 1.0f};
  const int64_t C = static_cast<int64_t>(mn.size());
  bool ok = true;
  for (int bits : {1, 2, 4, 8, 16})
    for (bool sym : {true, false}) {
      std::vector<float> s(C);
      std::vector<int32_t> z(C);
      for (int64_t c = 0; c < C; ++c) {
        s[c] = sym ? fq::symmetricScale(mn[c], mx[c], bits) : fq::asymmetricScale(mn[c], mx[c], bits);
        z[c] = sym ? 0 : fq::asymmetricZeroPoint(mn[c], s[c]);
      }
      Dev<float> dmn(mn), dmx(mx), ds(C);
      Dev<int32_t> dz(C), den(1);
      CUDA_OK(cuda::calcQParams(dmn.p, dmx.p, ds.p, dz.p, den.p, C, bits, sym, 0));
      CUDA_OK(cudaDeviceSynchronize());
      ok = ok && sameBits(ds.get(), s) && dz.get() == z && den.get()[0] == 1;  // a NaN scale keeps it enabled
      Dev<float> dmn2(std::vector<float>{0.0f, -1.0f}), dmx2(std::vector<float>{0.0f, 1.0f}), ds2(2);
      Dev<int32_t> dz2(2), den2(1);
      CUDA_OK(cuda::calcQParams(dmn2.p, dmx2.p, ds2.p, dz2.p, den2.p, 2, bits, sym, 0));
      CUDA_OK(cudaDeviceSynchronize());
      ok = ok && den2.get()[0] == 0;
    }
  report("calcQParams (bits 1..16, sym/asym, identity flag)", ok);
  std::vector<float> dst = {1.0f, -2.0f, 3.5f, 1e-3f}, src = {2.0f, -1.0f, 0.5f, 7.0f}, want(4);
  const float km = static_cast<float>(0.99), kr = static_cast<float>(1.0 - 0.99);
  for (int i = 0; i < 4; ++i) {
    volatile float a = km * dst[i], b = kr * src[i];
    want[i] = a + b;
  }
  Dev<float> dd(dst), dsr(src);
  CUDA_OK(cuda::emaUpdate(dd.p, dsr.p, 4, 0.99, 0));
  CUDA_OK(cudaDeviceSynchronize());
  report("emaUpdate (fp32 products, no FMA)", sameBits(dd.get(), want));
}

static void checkRangeBackward(const char* name, cuda::QuantLayout l, bool perChannel, bool symmetric, int bits,
                               std::mt19937& rng, bool divide = false) {
  const size_t n = static_cast<size_t>(l.numel());
  const int64_t C = l.channels;
  std::normal_distribution<float> nd(0.0f, 0.1f);
  std::vector<float> x(n), g(n);
  for (auto& v : x) v = nd(rng);
  for (auto& v : g) v = nd(rng) * 10.0f;
  HostExt e = hostAminmax(x, l);
  const int qmin = symmetric ? -(1 << (bits - 1)) : 0, qmax = symmetric ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  std::vector<float> s(C);
  std::vector<int32_t> z(C);
  for (int64_t c = 0; c < C; ++c) {
    s[c] = symmetric ? fq::symmetricScale(e.mn[c], e.mx[c], bits) : fq::asymmetricScale(e.mn[c], e.mx[c], bits);
    z[c] = symmetric ? 0 : fq::asymmetricZeroPoint(e.mn[c], s[c]);
  }
  std::vector<double> want(n), sums(C, 0.0);
  for (size_t i = 0; i < n; ++i) {
    int64_t c = C == 1 ? 0 : (static_cast<int64_t>(i) / l.inner) % C;
    float inv = 1.0f / s[c], y = fq::quotient(x[i], s[c], inv, divide), zf = static_cast<float>(z[c]);
    float v = zf + fq::roundHalfEven(y);
    bool in = fq::inRange(v, float(qmin), float(qmax));
    float cq = perChannel ? fq::clampRangeInt64(v, float(qmin), float(qmax)) : fq::clampRange(v, float(qmin), float(qmax));
    want[i] = in ? g[i] : 0.0;
    sums[c] += static_cast<double>(g[i]) * ((cq - zf) - (in ? 1.0 : 0.0) * y);
  }
  const double span = double(qmax) - double(qmin);
  for (int64_t c = 0; c < C; ++c) {
    if (symmetric) {
      double t = sums[c] / (span / 2), am = std::fabs(e.mn[c]), ax = std::fabs(e.mx[c]);
      double wMin = am > ax ? 1.0 : (am < ax ? 0.0 : 0.5);
      want[e.imn[c]] += t * wMin * (e.mn[c] > 0 ? 1 : e.mn[c] < 0 ? -1 : 0);
      want[e.imx[c]] += t * (1 - wMin) * (e.mx[c] > 0 ? 1 : e.mx[c] < 0 ? -1 : 0);
    } else {
      want[e.imx[c]] += sums[c] / span;
      want[e.imn[c]] -= sums[c] / span;
    }
  }
  Dev<float> dg(g), dx(x), ds(s), dmn(e.mn), dmx(e.mx), dd(n);
  Dev<int32_t> dz(z), dimn(e.imn), dimx(e.imx);
  Dev<char> ws(cuda::fakeQuantRangeBackwardWorkspaceBytes(l));
  CUDA_OK(cuda::fakeQuantRangeBackward(dg.p, dx.p, dd.p, ds.p, dz.p, dmn.p, dmx.p, dimn.p, dimx.p, nullptr, l, perChannel,
                                       qmin, qmax, symmetric, divide, ws.p, 0));
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<float> got = dd.get();
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
  double err = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
  char buf[64];
  std::snprintf(buf, sizeof buf, "normalized error %.2e", err);
  report(name, err <= 1e-5, buf);
}

int main() {
  int dev = 0;
  if (cudaGetDeviceCount(&dev) != cudaSuccess || dev == 0) {
    std::printf("no CUDA device\n");
    return 2;
  }
  std::mt19937 rng(7);
  checkForward("per-tensor int8, aligned, mask", {1, 1, 1000003}, false, -128, 127, 0, true, 1, rng);
  checkForward("per-tensor uint4, unaligned, mask", {1, 1, 4099}, false, 0, 15, 1, true, 1, rng);
  checkForward("per-tensor int2, no mask", {1, 1, 77}, false, -2, 1, 0, false, 1, rng);
  checkForward("per-tensor disabled (identity, mask 1)", {1, 1, 1029}, false, -128, 127, 0, true, 0, rng);
  checkForward("per-channel axis 0 [512, 4608] int4", {1, 512, 4608}, true, -8, 7, 0, true, 1, rng);
  checkForward("per-channel axis 1 [8, 64, 1024] uint8", {8, 64, 1024}, true, 0, 255, 0, true, 1, rng);
  checkForward("per-channel inner 5 (no float4)", {3, 7, 5}, true, -4, 3, 0, true, 1, rng);
  checkForward("per-channel last axis [33, 10]", {33, 10, 1}, true, -128, 127, 0, false, 1, rng);
  checkForward("per-channel unaligned", {2, 3, 8}, true, -128, 127, 1, true, 1, rng);
  checkForward("per-channel axis 0 [512, 4608] int4, divide", {1, 512, 4608}, true, -8, 7, 0, true, 1, rng, true);
  checkForward("per-tensor uint8 unaligned, divide", {1, 1, 4099}, false, 0, 255, 1, true, 1, rng, true);
  checkForward("per-channel inner 5, divide", {3, 7, 5}, true, -4, 3, 0, false, 1, rng, true);
  checkWeightTies(4, rng);
  checkWeightTies(2, rng);
  checkWeightTies(8, rng);
  checkBackward(rng);
  checkAminmax("aminmax per tensor, 1M (+accumulate)", {1, 1, 1000003}, false, rng);
  checkAminmax("aminmax per tensor with NaN", {1, 1, 5000}, true, rng);
  checkAminmax("aminmax axis 0 [512, 4608]", {1, 512, 4608}, false, rng);
  checkAminmax("aminmax axis 1 [16, 64, 1024]", {16, 64, 1024}, false, rng);
  checkAminmax("aminmax last axis [100, 7]", {100, 7, 1}, false, rng);
  checkQParamsAndEma();
  checkRangeBackward("range backward sym per-channel [64, 576] 4b", {1, 64, 576}, true, true, 4, rng);
  checkRangeBackward("range backward sym per-tensor [100000] 8b", {1, 1, 100000}, false, true, 8, rng);
  checkRangeBackward("range backward asym per-channel axis 1 [4, 6, 30] 5b", {4, 6, 30}, true, false, 5, rng);
  checkRangeBackward("range backward sym per-channel [512, 4608] 4b", {1, 512, 4608}, true, true, 4, rng);
  checkRangeBackward("range backward sym per-channel [4, 65536] 4b (blocks share a channel)", {1, 4, 65536}, true, true, 4, rng);
  checkRangeBackward("range backward sym per-channel [512, 4608] 4b, divide", {1, 512, 4608}, true, true, 4, rng, true);
  checkRangeBackward("range backward sym per-channel [4, 65536] 4b, divide", {1, 4, 65536}, true, true, 4, rng, true);
  checkRangeBackward("range backward asym per-tensor [100000] 5b, divide", {1, 1, 100000}, false, false, 5, rng, true);
  std::printf(failures ? "%d FAILED\n" : "all passed\n", failures);
  return failures ? 1 : 0;
}
