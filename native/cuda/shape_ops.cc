// Data-moving shape ops on CUDA: permute (a gather kernel), concat and narrow (strided 2-D copies).
#include <string>

#include "../core/binding.h"
#include "../core/nn_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

namespace {

// Copies `rows` rows of `width` bytes between pitched buffers on the stream.
void copyRows(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, int64_t rows) {
  if (!width || rows <= 0) return;
  cudaStream_t s = cuda::stream();
  if (rows == 1) {
    SSQL_CUDA(cudaMemcpyAsync(dst, src, width, cudaMemcpyDeviceToDevice, s));
    return;
  }
  SSQL_CUDA(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, static_cast<size_t>(rows), cudaMemcpyDeviceToDevice, s));
}

}  // namespace

SSQL_OP(permute) {
  auto x = a.tensor(0, "x");
  auto perm = a.ints(1, "dims");
  int64_t nd = x->dim();
  if (static_cast<int64_t>(perm.size()) != nd) throw RangeError("permute(): dims must list every dimension of " + shapeStr(x->shape));
  if (nd > cuda::kMaxDims) throw RangeError("permute(): at most 8 dimensions on CUDA, got " + shapeStr(x->shape));
  std::vector<bool> seen(nd, false);
  Shape os(nd);
  std::vector<int64_t> inStrides(nd, 1);
  for (int64_t i = nd - 2; i >= 0; --i) inStrides[i] = inStrides[i + 1] * x->shape[i + 1];
  cuda::PermuteIndex p;
  p.nd = static_cast<int>(nd);
  for (int64_t i = 0; i < nd; ++i) {
    int64_t k = normalizeDim("permute", perm[i], nd);
    if (seen[k]) throw RangeError("permute(): repeated dimension");
    seen[k] = true;
    os[i] = x->shape[k];
    p.shape[i] = os[i];
    p.inStride[i] = inStrides[k];
  }
  auto out = empty(x->dtype, os);
  cuda::permute(x->storage->data, out->storage->data, dtypeSize(x->dtype), out->numel(), p, cuda::stream());
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
        throw RangeError("concat(): shapes " + shapeStr(xs[0]->shape) + " and " + shapeStr(t->shape) +
                         " differ outside dim " + std::to_string(k));
    os[k] += t->shape[k];
  }
  auto out = empty(xs[0]->dtype, os);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < k; ++i) outer *= os[i];
  for (int64_t i = k + 1; i < nd; ++i) inner *= os[i];
  size_t es = dtypeSize(out->dtype);
  auto* po = static_cast<uint8_t*>(out->storage->data);
  int64_t offset = 0;
  for (auto& t : xs) {
    int64_t chunk = t->shape[k] * inner;
    copyRows(po + offset * es, static_cast<size_t>(os[k] * inner) * es, t->storage->data, static_cast<size_t>(chunk) * es,
             static_cast<size_t>(chunk) * es, outer);
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
    throw RangeError("narrow(): range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                     ") outside dimension of size " + std::to_string(x->shape[k]));
  Shape os = x->shape;
  os[k] = length;
  auto out = empty(x->dtype, os);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < k; ++i) outer *= os[i];
  for (int64_t i = k + 1; i < nd; ++i) inner *= os[i];
  size_t es = dtypeSize(x->dtype);
  const auto* px = static_cast<const uint8_t*>(x->storage->data);
  copyRows(out->storage->data, static_cast<size_t>(length * inner) * es, px + start * inner * es,
           static_cast<size_t>(x->shape[k] * inner) * es, static_cast<size_t>(length * inner) * es, outer);
  return wrap(a.env(), out);
}
