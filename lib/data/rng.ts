/**
 * Seeded, serializable random numbers for the data pipeline: xoshiro128** seeded by hashing a tuple of
 * integers, e.g. (seed, rank, epoch, batch), so that every batch's draws can be recreated without replaying
 * earlier ones (a resumed run draws exactly what an uninterrupted one would).
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

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  private constructor(s: readonly number[]) {
    [this.s0, this.s1, this.s2, this.s3] = s.map((v) => v >>> 0);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator determined by a tuple of non-negative integers below 2^53. */
  static fromSeed(...words: number[]): Rng {
    let h = 0x9e3779b9;
    for (const w of words) {
      if (!Number.isSafeInteger(w) || w < 0) throw new RangeError(`Rng.fromSeed(): seeds must be non-negative integers, got ${w}`);
      h = mix32(h ^ mix32(w >>> 0));
      h = mix32(h ^ mix32(Math.floor(w / 4294967296) + 0x632be5ab));
    }
    return new Rng([0, 1, 2, 3].map((i) => mix32(h + Math.imul(i + 1, 0x9e3779b9))));
  }

  static fromState(state: RngState): Rng {
    if (!Array.isArray(state?.s) || state.s.length !== 4 || state.s.some((v) => !Number.isInteger(v)))
      throw new TypeError("Rng.fromState(): expected { s: [four 32-bit integers] }");
    return new Rng(state.s);
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

  /** Uniform integer in [lo, hi) without modulo bias, as torch.randint(lo, hi). */
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
