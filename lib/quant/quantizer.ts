import { isGradEnabled } from "../tensor/autograd";
import type { Tensor } from "../tensor/tensor";
import { validateBits } from "./bits";
import {
  DEFAULT_ROUNDING, fakeQuantize, fakeQuantizeLiveRange, quantRange, validateRounding, type QParams, type QRange, type QuantRounding,
} from "./fake_quant";
import type { ObserverName } from "./names";
import { createObserver, type Observer } from "./observers";

export interface UniformQuantizerOptions {
  /** Signed grid with zero point 0 (weights) or unsigned grid with a zero point (activations). */
  readonly symmetric: boolean;
  /** Channel axis ("channelwise"), or null for one scale per tensor ("layerwise"). */
  readonly axis: number | null;
  readonly observer?: ObserverName;
  readonly momentum?: number;
  /** PERCENTILE's OBSERVER_METHOD.ALPHA and KL_HISTOGRAM's OBSERVER_METHOD.BINS (the original's defaults when absent). */
  readonly alpha?: number;
  readonly bins?: number;
  /** Config prefix of the observer's parameters in errors, e.g. "QUANT.A.OBSERVER_METHOD". */
  readonly observerKey?: string;
  /** Initial bit width; 0 = identity. */
  readonly bits?: number;
  /**
   * The scale is a differentiable function of the observed tensor (the original's weight quantizer, whose observer
   * sees the live weight): apply(w) then back-propagates through the per-channel min/max into w. Activations: false,
   * their observer sees the detached output.
   */
  readonly rangeGrad?: boolean;
  /** Name used in error messages (the layer name). */
  readonly name?: string;
  /** x / scale ("divide", the original's; default) or x * (1 / scale) ("reciprocal", PyTorch's): QUANT.ROUNDING. */
  readonly rounding?: QuantRounding;
}

interface Held {
  qp: QParams;
  range: QRange | null;
  own: Tensor[];
}

/**
 * The original's uniform quantizer (quantizers/ptq/uniform.py) as a state machine:
 * observe(x) folds x into the observer (ignored while frozen or with observeEnabled off); apply(x) fake-quantizes
 * with scale / zero point computed from the observer's statistics (computed once, then held until reset(), a new
 * observation or setBits()); freeze() computes them now and stops observing, as set_quant_state(w_init/a_init) in
 * linear evaluation; reset() starts a new step. Bit width 0, or quantEnabled off, makes apply() the identity.
 */
export class UniformQuantizer {
  readonly symmetric: boolean;
  readonly axis: number | null;
  readonly rangeGrad: boolean;
  readonly name: string;
  readonly rounding: QuantRounding;
  readonly observer: Observer;
  quantEnabled = true;
  observeEnabled = true;
  private readonly observeOnce: boolean;
  private _bits: number;
  private _frozen = false;
  private held: Held | null = null;

  constructor(opts: UniformQuantizerOptions) {
    this.symmetric = opts.symmetric;
    this.axis = opts.axis;
    this.rangeGrad = opts.rangeGrad ?? false;
    this.name = opts.name ?? "quantizer";
    this.rounding = validateRounding(opts.rounding ?? DEFAULT_ROUNDING, `${this.name}.rounding`);
    this._bits = validateBits(opts.bits ?? 0, `${this.name}.bits`);
    this.observer = createObserver(opts.observer ?? "MINMAX", {
      axis: opts.axis,
      trackIndices: this.rangeGrad,
      momentum: opts.momentum,
      bits: this._bits > 0 ? this._bits : undefined,
      alpha: opts.alpha,
      bins: opts.bins,
      key: opts.observerKey,
    });
    // A weight is observed once per reset(): the original observes it once when its quantizer is built, and the
    // accumulating observers (PERCENTILE, KL_HISTOGRAM) would count a weight seen by several passes several times.
    // MINMAX / MOMENTUM_MINMAX keep observing every pass (their range-gradient source tracking relies on it).
    this.observeOnce = this.rangeGrad && !["MINMAX", "MOMENTUM_MINMAX"].includes(this.observer.name);
  }

  get bits(): number {
    return this._bits;
  }

  get frozen(): boolean {
    return this._frozen;
  }

  setBits(bits: number): void {
    const b = validateBits(bits, `${this.name}.bits`);
    if (b === this._bits) return;
    this._bits = b;
    this.observer.setBits?.(b);
    this.drop();
  }

  /** `range`: x's [min, max] from its producer, used where the observer takes one (Observer.takesRange). */
  observe(x: Tensor, range: Tensor | null = null): void {
    if (!this.observeEnabled || this._frozen) return;
    if (this.observeOnce && this.observer.observed) return;
    this.observer.observe(x, range);
    this.drop();
  }

  /** Whether the next observe() would fold a producer's [min, max] of its input (so computing one pays). */
  get takesRange(): boolean {
    return this.observeEnabled && !this._frozen && this.observer.takesRange === true;
  }

  /**
   * Holds given quantization parameters (a saved quantizer state, lib/quant/state.ts) at `bits` and freezes: apply()
   * uses them as they are, with no observation and no recalibration, until reset() or setBits(). The tensors are
   * taken over (disposed with the quantizer).
   */
  installQParams(bits: number, scale: Tensor, zeroPoint: Tensor, enabled: Tensor): void {
    const b = validateBits(bits, `${this.name}.bits`);
    if (b === 0) throw new Error(`${this.name}: no quantization parameters to install at 0 bits (identity)`);
    this._bits = b;
    this.drop();
    const [quantMin, quantMax] = quantRange(b, this.symmetric);
    const qp: QParams = { scale, zeroPoint, enabled, quantMin, quantMax, axis: this.axis, rounding: this.rounding };
    this.held = { qp, range: null, own: [scale, zeroPoint, enabled] };
    this._frozen = true;
  }

  /** Computes scale / zero point from the statistics now and holds them (and the statistics) until reset(). */
  freeze(): void {
    if (this._bits > 0) this.qparams();
    this._frozen = true;
  }

  /** Starts a new step: clears the observer's per-step statistics, the held qparams and the frozen state. */
  reset(): void {
    this.observer.reset();
    this.drop();
    this._frozen = false;
  }

  apply(x: Tensor): Tensor {
    if (!this.quantEnabled || this._bits === 0) return x;
    const { qp, range } = this.qparams();
    if (range && isGradEnabled() && x.requiresGrad) {
      if (range.source !== x) throw new Error(`${this.name}: apply() got another tensor than the one its observer saw since reset()`);
      return fakeQuantizeLiveRange(x, qp, range);
    }
    return fakeQuantize(x, qp);
  }

  /**
   * The per-tensor quantization parameters with which apply(x) would be exactly fakeQuantize(x, qp), so that the op
   * producing x may fake-quantize in its own pass; null when apply() does otherwise (identity, per channel, live range).
   */
  fusableQParams(): QParams | null {
    if (!this.quantEnabled || this._bits === 0 || this.axis !== null || this.rangeGrad) return null;
    return this.qparams().qp;
  }

  /** The held quantization parameters, computed from the observer if needed. */
  qparams(): { qp: QParams; range: QRange | null } {
    if (this._bits === 0) throw new Error(`${this.name}: no quantization parameters at 0 bits (identity)`);
    if (this.held) return this.held;
    const r = this.observer.range();
    if (!r) throw new Error(`${this.name}: nothing observed since reset(); run an observing (FP) forward pass or calibration first`);
    const ops = r.min.ops;
    const [s, z, e] = ops.calcQParams(r.min.handle, r.max.handle, this._bits, this.symmetric);
    const [quantMin, quantMax] = quantRange(this._bits, this.symmetric);
    const own = [s, z, e].map((h) => r.min.wrap(h).keep());
    const qp: QParams = { scale: own[0], zeroPoint: own[1], enabled: own[2], quantMin, quantMax, axis: this.axis, rounding: this.rounding };
    let range: QRange | null = null;
    if (this.rangeGrad && r.source && r.argmin && r.argmax) {
      // Snapshot the statistics: the observer's buffers are updated in place by later observations.
      const snap = [r.min, r.max, r.argmin, r.argmax].map((t) => t.wrap(ops.clone(t.handle)).keep());
      own.push(...snap);
      range = { min: snap[0], max: snap[1], argmin: snap[2], argmax: snap[3], source: r.source, symmetric: this.symmetric };
    }
    this.held = { qp, range, own };
    return this.held;
  }

  dispose(): void {
    this.drop();
    this.observer.dispose();
  }

  private drop(): void {
    if (!this.held) return;
    for (const t of this.held.own) t.dispose();
    this.held = null;
  }
}

type Tuned = Partial<Omit<UniformQuantizerOptions, "symmetric" | "axis">> & { symmetric?: boolean; axis?: number | null };

/** Weight quantizer as the shipped configs: symmetric, per output channel (axis 0), differentiable max-abs scale. */
export function weightQuantizer(opts: Tuned = {}): UniformQuantizer {
  return new UniformQuantizer({ symmetric: true, axis: 0, rangeGrad: true, ...opts });
}

/** Activation (output) quantizer as the shipped configs: asymmetric, per tensor, scale without gradient. */
export function activationQuantizer(opts: Tuned = {}): UniformQuantizer {
  return new UniformQuantizer({ symmetric: false, axis: null, rangeGrad: false, ...opts });
}
