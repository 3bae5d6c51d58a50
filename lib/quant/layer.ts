import type { Tensor } from "../tensor/tensor";
import { resolveBitConfig, type BitConfig, type LayerBits, type QuantLayerInfo } from "./bits";
import type { UniformQuantizer } from "./quantizer";

/**
 * The quantizers of one layer of the wrapped model (a conv/linear with its weight quantizer and output quantizer,
 * or a residual block with only an output quantizer), under the original's module name.
 */
export class QuantLayer implements QuantLayerInfo {
  constructor(
    readonly name: string,
    readonly weight: UniformQuantizer | null,
    readonly act: UniformQuantizer | null,
  ) {}

  get hasWeight(): boolean {
    return this.weight !== null;
  }

  get hasAct(): boolean {
    return this.act !== null;
  }

  /** Sets the weight and/or output bit widths (undefined leaves one unchanged); an absent quantizer is an error. */
  setBits(w?: number, a?: number): void {
    if (w !== undefined) {
      if (!this.weight) throw new Error(`layer '${this.name}' has no weight quantizer (bits w=${w})`);
      this.weight.setBits(w);
    }
    if (a !== undefined) {
      if (!this.act) throw new Error(`layer '${this.name}' has no output quantizer (bits a=${a})`);
      this.act.setBits(a);
    }
  }

  /** The original's set_quant_state(w_quant, a_quant): turns fake quantization on or off (observing is separate). */
  setQuantState(wQuant: boolean, aQuant: boolean): void {
    if (this.weight) this.weight.quantEnabled = wQuant;
    if (this.act) this.act.quantEnabled = aQuant;
  }

  applyWeight(w: Tensor): Tensor {
    return this.weight ? this.weight.apply(w) : w;
  }

  applyAct(y: Tensor): Tensor {
    return this.act ? this.act.apply(y) : y;
  }

  /**
   * Feeds the observers in an FP pass: the live weight (its scale gradient flows to it) and the output, with the
   * output's [min, max] when its producer computed it.
   */
  observe(w: Tensor | null, y: Tensor | null, yRange: Tensor | null = null): void {
    if (w && this.weight) this.weight.observe(w);
    if (y && this.act) this.act.observe(y, yRange);
  }

  freeze(): void {
    this.weight?.freeze();
    this.act?.freeze();
  }

  reset(): void {
    this.weight?.reset();
    this.act?.reset();
  }

  dispose(): void {
    this.weight?.dispose();
    this.act?.dispose();
  }
}

/** allocate_bit over a model's layers: uniform w/a bits, then the QUANT.BIT_CONFIG overrides (see resolveBitConfig). */
export function allocateBits(layers: readonly QuantLayer[], w: number, a: number, bitConfig: BitConfig | BitConfig[number] = []): Map<string, LayerBits> {
  const resolved = resolveBitConfig(layers, w, a, bitConfig);
  for (const l of layers) {
    const b = resolved.get(l.name)!;
    l.setBits(b.w, b.a);
  }
  return resolved;
}
