// Data-moving shape ops on CUDA: permute (a gather kernel), concat and narrow (strided 2-D copies).
#include <string>

#include "../core/binding.h"
#include "../core/shape_op_args.h"
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
  parse::PermuteArgs q = parse::permuteArgs(a, [](const Tensor& x) {
    if (x.dim() > cuda::kMaxDims) throw RangeError("permute(): at most 8 dimensions on CUDA, got " + shapeStr(x.shape));
  });
  const TensorPtr &x = q.x, &out = q.out;
  cuda::PermuteIndex p;
  p.nd = static_cast<int>(x->dim());
  for (int64_t i = 0; i < x->dim(); ++i) {
    p.shape[i] = out->shape[i];
    p.inStride[i] = q.inStrides[q.perm[i]];
  }
  cuda::permute(x->storage->data, out->storage->data, dtypeSize(x->dtype), out->numel(), p, cuda::stream());
  return wrap(a.env(), out);
}

SSQL_OP(concat) {
  parse::ConcatArgs c = parse::concatArgs(a);
  const int64_t rowElems = c.out->shape[c.dim] * c.inner;
  size_t es = dtypeSize(c.out->dtype);
  auto* po = static_cast<uint8_t*>(c.out->storage->data);
  int64_t offset = 0;
  for (auto& t : c.xs) {
    int64_t chunk = t->shape[c.dim] * c.inner;
    copyRows(po + offset * es, static_cast<size_t>(rowElems) * es, t->storage->data, static_cast<size_t>(chunk) * es,
             static_cast<size_t>(chunk) * es, c.outer);
    offset += chunk;
  }
  return wrap(a.env(), c.out);
}

SSQL_OP(narrow) {
  parse::NarrowArgs n = parse::narrowArgs(a);
  size_t es = dtypeSize(n.x->dtype);
  const auto* px = static_cast<const uint8_t*>(n.x->storage->data);
  copyRows(n.out->storage->data, static_cast<size_t>(n.length * n.inner) * es, px + n.start * n.inner * es,
           static_cast<size_t>(n.x->shape[n.dim] * n.inner) * es, static_cast<size_t>(n.length * n.inner) * es, n.outer);
  return wrap(a.env(), n.out);
}
