import type { Tensor } from "../../tensor/tensor";
import { CachedRange } from "./cached_range";
import { channelCount, type ObservedRange, type Observer, type ObserverOptions } from "./types";

/** The original's fixed width: mean -/+ 2 std (observers/gaussian.py has no config key for it). */
export const GAUSSIAN_ALPHA = 2.0;

/**
 * The original's GAUSSIAN observer (observers/gaussian.py): [mean - 2 std, mean + 2 std] (unbiased std) of the last
 * tensor observed, per tensor or per channel; each observe() replaces the range. Moments computed natively
 * (gaussianRange).
 */
export class GaussianObserver implements Observer {
  readonly name = "GAUSSIAN";
  readonly axis: number | null;
  private readonly cache = new CachedRange();
  private seen = false;

  constructor(opts: ObserverOptions) {
    this.axis = opts.axis;
  }

  get observed(): boolean {
    return this.seen;
  }

  observe(x: Tensor): void {
    channelCount(x, this.axis, "GAUSSIAN observer");
    const [mn, mx] = x.ops.gaussianRange(x.handle, this.axis, GAUSSIAN_ALPHA);
    this.cache.set(x.wrap(mn), x.wrap(mx));
    this.seen = true;
  }

  range(): ObservedRange | null {
    return this.seen ? this.cache.value() : null;
  }

  reset(): void {
    this.seen = false;
    this.cache.drop();
  }

  dispose(): void {
    this.reset();
  }
}
