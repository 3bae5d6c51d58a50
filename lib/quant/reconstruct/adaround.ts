import { noGrad } from "../../tensor/autograd";
import { add, addScalar, log, mul, mulScalar, sub } from "../../tensor/ops/elementwise";
import { tidy } from "../../tensor/scope";
import { clamp, floor, sigmoid } from "../../tensor/ops/rounding";
import { full, parameter, type Tensor } from "../../tensor/tensor";
import type { QParams } from "../fake_quant";

/** The rectified sigmoid's stretch (AdaRound, eq. 23): h(alpha) = clamp(sigmoid(alpha) * (ZETA - GAMMA) + GAMMA, 0, 1). */
export const GAMMA = -0.1;
export const ZETA = 1.1;

/**
 * AdaRound's rounding variables for one weight (the original's quantizers/ptq/adaRound.py, round mode
 * learned_hard_sigmoid): the weight's grid is fixed by the weight quantizer's scale and zero point; each element
 * learns whether floor(w / scale) rounds up (h(alpha) -> 1) or down. alpha starts where h(alpha) equals the
 * remainder w / scale - floor(w / scale), so that hard rounding starts at nearest rounding.
 */
export class AdaRoundWeight {
  readonly alpha: Tensor;
  /** floor(w / scale), the grid point below each weight. */
  private readonly below: Tensor;
  /** scale and zero point shaped to broadcast over the weight ([C, 1, ...] per channel, [1] per tensor). */
  private readonly scale: Tensor;
  private readonly zeroPoint: Tensor;

  constructor(readonly name: string, weight: Tensor, readonly qp: QParams) {
    const shape = broadcastShape(weight.shape, qp);
    this.scale = qp.scale.view(shape).keep();
    this.zeroPoint = qp.scale.wrap(qp.zeroPoint.ops.toFloat(qp.zeroPoint.handle)).view(shape).keep();
    const [below, alpha] = tidy(() =>
      noGrad(() => {
        const q = weight.wrap(weight.ops.div(weight.handle, this.scale.handle));
        const fl = floor(q);
        // alpha = -log((ZETA - GAMMA) / (rest - GAMMA) - 1), so that sigmoid(alpha) * (ZETA - GAMMA) + GAMMA = rest.
        const d = addScalar(sub(q, fl), -GAMMA);
        const num = full([1], ZETA - GAMMA, weight.device);
        const r = addScalar(d.wrap(d.ops.div(num.handle, d.handle)), -1);
        return [fl, mulScalar(log(r), -1)];
      }),
    );
    below.keep();
    alpha.keep();
    this.below = below;
    this.alpha = parameter(alpha);
  }

  /** h(alpha) in [0, 1], differentiable in alpha (get_soft_targets). */
  softTargets(): Tensor {
    return clamp(addScalar(mulScalar(sigmoid(this.alpha), ZETA - GAMMA), GAMMA), 0, 1);
  }

  /** The weight with soft rounding, dequantized: (clamp(floor + h(alpha) + zp, qmin, qmax) - zp) * scale. */
  softWeight(): Tensor {
    return this.dequant(add(this.below, this.softTargets()));
  }

  /** The weight with hard rounding (alpha >= 0 rounds up), dequantized; on the quantizer's grid exactly. */
  hardWeight(): Tensor {
    return noGrad(() => this.dequant(add(this.below, this.roundsUp())));
  }

  /** 1 where alpha >= 0 (the element rounds up), else 0: clamp(floor(alpha) + 1, 0, 1). */
  roundsUp(): Tensor {
    return noGrad(() => clamp(addScalar(floor(this.alpha), 1), 0, 1));
  }

  private dequant(gridBelowPlusH: Tensor): Tensor {
    const v = clamp(add(gridBelowPlusH, this.zeroPoint), this.qp.quantMin, this.qp.quantMax);
    return mul(sub(v, this.zeroPoint), this.scale);
  }

  dispose(): void {
    for (const t of [this.alpha, this.below, this.scale, this.zeroPoint]) t.dispose();
  }
}

function broadcastShape(shape: readonly number[], qp: QParams): number[] {
  if (qp.axis === null) return [1];
  const s = shape.map(() => 1);
  s[qp.axis] = shape[qp.axis];
  return s;
}
