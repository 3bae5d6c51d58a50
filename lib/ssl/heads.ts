import type { HookSlot } from "../nn/hooks";
import { BatchNorm, Linear, ReLU } from "../nn/layers";
import { Sequential } from "../nn/module";
import { UnitSequential } from "../nn/units";
import type { Generator as RandomGenerator } from "../tensor/ops/random";

/**
 * The heads of the original's SSL methods (§4.1 of the reference). Projectors replace the backbone's `fc`
 * and are quantization units (`fc.0`, `fc.3`, `fc.6`); predictors are never quantized.
 */

/** SimSiam / SSQL_SimSiam projector: the BYOL projector ending in an affine-free BN, its last bias frozen. */
export function simsiamProjector(slot: HookSlot, features: number, hidden: number, dim: number, gen: RandomGenerator): UnitSequential {
  return byolProjector(slot, features, hidden, dim, gen, true);
}

/** BYOL projector; SSQL_BYOL appends an affine-free BN and freezes the last bias (`finalBn`). */
export function byolProjector(slot: HookSlot, features: number, hidden: number, dim: number, gen: RandomGenerator, finalBn: boolean): UnitSequential {
  const last = new Linear(hidden, dim, gen);
  const layers = [
    new Linear(features, hidden, gen, { bias: false }),
    new BatchNorm(hidden),
    new ReLU(),
    new Linear(hidden, hidden, gen, { bias: false }),
    new BatchNorm(hidden),
    new ReLU(),
    last,
  ];
  if (finalBn) {
    if (last.bias) last.bias.requiresGrad = false;
    layers.push(new BatchNorm(dim, { affine: false }));
  }
  return new UnitSequential(slot, "fc", ...layers);
}

/** MoCo v2 / SimCLR head: Linear → ReLU → Linear, both with bias. */
export function mlpHead(slot: HookSlot, features: number, hidden: number, dim: number, gen: RandomGenerator): UnitSequential {
  return new UnitSequential(slot, "fc", new Linear(features, hidden, gen), new ReLU(), new Linear(hidden, dim, gen));
}

/** SimSiam/BYOL predictor: Linear → BN → ReLU → Linear. */
export function predictor(dim: number, hidden: number, gen: RandomGenerator): Sequential {
  return new Sequential(new Linear(dim, hidden, gen, { bias: false }), new BatchNorm(hidden), new ReLU(), new Linear(hidden, dim, gen));
}
