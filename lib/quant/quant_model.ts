import type { QuantHooks, QuantUnit } from "../nn/hooks";
import { fullPrecision } from "../nn/hooks";
import type { ResNet } from "../nn/resnet";
import { isGradEnabled } from "../tensor/autograd";
import type { Tensor } from "../tensor/tensor";
import type { BitConfig } from "./bits";
import type { QuantSideSpec } from "./config";
import { DEFAULT_ROUNDING, type QuantRounding } from "./fake_quant";
import { QuantLayer, allocateBits } from "./layer";
import { activationQuantizer, weightQuantizer } from "./quantizer";

/** A side's observer settings as the quantizer options take them. */
function observerOf(s: QuantSideSpec, key: "QUANT.W" | "QUANT.A") {
  return { observer: s.observer, bits: s.bits, alpha: s.alpha, bins: s.bins, observerKey: `${key}.OBSERVER_METHOD` };
}

/**
 * The original's QuantModel over one of our ResNets: a weight and an output quantizer on every conv/linear unit,
 * an output quantizer on every residual block, under the original's names so QUANT.BIT_CONFIG applies unchanged.
 * It switches the model between full precision, observing (FP with range statistics) and fake-quantized passes
 * by swapping the hooks its units call.
 */
export class QuantizedEncoder {
  readonly layers: QuantLayer[];
  private readonly byName: Map<string, QuantLayer>;
  private readonly observing: QuantHooks;
  private readonly observingRanges: QuantHooks;
  private readonly quantizing: QuantHooks;
  /**
   * Within sharedWeightPasses(), by unit name: the weight each unit's observer has seen, and each unit's
   * fake-quantized weight of the first pass.
   */
  private sharedWeights: { observed: Map<string, Tensor>; quantized: Map<string, { w: Tensor; q: Tensor; grad: boolean }> } | null = null;

  constructor(
    readonly model: ResNet,
    units: readonly QuantUnit[],
    w: QuantSideSpec,
    a: QuantSideSpec,
    readonly bitConfig: BitConfig,
    /** QUANT.ROUNDING: x / scale ("divide", the original's) or x * (1 / scale) ("reciprocal"). */
    rounding: QuantRounding = DEFAULT_ROUNDING,
  ) {
    this.layers = units.map(
      (u) =>
        new QuantLayer(
          u.name,
          u.hasWeight
            ? weightQuantizer({ name: `${u.name}.weight`, symmetric: w.symmetric, axis: w.perChannel ? 0 : null, rounding, ...observerOf(w, "QUANT.W") })
            : null,
          // Conv outputs are NCHW (channel axis 1); linear outputs [N, C] (axis 1 as well, the original's -1).
          activationQuantizer({ name: `${u.name}.output`, symmetric: a.symmetric, axis: a.perChannel ? 1 : null, rounding, ...observerOf(a, "QUANT.A") }),
        ),
    );
    this.byName = new Map(this.layers.map((l) => [l.name, l]));
    const layer = (n: string) => {
      const l = this.byName.get(n);
      if (!l) throw new Error(`quantized model: the network called unit '${n}', which has no quantizers`);
      return l;
    };
    this.observing = {
      weight: (n, wt) => {
        const seen = this.sharedWeights?.observed;
        // The same weight again within one step: an idempotent observer would fold the same values.
        if (seen?.get(n) === wt && layer(n).weight?.observer.idempotent) return wt;
        seen?.set(n, wt);
        layer(n).observe(wt, null);
        return wt;
      },
      output: (n, y, produced) => {
        layer(n).observe(null, y, produced?.range ?? null);
        return y;
      },
      outputEpilogue: (n) => ({ withRange: layer(n).act?.takesRange ?? false }),
    };
    this.observingRanges = {
      weight: (_n, wt) => wt,
      output: (n, y) => {
        const obs = layer(n).act?.observer;
        if (obs?.needsRangePass && layer(n).act!.observeEnabled) obs.observeRange!(y);
        return y;
      },
    };
    this.quantizing = {
      weight: (n, wt) => {
        const grad = isGradEnabled();
        const held = this.sharedWeights?.quantized.get(n);
        if (held && held.w === wt && held.grad === grad && !held.q.disposed) return held.q;
        const q = layer(n).applyWeight(wt);
        if (this.sharedWeights) {
          // Held for the later passes even where no backward reads it (the stem's, whose input needs no gradient), so
          // that every unit shares whether or not intermediate results are freed early.
          if (q !== wt) q.retainForBackward();
          this.sharedWeights.quantized.set(n, { w: wt, q, grad });
        }
        return q;
      },
      output: (n, y, produced) => (produced?.fakeQuantized ? y : layer(n).applyAct(y)),
      outputEpilogue: (n) => ({ fakeQuant: layer(n).act?.fusableQParams() ?? null }),
    };
    // Fails early, with the valid names, on a BIT_CONFIG entry that names no layer.
    allocateBits(this.layers, w.bits, a.bits, bitConfig);
  }

  layer(name: string): QuantLayer | undefined {
    return this.byName.get(name);
  }

  /** Full precision, observers off. */
  fullPrecision(): void {
    this.model.slot.hooks = fullPrecision;
  }

  /**
   * A new step (or calibration): clear every observer, then run FP passes that record ranges. `afterRangePass`: keep
   * what a preceding observeRanges() pass recorded (the second calibration pass).
   */
  observe(afterRangePass = false): void {
    if (!afterRangePass) for (const l of this.layers) l.reset();
    this.model.slot.hooks = this.observing;
  }

  /** Whether an output observer calibrates in two passes (PERCENTILE, KL_HISTOGRAM): observeRanges() first. */
  get needsRangePass(): boolean {
    return this.layers.some((l) => l.act?.observer.needsRangePass === true);
  }

  /**
   * The first of two calibration passes (the original's calibration with calc_init_params): clear every observer,
   * then FP passes record the output ranges the two-pass observers need; observe(true) starts the second pass.
   */
  observeRanges(): void {
    for (const l of this.layers) l.reset();
    this.model.slot.hooks = this.observingRanges;
  }

  /** Uniform (w, a) bits with the BIT_CONFIG overrides, without changing the hooks (observers that search a range for a bit width see it). */
  allocate(w: number, a: number): void {
    allocateBits(this.layers, w, a, this.bitConfig);
  }

  /** Uniform (w, a) bits with the BIT_CONFIG overrides, scales from what was observed, fake-quantized passes. */
  quantize(w: number, a: number): void {
    allocateBits(this.layers, w, a, this.bitConfig);
    for (const l of this.layers) l.setQuantState(true, true);
    this.model.slot.hooks = this.quantizing;
  }

  /**
   * Runs `passes` (several forward passes, e.g. one per view) with the work on each unit's weight done once: in
   * fake-quantized passes its fake quant, shared by every pass, so that its backward also runs once, on the passes'
   * summed gradient; in observing passes its observation, where observing it again would change nothing (MINMAX).
   * The weights must not change inside (one training step's passes).
   */
  sharedWeightPasses<T>(passes: () => T): T {
    const window = { observed: new Map<string, Tensor>(), quantized: new Map<string, { w: Tensor; q: Tensor; grad: boolean }>() };
    this.sharedWeights = window;
    try {
      return passes();
    } finally {
      this.sharedWeights = null;
      for (const { w, q } of window.quantized.values()) if (q !== w) q.releaseFromBackward();
    }
  }

  /** Linear evaluation: fix the current bits' scales from the calibration statistics for all later passes. */
  freeze(): void {
    for (const l of this.layers) l.freeze();
  }

  /** The quantizers that are active (non-zero bits) after the last allocation: {name: {w, a}}. */
  activeBits(): Record<string, { w?: number; a?: number }> {
    const out: Record<string, { w?: number; a?: number }> = {};
    for (const l of this.layers) {
      const e: { w?: number; a?: number } = {};
      if (l.weight && l.weight.bits > 0) e.w = l.weight.bits;
      if (l.act && l.act.bits > 0) e.a = l.act.bits;
      if (e.w !== undefined || e.a !== undefined) out[l.name] = e;
    }
    return out;
  }

  dispose(): void {
    for (const l of this.layers) l.dispose();
  }
}
