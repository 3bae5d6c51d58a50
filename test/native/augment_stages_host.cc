// Runs the CUDA augmentation's plan and stage bodies (native/cuda/augment_plan.h, augment_stages.h) on the host,
// each stage as a loop over its elements in reverse order (a stage must not depend on the order of its elements,
// as on the GPU), so test/native/augment-stages.test.ts can compare them with the CPU op where no GPU is.
//   augment_stages_host IN OUT
// IN (little-endian): int32 images, records, views, outH, outW, filter; float64 mean[3], std[3]; per image int32
// h, w, c and h*w*c bytes; float64 records * 20 parameters. OUT: float32 [records, 3, outH, outW], view-major.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../../native/cuda/augment_stages.h"

using namespace ssql::aug;

namespace {

template <typename T>
void readInto(FILE* f, T* dst, size_t n) {
  if (std::fread(dst, sizeof(T), n, f) != n) {
    std::fprintf(stderr, "augment_stages_host: truncated input\n");
    std::exit(2);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: augment_stages_host IN OUT\n");
    return 2;
  }
  FILE* in = std::fopen(argv[1], "rb");
  if (!in) return 2;
  int32_t head[6];
  readInto(in, head, 6);
  const int images = head[0], views = head[2];
  const int64_t records = head[1];
  double mean[3], std[3];
  readInto(in, mean, 3);
  readInto(in, std, 3);
  Settings st{head[3], head[4], static_cast<Filter>(head[5]), {}, {}};
  for (int c = 0; c < 3; ++c) {  // as core/augment_args.h
    st.mean[c] = static_cast<float>(mean[c]);
    st.invStd[c] = static_cast<float>(1.0 / std[c]);
  }
  std::vector<std::vector<uint8_t>> pixels(images);
  std::vector<SourceImage> sources;
  for (int i = 0; i < images; ++i) {
    int32_t s[3];
    readInto(in, s, 3);
    pixels[i].resize(static_cast<size_t>(s[0]) * s[1] * s[2]);
    readInto(in, pixels[i].data(), pixels[i].size());
    sources.push_back({pixels[i].data(), s[0], s[1], s[2]});
  }
  std::vector<double> params(static_cast<size_t>(records) * kRecord);
  readInto(in, params.data(), params.size());
  std::fclose(in);

  const int64_t batch = records / views, per = 3LL * st.outH * st.outW;
  std::vector<float> out(static_cast<size_t>(records * per));
  std::vector<float*> outputs;
  for (int v = 0; v < views; ++v) outputs.push_back(out.data() + v * batch * per);
  Plan plan = makePlan(sources, params.data(), records, batch, st, outputs);

  std::vector<float> weights(plan.weightCount), blurTmp(plan.blurImages * per), means(records);
  std::vector<int> windows(records * windowEntries(st) * 2);
  std::vector<double> rowSums(records * st.outH);
  StageData d{plan.recs.data(), records, st, weights.data(), windows.data(), rowSums.data(), means.data(), blurTmp.data()};
  for (const Stage& s : plan.stages)
    for (int64_t i = s.n - 1; i >= 0; --i) stageAt(s.kind, d, s.arg, i);

  FILE* o = std::fopen(argv[2], "wb");
  if (!o || std::fwrite(out.data(), sizeof(float), out.size(), o) != out.size()) return 3;
  std::fclose(o);
  return 0;
}
