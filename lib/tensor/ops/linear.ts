import { record } from "../autograd";
import { freeTemporaries } from "../scope";
import { Tensor } from "../tensor";
import { reshape } from "./shape";

/** 2-D matrix product a @ b. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const out = a.wrap(a.ops.matmul(a.handle, b.handle, false, false));
  return record("matmul", out, [a, b], [a.requiresGrad && b, b.requiresGrad && a], (g) => [
    a.requiresGrad ? g.wrap(g.ops.matmul(g.handle, b.handle, false, true)) : null,
    b.requiresGrad ? g.wrap(g.ops.matmul(a.handle, g.handle, true, false)) : null,
  ]);
}

/** F.linear: x [..., in] @ weight[out, in]^T + bias. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  if (x.ndim !== 2) {
    return freeTemporaries(() => {
      const y = linear(reshape(x, [-1, x.shape[x.ndim - 1]]), weight, bias);
      return reshape(y, [...x.shape.slice(0, -1), weight.shape[0]]);
    });
  }
  const out = x.wrap(x.ops.linear(x.handle, weight.handle, bias ? bias.handle : null));
  return record("linear", out, [x, weight, bias], [x.requiresGrad && weight, weight.requiresGrad && x], (g) => [
    x.requiresGrad ? g.wrap(g.ops.matmul(g.handle, weight.handle, false, false)) : null,
    weight.requiresGrad ? g.wrap(g.ops.matmul(g.handle, x.handle, true, false)) : null,
    bias?.requiresGrad ? g.wrap(g.ops.sum(g.handle, [0], false)) : null,
  ]);
}
