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

// SplitMix32 spreads a user seed over the four state words (xoshiro must not start from all zeros).
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** xoshiro128** (Blackman and Vigna): 32-bit words, so every step is exact in JavaScript. */
export class Xoshiro128 {
  private s: [number, number, number, number];

  constructor(state: readonly number[]) {
    if (state.length !== 4 || !state.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32) || state.every((v) => v === 0))
      throw new RangeError(`Xoshiro128: state must be four uint32 words, not all zero, got ${JSON.stringify(state)}`);
    this.s = [state[0], state[1], state[2], state[3]];
  }

  /** Seeds the four words from one integer through SplitMix32. */
  static fromSeed(seed: number): Xoshiro128 {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    const sm = splitmix32((seed ^ Math.floor(seed / 4294967296)) >>> 0);
    return new Xoshiro128([sm(), sm(), sm(), sm()]);
  }

  get state(): [number, number, number, number] {
    return [...this.s];
  }

  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform integer in [lo, hi): the top partial bucket of 2^32 is rejected so every value is equally likely. */
  intIn(lo: number, hi: number): number {
    const n = hi - lo;
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const u = this.nextU32();
      if (u < limit) return lo + (u % n);
    }
  }
}

/**
 * SSQL's per-step bit draw (Qsimsiam.py:79-84): one W in [W_lo, W_hi) and then one A in [A_lo, A_hi), uniformly.
 * Every rank builds the sampler from the same seed and calls next() once per step, so all ranks draw the same
 * bits; state()/fromState() let a resumed run continue the sequence (the original's Python `random` was not saved).
 */
export class BitSampler {
  readonly wRange: BitRange;
  readonly aRange: BitRange;
  private rng: Xoshiro128;
  private _draws = 0;

  constructor(seed: number, wRange: BitRange, aRange: BitRange) {
    this.wRange = validateBitRange(wRange, "QUANT.W.BIT_RANGE");
    this.aRange = validateBitRange(aRange, "QUANT.A.BIT_RANGE");
    this.rng = Xoshiro128.fromSeed(seed);
  }

  static fromState(state: BitSamplerState, wRange: BitRange, aRange: BitRange): BitSampler {
    if (state?.algorithm !== "xoshiro128**" || !Array.isArray(state.state) || !Number.isInteger(state.draws) || state.draws < 0)
      throw new Error(`BitSampler.fromState(): not a saved xoshiro128** bit-sampler state: ${JSON.stringify(state)}`);
    const b = new BitSampler(0, wRange, aRange);
    b.rng = new Xoshiro128(state.state);
    b._draws = state.draws;
    return b;
  }

  /** Number of next() calls so far (steps drawn). */
  get draws(): number {
    return this._draws;
  }

  state(): BitSamplerState {
    return { algorithm: "xoshiro128**", state: this.rng.state, draws: this._draws };
  }

  /** The bits of one step. */
  next(): { w: number; a: number } {
    const w = this.rng.intIn(this.wRange[0], this.wRange[1]);
    const a = this.rng.intIn(this.aRange[0], this.aRange[1]);
    this._draws++;
    return { w, a };
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
