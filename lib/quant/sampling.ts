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

/**
 * SSQL's per-step bit draw (Qsimsiam.py:79-84): one W in [W_lo, W_hi) and then one A in [A_lo, A_hi), uniformly.
 * Every rank builds the sampler from the same seed and calls next() once per step, so all ranks draw the same
 * bits; state()/fromState() let a resumed run continue the sequence (the original's Python `random` was not saved).
 * Generator: xoshiro128** (32-bit words, exact in JavaScript), unbiased integers by rejection.
 */
export class BitSampler {
  readonly wRange: BitRange;
  readonly aRange: BitRange;
  private s: [number, number, number, number];
  private _draws = 0;

  constructor(seed: number, wRange: BitRange, aRange: BitRange) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`BitSampler: seed must be an integer, got ${seed}`);
    this.wRange = validateBitRange(wRange, "QUANT.W.BIT_RANGE");
    this.aRange = validateBitRange(aRange, "QUANT.A.BIT_RANGE");
    const sm = splitmix32((seed ^ Math.floor(seed / 4294967296)) >>> 0);
    this.s = [sm(), sm(), sm(), sm()];
  }

  static fromState(state: BitSamplerState, wRange: BitRange, aRange: BitRange): BitSampler {
    const st = state?.state;
    if (state?.algorithm !== "xoshiro128**" || !Array.isArray(st) || st.length !== 4 || !st.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32) || st.every((v) => v === 0))
      throw new Error(`BitSampler.fromState(): not a saved xoshiro128** state: ${JSON.stringify(state)}`);
    const b = new BitSampler(0, wRange, aRange);
    b.s = [st[0], st[1], st[2], st[3]];
    b._draws = state.draws ?? 0;
    return b;
  }

  /** Number of next() calls so far (steps drawn). */
  get draws(): number {
    return this._draws;
  }

  state(): BitSamplerState {
    return { algorithm: "xoshiro128**", state: [...this.s], draws: this._draws };
  }

  /** The bits of one step. */
  next(): { w: number; a: number } {
    const w = this.intIn(this.wRange);
    const a = this.intIn(this.aRange);
    this._draws++;
    return { w, a };
  }

  private nextU32(): number {
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

  // Uniform integer in [lo, hi): reject the top partial bucket of 2^32 so every value is equally likely.
  private intIn([lo, hi]: BitRange): number {
    const n = hi - lo;
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const u = this.nextU32();
      if (u < limit) return lo + (u % n);
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
