import type { Module } from "../../lib/nn/module";
import type { Tensor } from "../../lib/tensor/tensor";

const DTYPE_BYTES = { float32: 4, int32: 4, uint8: 1 } as const;

function bytesOf(t: Tensor): number {
  return t.numel * DTYPE_BYTES[t.dtype];
}

/**
 * Bytes of the distinct storages that the backward of `root`'s graph reads (every node's saved tensors, views counted
 * once with the tensor they view), leaving out `exclude` (parameters and buffers, counted apart).
 */
export function savedBytes(root: Tensor, exclude: ReadonlySet<Tensor> = new Set()): number {
  const storages = new Map<Tensor, number>();
  const seen = new Set<Tensor>([root]);
  const stack = [root];
  while (stack.length) {
    const node = stack.pop()!.gradFn;
    if (!node) continue;
    for (const s of node.saved) {
      const owner = s.base ?? s;
      if (!exclude.has(owner) && !exclude.has(s)) storages.set(owner, bytesOf(s));
    }
    for (const t of node.inputs) if (t && t.requiresGrad && !seen.has(t)) (seen.add(t), stack.push(t));
  }
  return [...storages.values()].reduce((a, b) => a + b, 0);
}

/**
 * The least memory a training step with SGD momentum can peak at, as PyTorch reaches it: parameters and buffers,
 * one gradient and one momentum buffer per trainable parameter, and the tensors the graph saves for backward
 * (measured at the forward/backward boundary with savedBytes). Returns the parts and their sum.
 */
export interface StepLowerBound {
  state: number;
  grads: number;
  momentum: number;
  saved: number;
  total: number;
}

export function stepLowerBound(model: Module, loss: Tensor): StepLowerBound {
  const tensors = new Set(model.stateDict().values());
  const state = [...tensors].reduce((s, t) => s + bytesOf(t), 0);
  const grads = model.parameters().filter((p) => p.requiresGrad).reduce((s, p) => s + bytesOf(p), 0);
  const saved = savedBytes(loss, tensors);
  return { state, grads, momentum: grads, saved, total: state + 2 * grads + saved };
}
