import type { ProcessGroup } from "../distributed/process_group";
import { concat, narrow } from "../tensor/ops/shape";
import { Rng } from "../tensor/prng";
import { tensor, type Tensor } from "../tensor/tensor";

/** Stream tag of the shuffle permutations in Rng.fromSeed(seed, tag, step) ("moco" in ASCII). */
const SHUFFLE_STREAM = 0x6d6f636f;

/** The permutation of a global batch of n key images at key step `step`: reproducible from the run's seed. */
export function keyPermutation(seed: number, step: number, n: number): Int32Array {
  return Rng.fromSeed(seed, SHUFFLE_STREAM, step).permutation(n);
}

/** inverse[perm[i]] = i (torch.argsort of a permutation). */
export function inversePermutation(perm: Int32Array): Int32Array {
  const inv = new Int32Array(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** Rows `rows` of x [n, ...] in that order: runs of consecutive rows are narrowed, then concatenated. */
export function selectRows(x: Tensor, rows: ArrayLike<number>): Tensor {
  const parts: Tensor[] = [];
  for (let i = 0; i < rows.length; ) {
    let j = i + 1;
    while (j < rows.length && rows[j] === rows[j - 1] + 1) j++;
    parts.push(narrow(x, 0, rows[i], j - i));
    i = j;
  }
  return parts.length === 1 ? parts[0] : concat(parts, 0);
}

export interface ShuffledKeys {
  /** The keys of this rank's own images, in its batch order. */
  local: Tensor;
  /** Every rank's keys in global-batch order (rank 0's images first): what the queue receives. */
  global: Tensor;
  /** The permutation used: rank r encoded the images permutation[r*n .. (r+1)*n) of the global batch. */
  permutation: Int32Array;
}

/**
 * MoCo's shuffle-BN across ranks (moco.py's _batch_shuffle_ddp / _batch_unshuffle_ddp): the key images of every
 * rank are all-gathered, rank 0's permutation of the global batch is broadcast, each rank encodes its slice of the
 * permuted batch (so its key BN statistics come from other images than its query BN statistics, which would
 * otherwise let the model find the positive through the batch statistics), and the keys are all-gathered and put
 * back in global-batch order. Every rank must pass a batch of the same size. Not differentiable (keys are
 * constants).
 */
export function shuffledKeys(group: ProcessGroup, xk: Tensor, draw: (n: number) => Int32Array, encode: (x: Tensor) => Tensor): ShuffledKeys {
  const n = xk.shape[0];
  const total = n * group.size;
  const images = group.allGather(xk);
  const perm = tensor(group.rank === 0 ? draw(total) : new Int32Array(total), [total], group.device);
  group.broadcast_(perm, 0);
  const permutation = perm.toArraySync() as Int32Array;
  const mine = selectRows(images, permutation.subarray(group.rank * n, (group.rank + 1) * n));
  const shuffled = group.allGather(encode(mine));
  const global = selectRows(shuffled, inversePermutation(permutation));
  return { local: narrow(global, 0, group.rank * n, n), global, permutation };
}
