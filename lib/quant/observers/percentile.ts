import type { Tensor } from "../../tensor/tensor";
import { paramKey, validateAlpha } from "./params";
import { TwoPassObserver } from "./two_pass";
import { channelCount, perChannelCount, type ObservedRange, type ObserverOptions } from "./types";

/**
 * The original's PERCENTILE observer (observers/percentile.py): over the calibration data, the k largest |x| per
 * channel (or per tensor), k = int(n * ALPHA + 0.5) (per channel: int((n * ALPHA + 0.5) / channels)), n the values of
 * the first pass; the range is the first pass's [min, max] with max cut to the k-th largest |x| and min to its
 * negative where they lie beyond it. k = 0 keeps [min, max]. The top-k is merged batch by batch natively (topkAbs_).
 * Without a first pass (observeRange), observe() takes the range statistics from the tensors it observes: the
 * original crashes there (its weight quantizer observes a weight without calc_init_params).
 */
export class PercentileObserver extends TwoPassObserver {
  readonly name = "PERCENTILE";
  readonly alpha: number;
  private readonly key: string;
  private k = 0;
  private cut = true;

  constructor(opts: ObserverOptions) {
    super(opts.axis, "PERCENTILE observer");
    this.alpha = validateAlpha(opts);
    this.key = paramKey(opts, "ALPHA");
  }

  observe(x: Tensor): void {
    if (!this.pass.separate) this.pass.fold(x);
    const c = channelCount(x, this.axis, this.who);
    if (this.count === 0) {
      const n = this.pass.numel;
      const length = Math.trunc(this.axis === null ? n * this.alpha + 0.5 : (n * this.alpha + 0.5) / c);
      this.cut = length !== 0;
      this.k = length || 1;
      this.held?.dispose();
      this.held = x.wrap(x.ops.full([c, this.k], 0, "float32")).keep();
    }
    const per = perChannelCount(x, this.axis, this.who);
    if (this.k > per)
      throw new RangeError(
        `${this.key} = ${this.alpha}: the PERCENTILE observer keeps the ${this.k} largest |x| per ${this.axis === null ? "tensor" : "channel"} ` +
          `(of ${this.pass.numel} calibration values) but a batch of shape [${x.shape.join(", ")}] holds only ${per}; use a smaller ALPHA or fewer calibration batches`,
      );
    x.ops.topkAbs_(x.handle, this.held!.handle, this.axis, this.count > 0);
    this.count++;
    this.cache.drop();
  }

  range(): ObservedRange | null {
    if (this.count === 0 || !this.held) return null;
    const t = this.held;
    return this.cache.get(() => {
      const [mn, mx] = t.ops.percentileRange(this.pass.min.handle, this.pass.max.handle, t.handle, this.cut);
      return [t.wrap(mn), t.wrap(mx)];
    });
  }
}
