import type { Tensor } from "../../tensor/tensor";
import type { ObservedRange } from "./types";

/** A computed [min, max] held until the statistics change (so range() returns the same tensors, merged in place). */
export class CachedRange {
  private held: ObservedRange | null = null;

  /** The held range, or null. */
  value(): ObservedRange | null {
    return this.held;
  }

  /** The held range, computed first if none is held. */
  get(compute: () => [Tensor, Tensor]): ObservedRange {
    if (!this.held) {
      const [min, max] = compute();
      this.held = { min: min.keep(), max: max.keep(), argmin: null, argmax: null, source: null };
    }
    return this.held;
  }

  /** Replaces the held range with tensors the caller hands over. */
  set(min: Tensor, max: Tensor): void {
    this.drop();
    this.held = { min: min.keep(), max: max.keep(), argmin: null, argmax: null, source: null };
  }

  drop(): void {
    this.held?.min.dispose();
    this.held?.max.dispose();
    this.held = null;
  }
}
