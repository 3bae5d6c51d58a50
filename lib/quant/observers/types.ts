import type { Tensor } from "../../tensor/tensor";
import type { ObserverName } from "../names";

export interface ObserverOptions {
  /** Channel axis for per-channel statistics ("channelwise"); null for per tensor ("layerwise"). */
  readonly axis: number | null;
  /** Record the first position of each extreme and the observed tensor, so a scale can be differentiated. */
  readonly trackIndices?: boolean;
  /** EMA momentum of MOMENTUM_MINMAX (the original's default 0.99). */
  readonly momentum?: number;
  /** Bit width the range is searched for (MSE, HISTOGRAM, KL_HISTOGRAM); follows the quantizer's setBits(). */
  readonly bits?: number;
  /** PERCENTILE: the share of largest |x| cut off (QUANT.{W,A}.OBSERVER_METHOD.ALPHA, the original's 0.0001). */
  readonly alpha?: number;
  /** KL_HISTOGRAM: histogram bins (QUANT.{W,A}.OBSERVER_METHOD.BINS, the original's 2049). */
  readonly bins?: number;
  /** Config prefix named in errors about the parameters above, e.g. "QUANT.A.OBSERVER_METHOD". */
  readonly key?: string;
}

/** The statistics a scale is computed from. argmin/argmax/source are set only for a tensor observed with grad. */
export interface ObservedRange {
  readonly min: Tensor;
  readonly max: Tensor;
  readonly argmin: Tensor | null;
  readonly argmax: Tensor | null;
  readonly source: Tensor | null;
}

export interface Observer {
  readonly name: ObserverName;
  readonly axis: number | null;
  /** Whether there are statistics to compute a scale from. */
  readonly observed: boolean;
  /**
   * Folds x into the statistics on the device (no read-back). `range`: x's [min, max] (float32 [2]) as its producer
   * computed it in the same pass; an observer that says `takesRange` folds that instead of reducing x again.
   */
  observe(x: Tensor, range?: Tensor | null): void;
  /** Whether observe() can use a producer's [min, max] of x (per-tensor min/max observers without source tracking). */
  readonly takesRange?: boolean;
  /** Whether observing the same, unchanged tensor again leaves the statistics exactly as they are (MINMAX). */
  readonly idempotent?: boolean;
  /**
   * Current range, or null before any observation. The tensors stay owned by the observer and are the same until the
   * next observe() / reset() / setBits() (so a caller may merge them across processes in place).
   */
  range(): ObservedRange | null;
  /** Per-step reset (the original's reset_minmax). */
  reset(): void;
  /** Frees the device buffers. */
  dispose(): void;
  /** The quantizer's bit width changed (observers whose range depends on it: MSE, HISTOGRAM, KL_HISTOGRAM). */
  setBits?(bits: number): void;
  /**
   * Observers that calibrate in two passes over the data (PERCENTILE, KL_HISTOGRAM: the original's calc_init_params
   * pass, then update): observeRange() folds x into the first pass's range statistics. Without a first pass,
   * observe() takes those statistics from the tensors it observes.
   */
  readonly needsRangePass?: boolean;
  observeRange?(x: Tensor): void;
}

export function channelCount(x: Tensor, axis: number | null, who: string): number {
  if (axis === null) return 1;
  const k = axis < 0 ? axis + x.ndim : axis;
  if (k < 0 || k >= x.ndim) throw new RangeError(`${who}: axis ${axis} out of range for shape [${x.shape.join(", ")}]`);
  return x.shape[k];
}

/** Values per channel of x along axis (all of x per tensor). */
export function perChannelCount(x: Tensor, axis: number | null, who: string): number {
  return x.numel / channelCount(x, axis, who);
}
