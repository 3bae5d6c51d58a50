import { tensor } from "../tensor/tensor";
import type { ProcessGroup } from "./process_group";

/** All-reduces `values` (as int32 or float32, by `dtype`) over every rank; a null group returns them unchanged. */
async function allReduceValues(group: ProcessGroup | null, values: readonly number[], dtype: "int32" | "float32", op: "sum" | "avg"): Promise<number[]> {
  if (!group || group.size === 1 || values.length === 0) return [...values];
  const data = dtype === "int32" ? Int32Array.from(values) : Float32Array.from(values);
  const t = tensor(data, [values.length], group.device).keep();
  try {
    await group.allReduceAsync_(t, op);
    return Array.from(await t.toArray());
  } finally {
    t.dispose();
  }
}

/**
 * Sums integer counts over every rank (correct predictions, samples seen) for validation run on a split of the
 * data; exact up to 2^31. A null group (single process) returns the counts unchanged.
 */
export async function allReduceCounts(group: ProcessGroup | null, counts: readonly number[]): Promise<number[]> {
  for (const c of counts)
    if (!Number.isInteger(c) || Math.abs(c) > 0x7fffffff) throw new RangeError(`allReduceCounts(): ${c} is not an int32 count`);
  return allReduceValues(group, counts, "int32", "sum");
}

/** Sums float metrics (a loss summed over this rank's samples) over every rank, in float32. */
export function allReduceSum(group: ProcessGroup | null, values: readonly number[]): Promise<number[]> {
  return allReduceValues(group, values, "float32", "sum");
}

/** Averages float metrics (a loss) over every rank, in float32. */
export function allReduceMean(group: ProcessGroup | null, values: readonly number[]): Promise<number[]> {
  return allReduceValues(group, values, "float32", "avg");
}
