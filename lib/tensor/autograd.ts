import { isReleaseDeferred, tidy } from "./scope";
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
 * `saved` lists every tensor `backward` reads (falsy entries are skipped): a released one lives until this backward
 * has run; a tensor it reads but does not list may be freed before, and backward then fails with "disposed".
 */
export function record(
  name: string,
  out: Tensor,
  inputs: readonly (Tensor | null)[],
  saved: readonly (Tensor | null | false | undefined)[],
  backward: (grad: Tensor, into?: (i: number) => Tensor | null) => (Tensor | null)[],
): Tensor {
  if (gradEnabled && inputs.some((t) => t?.requiresGrad)) {
    const kept = saved.filter((t): t is Tensor => !!t);
    for (const t of kept) t.retainForBackward();
    out.requiresGrad = true;
    out.gradFn = { name, inputs, saved: kept, backward };
  }
  return out;
}

/** A view of `t` cut from the tape (shares storage, as torch's detach()). */
export function detach(t: Tensor): Tensor {
  return t.view(t.shape);
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

export interface BackwardOptions {
  /** Keep the saved tensors of every node, so that the graph can be back-propagated again (torch's retain_graph). */
  retainGraph?: boolean;
}

/** Nodes whose saved tensors were given back after their backward ran. */
const spent = new WeakSet<GradNode>();

function freeSaved(node: GradNode): void {
  if (spent.has(node)) return;
  spent.add(node);
  for (const t of node.saved) t.releaseFromBackward();
}

function checkSaved(node: GradNode): void {
  if (!node.saved.some((t) => t.disposed)) return;
  throw new Error(
    spent.has(node)
      ? `backward(): the graph through ${node.name} was already back-propagated and its saved tensors freed; pass { retainGraph: true } to the first backward to run it again`
      : `backward(): a tensor that the backward of ${node.name} reads was disposed before it ran`,
  );
}

/**
 * Back-propagates from `root` (a scalar unless `grad` is given). Leaf tensors that require a gradient
 * accumulate into `.grad`, which they own (it outlives step scopes until zeroGrad). Each node's backward runs in
 * its own scope (only the gradients it returns survive), and, unless `retainGraph`, its saved tensors that were
 * released are freed as soon as it has run, as PyTorch frees a graph's buffers during backward.
 */
export function backward(root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error("backward(): the tensor does not require grad (no input needed a gradient)");
  if (!grad && root.numel !== 1) throw new RangeError(`backward(): grad can be implied only for a single value, got shape [${root.shape.join(", ")}]`);
  if (grad) checkShape("backward", root, grad);
  const seed = root.wrap(grad ? grad.ops.clone(grad.handle) : root.ops.full(root.shape, 1));
  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  // How many entries of `grads` hold each gradient: a backward may pass `g` through, or return one tensor for several
  // inputs (add). A gradient held once is accumulated into in place; a shared one is never written, only read.
  const holders = new Map<Tensor, number>([[seed, 1]]);
  const hold = (x: Tensor) => holders.set(x, (holders.get(x) ?? 0) + 1);
  const unhold = (x: Tensor) => {
    const n = holders.get(x)! - 1;
    if (n > 0) holders.set(x, n);
    else holders.delete(x);
  };
  const deferred = isReleaseDeferred();
  const retain = opts.retainGraph || deferred;
  for (const t of topoOrder(root)) {
    const g = grads.get(t);
    const node: GradNode | null = t.gradFn;
    if (!g) {
      // No gradient reaches this node, now or later (every consumer came before it): its buffers can go.
      if (node && !retain) freeSaved(node);
      continue;
    }
    grads.delete(t);
    unhold(g);
    if (!node) {
      accumulateLeaf(t, holders.has(g) ? g.wrap(g.ops.clone(g.handle)) : g);
      continue;
    }
    checkSaved(node);
    const into = (i: number): Tensor | null => {
      const input = node.inputs[i];
      const prev = input?.requiresGrad ? grads.get(input) : undefined;
      // Never g itself (a gradient an add handed to this node and to its input), which the backward reads.
      return prev && prev !== g && holders.get(prev) === 1 && node.inputs.indexOf(input) === i ? prev : null;
    };
    const inputGrads = deferred ? node.backward(g, into) : tidy(() => node.backward(g, into));
    if (!retain) freeSaved(node);
    node.inputs.forEach((input, i) => {
      const ig = inputGrads[i];
      if (!input || !ig || !input.requiresGrad) return;
      checkShape(node.name, input, ig);
      const prev = grads.get(input);
      if (ig === prev) return; // added in place by the backward (into)
      if (!prev) {
        grads.set(input, ig);
        hold(ig);
      } else if (holders.get(prev)! === 1) {
        prev.ops.addScaled_(prev.handle, ig.handle, 1);
      } else {
        const sum = prev.wrap(prev.ops.add(prev.handle, ig.handle));
        unhold(prev);
        grads.set(input, sum);
        hold(sum);
      }
    });
    for (const x of new Set([g, ...inputGrads])) if (x && !holders.has(x)) x.dispose();
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
