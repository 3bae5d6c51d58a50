// augmentBatch on CUDA: the CPU op's arguments and checks (core/augment_args.h) with device-resident uint8 sources;
// the plan's record table is uploaded and its stages queued on the device stream (augment_kernels.cu). Resolves
// at once, with outputs that later work on the stream sees finished, as every CUDA op.
// No multiply-add contraction in the host-side plan either (it computes the blur's box weights).
#pragma GCC optimize("fp-contract=off")

#include <cstring>

#include "../core/augment_args.h"
#include "../core/binding.h"
#include "allocator.h"
#include "augment.h"
#include "runtime.h"

using namespace ssql;

namespace {

// Scratch bytes as a device tensor (freed by the caller once the stages are queued: the allocator reuses its
// block only for work queued later on the same stream).
TensorPtr scratch(int64_t bytes) { return empty(DType::U8, {bytes}); }

template <typename T>
T* ptr(const TensorPtr& t) {
  return t->numel() ? t->data<T>() : nullptr;
}

}  // namespace

SSQL_OP(augmentBatch) {
  parse::AugmentBatchArgs m = parse::augmentBatchArgs(a);
  std::vector<float*> outs;
  for (const TensorPtr& t : m.outputs) outs.push_back(t->f32());
  aug::Plan plan = aug::makePlan(m.sources, m.params.data(), m.records, m.batch, m.settings, outs);

  const aug::Settings& st = m.settings;
  const int64_t P = static_cast<int64_t>(st.outH) * st.outW;
  const int64_t tableBytes = m.records * static_cast<int64_t>(sizeof(aug::RecordPlan));
  TensorPtr table = scratch(tableBytes);
  TensorPtr weights = scratch(plan.weightCount * static_cast<int64_t>(sizeof(float)));
  TensorPtr windows = scratch(m.records * aug::windowEntries(st) * 2 * static_cast<int64_t>(sizeof(int)));
  TensorPtr rowSums = scratch(plan.contrast ? m.records * st.outH * static_cast<int64_t>(sizeof(double)) : 0);
  TensorPtr means = scratch(plan.contrast ? m.records * static_cast<int64_t>(sizeof(float)) : 0);
  TensorPtr blurTmp = scratch(plan.blurImages * 3 * P * static_cast<int64_t>(sizeof(float)));

  cudaStream_t s = cuda::stream();
  {
    cuda::PinnedLease staging(static_cast<size_t>(tableBytes));
    std::memcpy(staging.b->data, plan.recs.data(), static_cast<size_t>(tableBytes));
    SSQL_CUDA(cudaMemcpyAsync(table->storage->data, staging.b->data, static_cast<size_t>(tableBytes),
                              cudaMemcpyHostToDevice, s));
    staging.after = s;
  }
  aug::StageData d{ptr<aug::RecordPlan>(table), m.records, st, ptr<float>(weights), ptr<int>(windows),
                   ptr<double>(rowSums), ptr<float>(means), ptr<float>(blurTmp)};
  cuda::augmentStages(plan.stages, d, s);

  auto deferred = Napi::Promise::Deferred::New(a.env());
  deferred.Resolve(wrapMany(a.env(), m.outputs));
  return deferred.Promise();
}
