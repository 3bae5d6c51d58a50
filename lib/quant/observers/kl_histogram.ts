import type { Tensor } from "../../tensor/tensor";
import { CachedRange } from "./cached_range";
import { paramKey, searchBits, validateBins } from "./params";
import { RangePass } from "./range_pass";
import { channelCount, type ObservedRange, type Observer, type ObserverOptions } from "./types";

/** The original's calibrate_entropy runs for `quantized` bins out of `bins` only when this holds (see observer_math.h). */
export function klBinsFit(bins: number, quantized: number): boolean {
  const zero = Math.floor(bins / 2), half = Math.floor(quantized / 2), slots = zero + 1 - half;
  return slots >= 1 && (half >= zero || 2 * half <= zero);
}

/**
 * The original's KL_HISTOGRAM observer (observers/kl_histogram.py): a BINS-bin histogram of |x| over [-th, th] per
 * channel (or per tensor), th the larger of |min|, |max| of the first pass, accumulated over the calibration data;
 * the range is [-t, t] ([0, t] for a non-negative first-pass range), t the bin width times the index of the smallest
 * KL divergence between the clipped and the 2^bits-level distributions, as the original indexes it (its divergence
 * array is indexed by i - num_quantized_bins, so one slot keeps its initial 0 and usually wins: see
 * native/core/observer_math.h). Histograms and the search run natively (absHistogram_, klRange). Without a first
 * pass, observe() takes the range statistics from the tensors it observes (the original crashes there).
 */
export class KlHistogramObserver implements Observer {
  readonly name = "KL_HISTOGRAM";
  readonly axis: number | null;
  readonly needsRangePass = true;
  readonly bins: number;
  private bits: number;
  private readonly key: string;
  private readonly pass: RangePass;
  private readonly cache = new CachedRange();
  private hist: Tensor | null = null;
  private count = 0;

  constructor(opts: ObserverOptions) {
    this.axis = opts.axis;
    this.bins = validateBins(opts);
    this.bits = searchBits(opts.bits, "KL_HISTOGRAM observer");
    this.key = paramKey(opts, "BINS");
    this.pass = new RangePass(opts.axis, "KL_HISTOGRAM observer");
  }

  get observed(): boolean {
    return this.count > 0;
  }

  setBits(bits: number): void {
    if (bits <= 0) return;
    const b = searchBits(bits, "KL_HISTOGRAM observer");
    if (b !== this.bits) this.cache.drop();
    this.bits = b;
  }

  observeRange(x: Tensor): void {
    if (this.count > 0) throw new Error("KL_HISTOGRAM observer: observeRange() after observe(); reset() first");
    this.pass.fold(x);
    this.pass.separate = true;
  }

  observe(x: Tensor): void {
    if (!this.pass.separate) this.pass.fold(x);
    const c = channelCount(x, this.axis, "KL_HISTOGRAM observer");
    if (this.count === 0 || !this.hist || this.hist.shape[0] !== c) {
      this.hist?.dispose();
      this.hist = x.wrap(x.ops.full([c, this.bins], 0, "int32")).keep();
    }
    x.ops.absHistogram_(x.handle, this.hist.handle, this.pass.min.handle, this.pass.max.handle, this.axis);
    this.count++;
    this.cache.drop();
  }

  range(): ObservedRange | null {
    if (this.count === 0 || !this.hist) return null;
    const h = this.hist;
    return this.cache.get(() => {
      this.checkBins();
      const [mn, mx] = h.ops.klRange(h.handle, this.pass.min.handle, this.pass.max.handle, this.bits);
      return [h.wrap(mn), h.wrap(mx)];
    });
  }

  // Signed ranges calibrate 2^bits - 1 quantized bins, non-negative ones 2^(bits+1) - 1; only when one of them does
  // not fit is the sign read back.
  private checkBins(): void {
    const signed = 2 ** this.bits - 1, unsigned = 2 * signed + 1;
    if (klBinsFit(this.bins, signed) && klBinsFit(this.bins, unsigned)) return;
    const mins = this.pass.min.toArraySync();
    for (const m of mins) {
      const q = m >= 0 ? unsigned : signed;
      if (!klBinsFit(this.bins, q))
        throw new RangeError(
          `${this.key} = ${this.bins}: the KL_HISTOGRAM observer cannot calibrate ${this.bits} bits (${q} quantized bins of a ` +
            `${m >= 0 ? "non-negative" : "signed"} range) with so few bins; the original fails there. Use at least ${4 * Math.floor(q / 2)} bins`,
        );
    }
  }

  reset(): void {
    this.count = 0;
    this.pass.reset();
    this.cache.drop();
  }

  dispose(): void {
    this.reset();
    this.pass.dispose();
    this.hist?.dispose();
    this.hist = null;
  }
}
