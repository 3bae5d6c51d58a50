import type { RegularizerName } from "./regularizer_name";
import { BatchNorm } from "../nn/layers";
import type { Module } from "../nn/module";
import { ResNet } from "../nn/resnet";
import { abs, add, mulScalar } from "../tensor/ops/elementwise";
import { sum } from "../tensor/ops/reduce";
import { freeTemporaries } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";

/**
 * TRAIN.LOSS.REGULARIZER.NAME with TRAIN.LOSS.LAMBDA: the loss becomes criterion + LAMBDA · regularizer, as the
 * original's LOSS class (losses/__init__.py); empty = no regularizer (LAMBDA then has no effect, there too).
 * - PACT (losses/regularizers/PACT.py) sums the squared clipping levels ("alpha" parameters) of PACT quantizers.
 *   This trainer's only quantizer is uniform and has none; the original then failed (its sum stayed the int 0,
 *   which has no .item()), so PACT stops the run by name.
 * - Slimming (losses/regularizers/Slimming.py): Σ |γ| over every BatchNorm2d, i.e. the BNs of the ResNets (the
 *   heads' and predictor's BNs are BatchNorm1d and not counted), of every encoder in the model (target/key
 *   encoders included: they add to the value, not to the gradients).
 * Names: ./regularizer_name.ts. Checked against the original's class in test/parity/losses.test.ts.
 */
/** The BatchNorm2d weights of `model`: every BN of every ResNet in it, outside the ResNet's fc head. */
export function batchNorm2dWeights(model: Module): Tensor[] {
  const out: Tensor[] = [];
  const visit = (m: Module) => {
    if (m instanceof ResNet) {
      for (const [n, sub] of m.namedModules()) if (!(n === "fc" || n.startsWith("fc.")) && sub instanceof BatchNorm && sub.weight) out.push(sub.weight);
      return;
    }
    for (const [, c] of m.namedChildren()) visit(c);
  };
  visit(model);
  return out;
}

/** Σ |γ| over the BatchNorm2d weights; null when there are none. */
export function slimmingPenalty(model: Module): Tensor | null {
  const ws = batchNorm2dWeights(model);
  if (ws.length === 0) return null;
  return freeTemporaries(() => ws.map((w) => sum(abs(w))).reduce((a, b) => add(a, b)));
}

/** loss + lambda · regularizer(model); `loss` itself when there is no regularizer or nothing to regularize. */
export function addRegularizer(loss: Tensor, model: Module, name: RegularizerName | null, lambda: number): Tensor {
  if (name === null) return loss;
  return freeTemporaries(() => {
    const r = slimmingPenalty(model);
    return r ? add(loss, mulScalar(r, lambda)) : loss;
  });
}
