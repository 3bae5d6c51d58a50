// A convolution through cuDNN's graph (backend) API: one operation in an operation graph, engine configs from the
// heuristics (mode A, then the fallback list), an execution plan per config, run with cudnnBackendExecute.
//
// Why: torch.backends.cudnn.benchmark = True builds this graph and times the engine configs the heuristics offer;
// the legacy cudnnFind*AlgorithmEx (conv.cc) reaches only the engines behind its fixed algorithm enums, and on an
// H200 ran e.g. the 1x1 stride-2 convolutions 1.3-1.8x slower than PyTorch. conv.cc keeps the legacy algorithm as
// the baseline and adopts an engine from searchEngines() only when it is faster and computes the same numbers.
//
// Failures never escape: every backend call is checked; a config that cannot be described, finalized or run is
// skipped, a heuristics mode that fails leaves the other mode's configs, and any other failure ends the search with
// no plan (the reason in `note`). Descriptors are owned by BackendDescriptor, so no path leaks one. SSQL_CUDNN_ENGINES=0
// turns the search off.
#pragma once

#include <cudnn.h>

#include <memory>
#include <string>

#include "../core/nn_args.h"
#include "backend_descriptor.h"

namespace ssql {
namespace cuda {

enum class ConvPass { Forward = 0, BackwardData = 1, BackwardFilter = 2 };

// Device buffers of one convolution in the forward pass's names: x the image (or its gradient, written by backward
// data), w the filter (or its gradient, written by backward filter), y the response (or its gradient, read by both
// backward passes). Each pass writes exactly one of them and only reads the other two.
struct ConvTensors {
  void* x;
  void* w;
  void* y;
};

// Byte alignment the plans are built for; the caching allocator hands out 512-byte aligned blocks.
constexpr size_t kEngineAlignment = 16;
bool alignedForEngines(const ConvTensors& t);

struct EngineGraph;

// A finalized execution plan, with the graph it was built from (kept alive while the plan exists).
class EnginePlan {
 public:
  EnginePlan(std::shared_ptr<const EngineGraph> graph, BackendDescriptor config, BackendDescriptor plan,
             size_t workspace, std::string name);

  // Queues the convolution on the handle's stream; `workspace` holds workspaceBytes() bytes.
  cudnnStatus_t execute(cudnnHandle_t h, const ConvTensors& t, void* workspace) const;
  size_t workspaceBytes() const { return workspace_; }
  // The engine's global index and knob choices, as cudnn-frontend tags plans: "eng12_k2=3_k13=1".
  const std::string& name() const { return name_; }

 private:
  // Declared in the order they depend on each other, so the plan is destroyed first.
  std::shared_ptr<const EngineGraph> graph_;
  BackendDescriptor config_, plan_;
  size_t workspace_;
  std::string name_;
};

struct EngineSearch {
  std::unique_ptr<EnginePlan> fastest;  // null: nothing usable (see note)
  float ms = -1;                        // its best time
  int timed = 0;                        // plans timed
  std::string note;                     // why nothing was found, or what was skipped
};

// False when SSQL_CUDNN_ENGINES=0.
bool engineSearchEnabled();

// Builds the graph for (pass, q) and times the engine configs the heuristics offer, in their order, on `t` (the
// pass's output is overwritten, its inputs only read): a warm-up run, then the best of 3, with CUDA events. Skips
// configs whose plan does not finalize, that need more than workspaceCap bytes, or, without TF32, that are noted as
// tensor-core or down-converting; stops after 10 plans (PyTorch's default benchmark_limit) or 1 s. Returns the fastest. Never throws.
EngineSearch searchEngines(cudnnHandle_t h, ConvPass pass, const ConvGeometry& q, const ConvTensors& t,
                           size_t workspaceCap);

}  // namespace cuda
}  // namespace ssql
