/**
 * xoshiro128** (Blackman and Vigna), the one seeded generator of the JavaScript side (data pipeline, bit sampler):
 * 32-bit words, so every step is exact in JavaScript, and a four-word state that serializes as JSON. A generator is
 * seeded by hashing a tuple of integers, e.g. (seed, rank, epoch, batch), so that any stream can be recreated without
 * replaying earlier ones (a resumed run draws exactly what an uninterrupted one would).
 */
export interface RngState {
  readonly s: readonly [number, number, number, number];
}

function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const isWord = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 4294967296;

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** A generator in the given state: four uint32 words, not all zero. */
  constructor(words: readonly number[]) {
    if (!Array.isArray(words) || words.length !== 4 || !words.every(isWord) || words.every((v) => v === 0))
      throw new RangeError(`xoshiro128** state must be four uint32 words, not all zero, got ${JSON.stringify(words)}`);
    [this.s0, this.s1, this.s2, this.s3] = words;
  }

  /** A generator determined by a tuple of integers of magnitude below 2^53. */
  static fromSeed(...words: number[]): Rng {
    let h = 0x9e3779b9;
    for (const w of words) {
      if (!Number.isSafeInteger(w)) throw new RangeError(`seed must be an integer of magnitude below 2^53, got ${w}`);
      h = mix32(h ^ mix32(w >>> 0));
      h = mix32(h ^ mix32(Math.floor(w / 4294967296) + 0x632be5ab));
    }
    const s = [0, 1, 2, 3].map((i) => mix32(h + Math.imul(i + 1, 0x9e3779b9)));
    if (!s.some((v) => v !== 0)) s[0] = 1;
    return new Rng(s);
  }

  static fromState(state: RngState): Rng {
    return new Rng(state?.s);
  }

  state(): RngState {
    return { s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0] };
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [lo, hi), as torch's uniform_(lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.random();
  }

  /** Uniform integer in [lo, hi), as torch.randint(lo, hi): the top partial bucket of 2^32 is rejected (no modulo bias). */
  randint(lo: number, hi: number): number {
    const n = hi - lo;
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) throw new RangeError(`Rng.randint(): empty or too large range [${lo}, ${hi})`);
    if (n === 4294967296) return lo + this.nextUint32();
    const limit = 4294967296 - (4294967296 % n);
    let x: number;
    do x = this.nextUint32();
    while (x >= limit);
    return lo + (x % n);
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.random() < p;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.randint(0, i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}
