// 2-D convolution forward and backward through cuDNN. The plan is chosen once per shape and cached with its
// descriptors; workspaces come from the caching allocator.
//
// The choice: first the legacy convolution API's algorithm, by timing every candidate (cudnnFind*Ex). Then the
// graph API's engine configs (conv_engines.h), timed on the same buffers: PyTorch's benchmark mode
// (torch.backends.cudnn.benchmark = True) searches those, and the legacy API reaches only some of them, so it loses
// on shapes such as the 1x1 stride-2 downsample convolutions. An engine replaces the legacy algorithm only when it
// is at least 3% faster and its output matches the legacy output (conv_choice.h); any failure of the search keeps
// the legacy algorithm, as does SSQL_CUDNN_ENGINES=0. convPlanReport() lists what each shape runs.
//
// Without TF32 the legacy descriptors ask for FMA math (on Ampere and newer cuDNN's default math would otherwise run
// float32 convolutions on TF32 tensor cores) and engines noted as tensor-core or down-converting are skipped.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/binding.h"
#include "../core/conv_args.h"
#include "conv_choice.h"
#include "conv_engines.h"
#include "kernels.h"
#include "libs.h"
#include "runtime.h"
#include "stream_timer.h"

using namespace ssql;

namespace {

using Pass = cuda::ConvPass;
using cuda::ConvTensors;

struct Plan {
  Pass pass = Pass::Forward;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  int algo = 0;
  size_t workspace = 0;
  std::unique_ptr<cuda::EnginePlan> engine;  // runs instead of the legacy algorithm when set
  // What the choice saw, for convPlanReport(): -1 where not measured.
  std::string shape;
  float legacyMs = -1, engineMs = -1;
  std::string bestEngine;
  double difference = -1;
  std::string note;
  ~Plan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

using PlanKey = std::vector<int64_t>;

std::map<PlanKey, std::unique_ptr<Plan>>& planCache() {
  static auto* cache = new std::map<PlanKey, std::unique_ptr<Plan>>();  // never destroyed: outlives cuDNN at exit
  return *cache;
}

int asInt(int64_t v, const char* what) {
  if (v > INT32_MAX) throw RangeError(std::string("conv2d(): ") + what + " " + std::to_string(v) + " exceeds cuDNN's int range");
  return static_cast<int>(v);
}

void describe(Plan& p, const ConvGeometry& q) {
  SSQL_CUDNN(cudnnCreateTensorDescriptor(&p.x));
  SSQL_CUDNN(cudnnCreateTensorDescriptor(&p.y));
  SSQL_CUDNN(cudnnCreateFilterDescriptor(&p.w));
  SSQL_CUDNN(cudnnCreateConvolutionDescriptor(&p.conv));
  SSQL_CUDNN(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, asInt(q.N, "batch"), asInt(q.C, "channels"),
                                        asInt(q.H, "height"), asInt(q.W, "width")));
  SSQL_CUDNN(cudnnSetFilter4dDescriptor(p.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, asInt(q.O, "channels"),
                                        asInt(q.C / q.G, "channels"), asInt(q.KH, "kernel"), asInt(q.KW, "kernel")));
  SSQL_CUDNN(cudnnSetConvolution2dDescriptor(p.conv, asInt(q.PH, "padding"), asInt(q.PW, "padding"), asInt(q.SH, "stride"),
                                             asInt(q.SW, "stride"), asInt(q.DH, "dilation"), asInt(q.DW, "dilation"),
                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  SSQL_CUDNN(cudnnSetConvolutionGroupCount(p.conv, asInt(q.G, "groups")));
  SSQL_CUDNN(cudnnSetConvolutionMathType(p.conv, cuda::tf32Enabled() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  int n = 0, c = 0, h = 0, w = 0;
  SSQL_CUDNN(cudnnGetConvolution2dForwardOutputDim(p.conv, p.x, p.w, &n, &c, &h, &w));
  if (n != q.N || c != q.O || h != q.OH || w != q.OW)
    throw cuda::CudaError("conv2d(): cuDNN computes output [" + std::to_string(n) + ", " + std::to_string(c) + ", " +
                          std::to_string(h) + ", " + std::to_string(w) + "], expected " + shapeStr(q.yShape()));
  SSQL_CUDNN(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
}

// The most workspace a plan may use: 1 GiB, and half the free device memory.
size_t workspaceLimit() {
  size_t freeBytes = 0, total = 0;
  if (cudaMemGetInfo(&freeBytes, &total) != cudaSuccess) {
    cudaGetLastError();
    freeBytes = 0;
  }
  return std::min<size_t>(size_t(1) << 30, freeBytes / 2);
}

// Find-time workspace: the largest any algorithm asks for, within workspaceLimit().
size_t findWorkspaceCap(size_t largest) { return std::min(largest, workspaceLimit()); }

TensorPtr workspace(size_t bytes) { return bytes ? empty(DType::U8, {static_cast<int64_t>(bytes)}) : nullptr; }
void* dataOf(const TensorPtr& t) { return t ? t->storage->data : nullptr; }

// Picks the fastest successful result that fits the workspace; without TF32, only FMA-math results.
template <typename Perf>
const Perf& pickAlgorithm(const Perf* perf, int returned, size_t wsBytes, const char* op) {
  for (int pass = 0; pass < 2; ++pass)
    for (int i = 0; i < returned; ++i) {
      const Perf& r = perf[i];
      if (r.status != CUDNN_STATUS_SUCCESS || r.memory > wsBytes) continue;
      bool fmaOnly = r.mathType == CUDNN_FMA_MATH || r.mathType == CUDNN_DEFAULT_MATH;
      if (pass == 0 && !cuda::tf32Enabled() && !fmaOnly) continue;
      return r;
    }
  throw cuda::CudaError(std::string(op) + "(): cuDNN found no usable algorithm for this shape");
}

template <typename Perf>
void adopt(Plan& p, const Perf& r) {
  p.algo = static_cast<int>(r.algo);
  p.workspace = r.memory;
  // Without TF32 the descriptor keeps FMA math whatever the result reports.
  if (cuda::tf32Enabled()) SSQL_CUDNN(cudnnSetConvolutionMathType(p.conv, r.mathType));
}

// The legacy Find for the plan's pass: times every algorithm on `t` (the pass's output is overwritten) and keeps
// the fastest usable one.
void findLegacyAlgorithm(Plan& p, const ConvTensors& t) {
  cudnnHandle_t h = cuda::cudnn();
  size_t largest = 0, sz = 0;
  int returned = 0;
  switch (p.pass) {
    case Pass::Forward: {
      for (int algo = 0; algo < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; ++algo)
        if (cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, static_cast<cudnnConvolutionFwdAlgo_t>(algo),
                                                    &sz) == CUDNN_STATUS_SUCCESS)
          largest = std::max(largest, sz);
      size_t wsBytes = findWorkspaceCap(largest);
      TensorPtr ws = workspace(wsBytes);
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      SSQL_CUDNN(cudnnFindConvolutionForwardAlgorithmEx(h, p.x, t.x, p.w, t.w, p.conv, p.y, t.y,
                                                        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf, dataOf(ws), wsBytes));
      adopt(p, pickAlgorithm(perf, returned, wsBytes, "conv2d"));
      break;
    }
    case Pass::BackwardData: {
      for (int algo = 0; algo < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; ++algo)
        if (cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.x,
                                                         static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), &sz) ==
            CUDNN_STATUS_SUCCESS)
          largest = std::max(largest, sz);
      size_t wsBytes = findWorkspaceCap(largest);
      TensorPtr ws = workspace(wsBytes);
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      SSQL_CUDNN(cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, t.w, p.y, t.y, p.conv, p.x, t.x,
                                                             CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, perf,
                                                             dataOf(ws), wsBytes));
      adopt(p, pickAlgorithm(perf, returned, wsBytes, "conv2dBackwardData"));
      break;
    }
    case Pass::BackwardFilter: {
      for (int algo = 0; algo < CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT; ++algo)
        if (cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w,
                                                           static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), &sz) ==
            CUDNN_STATUS_SUCCESS)
          largest = std::max(largest, sz);
      size_t wsBytes = findWorkspaceCap(largest);
      TensorPtr ws = workspace(wsBytes);
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      SSQL_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x, t.x, p.y, t.y, p.conv, p.w, t.w,
                                                               CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, perf,
                                                               dataOf(ws), wsBytes));
      adopt(p, pickAlgorithm(perf, returned, wsBytes, "conv2dBackwardWeight"));
      break;
    }
  }
}

// Queues the plan's legacy algorithm (y = conv(x, w), dx = conv_data(dy, w) or dw = conv_filter(x, dy)).
cudnnStatus_t runLegacy(const Plan& p, const ConvTensors& t, void* ws) {
  cudnnHandle_t h = cuda::cudnn();
  const float one = 1.0f, zero = 0.0f;
  switch (p.pass) {
    case Pass::Forward:
      return cudnnConvolutionForward(h, &one, p.x, t.x, p.w, t.w, p.conv, static_cast<cudnnConvolutionFwdAlgo_t>(p.algo),
                                     ws, p.workspace, &zero, p.y, t.y);
    case Pass::BackwardData:
      return cudnnConvolutionBackwardData(h, &one, p.w, t.w, p.y, t.y, p.conv,
                                          static_cast<cudnnConvolutionBwdDataAlgo_t>(p.algo), ws, p.workspace, &zero,
                                          p.x, t.x);
    case Pass::BackwardFilter:
      return cudnnConvolutionBackwardFilter(h, &one, p.x, t.x, p.y, t.y, p.conv,
                                            static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.algo), ws, p.workspace, &zero,
                                            p.w, t.w);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

const char* legacyCall(Pass pass) {
  switch (pass) {
    case Pass::Forward: return "cudnnConvolutionForward";
    case Pass::BackwardData: return "cudnnConvolutionBackwardData";
    case Pass::BackwardFilter: return "cudnnConvolutionBackwardFilter";
  }
  return "convolution";
}

// The buffer the pass writes, and its element count.
const void* outputOf(Pass pass, const ConvTensors& t) {
  return pass == Pass::Forward ? t.y : pass == Pass::BackwardData ? t.x : t.w;
}
int64_t outputElements(Pass pass, const ConvGeometry& q) {
  return numelOf(pass == Pass::Forward ? q.yShape() : pass == Pass::BackwardData ? q.xShape() : q.wShape());
}

std::vector<float> toHost(const void* device, int64_t n) {
  std::vector<float> host(static_cast<size_t>(n));
  SSQL_CUDA(cudaMemcpyAsync(host.data(), device, host.size() * sizeof(float), cudaMemcpyDeviceToHost, cuda::stream()));
  SSQL_CUDA(cudaStreamSynchronize(cuda::stream()));
  return host;
}

// Times the legacy algorithm and the graph API's engines on `t` and keeps the legacy algorithm unless the fastest
// engine is clearly faster and computes the same output. Leaves the plan on the legacy algorithm on any failure.
void chooseEngine(Plan& p, const ConvGeometry& q, const ConvTensors& t) {
  auto why = [&p](const std::string& s) { p.note += (p.note.empty() ? "" : "; ") + s; };
  if (!cuda::engineSearchEnabled()) {
    why("engine search off (SSQL_CUDNN_ENGINES=0)");
    return;
  }
  try {
    cuda::StreamTimer timer(cuda::stream());
    TensorPtr ws = workspace(p.workspace);
    p.legacyMs = timer.bestOf([&] { return runLegacy(p, t, dataOf(ws)) == CUDNN_STATUS_SUCCESS; });
    if (p.legacyMs < 0) {
      why("timing the legacy algorithm failed");
      return;
    }
    const int64_t n = outputElements(p.pass, q);
    std::vector<float> legacyOut = toHost(outputOf(p.pass, t), n);
    cuda::EngineSearch found = cuda::searchEngines(cuda::cudnn(), p.pass, q, t, workspaceLimit());
    why(found.note);
    if (!found.fastest) return;
    p.bestEngine = found.fastest->name();
    p.engineMs = found.ms;
    if (!cuda::engineIsFaster(p.legacyMs, found.ms)) {
      why("no engine 3% faster than the legacy algorithm");
      return;
    }
    TensorPtr engineWs = workspace(found.fastest->workspaceBytes());
    cudnnStatus_t s = found.fastest->execute(cuda::cudnn(), t, dataOf(engineWs));
    if (s != CUDNN_STATUS_SUCCESS) {
      why(std::string("rerunning the engine failed: ") + cudnnGetErrorString(s));
      return;
    }
    std::vector<float> engineOut = toHost(outputOf(p.pass, t), n);
    p.difference = cuda::maxRelativeDifference(legacyOut.data(), engineOut.data(), legacyOut.size());
    if (!cuda::adoptEngine(p.legacyMs, p.engineMs, p.difference)) {
      why("the engine's output differs from the legacy output");
      return;
    }
    p.engine = std::move(found.fastest);
  } catch (const std::exception& e) {
    p.engine.reset();
    why(std::string("engine choice failed: ") + e.what());
  }
}

std::string shapeText(const ConvGeometry& q) {
  auto pair = [](int64_t a, int64_t b) { return std::to_string(a) + "," + std::to_string(b); };
  return "x" + shapeStr(q.xShape()) + " w" + shapeStr(q.wShape()) + " stride " + pair(q.SH, q.SW) + " pad " +
         pair(q.PH, q.PW) + " dilation " + pair(q.DH, q.DW) + " groups " + std::to_string(q.G);
}

// The cached plan for (pass, shape); the first call times the algorithms and engines on `t` (the pass's output is
// overwritten, its inputs only read).
Plan& planFor(Pass pass, const ConvGeometry& q, const ConvTensors& t) {
  PlanKey key{static_cast<int64_t>(pass), cuda::currentDevice(), cuda::tf32Enabled() ? 1 : 0, q.N, q.C, q.H, q.W, q.O,
              q.KH, q.KW, q.SH, q.SW, q.PH, q.PW, q.DH, q.DW, q.G};
  auto& cache = planCache();
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  Plan& p = *plan;
  p.pass = pass;
  p.shape = shapeText(q);
  describe(p, q);
  findLegacyAlgorithm(p, t);
  chooseEngine(p, q, t);
  return *cache.emplace(std::move(key), std::move(plan)).first->second;
}

// Queues the chosen plan on `t`: the engine where one was adopted, else the legacy algorithm.
void run(const Plan& p, const ConvTensors& t) {
  if (p.engine && cuda::alignedForEngines(t)) {
    TensorPtr ws = workspace(p.engine->workspaceBytes());
    cuda::checkCudnn(p.engine->execute(cuda::cudnn(), t, dataOf(ws)), "cudnnBackendExecute");
    return;
  }
  TensorPtr ws = workspace(p.workspace);
  cuda::checkCudnn(runLegacy(p, t, dataOf(ws)), legacyCall(p.pass));
}

// Per-channel sum of gy over N, H, W (the bias gradient), accumulated in double.
void biasGradient(const Tensor& gy, Tensor& gb, const ConvGeometry& q) {
  int64_t hw = q.OH * q.OW;
  auto sums = empty(DType::U8, {q.O * 2 * static_cast<int64_t>(sizeof(double))});
  size_t scratchBytes = cuda::channelSumsScratchBytes(q.N, q.O, hw);
  auto scratch = workspace(scratchBytes);
  cudaStream_t s = cuda::stream();
  auto* psums = static_cast<double*>(sums->storage->data);
  cuda::channelSums(cuda::ChannelSums::GradSum, nullptr, gy.f32(), nullptr, nullptr, q.N, q.O, hw, psums, dataOf(scratch), s);
  cuda::channelSumToFloat(psums, gb.f32(), q.O, s);
}

const char* passName(Pass pass) {
  switch (pass) {
    case Pass::Forward: return "forward";
    case Pass::BackwardData: return "backwardData";
    case Pass::BackwardFilter: return "backwardFilter";
  }
  return "";
}

}  // namespace

SSQL_OP(conv2d) {
  parse::Conv2dArgs c = parse::conv2dArgs(a);
  const ConvGeometry& q = c.q;
  const TensorPtr &x = c.x, &w = c.w, &b = c.bias, &y = c.y;
  if (y->numel() == 0) return wrap(a.env(), y);
  ConvTensors t{x->f32(), w->f32(), y->f32()};
  run(planFor(Pass::Forward, q, t), t);
  if (b) cuda::addChannelBias(y->f32(), b->f32(), q.N, q.O, q.OH * q.OW, cuda::stream());
  return wrap(a.env(), y);
}

SSQL_OP(conv2dBackwardData) {
  parse::Conv2dBackwardDataArgs c = parse::conv2dBackwardDataArgs(a);
  const ConvGeometry& q = c.q;
  const TensorPtr &gy = c.gy, &w = c.w, &gx = c.gx;
  if (gx->numel() == 0) return wrap(a.env(), gx);
  if (gy->numel() == 0) {
    cuda::fillF32(gx->f32(), 0.0f, gx->numel(), cuda::stream());
    return wrap(a.env(), gx);
  }
  ConvTensors t{gx->f32(), w->f32(), gy->f32()};
  run(planFor(Pass::BackwardData, q, t), t);
  return wrap(a.env(), gx);
}

SSQL_OP(conv2dBackwardWeight) {
  parse::Conv2dBackwardWeightArgs c = parse::conv2dBackwardWeightArgs(a);
  const ConvGeometry& q = c.q;
  const TensorPtr &gy = c.gy, &x = c.x, &gw = c.gw, &gb = c.gb;
  cudaStream_t s = cuda::stream();
  if (gy->numel() == 0) {
    cuda::fillF32(gw->f32(), 0.0f, gw->numel(), s);
    if (gb) cuda::fillF32(gb->f32(), 0.0f, gb->numel(), s);
    return wrapMany(a.env(), {gw, gb});
  }
  ConvTensors t{x->f32(), gw->f32(), gy->f32()};
  run(planFor(Pass::BackwardFilter, q, t), t);
  if (gb) biasGradient(*gy, *gb, q);
  return wrapMany(a.env(), {gw, gb});
}

// Every cached plan: its pass and shape, what runs ("legacy algo N" or "engine <name>"), and the times the choice
// measured (milliseconds; -1 where not measured). For the GPU check's conv benchmark.
SSQL_OP(convPlanReport) {
  Napi::Env env = a.env();
  auto list = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto& [key, plan] : planCache()) {
    const Plan& p = *plan;
    auto o = Napi::Object::New(env);
    o.Set("pass", passName(p.pass));
    o.Set("shape", p.shape);
    o.Set("path", p.engine ? "engine " + p.engine->name() : "legacy algo " + std::to_string(p.algo));
    o.Set("legacyAlgo", p.algo);
    o.Set("legacyMs", p.legacyMs);
    o.Set("chosenMs", p.engine ? p.engineMs : p.legacyMs);
    if (!p.bestEngine.empty()) {
      o.Set("bestEngine", p.bestEngine);
      o.Set("bestEngineMs", p.engineMs);
    }
    if (p.difference >= 0) o.Set("difference", p.difference);
    o.Set("note", p.note);
    list.Set(i++, o);
  }
  return list;
}
