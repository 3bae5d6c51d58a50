import { describe, expect, it } from "vitest";
import { LARS } from "../../lib/optim/lars";
import { tensor, type Tensor } from "../../lib/tensor/tensor";
import { normErr, randomArray } from "../helpers/numeric";

/**
 * apex LARC(trust_coefficient, clip=False) around torch.optim.SGD, written out in float64 from apex/parallel/LARC.py:
 * for each p with ‖p‖ ≠ 0 and ‖g‖ ≠ 0: g = (g + wd·p) · trust·‖p‖/(‖g‖ + wd·‖p‖ + eps); then SGD with weight decay 0
 * (buf = momentum·buf + g, the first step buf = g; p -= lr·buf).
 */
function larcReference(p0: number[][], grads: number[][][], lr: number, momentum: number, wd: number, trust = 0.001, eps = 1e-8): number[][] {
  const p = p0.map((x) => [...x]);
  const bufs: (number[] | null)[] = p.map(() => null);
  const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  for (const step of grads) {
    step.forEach((g0, i) => {
      let g = [...g0];
      const pn = norm(p[i]);
      const gn = norm(g);
      if (pn !== 0 && gn !== 0) {
        const ratio = (trust * pn) / (gn + pn * wd + eps);
        g = g.map((x, j) => (x + wd * p[i][j]) * ratio);
      }
      if (momentum > 0) {
        const b = bufs[i];
        bufs[i] = b ? b.map((x, j) => momentum * x + g[j]) : g;
        g = bufs[i]!;
      }
      p[i] = p[i].map((x, j) => x - lr * g[j]);
    });
  }
  return p;
}

function param(values: number[], shape: number[]): Tensor {
  const t = tensor(Float32Array.from(values), shape).keep();
  t.requiresGrad = true;
  return t;
}

describe("LARS (apex LARC, clip=False, trust 0.001) against its formula in float64", () => {
  const shapes = [[4, 3], [4], [5]];
  const init = [Array.from(randomArray(12, 3)), Array.from(randomArray(4, 5)), [0, 0, 0, 0, 0]]; // the last: zero norm
  const grads = [0, 1, 2].map((k) => shapes.map((s, i) => Array.from(randomArray(s.reduce((a, b) => a * b, 1), 100 + 10 * k + i)).map((x) => x * (i + 1))));
  // A zero gradient on the second parameter in step 1: no scaling and no weight decay for it there.
  grads[1][1] = [0, 0, 0, 0];

  for (const [lr, momentum, wd] of [[0.8, 0.9, 0], [2.4, 0.9, 1e-4], [0.1, 0, 0.5]] as const) {
    it(`lr ${lr}, momentum ${momentum}, weight decay ${wd}`, () => {
      const ps = shapes.map((s, i) => param(init[i], s));
      const opt = new LARS(ps, { lr, momentum, weightDecay: wd });
      for (const step of grads) {
        ps.forEach((p, i) => (p.grad = tensor(Float32Array.from(step[i]), shapes[i]).keep()));
        opt.step();
        opt.zeroGrad();
      }
      const ref = larcReference(init, grads, lr, momentum, wd);
      ps.forEach((p, i) => expect(normErr(Array.from(p.toArraySync() as Float32Array), ref[i]), `param ${i}`).toBeLessThan(1e-6));
      // The group's weight decay is restored after each step (apex hands it back to the optimizer).
      expect(opt.paramGroups[0].weightDecay).toBe(wd);
      // The zero parameter moved by the raw gradient only (trust ratio not applied).
      expect(Array.from(ps[2].toArraySync() as Float32Array).some((v) => v !== 0)).toBe(true);
      opt.dispose();
    });
  }
});
