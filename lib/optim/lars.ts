import { noGrad } from "../tensor/autograd";
import type { Tensor } from "../tensor/tensor";
import { SGD, type ParamGroupInput, type SGDOptions } from "./sgd";

export interface LARSOptions extends SGDOptions {
  /** apex LARC's trust_coefficient (the original passes 0.001). */
  trustCoefficient?: number;
  /** apex LARC's eps. */
  eps?: number;
}

/** The smallest normal float32: a norm below it counts as zero (apex tests `norm != 0`). */
const FLT_MIN = 1.1754943508222875e-38;

/**
 * LARS as the original's linear worker uses it: torch SGD wrapped in apex LARC(trust_coefficient=0.001,
 * clip=False). Before each SGD step, every parameter with ‖p‖ ≠ 0 and ‖g‖ ≠ 0 gets
 * g ← (g + wd·p) · trust·‖p‖ / (‖g‖ + wd·‖p‖ + eps), and the SGD step itself runs without weight decay; a
 * parameter with a zero norm or zero gradient keeps its raw gradient and gets no weight decay (apex's rule).
 * The trust ratio is computed on the device: nothing is read back.
 */
export class LARS extends SGD {
  readonly trustCoefficient: number;
  readonly eps: number;

  constructor(params: Tensor[] | ParamGroupInput[], defaults: LARSOptions) {
    super(params, defaults);
    this.trustCoefficient = defaults.trustCoefficient ?? 0.001;
    this.eps = defaults.eps ?? 1e-8;
    if (!(this.trustCoefficient > 0)) throw new RangeError(`LARS: invalid trust coefficient ${this.trustCoefficient}`);
  }

  override step(): void {
    const decays = this.paramGroups.map((g) => g.weightDecay);
    try {
      noGrad(() => {
        for (const group of this.paramGroups) {
          for (const p of group.params) if (p.grad) this.scaleGradient(p, group.weightDecay);
          group.weightDecay = 0;
        }
      });
      super.step();
    } finally {
      this.paramGroups.forEach((g, i) => (g.weightDecay = decays[i]));
    }
  }

  /** Replaces p.grad by apex LARC's adapted gradient (see the class comment). */
  private scaleGradient(p: Tensor, wd: number): void {
    const g = p.grad!;
    const ops = p.ops;
    const temps: Tensor[] = [];
    const t = (h: ReturnType<typeof ops.clone>) => {
      const x = p.wrap(h);
      temps.push(x);
      return x;
    };
    const norm = (x: Tensor) => {
      const sq = t(ops.powScalar(x.handle, 2));
      const s = t(ops.sum(sq.handle, x.shape.map((_, i) => i), false));
      return t(ops.sqrt(t(ops.reshape(s.handle, [1])).handle));
    };
    try {
      const pn = norm(p);
      const gn = norm(g);
      // trust·‖p‖ / (‖g‖ + wd·‖p‖ + eps)
      const denom = t(ops.addScalar(t(ops.add(gn.handle, t(ops.mulScalar(pn.handle, wd)).handle)).handle, this.eps));
      const ratio = t(ops.div(t(ops.mulScalar(pn.handle, this.trustCoefficient)).handle, denom.handle));
      // m = 1 when both norms are non-zero, else 0.
      const one = t(ops.full([1], 1, "float32"));
      const m = t(ops.mul(t(ops.clampMinBackward(one.handle, pn.handle, FLT_MIN)).handle, t(ops.clampMinBackward(one.handle, gn.handle, FLT_MIN)).handle));
      // g' = (m·ratio + 1 − m)·g + m·ratio·wd·p
      const mr = t(ops.mul(m.handle, ratio.handle));
      const gScale = t(ops.add(mr.handle, t(ops.addScalar(t(ops.neg(m.handle)).handle, 1)).handle));
      let out = t(ops.mul(g.handle, gScale.handle));
      if (wd !== 0) out = t(ops.add(out.handle, t(ops.mul(p.handle, t(ops.mulScalar(mr.handle, wd)).handle)).handle));
      temps.splice(temps.indexOf(out), 1);
      g.dispose();
      p.grad = out.keep();
    } finally {
      for (const x of temps) x.dispose();
    }
  }
}
