import type { Tensor } from "../../tensor/tensor";
import { MinMaxBuffers } from "./minmax";

/**
 * The first calibration pass of PERCENTILE and KL_HISTOGRAM (the original's calc_init_params): the min/max of every
 * tensor seen (per channel along `axis`, or per tensor, which is what the original's "layerwise" reads from its
 * per-channel values) and how many values they held.
 */
export class RangePass {
  readonly buffers: MinMaxBuffers;
  numel = 0;
  /** Whether the statistics came from a separate first pass (observeRange) rather than from observe() itself. */
  separate = false;

  constructor(axis: number | null, who: string) {
    this.buffers = new MinMaxBuffers(axis, false, who);
  }

  get seen(): boolean {
    return this.buffers.count > 0;
  }

  fold(x: Tensor): void {
    this.buffers.fold(x);
    this.numel += x.numel;
  }

  get min(): Tensor {
    return this.buffers.min!;
  }

  get max(): Tensor {
    return this.buffers.max!;
  }

  reset(): void {
    this.buffers.count = 0;
    this.numel = 0;
    this.separate = false;
  }

  dispose(): void {
    this.reset();
    this.buffers.dispose();
  }
}
