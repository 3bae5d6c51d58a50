import type { Tensor } from "../../tensor/tensor";
import { CachedRange } from "./cached_range";
import { RangePass } from "./range_pass";
import type { ObserverName } from "../names";
import type { ObservedRange, Observer } from "./types";

/**
 * What PERCENTILE and KL_HISTOGRAM share: a first pass of min/max statistics (observeRange, or observe() itself when
 * none came first), a per-channel statistic accumulated over the calibration data (`held`), and the range derived
 * from both, cached until the next observation.
 */
export abstract class TwoPassObserver implements Observer {
  abstract readonly name: ObserverName;
  readonly needsRangePass = true;
  protected readonly pass: RangePass;
  protected readonly cache = new CachedRange();
  protected held: Tensor | null = null;
  protected count = 0;

  constructor(
    readonly axis: number | null,
    protected readonly who: string,
  ) {
    this.pass = new RangePass(axis, who);
  }

  get observed(): boolean {
    return this.count > 0;
  }

  observeRange(x: Tensor): void {
    if (this.count > 0) throw new Error(`${this.who}: observeRange() after observe(); reset() first`);
    this.pass.fold(x);
    this.pass.separate = true;
  }

  abstract observe(x: Tensor): void;
  abstract range(): ObservedRange | null;

  reset(): void {
    this.count = 0;
    this.pass.reset();
    this.cache.drop();
  }

  dispose(): void {
    this.reset();
    this.pass.dispose();
    this.held?.dispose();
    this.held = null;
  }
}
