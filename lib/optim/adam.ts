import { Tensor, full, zeros } from "../tensor/tensor";

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
}

/**
 * torch.optim.Adam without weight decay or amsgrad (what AdaRound's rounding variables train with): per parameter
 * m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g², p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 */
export class Adam {
  readonly lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  private steps = 0;
  private readonly state = new Map<Tensor, { m: Tensor; v: Tensor }>();

  constructor(readonly params: readonly Tensor[], o: AdamOptions = {}) {
    this.lr = o.lr ?? 1e-3;
    this.betas = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    if (!(this.lr > 0)) throw new RangeError(`Adam: lr must be > 0, got ${this.lr}`);
    for (const b of this.betas) if (!(b >= 0 && b < 1)) throw new RangeError(`Adam: betas must lie in [0, 1), got ${this.betas.join(", ")}`);
  }

  get stepCount(): number {
    return this.steps;
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  step(): void {
    this.steps++;
    const [b1, b2] = this.betas;
    const bc1 = 1 - b1 ** this.steps;
    const bc2Sqrt = Math.sqrt(1 - b2 ** this.steps);
    for (const p of this.params) {
      const g = p.grad;
      if (!g) continue;
      const ops = p.ops;
      let s = this.state.get(p);
      if (!s) {
        s = { m: zeros(p.shape, p.device).keep(), v: zeros(p.shape, p.device).keep() };
        this.state.set(p, s);
      }
      ops.mulScalar_(s.m.handle, b1);
      ops.addScaled_(s.m.handle, g.handle, 1 - b1);
      const g2 = ops.mul(g.handle, g.handle);
      ops.mulScalar_(s.v.handle, b2);
      ops.addScaled_(s.v.handle, g2, 1 - b2);
      ops.dispose(g2);
      const root = ops.sqrt(s.v.handle);
      const c = full([1], bc2Sqrt, p.device);
      const denom = ops.div(root, c.handle);
      c.dispose();
      ops.dispose(root);
      const withEps = ops.addScalar(denom, this.eps);
      ops.dispose(denom);
      const upd = ops.div(s.m.handle, withEps);
      ops.dispose(withEps);
      ops.addScaled_(p.handle, upd, -this.lr / bc1);
      ops.dispose(upd);
    }
  }

  dispose(): void {
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.state.clear();
  }
}
