import type { Module } from "../nn/module";

/** θ_k ← m·θ_k + (1 − m)·θ_q over the zipped parameter lists (buffers are not averaged, as in the original). */
export function momentumUpdate(target: Module, online: Module, m: number): void {
  const tp = target.parameters();
  const op = online.parameters();
  if (tp.length !== op.length) throw new Error(`momentum update: ${tp.length} target and ${op.length} online parameters`);
  tp.forEach((t, i) => {
    t.ops.mulScalar_(t.handle, m);
    t.ops.addScaled_(t.handle, op[i].handle, 1 - m);
  });
}

/** Copies every parameter and buffer of `src` into `dst` (the original's deepcopy at construction). */
export function copyWeights(dst: Module, src: Module): void {
  dst.loadStateDict(src.stateDict());
}

export function freeze(m: Module): void {
  for (const p of m.parameters()) p.requiresGrad = false;
}
