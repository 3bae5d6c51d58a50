// Data-moving shape ops: permute, concat along a dimension, and narrow (a slice along a dimension).
#include <cstring>
#include <string>

#include "../core/binding.h"
#include "../core/shape_op_args.h"
#include "parallel.h"

using namespace ssql;

SSQL_OP(permute) {
  parse::PermuteArgs p = parse::permuteArgs(a, [](const Tensor&) {});
  const TensorPtr &x = p.x, &out = p.out;
  const std::vector<int64_t>& perm = p.perm;
  const std::vector<int64_t>& inStrides = p.inStrides;
  const Shape& os = out->shape;
  const int64_t nd = x->dim();
  size_t es = dtypeSize(x->dtype);
  const uint8_t* px = x->data<uint8_t>();
  uint8_t* po = out->data<uint8_t>();
  int64_t n = out->numel();
  parallelFor(n, [&](int64_t o) {
    int64_t rem = o, off = 0;
    for (int64_t d = nd - 1; d >= 0; --d) {
      int64_t idx = rem % os[d];
      rem /= os[d];
      off += idx * inStrides[perm[d]];
    }
    std::memcpy(po + o * es, px + off * es, es);
  });
  return wrap(a.env(), out);
}

SSQL_OP(concat) {
  parse::ConcatArgs c = parse::concatArgs(a);
  const std::vector<TensorPtr>& xs = c.xs;
  const TensorPtr& out = c.out;
  const Shape& os = out->shape;
  const int64_t k = c.dim, outer = c.outer, inner = c.inner;
  size_t es = dtypeSize(out->dtype);
  uint8_t* po = out->data<uint8_t>();
  int64_t offset = 0;
  for (auto& t : xs) {
    int64_t chunk = t->shape[k] * inner;
    const uint8_t* pt = t->data<uint8_t>();
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(po + (o * os[k] * inner + offset) * es, pt + o * chunk * es, static_cast<size_t>(chunk) * es);
    offset += chunk;
  }
  return wrap(a.env(), out);
}

SSQL_OP(narrow) {
  parse::NarrowArgs n = parse::narrowArgs(a);
  const TensorPtr &x = n.x, &out = n.out;
  const int64_t k = n.dim, start = n.start, length = n.length, outer = n.outer, inner = n.inner;
  size_t es = dtypeSize(x->dtype);
  const uint8_t* px = x->data<uint8_t>();
  uint8_t* po = out->data<uint8_t>();
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(po + o * length * inner * es, px + (o * x->shape[k] + start) * inner * es, static_cast<size_t>(length * inner) * es);
  return wrap(a.env(), out);
}
