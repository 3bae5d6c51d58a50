import { tensor } from "../tensor/tensor";
import type { ProcessGroup } from "./process_group";

/**
 * Sums integer counts over every rank (correct predictions, samples seen) for validation run on a split of the
 * data; exact up to 2^31. A null group (single process) returns the counts unchanged.
 */
export async function allReduceCounts(group: ProcessGroup | null, counts: readonly number[]): Promise<number[]> {
  for (const c of counts)
    if (!Number.isInteger(c) || Math.abs(c) > 0x7fffffff) throw new RangeError(`allReduceCounts(): ${c} is not an int32 count`);
  if (!group || group.size === 1 || counts.length === 0) return [...counts];
  const t = tensor(Int32Array.from(counts), [counts.length], group.device).keep();
  try {
    await group.allReduceAsync_(t, "sum");
    return Array.from(await t.toArray());
  } finally {
    t.dispose();
  }
}

/** Sums float metrics (a loss summed over this rank's samples) over every rank, in float32. */
export async function allReduceSum(group: ProcessGroup | null, values: readonly number[]): Promise<number[]> {
  if (!group || group.size === 1 || values.length === 0) return [...values];
  const t = tensor(Float32Array.from(values), [values.length], group.device).keep();
  try {
    await group.allReduceAsync_(t, "sum");
    return Array.from(await t.toArray());
  } finally {
    t.dispose();
  }
}

/** Averages float metrics (a loss) over every rank, in float32. */
export async function allReduceMean(group: ProcessGroup | null, values: readonly number[]): Promise<number[]> {
  if (!group || group.size === 1 || values.length === 0) return [...values];
  const t = tensor(Float32Array.from(values), [values.length], group.device).keep();
  try {
    await group.allReduceAsync_(t, "avg");
    return Array.from(await t.toArray());
  } finally {
    t.dispose();
  }
}
