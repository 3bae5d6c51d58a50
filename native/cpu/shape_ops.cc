// Data-moving shape ops: permute, concat along a dimension, and narrow (a slice along a dimension).
#include <cstring>
#include <string>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "parallel.h"

using namespace ssql;

SSQL_OP(permute) {
  auto x = a.tensor(0, "x");
  auto perm = a.ints(1, "dims");
  int64_t nd = x->dim();
  if (static_cast<int64_t>(perm.size()) != nd) throw RangeError("permute(): dims must list every dimension of " + shapeStr(x->shape));
  std::vector<bool> seen(nd, false);
  Shape os(nd);
  for (int64_t i = 0; i < nd; ++i) {
    int64_t k = normalizeDim("permute", perm[i], nd);
    if (seen[k]) throw RangeError("permute(): repeated dimension");
    seen[k] = true;
    perm[i] = k;
    os[i] = x->shape[k];
  }
  auto out = empty(x->dtype, os);
  auto inStrides = std::vector<int64_t>(nd, 1);
  for (int64_t i = nd - 2; i >= 0; --i) inStrides[i] = inStrides[i + 1] * x->shape[i + 1];
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
  auto xs = a.tensors(0, "tensors");
  if (xs.empty()) throw RangeError("concat(): needs at least one tensor");
  int64_t nd = xs[0]->dim();
  int64_t k = normalizeDim("concat", a.integer(1, "dim"), nd);
  Shape os = xs[0]->shape;
  os[k] = 0;
  for (auto& t : xs) {
    if (t->dim() != nd || t->dtype != xs[0]->dtype) throw RangeError("concat(): tensors differ in rank or dtype");
    for (int64_t i = 0; i < nd; ++i)
      if (i != k && t->shape[i] != xs[0]->shape[i])
        throw RangeError("concat(): shapes " + shapeStr(xs[0]->shape) + " and " + shapeStr(t->shape) + " differ outside dim " + std::to_string(k));
    os[k] += t->shape[k];
  }
  auto out = empty(xs[0]->dtype, os);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < k; ++i) outer *= os[i];
  for (int64_t i = k + 1; i < nd; ++i) inner *= os[i];
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
  auto x = a.tensor(0, "x");
  int64_t nd = x->dim();
  int64_t k = normalizeDim("narrow", a.integer(1, "dim"), nd);
  int64_t start = a.integer(2, "start"), length = a.integer(3, "length");
  if (start < 0 || length < 0 || start + length > x->shape[k])
    throw RangeError("narrow(): range [" + std::to_string(start) + ", " + std::to_string(start + length) + ") outside dimension of size " + std::to_string(x->shape[k]));
  Shape os = x->shape;
  os[k] = length;
  auto out = empty(x->dtype, os);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < k; ++i) outer *= os[i];
  for (int64_t i = k + 1; i < nd; ++i) inner *= os[i];
  size_t es = dtypeSize(x->dtype);
  const uint8_t* px = x->data<uint8_t>();
  uint8_t* po = out->data<uint8_t>();
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(po + o * length * inner * es, px + (o * x->shape[k] + start) * inner * es, static_cast<size_t>(length * inner) * es);
  return wrap(a.env(), out);
}
