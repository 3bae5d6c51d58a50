// 2-D convolution forward, backward-data and backward-weight (+bias) on NCHW tensors, each problem in the algorithm
// conv_algorithm.h chose for it: oneDNN in its preferred (blocked) layouts with reorders from and to NCHW, oneDNN on
// plain NCHW without reorders (each primitive created once per problem, with its reorders), conv_gemm.h, or
// conv_winograd.h.
#include <cstring>

#include "../core/binding.h"
#include "../core/conv_args.h"
#include "conv_algorithm.h"
#include "conv_gemm.h"
#include "conv_winograd.h"
#include "onednn.h"
#include "parallel.h"

using namespace ssql;
using namespace ssql::onednn;

namespace {

struct Geometry : ConvGeometry {
  memory::dims src() const { return {N, C, H, W}; }
  memory::dims dst() const { return {N, O, OH, OW}; }
  memory::dims wei() const { return G == 1 ? memory::dims{O, C, KH, KW} : memory::dims{G, O / G, C / G, KH, KW}; }
  tag weiTag() const { return G == 1 ? tag::oihw : tag::goihw; }
  memory::dims strides() const { return {SH, SW}; }
  memory::dims dilates() const { return {DH - 1, DW - 1}; }  // oneDNN counts the gaps, PyTorch the step
  memory::dims pads() const { return {PH, PW}; }
  int64_t flops() const { return 2 * N * O * OH * OW * (C / G) * KH * KW; }

  std::string key(const char* op, bool bias) const {
    return cacheKey(op, {N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, bias});
  }
  std::string key(const char* op, ConvAlgorithm l, bool bias) const {
    return key(op, bias) + ";" + convAlgorithmName(l);
  }
};

// Padding on the far side as oneDNN wants it: whatever makes the output size come out as PyTorch's floor formula.
memory::dims padsRight(const Geometry& q) {
  return {(q.OH - 1) * q.SH + q.DH * (q.KH - 1) + 1 - q.H - q.PH, (q.OW - 1) * q.SW + q.DW * (q.KW - 1) + 1 - q.W - q.PW};
}

struct Descs {
  memory::desc src, wei, dst;
};

Descs descsFor(const Geometry& q, ConvAlgorithm l) {
  if (l == ConvAlgorithm::Plain)
    return {plainDesc(q.src(), tag::nchw), plainDesc(q.wei(), q.weiTag()), plainDesc(q.dst(), tag::nchw)};
  return {anyDesc(q.src()), anyDesc(q.wei()), anyDesc(q.dst())};
}

memory::desc biasDesc(const Geometry& q, bool bias) { return bias ? plainDesc({q.O}, tag::a) : memory::desc(); }

dnnl::convolution_forward::primitive_desc forwardPd(const Geometry& q, ConvAlgorithm l, bool bias) {
  Descs d = descsFor(q, l);
#if DNNL_VERSION_MAJOR >= 3
  return dnnl::convolution_forward::primitive_desc(engine(), dnnl::prop_kind::forward_training,
                                                   dnnl::algorithm::convolution_direct, d.src, d.wei, biasDesc(q, bias),
                                                   d.dst, q.strides(), q.dilates(), q.pads(), padsRight(q));
#else
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.src,
                                       d.wei, biasDesc(q, bias), d.dst, q.strides(), q.dilates(), q.pads(), padsRight(q));
  return dnnl::convolution_forward::primitive_desc(desc, engine());
#endif
}

struct ForwardPlan {
  dnnl::convolution_forward prim;
  Operand src, wei, dst;
};

struct BackwardDataPlan {
  dnnl::convolution_backward_data prim;
  Operand diffDst, wei, diffSrc;
};

struct BackwardWeightsPlan {
  dnnl::convolution_backward_weights prim;
  Operand src, diffDst, diffWei;
};

PlanCache<ForwardPlan> forwardPlans;
PlanCache<BackwardDataPlan> backwardDataPlans;
PlanCache<BackwardWeightsPlan> backwardWeightsPlans;

ForwardPlan makeForward(const Geometry& q, ConvAlgorithm l, bool bias) {
  auto pd = forwardPd(q, l, bias);
  return {dnnl::convolution_forward(pd), Operand(plainDesc(q.src(), tag::nchw), pd.src_desc(), false),
          Operand(plainDesc(q.wei(), q.weiTag()), pd.weights_desc(), false),
          Operand(plainDesc(q.dst(), tag::nchw), pd.dst_desc(), true)};
}

BackwardDataPlan makeBackwardData(const Geometry& q, ConvAlgorithm l) {
  auto hint = forwardPd(q, l, false);
  Descs d = descsFor(q, l);
#if DNNL_VERSION_MAJOR >= 3
  dnnl::convolution_backward_data::primitive_desc pd(engine(), dnnl::algorithm::convolution_direct, d.src, d.wei, d.dst,
                                                     q.strides(), q.dilates(), q.pads(), padsRight(q), hint);
#else
  dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, d.src, d.wei, d.dst, q.strides(),
                                             q.dilates(), q.pads(), padsRight(q));
  dnnl::convolution_backward_data::primitive_desc pd(desc, engine(), hint);
#endif
  return {dnnl::convolution_backward_data(pd), Operand(plainDesc(q.dst(), tag::nchw), pd.diff_dst_desc(), false),
          Operand(plainDesc(q.wei(), q.weiTag()), pd.weights_desc(), false),
          Operand(plainDesc(q.src(), tag::nchw), pd.diff_src_desc(), true)};
}

BackwardWeightsPlan makeBackwardWeights(const Geometry& q, ConvAlgorithm l, bool bias) {
  auto hint = forwardPd(q, l, bias);
  Descs d = descsFor(q, l);
#if DNNL_VERSION_MAJOR >= 3
  dnnl::convolution_backward_weights::primitive_desc pd(engine(), dnnl::algorithm::convolution_direct, d.src, d.wei,
                                                        biasDesc(q, bias), d.dst, q.strides(), q.dilates(), q.pads(),
                                                        padsRight(q), hint);
#else
  dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, d.src, d.wei, biasDesc(q, bias),
                                                d.dst, q.strides(), q.dilates(), q.pads(), padsRight(q));
  dnnl::convolution_backward_weights::primitive_desc pd(desc, engine(), hint);
#endif
  return {dnnl::convolution_backward_weights(pd), Operand(plainDesc(q.src(), tag::nchw), pd.src_desc(), false),
          Operand(plainDesc(q.dst(), tag::nchw), pd.diff_dst_desc(), false),
          Operand(plainDesc(q.wei(), q.weiTag()), pd.diff_weights_desc(), true)};
}

void runForward(const Geometry& q, ConvAlgorithm l, const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  auto plan = forwardPlans.get(q.key("fwd", l, b != nullptr), [&] { return makeForward(q, l, b != nullptr); });
  Bound src = bindInput(plan->src, x.storage->data);
  Bound wei = bindInput(plan->wei, w.storage->data);
  Bound dst = bindOutput(plan->dst, y.storage->data);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src.innerMem}, {DNNL_ARG_WEIGHTS, wei.innerMem}, {DNNL_ARG_DST, dst.innerMem}};
  if (b) args[DNNL_ARG_BIAS] = memory(plainDesc({q.O}, tag::a), engine(), b->storage->data);
  plan->prim.execute(stream(), args);
  finishOutput(plan->dst, dst);
  stream().wait();
}

void runBackwardData(const Geometry& q, ConvAlgorithm l, const Tensor& gy, const Tensor& w, Tensor& gx) {
  auto plan = backwardDataPlans.get(q.key("bwd_data", l, false), [&] { return makeBackwardData(q, l); });
  Bound diffDst = bindInput(plan->diffDst, gy.storage->data);
  Bound wei = bindInput(plan->wei, w.storage->data);
  Bound diffSrc = bindOutput(plan->diffSrc, gx.storage->data);
  plan->prim.execute(stream(), {{DNNL_ARG_DIFF_DST, diffDst.innerMem}, {DNNL_ARG_WEIGHTS, wei.innerMem},
                                {DNNL_ARG_DIFF_SRC, diffSrc.innerMem}});
  finishOutput(plan->diffSrc, diffSrc);
  stream().wait();
}

void runBackwardWeights(const Geometry& q, ConvAlgorithm l, const Tensor& gy, const Tensor& x, Tensor& gw, Tensor* gb) {
  auto plan = backwardWeightsPlans.get(q.key("bwd_weights", l, gb != nullptr),
                                       [&] { return makeBackwardWeights(q, l, gb != nullptr); });
  Bound src = bindInput(plan->src, x.storage->data);
  Bound diffDst = bindInput(plan->diffDst, gy.storage->data);
  Bound diffWei = bindOutput(plan->diffWei, gw.storage->data);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src.innerMem}, {DNNL_ARG_DIFF_DST, diffDst.innerMem},
                                       {DNNL_ARG_DIFF_WEIGHTS, diffWei.innerMem}};
  if (gb) args[DNNL_ARG_DIFF_BIAS] = memory(plainDesc({q.O}, tag::a), engine(), gb->storage->data);
  plan->prim.execute(stream(), args);
  finishOutput(plan->diffWei, diffWei);
  stream().wait();
}

void zero(Tensor& t) {
  if (t.bytes()) std::memset(t.storage->data, 0, t.bytes());
}

std::vector<ConvAlgorithm> candidates(const Geometry& q) {
  std::vector<ConvAlgorithm> c{ConvAlgorithm::Blocked, ConvAlgorithm::Plain};
  if (q.G == 1) c.push_back(ConvAlgorithm::Gemm);
  if (winogradApplies(q)) c.push_back(ConvAlgorithm::Winograd);
  return c;
}

}  // namespace

SSQL_OP(conv2d) {
  parse::Conv2dArgs c = parse::conv2dArgs(a);
  const Geometry q{c.q};
  const TensorPtr &x = c.x, &w = c.w, &b = c.bias, &y = c.y;
  if (y->numel() == 0) return wrap(a.env(), y);
  convTuner().run(q.key("fwd", b != nullptr), candidates(q), [&](ConvAlgorithm alg) {
    if (alg == ConvAlgorithm::Winograd)
      winogradConvForward(q, x->f32(), w->f32(), b ? b->f32() : nullptr, y->f32());
    else if (alg == ConvAlgorithm::Gemm)
      gemmConvForward(q, x->f32(), w->f32(), b ? b->f32() : nullptr, y->f32());
    else
      runForward(q, alg, *x, *w, b.get(), *y);
  });
  return wrap(a.env(), y);
}

SSQL_OP(conv2dBackwardData) {
  parse::Conv2dBackwardDataArgs c = parse::conv2dBackwardDataArgs(a);
  const Geometry q{c.q};
  const TensorPtr &gy = c.gy, &w = c.w, &gx = c.gx;
  if (gx->numel() == 0) return wrap(a.env(), gx);
  if (gy->numel() == 0) {
    zero(*gx);
    return wrap(a.env(), gx);
  }
  convTuner().run(q.key("bwd_data", false), candidates(q), [&](ConvAlgorithm alg) {
    if (alg == ConvAlgorithm::Winograd)
      winogradConvBackwardData(q, gy->f32(), w->f32(), gx->f32());
    else if (alg == ConvAlgorithm::Gemm)
      gemmConvBackwardData(q, gy->f32(), w->f32(), gx->f32());
    else
      runBackwardData(q, alg, *gy, *w, *gx);
  });
  return wrap(a.env(), gx);
}

SSQL_OP(conv2dBackwardWeight) {
  parse::Conv2dBackwardWeightArgs c = parse::conv2dBackwardWeightArgs(a);
  const Geometry q{c.q};
  const TensorPtr &gy = c.gy, &x = c.x, &gw = c.gw, &gb = c.gb;
  if (gy->numel() == 0) {
    zero(*gw);
    if (gb) zero(*gb);
    return wrapMany(a.env(), {gw, gb});
  }
  const std::string key = q.key("bwd_weights", gb != nullptr);
  const std::vector<ConvAlgorithm> cands = candidates(q);
  const TensorPtr& acc = c.accumulate;
  // Into the gradient being accumulated, where the chosen algorithm's last GEMM or transform can add (not while
  // timing, when every candidate runs).
  const std::optional<ConvAlgorithm> known = acc ? convTuner().known(key, cands) : std::nullopt;
  if (known == ConvAlgorithm::Winograd || known == ConvAlgorithm::Gemm) {
    if (*known == ConvAlgorithm::Winograd)
      winogradConvBackwardWeights(q, gy->f32(), x->f32(), acc->f32(), gb ? gb->f32() : nullptr, true);
    else
      gemmConvBackwardWeights(q, gy->f32(), x->f32(), acc->f32(), gb ? gb->f32() : nullptr, true);
    return wrapMany(a.env(), {nullptr, gb});
  }
  convTuner().run(key, cands, [&](ConvAlgorithm alg) {
    if (alg == ConvAlgorithm::Winograd)
      winogradConvBackwardWeights(q, gy->f32(), x->f32(), gw->f32(), gb ? gb->f32() : nullptr);
    else if (alg == ConvAlgorithm::Gemm)
      gemmConvBackwardWeights(q, gy->f32(), x->f32(), gw->f32(), gb ? gb->f32() : nullptr);
    else
      runBackwardWeights(q, alg, *gy, *x, *gw, gb.get());
  });
  if (!acc) return wrapMany(a.env(), {gw, gb});
  float* pa = acc->f32();
  const float* pw = gw->f32();
  parallelFor(gw->numel(), [&](int64_t i) { pa[i] += pw[i]; });
  return wrapMany(a.env(), {nullptr, gb});
}
