import type { Config } from "../config";
import type { ImageDataset } from "../data/dataset";
import { openDataset } from "../data/datasets";
import { DataLoader } from "../data/loader";
import { DistributedEvalSampler, DistributedSampler } from "../data/sampler";
import { subset } from "../data/subset";
import { linearEvalPipelines, type Pipeline } from "../data/transforms";
import type { Device } from "../tensor/binding";
import { augmentDevice, uploader } from "./device_placement";

/** The datasets and loaders of a classifier run (linear, ptq). */
export interface ClassifierData {
  train: ImageDataset;
  val: ImageDataset;
  /** Linear-eval training pipeline, shuffled by the distributed sampler (the calibration batches come from it too). */
  trainLoader: DataLoader;
  /**
   * The validation set (DATA.VAL_SUBSET) in order, batches of min(256, 2 * BATCH_SIZE); with several processes
   * this rank's shard of whole batches (evaluate() with the process group sums the ranks' counts).
   */
  valLoader: DataLoader;
  pipelines: { train: Pipeline; eval: Pipeline };
  dispose(): void;
}

export interface ClassifierDataOptions {
  device: Device;
  rank?: number;
  worldSize?: number;
  /** Replaces the linear-eval pipelines (tests: no augmentation). */
  pipelines?: { train: Pipeline; eval: Pipeline };
  /** Shuffle the training set each epoch (default true). */
  shuffle?: boolean;
}

export async function openClassifierData(cfg: Config, o: ClassifierDataOptions): Promise<ClassifierData> {
  const where = { root: cfg.DATA.ROOT || undefined, onCorrupt: cfg.DATA.ON_BAD_IMAGE };
  const train = subset(await openDataset(cfg.TRAIN.DATASET, "train", where), cfg.DATA.TRAIN_SUBSET);
  const val = subset(await openDataset(cfg.TRAIN.DATASET, "validation", where), cfg.DATA.VAL_SUBSET);
  const classes = cfg.MODEL.NUM_CLASSES;
  const maxLabel = (ds: ImageDataset) => ds.labels.reduce((m, v) => Math.max(m, v), -1);
  for (const ds of [train, val]) {
    if (maxLabel(ds) >= classes)
      throw new Error(`MODEL.NUM_CLASSES is ${classes}, but the ${ds.mode} set of ${ds.name} has label ${maxLabel(ds)}; set it to ${ds.classes.length || maxLabel(ds) + 1}`);
  }
  const standard = linearEvalPipelines(cfg);
  const pipelines = o.pipelines ?? (cfg.LINEAR.AUGMENT ? standard : { train: standard.eval, eval: standard.eval });
  const seed = cfg.SEED ?? 0;
  const rank = o.rank ?? 0;
  const upload = uploader(o.device);
  const augmentOn = augmentDevice(o.device);
  const trainLoader = new DataLoader({
    dataset: train,
    pipeline: pipelines.train,
    batchSize: cfg.TRAIN.BATCH_SIZE,
    sampler: new DistributedSampler({ length: train.length, numReplicas: o.worldSize ?? 1, rank, shuffle: o.shuffle ?? true, seed }),
    seed,
    rank,
    augmentOn,
    upload,
  });
  const valBatch = Math.min(256, 2 * cfg.TRAIN.BATCH_SIZE);
  const valLoader = new DataLoader({
    dataset: val,
    pipeline: pipelines.eval,
    batchSize: valBatch,
    sampler: new DistributedEvalSampler({ length: val.length, batchSize: valBatch, numReplicas: o.worldSize ?? 1, rank }),
    seed,
    augmentOn,
    upload,
  });
  if (trainLoader.length === 0) throw new Error(`the training set of ${train.name} is empty`);
  return {
    train,
    val,
    trainLoader,
    valLoader,
    pipelines,
    dispose() {
      train.dispose();
      val.dispose();
    },
  };
}
