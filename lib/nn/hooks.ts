import type { Tensor } from "../tensor/tensor";

/**
 * Where a model lets quantization in. Every conv/linear "unit" (the layer with the BN and ReLU that follow it,
 * as the original QuantModel fuses them) passes its weight through `weight` and its output through `output`;
 * residual blocks pass their output through `output`. Names are the original's (conv1, layer2.0.downsample, fc.3).
 */
export interface QuantHooks {
  weight(unit: string, w: Tensor): Tensor;
  /** `range`: y's [min, max] (float32 [2]) when the unit's last op computed it, as outputRange() asked. */
  output(unit: string, y: Tensor, range?: Tensor | null): Tensor;
  /** Whether `output` would use y's [min, max] from the op producing it (an observer would reduce y for it). */
  outputRange?(unit: string): boolean;
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
