// Fused in-place SGD step with torch.optim.SGD's semantics (weight decay, momentum, dampening, Nesterov).
#include "../core/binding.h"
#include "../core/sgd_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

SSQL_OP(sgdStep_) {
  parse::SgdArgs o = parse::sgdArgs(a);
  cuda::sgdStep(o.p->f32(), o.g->f32(), o.buf ? o.buf->f32() : nullptr, o.p->numel(), o.lr, o.momentum, o.weightDecay,
                o.dampening, o.nesterov, o.initBuf, cuda::stream());
  return a.env().Undefined();
}
