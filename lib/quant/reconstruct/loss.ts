import { abs, add, addScalar, mulScalar, neg, square, sub } from "../../tensor/ops/elementwise";
import { mean, sum } from "../../tensor/ops/reduce";
import { powScalar } from "../../tensor/ops/rounding";
import type { Tensor } from "../../tensor/tensor";

/**
 * The temperature b of the rounding regularizer (the original's utils.LinearTempDecay): start_b until
 * rel_start_decay * t_max iterations, then linearly down to end_b at t_max.
 */
export function linearTempDecay(t: number, tMax: number, relStartDecay: number, startB: number, endB: number): number {
  const start = relStartDecay * tMax;
  if (t < start) return startB;
  const rel = (t - start) / (tMax - start);
  return endB + (startB - endB) * Math.max(0, 1 - rel);
}

/** The original's LpLoss with reduction "none": |pred - tgt|^p summed over dim 1, averaged over the rest. */
export function lpLoss(pred: Tensor, target: Tensor, p: number): Tensor {
  const d = sub(pred, target);
  const e = p === 2 ? square(d) : powScalar(abs(d), p);
  return mean(sum(e, [1]));
}

/** AdaRound's rounding regularizer over soft targets h: weight * sum(1 - |2h - 1|^b). */
export function roundLoss(softTargets: readonly Tensor[], weight: number, b: number): Tensor {
  let total: Tensor | null = null;
  for (const h of softTargets) {
    const term = mulScalar(sum(addScalar(neg(powScalar(mulScalar(abs(addScalar(h, -0.5)), 2), b)), 1)), weight);
    total = total ? add(total, term) : term;
  }
  if (!total) throw new Error("roundLoss(): no rounding variables");
  return total;
}

export interface RoundSchedule {
  /** Iterations of the whole reconstruction of one piece (QUANT.FINETUNE.ITERS_W). */
  iters: number;
  /** Fraction of iterations before the regularizer starts and b starts to decay (the original's warmup 0.2). */
  warmup: number;
  /** Temperature range (the original's b_range (20, 2)). */
  bStart: number;
  bEnd: number;
  /** Regularizer weight (1e-2 for a residual block, 1e-3 for a single layer in the original). */
  weight: number;
  /** L_p reconstruction norm (2). */
  p: number;
}

/** One iteration's loss (count is 1-based, as the original increments before computing): total, rec and round parts, b. */
export function reconstructionLoss(
  pred: Tensor, target: Tensor, softTargets: () => Tensor[], count: number, s: RoundSchedule,
): { total: Tensor; rec: Tensor; round: Tensor | null; b: number } {
  const rec = lpLoss(pred, target, s.p);
  if (count < s.iters * s.warmup) return { total: rec, rec, round: null, b: 0 };
  const b = linearTempDecay(count, s.iters, s.warmup, s.bStart, s.bEnd);
  const round = roundLoss(softTargets(), s.weight, b);
  return { total: add(rec, round), rec, round, b };
}
