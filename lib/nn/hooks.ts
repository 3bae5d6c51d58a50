import { fusesFakeQuant, type Epilogue } from "../tensor/ops/epilogue";
import type { Tensor } from "../tensor/tensor";

/**
 * Where a model lets quantization in. Every conv/linear "unit" (the layer with the BN and ReLU that follow it,
 * as the original QuantModel fuses them) passes its weight through `weight` and its output through `output`;
 * residual blocks pass their output through `output`. Names are the original's (conv1, layer2.0.downsample, fc.3).
 */
export interface QuantHooks {
  weight(unit: string, w: Tensor): Tensor;
  /** `produced`: what the unit's last op did besides y, as outputEpilogue() asked of it. */
  output(unit: string, y: Tensor, produced?: ProducedOutput): Tensor;
  /**
   * What the op producing the unit's output may do in its pass for `output`: compute y's range (an observer would
   * reduce y for it) or fake-quantize y (the quantizer would). The op does what its backend can and says so.
   */
  outputEpilogue?(unit: string): Epilogue;
}

export interface ProducedOutput {
  /** y's [min, max] (float32 [2]), computed by its producer. */
  range?: Tensor | null;
  /** y is already the fake-quantized output, by the quantization parameters outputEpilogue() gave. */
  fakeQuantized?: boolean;
}

export const fullPrecision: QuantHooks = {
  weight: (_unit, w) => w,
  output: (_unit, y) => y,
};

/** Shared by every module of one model, so the quantizer can swap hooks between passes. */
export class HookSlot {
  hooks: QuantHooks = fullPrecision;
}

export interface QuantUnit {
  name: string;
  /** The unit has a weight (conv/linear); blocks have only an output quantizer. */
  hasWeight: boolean;
  /** Output channels of the weight, for per-channel quantizers. */
  channels?: number;
}

/** What the op producing unit `name`'s output from `x` runs in its pass: the hooks' wish, less what x's device cannot. */
export function epilogueFor(slot: HookSlot, name: string, x: Tensor): Epilogue {
  const e = slot.hooks.outputEpilogue?.(name) ?? {};
  return e.fakeQuant && !fusesFakeQuant(x.device) ? { ...e, fakeQuant: null } : e;
}
