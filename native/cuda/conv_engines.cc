// The convolution's operation graph, its engine configs and their timing (see conv_engines.h). Attribute names,
// types and element counts follow cudnn_graph_v9.h.
#include "conv_engines.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <vector>

#include "../core/binding.h"
#include "runtime.h"
#include "stream_timer.h"

namespace ssql {
namespace cuda {

// The tensors, the convolution and its operation, and the finalized operation graph over them.
struct EngineGraph {
  BackendDescriptor x, w, y, conv, operation, graph;
};

namespace {

// A failed backend call inside the search; searchEngines() turns it into "nothing found".
struct EngineFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// cuDNN's message for its latest failure (reading it also clears it, so a later error is not blamed on this one).
std::string lastCudnnMessage() {
  char message[512] = {0};
  cudnnGetLastErrorString(message, sizeof(message));
  return message;
}

EngineFailure failure(const std::string& what, cudnnStatus_t s) {
  std::string detail = lastCudnnMessage();
  return EngineFailure(what + ": " + cudnnGetErrorString(s) + (detail.empty() ? "" : " (" + detail + ")"));
}

void check(cudnnStatus_t s, const char* call) {
  if (s != CUDNN_STATUS_SUCCESS) throw failure(call, s);
}

#define SSQL_BACKEND_SET(desc, name, type, count, values) \
  check(cudnnBackendSetAttribute((desc).get(), name, type, count, values), "cudnnBackendSetAttribute(" #name ")")
#define SSQL_BACKEND_GET(desc, name, type, count, got, values)                                                 \
  check(cudnnBackendGetAttribute((desc).get(), name, type, count, got, values), "cudnnBackendGetAttribute(" #name \
                                                                                ")")

constexpr int64_t kUidX = 1, kUidW = 2, kUidY = 3;
// Plans timed per search, in the heuristics' order (PyTorch's torch.backends.cudnn.benchmark_limit is 10), and the
// wall time after which no further plan is started (an engine compiled at run time can take a second to finalize).
constexpr int kMaxTimedPlans = 10;
constexpr double kSearchSeconds = 1.0;
// Engine configs read from one heuristics query at most.
constexpr int64_t kMaxConfigs = 256;

BackendDescriptor make(cudnnBackendDescriptorType_t type, const char* what) {
  BackendDescriptor d;
  cudnnStatus_t s = d.create(type);
  if (s != CUDNN_STATUS_SUCCESS) throw failure(std::string("creating the ") + what + " descriptor", s);
  return d;
}

void finalize(const BackendDescriptor& d, const char* what) {
  cudnnStatus_t s = cudnnBackendFinalize(d.get());
  if (s != CUDNN_STATUS_SUCCESS) throw failure(std::string("finalizing the ") + what, s);
}

// A packed NCHW float tensor.
BackendDescriptor tensor(int64_t uid, int64_t n, int64_t c, int64_t h, int64_t w) {
  BackendDescriptor d = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor");
  const int64_t dims[4] = {n, c, h, w};
  const int64_t strides[4] = {c * h * w, h * w, w, 1};
  const cudnnDataType_t type = CUDNN_DATA_FLOAT;
  const int64_t alignment = kEngineAlignment;
  SSQL_BACKEND_SET(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
  SSQL_BACKEND_SET(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
  SSQL_BACKEND_SET(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
  SSQL_BACKEND_SET(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  SSQL_BACKEND_SET(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
  finalize(d, "tensor");
  return d;
}

// Cross-correlation with float accumulation (the legacy descriptors' CUDNN_DATA_FLOAT compute type), symmetric
// padding.
BackendDescriptor convolution(const ConvGeometry& q) {
  BackendDescriptor d = make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, "convolution");
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t spatialDims = 2;
  const int64_t padding[2] = {q.PH, q.PW}, strides[2] = {q.SH, q.SW}, dilations[2] = {q.DH, q.DW};
  SSQL_BACKEND_SET(d, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
  SSQL_BACKEND_SET(d, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
  SSQL_BACKEND_SET(d, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatialDims);
  SSQL_BACKEND_SET(d, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, padding);
  SSQL_BACKEND_SET(d, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, padding);
  SSQL_BACKEND_SET(d, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, strides);
  SSQL_BACKEND_SET(d, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dilations);
  finalize(d, "convolution");
  return d;
}

// The attributes of one pass's operation, in the forward pass's names (x, w, y; see ConvTensors).
struct OperationAttributes {
  cudnnBackendDescriptorType_t type;
  const char* what;
  cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
};

OperationAttributes operationAttributes(ConvPass pass) {
  switch (pass) {
    case ConvPass::BackwardData:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR, "backward-data convolution",
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA};
    case ConvPass::BackwardFilter:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR, "backward-filter convolution",
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA};
    case ConvPass::Forward:
    default:
      return {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, "forward convolution",
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA};
  }
}

// The pass as one operation: y = conv(x, w), dx = conv_data(dy, w) or dw = conv_filter(x, dy), alpha 1, beta 0
// (the output is overwritten, as the legacy calls do).
BackendDescriptor operation(ConvPass pass, const EngineGraph& g) {
  const OperationAttributes n = operationAttributes(pass);
  const float alpha = 1.0f, beta = 0.0f;
  BackendDescriptor d = make(n.type, n.what);
  auto set = [&](cudnnBackendAttributeName_t attr, const char* role, cudnnBackendAttributeType_t type, const void* v) {
    check(cudnnBackendSetAttribute(d.get(), attr, type, 1, v), (std::string(n.what) + " " + role).c_str());
  };
  set(n.x, "x", CUDNN_TYPE_BACKEND_DESCRIPTOR, g.x.address());
  set(n.w, "w", CUDNN_TYPE_BACKEND_DESCRIPTOR, g.w.address());
  set(n.y, "y", CUDNN_TYPE_BACKEND_DESCRIPTOR, g.y.address());
  set(n.conv, "convolution", CUDNN_TYPE_BACKEND_DESCRIPTOR, g.conv.address());
  set(n.alpha, "alpha", CUDNN_TYPE_FLOAT, &alpha);
  set(n.beta, "beta", CUDNN_TYPE_FLOAT, &beta);
  finalize(d, "convolution operation");
  return d;
}

std::shared_ptr<const EngineGraph> buildGraph(cudnnHandle_t h, ConvPass pass, const ConvGeometry& q) {
  auto g = std::make_shared<EngineGraph>();
  g->x = tensor(kUidX, q.N, q.C, q.H, q.W);
  g->w = tensor(kUidW, q.O, q.C / q.G, q.KH, q.KW);
  g->y = tensor(kUidY, q.N, q.O, q.OH, q.OW);
  g->conv = convolution(q);
  g->operation = operation(pass, *g);
  g->graph = make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
  SSQL_BACKEND_SET(g->graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
  SSQL_BACKEND_SET(g->graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, g->operation.address());
  finalize(g->graph, "operation graph");
  return g;
}

// The engine configs the heuristics of `mode` offer for the graph, best first.
std::vector<BackendDescriptor> engineConfigs(const EngineGraph& g, cudnnBackendHeurMode_t mode) {
  BackendDescriptor heuristics = make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "engine heuristics");
  SSQL_BACKEND_SET(heuristics, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                   g.graph.address());
  SSQL_BACKEND_SET(heuristics, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  finalize(heuristics, "engine heuristics");
  int64_t count = 0;
  SSQL_BACKEND_GET(heuristics, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr);
  count = std::clamp<int64_t>(count, 0, kMaxConfigs);
  // The results are copied into descriptors the caller created.
  std::vector<BackendDescriptor> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.push_back(make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "engine config"));
    raw.push_back(configs.back().get());
  }
  int64_t got = 0;
  if (count > 0)
    SSQL_BACKEND_GET(heuristics, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, raw.data());
  configs.resize(static_cast<size_t>(std::clamp<int64_t>(got, 0, count)));
  return configs;
}

struct EngineInfo {
  bool tensorCoreOrDownConvert = false;  // CUDNN_NUMERICAL_NOTE_TENSOR_CORE or _DOWN_CONVERT_INPUTS
  std::string name;                      // "eng12_k2=3_k13=1"
};

EngineInfo describeConfig(const BackendDescriptor& config) {
  EngineInfo info;
  BackendDescriptor engine = make(CUDNN_BACKEND_ENGINE_DESCRIPTOR, "engine");
  cudnnBackendDescriptor_t engineOut = engine.get();
  int64_t got = 0;
  SSQL_BACKEND_GET(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got, &engineOut);

  cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
  int64_t noteCount = 0;
  SSQL_BACKEND_GET(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE, CUDNN_NUMERICAL_NOTE_TYPE_COUNT,
                   &noteCount, notes);
  for (int64_t i = 0; i < std::clamp<int64_t>(noteCount, 0, CUDNN_NUMERICAL_NOTE_TYPE_COUNT); ++i)
    if (notes[i] == CUDNN_NUMERICAL_NOTE_TENSOR_CORE || notes[i] == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)
      info.tensorCoreOrDownConvert = true;

  int64_t index = -1;
  SSQL_BACKEND_GET(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &got, &index);
  info.name = "eng" + std::to_string(index);

  constexpr int64_t kKnobRoom = CUDNN_KNOB_TYPE_COUNTS;
  std::vector<BackendDescriptor> knobs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < kKnobRoom; ++i) {
    knobs.push_back(make(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, "knob choice"));
    raw.push_back(knobs.back().get());
  }
  int64_t knobCount = 0;
  SSQL_BACKEND_GET(config, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR, kKnobRoom, &knobCount,
                   raw.data());
  for (int64_t i = 0; i < std::clamp<int64_t>(knobCount, 0, kKnobRoom); ++i) {
    cudnnBackendKnobType_t type;
    int64_t value = 0;
    SSQL_BACKEND_GET(knobs[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &got, &type);
    SSQL_BACKEND_GET(knobs[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &got, &value);
    info.name += "_k" + std::to_string(static_cast<int>(type)) + "=" + std::to_string(value);
  }
  return info;
}

// The variant pack binding the buffers to the tensors' uids, and the workspace.
cudnnStatus_t variantPack(BackendDescriptor& pack, const ConvTensors& t, void* workspace) {
  const int64_t uids[3] = {kUidX, kUidW, kUidY};
  void* pointers[3] = {t.x, t.w, t.y};
  cudnnStatus_t s = pack.create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnBackendSetAttribute(pack.get(), CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnBackendSetAttribute(pack.get(), CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, pointers);
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnBackendSetAttribute(pack.get(), CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(pack.get());
  return s;
}

struct Skipped {
  int numerics = 0, duplicate = 0, finalize = 0, workspace = 0, limit = 0, failed = 0;
  std::string firstFailure;
  std::string text() const {
    std::string s;
    auto add = [&](int n, const char* why) {
      if (n) s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + why;
    };
    add(numerics, "tensor-core or down-converting");
    add(duplicate, "duplicate");
    add(finalize, "not finalizable");
    add(workspace, "over the workspace cap");
    add(limit, "past the plan or time limit");
    add(failed, ("failing (first: " + firstFailure + ")").c_str());
    return s.empty() ? "" : "; skipped " + s;
  }
};

}  // namespace

bool alignedForEngines(const ConvTensors& t) {
  for (const void* p : {t.x, t.w, t.y})
    if (reinterpret_cast<uintptr_t>(p) % kEngineAlignment) return false;
  return true;
}

EnginePlan::EnginePlan(std::shared_ptr<const EngineGraph> graph, BackendDescriptor config, BackendDescriptor plan,
                       size_t workspace, std::string name)
    : graph_(std::move(graph)),
      config_(std::move(config)),
      plan_(std::move(plan)),
      workspace_(workspace),
      name_(std::move(name)) {}

cudnnStatus_t EnginePlan::execute(cudnnHandle_t h, const ConvTensors& t, void* workspace) const {
  BackendDescriptor pack;
  cudnnStatus_t s = variantPack(pack, t, workspace);
  return s == CUDNN_STATUS_SUCCESS ? cudnnBackendExecute(h, plan_.get(), pack.get()) : s;
}

bool engineSearchEnabled() {
  const char* v = std::getenv("SSQL_CUDNN_ENGINES");
  return !(v && std::string(v) == "0");
}

EngineSearch searchEngines(cudnnHandle_t h, ConvPass pass, const ConvGeometry& q, const ConvTensors& t,
                           size_t workspaceCap) {
  const auto start = std::chrono::steady_clock::now();
  EngineSearch found;
  Skipped skipped;
  try {
    if (!alignedForEngines(t)) throw EngineFailure("buffers are not 16-byte aligned");
    std::shared_ptr<const EngineGraph> graph = buildGraph(h, pass, q);
    // Mode A ranks the engines for the shape, the fallback list adds engines that support it at all; a mode that
    // has nothing for this graph leaves the other.
    std::vector<BackendDescriptor> configs;
    std::string heuristicsFailed;
    for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      try {
        for (BackendDescriptor& c : engineConfigs(*graph, mode)) configs.push_back(std::move(c));
      } catch (const EngineFailure& e) {
        heuristicsFailed += std::string("; heuristics ") + (mode == CUDNN_HEUR_MODE_A ? "A" : "fallback") + ": " + e.what();
      }
    }

    StreamTimer timer(stream());
    std::set<std::string> seen;
    for (BackendDescriptor& config : configs) {
      // A config that cannot be described, planned or run is skipped; the others are still tried.
      try {
        EngineInfo info = describeConfig(config);
        if (info.tensorCoreOrDownConvert && !tf32Enabled()) {
          ++skipped.numerics;
          continue;
        }
        if (!seen.insert(info.name).second) {
          ++skipped.duplicate;
          continue;
        }
        if (found.timed >= kMaxTimedPlans ||
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > kSearchSeconds) {
          ++skipped.limit;
          continue;
        }
        BackendDescriptor plan = make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, "execution plan");
        SSQL_BACKEND_SET(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
        SSQL_BACKEND_SET(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                         config.address());
        if (cudnnBackendFinalize(plan.get()) != CUDNN_STATUS_SUCCESS) {
          lastCudnnMessage();
          ++skipped.finalize;
          continue;
        }
        int64_t bytes = -1, got = 0;
        SSQL_BACKEND_GET(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &got, &bytes);
        if (bytes < 0 || static_cast<uint64_t>(bytes) > workspaceCap) {
          ++skipped.workspace;
          continue;
        }
        TensorPtr ws = bytes ? empty(DType::U8, {bytes}) : nullptr;
        BackendDescriptor pack;
        check(variantPack(pack, t, ws ? ws->storage->data : nullptr), "building the variant pack");
        float ms = timer.bestOf([&] { return cudnnBackendExecute(h, plan.get(), pack.get()) == CUDNN_STATUS_SUCCESS; });
        if (ms < 0) {
          std::string detail = lastCudnnMessage();
          throw EngineFailure("running " + info.name + " failed" + (detail.empty() ? "" : ": " + detail));
        }
        ++found.timed;
        if (!found.fastest || ms < found.ms) {
          found.fastest = std::make_unique<EnginePlan>(graph, std::move(config), std::move(plan),
                                                       static_cast<size_t>(bytes), info.name);
          found.ms = ms;
        }
      } catch (const EngineFailure& e) {
        if (skipped.failed++ == 0) skipped.firstFailure = e.what();
      }
    }
    found.note = "timed " + std::to_string(found.timed) + " engine plans" + skipped.text() + heuristicsFailed;
  } catch (const std::exception& e) {
    found.fastest.reset();
    found.ms = -1;
    found.note = std::string("engine search failed: ") + e.what();
  } catch (...) {
    found.fastest.reset();
    found.ms = -1;
    found.note = "engine search failed";
  }
  return found;
}

}  // namespace cuda
}  // namespace ssql
