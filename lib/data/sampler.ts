import { Rng } from "../tensor/prng";

/** Where a DataLoader's indices come from: this rank's share of the dataset each epoch. */
export interface Sampler {
  /** Dataset length. */
  readonly length: number;
  /** Indices this rank draws per epoch. */
  readonly numSamples: number;
  /** The batch size the indices are laid out for, when they are (the loader must use it). */
  readonly batchSize?: number;
  setEpoch(epoch: number): void;
  indices(): Int32Array;
}

export interface SamplerOptions {
  /** Dataset length. */
  readonly length: number;
  readonly numReplicas?: number;
  readonly rank?: number;
  readonly shuffle?: boolean;
  /** Shared by all ranks: every rank must draw the same permutation. */
  readonly seed?: number;
  /** Drop the tail that does not divide evenly instead of padding (torch's DistributedSampler drop_last). */
  readonly dropLast?: boolean;
}

/**
 * torch.utils.data.DistributedSampler: each epoch (setEpoch) a permutation seeded by (seed, epoch), the same on
 * every rank, padded by wrapping around to a multiple of numReplicas (or truncated with dropLast), then rank r
 * takes positions r, r + numReplicas, ...
 */
export class DistributedSampler implements Sampler {
  readonly length: number;
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Indices per rank per epoch. */
  readonly numSamples: number;
  private epoch = 0;

  constructor(o: SamplerOptions) {
    this.length = o.length;
    this.numReplicas = o.numReplicas ?? 1;
    this.rank = o.rank ?? 0;
    this.shuffle = o.shuffle ?? true;
    this.seed = o.seed ?? 0;
    this.dropLast = o.dropLast ?? false;
    if (!Number.isInteger(this.length) || this.length < 0) throw new RangeError(`DistributedSampler: bad length ${this.length}`);
    if (!Number.isInteger(this.numReplicas) || this.numReplicas < 1) throw new RangeError(`DistributedSampler: numReplicas must be >= 1, got ${this.numReplicas}`);
    if (!Number.isInteger(this.rank) || this.rank < 0 || this.rank >= this.numReplicas)
      throw new RangeError(`DistributedSampler: rank ${this.rank} is outside [0, ${this.numReplicas})`);
    this.numSamples =
      this.dropLast && this.length % this.numReplicas !== 0
        ? Math.ceil((this.length - this.numReplicas) / this.numReplicas)
        : Math.ceil(this.length / this.numReplicas);
  }

  setEpoch(epoch: number): void {
    this.epoch = epoch;
  }

  get currentEpoch(): number {
    return this.epoch;
  }

  /** This rank's indices for the current epoch. */
  indices(): Int32Array {
    const n = this.length;
    const total = this.numSamples * this.numReplicas;
    const order = this.shuffle ? Rng.fromSeed(this.seed, this.epoch).permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
    const all = new Int32Array(total);
    // Padding repeats the list from its start as often as needed; with dropLast, total <= n truncates.
    for (let i = 0; i < total; i++) all[i] = order[i % n];
    const out = new Int32Array(this.numSamples);
    for (let i = 0; i < this.numSamples; i++) out[i] = all[this.rank + i * this.numReplicas];
    return out;
  }
}

export interface EvalSamplerOptions {
  readonly length: number;
  readonly batchSize: number;
  readonly numReplicas?: number;
  readonly rank?: number;
}

/**
 * Evaluation split across ranks without padding or duplicates: the dataset in order is cut into batches of
 * batchSize and rank r takes batches r, r + numReplicas, ... Every image is seen once over all ranks, each rank's
 * batches are batches of the one-process loader (so each image gets the same logits), and the ranks' shares differ
 * by at most one batch (a rank may have none). Results must be summed across ranks.
 */
export class DistributedEvalSampler implements Sampler {
  readonly length: number;
  readonly batchSize: number;
  readonly numReplicas: number;
  readonly rank: number;
  readonly numSamples: number;
  private readonly shard: Int32Array;

  constructor(o: EvalSamplerOptions) {
    this.length = o.length;
    this.batchSize = o.batchSize;
    this.numReplicas = o.numReplicas ?? 1;
    this.rank = o.rank ?? 0;
    if (!Number.isInteger(this.length) || this.length < 0) throw new RangeError(`DistributedEvalSampler: bad length ${this.length}`);
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new RangeError(`DistributedEvalSampler: batch size must be a positive integer, got ${this.batchSize}`);
    if (!Number.isInteger(this.numReplicas) || this.numReplicas < 1) throw new RangeError(`DistributedEvalSampler: numReplicas must be >= 1, got ${this.numReplicas}`);
    if (!Number.isInteger(this.rank) || this.rank < 0 || this.rank >= this.numReplicas)
      throw new RangeError(`DistributedEvalSampler: rank ${this.rank} is outside [0, ${this.numReplicas})`);
    const out: number[] = [];
    for (let start = this.rank * this.batchSize; start < this.length; start += this.numReplicas * this.batchSize)
      for (let i = start; i < Math.min(start + this.batchSize, this.length); i++) out.push(i);
    this.shard = Int32Array.from(out);
    this.numSamples = this.shard.length;
  }

  /** The same shard every epoch. */
  setEpoch(_epoch: number): void {}

  indices(): Int32Array {
    return this.shard.slice();
  }
}

/** Splits indices into batches; the last partial batch is kept unless dropLast (the DataLoader's drop_last). */
export function batchIndices(indices: Int32Array, batchSize: number, dropLast: boolean): Int32Array[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  const out: Int32Array[] = [];
  for (let s = 0; s < indices.length; s += batchSize) {
    if (dropLast && s + batchSize > indices.length) break;
    out.push(indices.subarray(s, Math.min(s + batchSize, indices.length)));
  }
  return out;
}
