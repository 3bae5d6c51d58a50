import { Tensor, type GradNode } from "./tensor";

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording the tape (as torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Attaches a backward function to `out` when grad mode is on and any input needs a gradient.
 * `backward` receives dL/d(out) and returns dL/d(input) for each input, in order (null where none).
 */
export function record(
  name: string,
  out: Tensor,
  inputs: readonly (Tensor | null)[],
  backward: (grad: Tensor) => (Tensor | null)[],
): Tensor {
  if (gradEnabled && inputs.some((t) => t?.requiresGrad)) {
    out.requiresGrad = true;
    out.gradFn = { name, inputs, backward };
  }
  return out;
}

/** A view of `t` cut from the tape (shares storage, as torch's detach()). */
export function detach(t: Tensor): Tensor {
  return t.wrap(t.ops.reshape(t.handle, t.shape));
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next && next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order.reverse();
}

/**
 * Back-propagates from `root` (a scalar unless `grad` is given). Leaf tensors that require a gradient
 * accumulate into `.grad`, which they own (it outlives step scopes until zeroGrad).
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) throw new Error("backward(): the tensor does not require grad (no input needed a gradient)");
  if (!grad && root.numel !== 1) throw new RangeError(`backward(): grad can be implied only for a single value, got shape [${root.shape.join(", ")}]`);
  if (grad) checkShape("backward", root, grad);
  const seed = root.wrap(grad ? grad.ops.clone(grad.handle) : root.ops.full(root.shape, 1));
  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  for (const t of topoOrder(root)) {
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    const node: GradNode | null = t.gradFn;
    if (!node) {
      accumulateLeaf(t, g);
      continue;
    }
    const inputGrads = node.backward(g);
    // Backward functions may pass `g` through or return one tensor for several inputs: store each once.
    const stored = new Set<Tensor>();
    node.inputs.forEach((input, i) => {
      let ig = inputGrads[i];
      if (!input || !ig || !input.requiresGrad) return;
      checkShape(node.name, input, ig);
      const prev = grads.get(input);
      if (prev) {
        prev.ops.addScaled_(prev.handle, ig.handle, 1);
        return;
      }
      if (stored.has(ig)) ig = ig.wrap(ig.ops.clone(ig.handle));
      stored.add(ig);
      grads.set(input, ig);
    });
    for (const x of new Set([g, ...inputGrads])) if (x && !stored.has(x)) x.dispose();
  }
}

function checkShape(name: string, input: Tensor, g: Tensor): void {
  const a = input.shape, b = g.shape;
  if (a.length !== b.length || a.some((d, i) => d !== b[i]))
    throw new Error(`autograd: backward of ${name} returned a gradient of shape [${b.join(", ")}] for an input of shape [${a.join(", ")}]`);
}

type LeafGradHook = (leaf: Tensor) => void;
let leafGradHook: LeafGradHook | null = null;

/**
 * Called each time a leaf's `.grad` receives its contribution from a backward pass, in the order gradients
 * become ready (data-parallel training starts all-reducing gradient buckets from here). Returns the previous hook.
 */
export function setLeafGradHook(hook: LeafGradHook | null): LeafGradHook | null {
  const prev = leafGradHook;
  leafGradHook = hook;
  return prev;
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
  if (t.grad && !t.grad.disposed) {
    t.grad.ops.addScaled_(t.grad.handle, g.handle, 1);
    g.dispose();
  } else {
    t.grad = g.keep();
  }
  leafGradHook?.(t);
}
