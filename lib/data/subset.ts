import type { ImageDataset, SourceBatch } from "./dataset";

/** The first `n` samples of a dataset (DATA.TRAIN_SUBSET / VAL_SUBSET); n = 0 or n >= length keeps all. */
export function subset(ds: ImageDataset, n: number): ImageDataset {
  if (!n || n >= ds.length) return ds;
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`subset size must be a non-negative integer, got ${n}`);
  return {
    name: ds.name,
    mode: ds.mode,
    location: ds.location,
    length: n,
    classes: ds.classes,
    labels: ds.labels.subarray(0, n),
    load(indices: Int32Array): Promise<SourceBatch> {
      for (const i of indices) if (i < 0 || i >= n) throw new RangeError(`subset: index ${i} outside the first ${n} samples`);
      return ds.load(indices);
    },
    dispose: () => ds.dispose(),
  };
}
