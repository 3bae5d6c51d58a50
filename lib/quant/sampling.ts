import { Rng } from "../tensor/prng";
import { MAX_BITS } from "./bits";

/** A half-open bit range [lo, hi), as QUANT.W.BIT_RANGE / QUANT.A.BIT_RANGE ([2, 9] draws 2..8). */
export type BitRange = readonly [number, number];

/** Everything needed to continue a bit sequence exactly (stored in checkpoints). */
export interface BitSamplerState {
  readonly algorithm: "xoshiro128**";
  readonly state: readonly [number, number, number, number];
  readonly draws: number;
}

/** Checks a [lo, hi) bit range; errors name `key` and the allowed values. */
export function validateBitRange(v: unknown, key: string): BitRange {
  const ok =
    Array.isArray(v) && v.length === 2 && v.every((b) => typeof b === "number" && Number.isInteger(b)) &&
    v[0] >= 0 && v[1] <= MAX_BITS + 1 && v[0] < v[1];
  if (!ok)
    throw new RangeError(
      `${key}: expected [lo, hi) with integers 0 <= lo < hi <= ${MAX_BITS + 1} (hi excluded, e.g. [2, 9] draws 2..8), got ${JSON.stringify(v)}`,
    );
  return [v[0], v[1]];
}

/**
 * SSQL's per-step bit draw (Qsimsiam.py:79-84): one W in [W_lo, W_hi) and then one A in [A_lo, A_hi), uniformly.
 * Every rank builds the sampler from the same seed and calls next() once per step, so all ranks draw the same
 * bits; state()/fromState() let a resumed run continue the sequence (the original's Python `random` was not saved).
 */
export class BitSampler {
  readonly wRange: BitRange;
  readonly aRange: BitRange;
  private rng: Rng;
  private _draws = 0;

  constructor(seed: number, wRange: BitRange, aRange: BitRange) {
    this.wRange = validateBitRange(wRange, "QUANT.W.BIT_RANGE");
    this.aRange = validateBitRange(aRange, "QUANT.A.BIT_RANGE");
    this.rng = Rng.fromSeed(seed);
  }

  static fromState(state: BitSamplerState, wRange: BitRange, aRange: BitRange): BitSampler {
    const b = new BitSampler(0, wRange, aRange);
    b.loadState(state);
    return b;
  }

  /** Continues the sequence a checkpoint saved with state(). */
  loadState(state: BitSamplerState): void {
    const ok =
      state?.algorithm === "xoshiro128**" && Array.isArray(state.state) && state.state.length === 4 &&
      state.state.every((v) => Number.isInteger(v)) && Number.isInteger(state.draws) && state.draws >= 0;
    if (!ok) throw new Error(`BitSampler: not a saved xoshiro128** bit-sampler state: ${JSON.stringify(state)}`);
    this.rng = new Rng(state.state);
    this._draws = state.draws;
  }

  /** Number of next() calls so far (steps drawn). */
  get draws(): number {
    return this._draws;
  }

  state(): BitSamplerState {
    return { algorithm: "xoshiro128**", state: this.rng.state().s, draws: this._draws };
  }

  /** The bits of one step. */
  next(): { w: number; a: number } {
    const w = this.rng.randint(this.wRange[0], this.wRange[1]);
    const a = this.rng.randint(this.aRange[0], this.aRange[1]);
    this._draws++;
    return { w, a };
  }
}

