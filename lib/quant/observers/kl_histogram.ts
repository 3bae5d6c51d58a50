import type { Tensor } from "../../tensor/tensor";
import { paramKey, searchBits, validateBins } from "./params";
import { TwoPassObserver } from "./two_pass";
import { channelCount, type ObservedRange, type ObserverOptions } from "./types";

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
export class KlHistogramObserver extends TwoPassObserver {
  readonly name = "KL_HISTOGRAM";
  readonly bins: number;
  private bits: number;
  private readonly key: string;

  constructor(opts: ObserverOptions) {
    super(opts.axis, "KL_HISTOGRAM observer");
    this.bins = validateBins(opts);
    this.bits = searchBits(opts.bits, this.who);
    this.key = paramKey(opts, "BINS");
  }

  setBits(bits: number): void {
    if (bits <= 0) return;
    const b = searchBits(bits, this.who);
    if (b !== this.bits) this.cache.drop();
    this.bits = b;
  }

  observe(x: Tensor): void {
    if (!this.pass.separate) this.pass.fold(x);
    const c = channelCount(x, this.axis, this.who);
    if (this.count === 0 || !this.held || this.held.shape[0] !== c) {
      this.held?.dispose();
      this.held = x.wrap(x.ops.full([c, this.bins], 0, "int32")).keep();
    }
    x.ops.absHistogram_(x.handle, this.held.handle, this.pass.min.handle, this.pass.max.handle, this.axis);
    this.count++;
    this.cache.drop();
  }

  range(): ObservedRange | null {
    if (this.count === 0 || !this.held) return null;
    const h = this.held;
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
}
