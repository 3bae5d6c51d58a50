import type { Tensor } from "../../tensor/tensor";
import { CachedRange } from "./cached_range";
import { paramKey, validateAlpha } from "./params";
import { RangePass } from "./range_pass";
import { channelCount, perChannelCount, type ObservedRange, type Observer, type ObserverOptions } from "./types";

/**
 * The original's PERCENTILE observer (observers/percentile.py): over the calibration data, the k largest |x| per
 * channel (or per tensor), k = int(n * ALPHA + 0.5) (per channel: int((n * ALPHA + 0.5) / channels)), n the values of
 * the first pass; the range is the first pass's [min, max] with max cut to the k-th largest |x| and min to its
 * negative where they lie beyond it. k = 0 keeps [min, max]. The top-k is merged batch by batch natively (topkAbs_).
 * Without a first pass (observeRange), observe() takes the range statistics from the tensors it observes: the
 * original crashes there (its weight quantizer observes a weight without calc_init_params).
 */
export class PercentileObserver implements Observer {
  readonly name = "PERCENTILE";
  readonly axis: number | null;
  readonly needsRangePass = true;
  readonly alpha: number;
  private readonly key: string;
  private readonly pass: RangePass;
  private readonly cache = new CachedRange();
  private top: Tensor | null = null;
  private k = 0;
  private cut = true;
  private count = 0;

  constructor(opts: ObserverOptions) {
    this.axis = opts.axis;
    this.alpha = validateAlpha(opts);
    this.key = paramKey(opts, "ALPHA");
    this.pass = new RangePass(opts.axis, "PERCENTILE observer");
  }

  get observed(): boolean {
    return this.count > 0;
  }

  observeRange(x: Tensor): void {
    if (this.count > 0) throw new Error("PERCENTILE observer: observeRange() after observe(); reset() first");
    this.pass.fold(x);
    this.pass.separate = true;
  }

  observe(x: Tensor): void {
    if (!this.pass.separate) this.pass.fold(x);
    const c = channelCount(x, this.axis, "PERCENTILE observer");
    if (this.count === 0) {
      const n = this.pass.numel;
      const length = Math.trunc(this.axis === null ? n * this.alpha + 0.5 : (n * this.alpha + 0.5) / c);
      this.cut = length !== 0;
      this.k = length || 1;
      this.top?.dispose();
      this.top = x.wrap(x.ops.full([c, this.k], 0, "float32")).keep();
    }
    const per = perChannelCount(x, this.axis, "PERCENTILE observer");
    if (this.k > per)
      throw new RangeError(
        `${this.key} = ${this.alpha}: the PERCENTILE observer keeps the ${this.k} largest |x| per ${this.axis === null ? "tensor" : "channel"} ` +
          `(of ${this.pass.numel} calibration values) but a batch of shape [${x.shape.join(", ")}] holds only ${per}; use a smaller ALPHA or fewer calibration batches`,
      );
    x.ops.topkAbs_(x.handle, this.top!.handle, this.axis, this.count > 0);
    this.count++;
    this.cache.drop();
  }

  range(): ObservedRange | null {
    if (this.count === 0 || !this.top) return null;
    const t = this.top;
    return this.cache.get(() => {
      const [mn, mx] = t.ops.percentileRange(this.pass.min.handle, this.pass.max.handle, t.handle, this.cut);
      return [t.wrap(mn), t.wrap(mx)];
    });
  }

  reset(): void {
    this.count = 0;
    this.pass.reset();
    this.cache.drop();
  }

  dispose(): void {
    this.reset();
    this.pass.dispose();
    this.top?.dispose();
    this.top = null;
  }
}
