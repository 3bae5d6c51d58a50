import { relu } from "../tensor/ops/elementwise";
import { freeTemporaries } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import { epilogueFor, type HookSlot } from "./hooks";
import { BatchNorm, Conv2d, Identity, Linear, ReLU } from "./layers";
import { Layer, Sequential } from "./module";
import type { Generator as RandomGenerator } from "../tensor/ops/random";

/**
 * BN (→ ReLU) closing a unit as one op, which also does what the output hook asks of its pass where it can: the
 * output's range (an observing pass: the observer skips its own sweep) or its fake quant (a quantized pass).
 */
function normUnitOutput(slot: HookSlot, name: string, bn: BatchNorm, act: boolean, x: Tensor): Tensor {
  const { y, ...produced } = bn.forwardAct(x, { relu: act, ...epilogueFor(slot, name, x) });
  return slot.hooks.output(name, y, produced);
}

/** conv → BN → (ReLU), with the weight and the output exposed to quantization under `name`. */
export function convUnit(slot: HookSlot, name: string, conv: Conv2d, bn: BatchNorm, act: boolean, x: Tensor): Tensor {
  return freeTemporaries(() => normUnitOutput(slot, name, bn, act, conv.convolve(x, slot.hooks.weight(name, conv.weight))));
}

/**
 * A Sequential whose Linear/Conv layers form quantization units with the BN and ReLU right after them
 * (the original QuantModel's fusing rule), so `fc.0`, `fc.3`, `fc.6` name the projector's units.
 */
export class UnitSequential extends Sequential {
  private readonly groups: { name: string; layers: Layer[]; main: Linear | Conv2d }[] = [];

  constructor(private readonly slot: HookSlot, private readonly prefix: string, ...layers: Layer[]) {
    super(...layers);
    for (let i = 0; i < layers.length; ) {
      const main = layers[i];
      if (!(main instanceof Linear || main instanceof Conv2d)) throw new Error(`UnitSequential: layer ${i} must be Linear or Conv2d`);
      const group = { name: `${prefix}.${i}`, layers: [main] as Layer[], main };
      i++;
      if (layers[i] instanceof BatchNorm) group.layers.push(layers[i++]);
      if (layers[i] instanceof ReLU || layers[i] instanceof Identity) group.layers.push(layers[i++]);
      this.groups.push(group);
    }
  }

  unitNames(): { name: string; channels: number }[] {
    return this.groups.map((g) => ({ name: g.name, channels: g.main instanceof Linear ? g.main.outFeatures : g.main.outChannels }));
  }

  override forward(x: Tensor): Tensor {
    return freeTemporaries(() => {
      let y = x;
      for (const g of this.groups) {
        const w = this.slot.hooks.weight(g.name, g.main.weight);
        y = g.main instanceof Linear ? g.main.project(y, w) : g.main.convolve(y, w);
        const bn = g.layers.find((l): l is BatchNorm => l instanceof BatchNorm);
        const act = g.layers.some((l) => l instanceof ReLU);
        if (bn) y = normUnitOutput(this.slot, g.name, bn, act, y);
        else y = this.slot.hooks.output(g.name, act ? relu(y) : y);
      }
      return y;
    });
  }
}

/**
 * A Linear that is one quantization unit under `name` (MoCo/SimCLR's plain `fc` head with SSL.SETTING.MLP
 * False): weight and output pass the slot's hooks, the state-dict keys stay `fc.weight`, `fc.bias`.
 */
export class LinearUnit extends Linear {
  constructor(private readonly slot: HookSlot, private readonly name: string, inFeatures: number, outFeatures: number, gen: RandomGenerator) {
    super(inFeatures, outFeatures, gen);
  }

  override forward(x: Tensor): Tensor {
    return freeTemporaries(() => this.slot.hooks.output(this.name, this.project(x, this.slot.hooks.weight(this.name, this.weight))));
  }
}
