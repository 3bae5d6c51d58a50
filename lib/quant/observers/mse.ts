import type { Tensor } from "../../tensor/tensor";
import { CachedRange } from "./cached_range";
import { searchBits } from "./params";
import { channelCount, type ObservedRange, type Observer, type ObserverOptions } from "./types";

/**
 * The original's MSE observer (observers/mse.py), and its HISTOGRAM observer, whose file is the same code: on the
 * first observe() since reset() (the original's "first batch" FIXME), per tensor or per channel, the range
 * f * [min, max] whose asymmetric quantization at the observer's bit width has the smallest mean |x - q(x)|^2.4,
 * f = 1 - p / 100 found by a 15-round ternary search of p in [0, 80]. Later observations are ignored. The search runs
 * natively (mseRange). A bit width set after the search does not redo it (nor does the original's).
 */
export class MseObserver implements Observer {
  readonly axis: number | null;
  private bits: number;
  private readonly cache = new CachedRange();
  private done = false;

  constructor(readonly name: "MSE" | "HISTOGRAM", opts: ObserverOptions) {
    this.axis = opts.axis;
    this.bits = searchBits(opts.bits, `${name} observer`);
  }

  get observed(): boolean {
    return this.done;
  }

  setBits(bits: number): void {
    if (bits > 0) this.bits = searchBits(bits, `${this.name} observer`);
  }

  observe(x: Tensor): void {
    if (this.done) return;
    channelCount(x, this.axis, `${this.name} observer`);
    const [mn, mx] = x.ops.mseRange(x.handle, this.axis, this.bits);
    this.cache.set(x.wrap(mn), x.wrap(mx));
    this.done = true;
  }

  range(): ObservedRange | null {
    return this.done ? this.cache.value() : null;
  }

  reset(): void {
    this.done = false;
    this.cache.drop();
  }

  dispose(): void {
    this.reset();
  }
}
