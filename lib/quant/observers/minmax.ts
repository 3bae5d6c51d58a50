import { isGradEnabled } from "../../tensor/autograd";
import type { Tensor } from "../../tensor/tensor";
import { channelCount, type ObservedRange, type Observer, type ObserverOptions } from "./types";

/** Running min/max buffers filled by the native one-pass reduction. */
export class MinMaxBuffers {
  min: Tensor | null = null;
  max: Tensor | null = null;
  argmin: Tensor | null = null;
  argmax: Tensor | null = null;
  count = 0;

  constructor(private readonly axis: number | null, private readonly withIndices: boolean, private readonly who: string) {}

  /** Whether fold() can take a producer's [min, max] of x (per tensor, no indices). */
  get takesRange(): boolean {
    return this.axis === null && !this.withIndices;
  }

  /** Folds x, or with `range` (x's [min, max], float32 [2]) that instead: its own min and max are x's. */
  fold(x: Tensor, range: Tensor | null = null): void {
    const c = channelCount(x, this.axis, this.who);
    if (this.min && this.min.numel !== c) this.dispose();
    if (!this.min) {
      const f = (v: number) => x.wrap(x.ops.full([c], v, "float32")).keep();
      const i = () => x.wrap(x.ops.full([c], 0, "int32")).keep();
      this.min = f(0);
      this.max = f(0);
      if (this.withIndices) [this.argmin, this.argmax] = [i(), i()];
    }
    const src = range && this.takesRange ? range : x;
    x.ops.aminmax_(src.handle, this.min.handle, this.max!.handle, this.argmin?.handle ?? null, this.argmax?.handle ?? null, this.axis, this.count > 0);
    this.count++;
  }

  dispose(): void {
    for (const t of [this.min, this.max, this.argmin, this.argmax]) t?.dispose();
    this.min = this.max = this.argmin = this.argmax = null;
    this.count = 0;
  }
}

/**
 * The original's MINMAX observer: per-tensor min/max, or per-channel along `axis`, accumulated over every
 * observe() until reset() (in SSQL: both FP views of one step).
 */
export class MinMaxObserver implements Observer {
  readonly name = "MINMAX";
  // A repeated extreme loses to the one held (ties keep the old index), so the fold changes nothing.
  readonly idempotent = true;
  readonly axis: number | null;
  private readonly buf: MinMaxBuffers;
  private readonly trackIndices: boolean;
  private source: Tensor | null = null;
  private sourceValid = true;

  constructor(opts: ObserverOptions) {
    this.axis = opts.axis;
    this.trackIndices = opts.trackIndices ?? false;
    this.buf = new MinMaxBuffers(opts.axis, this.trackIndices, "MinMaxObserver");
  }

  get observed(): boolean {
    return this.buf.count > 0;
  }

  get takesRange(): boolean {
    return this.buf.takesRange;
  }

  observe(x: Tensor, range: Tensor | null = null): void {
    const live = this.trackIndices && x.requiresGrad && isGradEnabled();
    if (this.buf.count === 0) {
      this.source = live ? x : null;
      this.sourceValid = live;
    } else if (this.sourceValid && this.source !== x) {
      if (live) throw new Error("MinMaxObserver: a range-tracking observer saw two different tensors since reset(); the scale gradient is defined for one weight");
      this.sourceValid = false;
    }
    this.buf.fold(x, range);
  }

  range(): ObservedRange | null {
    const b = this.buf;
    if (!b.count || !b.min || !b.max) return null;
    const live = this.sourceValid && b.argmin !== null;
    return { min: b.min, max: b.max, argmin: b.argmin, argmax: b.argmax, source: live ? this.source : null };
  }

  reset(): void {
    this.buf.count = 0;
    this.source = null;
    this.sourceValid = true;
  }

  dispose(): void {
    this.reset();
    this.buf.dispose();
  }
}

/**
 * The original's MOMENTUM_MINMAX observer: min/max of the current step accumulate as MINMAX, and after every
 * observe() the kept range moves toward them: range = momentum * range + (1 - momentum) * step (the first
 * observation copies). reset() clears the step's min/max only; the EMA lives on. Its scale carries no gradient.
 */
export class MomentumMinMaxObserver implements Observer {
  readonly name = "MOMENTUM_MINMAX";
  readonly axis: number | null;
  readonly momentum: number;
  private readonly step: MinMaxBuffers;
  private emaMin: Tensor | null = null;
  private emaMax: Tensor | null = null;

  constructor(opts: ObserverOptions) {
    this.axis = opts.axis;
    this.momentum = opts.momentum ?? 0.99;
    if (!(this.momentum >= 0 && this.momentum <= 1)) throw new RangeError(`MomentumMinMaxObserver: momentum must lie in [0, 1], got ${this.momentum}`);
    this.step = new MinMaxBuffers(opts.axis, false, "MomentumMinMaxObserver");
  }

  get observed(): boolean {
    return this.emaMin !== null;
  }

  get takesRange(): boolean {
    return this.step.takesRange;
  }

  observe(x: Tensor, range: Tensor | null = null): void {
    this.step.fold(x, range);
    const s = this.step;
    if (this.emaMin && this.emaMin.numel !== s.min!.numel) this.disposeEma();
    if (!this.emaMin) {
      this.emaMin = x.wrap(x.ops.clone(s.min!.handle)).keep();
      this.emaMax = x.wrap(x.ops.clone(s.max!.handle)).keep();
      return;
    }
    x.ops.emaUpdate_(this.emaMin.handle, s.min!.handle, this.momentum);
    x.ops.emaUpdate_(this.emaMax!.handle, s.max!.handle, this.momentum);
  }

  range(): ObservedRange | null {
    if (!this.emaMin || !this.emaMax) return null;
    return { min: this.emaMin, max: this.emaMax, argmin: null, argmax: null, source: null };
  }

  reset(): void {
    this.step.count = 0;
  }

  private disposeEma(): void {
    this.emaMin?.dispose();
    this.emaMax?.dispose();
    this.emaMin = this.emaMax = null;
  }

  dispose(): void {
    this.step.dispose();
    this.disposeEma();
  }
}
