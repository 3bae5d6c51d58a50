// uniform() and normal() on CUDA: Philox-4x32-10 draws identical to the CPU backend's (recipe in core/philox.h).
#include "../core/binding.h"
#include "../core/random_args.h"
#include "kernels.h"
#include "runtime.h"

using namespace ssql;

SSQL_OP(uniform) {
  parse::UniformArgs u = parse::uniformArgs(a);
  cuda::philoxUniform(u.out->f32(), u.out->numel(), u.low, u.high, u.draw.seed, u.draw.offset, cuda::stream());
  return wrap(a.env(), u.out);
}

SSQL_OP(normal) {
  parse::NormalArgs n = parse::normalArgs(a);
  cuda::philoxNormal(n.out->f32(), n.out->numel(), n.mean, n.std, n.draw.seed, n.draw.offset, cuda::stream());
  return wrap(a.env(), n.out);
}
