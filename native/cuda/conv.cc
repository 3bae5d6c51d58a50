// 2-D convolution forward and backward through cuDNN's convolution API. The algorithm is chosen once per shape by
// timing every candidate (cudnnFind*Ex, as torch.backends.cudnn.benchmark = True) and cached with its descriptors;
// workspaces come from the caching allocator. Without TF32 the descriptors ask for FMA math: on Ampere and newer
// cuDNN's default math would otherwise run float32 convolutions on TF32 tensor cores.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/binding.h"
#include "../core/conv_args.h"
#include "kernels.h"
#include "libs.h"
#include "runtime.h"

using namespace ssql;

namespace {

enum class Pass { Forward = 0, BackwardData = 1, BackwardFilter = 2 };

struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  int algo = 0;
  size_t workspace = 0;
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

// Find-time workspace: the largest any algorithm asks for, capped at 1 GiB and half the free device memory.
size_t findWorkspaceCap(size_t largest) {
  size_t freeBytes = 0, total = 0;
  if (cudaMemGetInfo(&freeBytes, &total) != cudaSuccess) {
    cudaGetLastError();
    freeBytes = 0;
  }
  return std::min<size_t>({largest, size_t(1) << 30, freeBytes / 2});
}

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

// The cached plan for (pass, shape); the first call times the algorithms on the given buffers (out is overwritten).
Plan& planFor(Pass pass, const ConvGeometry& q, const void* in0, const void* in1, void* out) {
  PlanKey key{static_cast<int64_t>(pass), cuda::currentDevice(), cuda::tf32Enabled() ? 1 : 0, q.N, q.C, q.H, q.W, q.O,
              q.KH, q.KW, q.SH, q.SW, q.PH, q.PW, q.DH, q.DW, q.G};
  auto& cache = planCache();
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  auto plan = std::make_unique<Plan>();
  Plan& p = *plan;
  describe(p, q);
  cudnnHandle_t h = cuda::cudnn();
  size_t largest = 0, sz = 0;
  int returned = 0;
  switch (pass) {
    case Pass::Forward: {
      for (int algo = 0; algo < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; ++algo)
        if (cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, static_cast<cudnnConvolutionFwdAlgo_t>(algo),
                                                    &sz) == CUDNN_STATUS_SUCCESS)
          largest = std::max(largest, sz);
      size_t wsBytes = findWorkspaceCap(largest);
      TensorPtr ws = workspace(wsBytes);
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      SSQL_CUDNN(cudnnFindConvolutionForwardAlgorithmEx(h, p.x, in0, p.w, in1, p.conv, p.y, out,
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
      SSQL_CUDNN(cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, in1, p.y, in0, p.conv, p.x, out,
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
      SSQL_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x, in1, p.y, in0, p.conv, p.w, out,
                                                               CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, perf,
                                                               dataOf(ws), wsBytes));
      adopt(p, pickAlgorithm(perf, returned, wsBytes, "conv2dBackwardWeight"));
      break;
    }
  }
  return *cache.emplace(std::move(key), std::move(plan)).first->second;
}

// Per-channel sum of gy over N, H, W (the bias gradient), accumulated in double.
void biasGradient(const Tensor& gy, Tensor& gb, const ConvGeometry& q) {
  int64_t hw = q.OH * q.OW;
  auto sums = empty(DType::U8, {q.O * 2 * static_cast<int64_t>(sizeof(double))});
  size_t scratchBytes = cuda::channelSumsScratchBytes(q.N, q.O, hw);
  auto scratch = workspace(scratchBytes);
  cudaStream_t s = cuda::stream();
  auto* psums = static_cast<double*>(sums->storage->data);
  cuda::channelSums(cuda::ChannelSums::GradSum, nullptr, gy.f32(), nullptr, q.N, q.O, hw, psums, dataOf(scratch), s);
  cuda::channelSumToFloat(psums, gb.f32(), q.O, s);
}

}  // namespace

SSQL_OP(conv2d) {
  parse::Conv2dArgs c = parse::conv2dArgs(a);
  const ConvGeometry& q = c.q;
  const TensorPtr &x = c.x, &w = c.w, &b = c.bias, &y = c.y;
  if (y->numel() == 0) return wrap(a.env(), y);
  Plan& p = planFor(Pass::Forward, q, x->f32(), w->f32(), y->f32());
  TensorPtr ws = workspace(p.workspace);
  const float one = 1.0f, zero = 0.0f;
  SSQL_CUDNN(cudnnConvolutionForward(cuda::cudnn(), &one, p.x, x->f32(), p.w, w->f32(), p.conv,
                                     static_cast<cudnnConvolutionFwdAlgo_t>(p.algo), dataOf(ws), p.workspace, &zero, p.y,
                                     y->f32()));
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
  Plan& p = planFor(Pass::BackwardData, q, gy->f32(), w->f32(), gx->f32());
  TensorPtr ws = workspace(p.workspace);
  const float one = 1.0f, zero = 0.0f;
  SSQL_CUDNN(cudnnConvolutionBackwardData(cuda::cudnn(), &one, p.w, w->f32(), p.y, gy->f32(), p.conv,
                                          static_cast<cudnnConvolutionBwdDataAlgo_t>(p.algo), dataOf(ws), p.workspace,
                                          &zero, p.x, gx->f32()));
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
  Plan& p = planFor(Pass::BackwardFilter, q, gy->f32(), x->f32(), gw->f32());
  TensorPtr work = workspace(p.workspace);
  const float one = 1.0f, zero = 0.0f;
  SSQL_CUDNN(cudnnConvolutionBackwardFilter(cuda::cudnn(), &one, p.x, x->f32(), p.y, gy->f32(), p.conv,
                                            static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.algo), dataOf(work),
                                            p.workspace, &zero, p.w, gw->f32()));
  if (gb) biasGradient(*gy, *gb, q);
  return wrapMany(a.env(), {gw, gb});
}
