import { record } from "../autograd";
import { freeTemporaries } from "../scope";
import { Tensor } from "../tensor";
import { reshape } from "./shape";

/**
 * op(a) @ b for a backward: a new tensor, or `acc` (a gradient so far, see GradNode.backward's into) with the
 * product added in place where the backend does so in its GEMM.
 */
function product(a: Tensor, b: Tensor, transA: boolean, acc: Tensor | null = null, transB = false): Tensor {
  const h = a.ops.matmul(a.handle, b.handle, transA, transB, acc?.handle ?? null);
  return h ? a.wrap(h) : acc!;
}

/** 2-D matrix product a @ b. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const out = a.wrap(a.ops.matmul(a.handle, b.handle, false, false));
  return record("matmul", out, [a, b], [a.requiresGrad && b, b.requiresGrad && a], (g, into) => [
    a.requiresGrad ? product(g, b, false, into?.(0), true) : null,
    b.requiresGrad ? product(a, g, true, into?.(1)) : null,
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
  return record("linear", out, [x, weight, bias], [x.requiresGrad && weight, weight.requiresGrad && x], (g, into) => [
    x.requiresGrad ? product(g, weight, false) : null,
    weight.requiresGrad ? product(g, x, true, into?.(1)) : null,
    bias?.requiresGrad ? g.wrap(g.ops.sum(g.handle, [0], false)) : null,
  ]);
}
