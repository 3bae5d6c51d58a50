import type { Config } from "../config";
import type { ImageDataset } from "../data/dataset";
import { openDataset } from "../data/datasets";
import { DataLoader } from "../data/loader";
import { DistributedEvalSampler, DistributedSampler } from "../data/sampler";
import { subset } from "../data/subset";
import { linearEvalPipelines } from "../data/transforms";
import { allReduceCounts } from "../distributed/reduce_metrics";
import type { ProcessGroup } from "../distributed/process_group";
import { createResNet, type ResNet } from "../nn/resnet";
import { formatBitSetting, parseBitSetting } from "../quant/bits";
import { noGrad } from "../tensor/autograd";
import { normalize } from "../tensor/ops/norm";
import { Generator } from "../tensor/ops/random";
import { tidy } from "../tensor/scope";
import { tensor, type Tensor, zeros } from "../tensor/tensor";
import { QuantizedEncoder } from "../quant/quant_model";
import { quantSideSpec } from "../quant/config";
import { encoderUnits } from "../ssl/build";
import { calibrate, calibrationBatches } from "./calibrate";
import { augmentDevice, moveToDevice, uploader } from "./device_placement";
import { featureBank, knnCorrect, type KnnParams } from "./knn";
import type { Run } from "./run";

/** One bit setting's kNN result over the whole validation set (every rank gets the same). */
export interface KnnResult {
  bits: string;
  top1: number;
  top5: number;
  bank: number;
  queries: number;
  seconds: number;
}

/** Epochs after which TRAIN.KNN.EVERY asks for an evaluation: every EVERY-th (1-based) and the last. */
export function knnDue(cfg: Config, epoch: number): boolean {
  const every = cfg.TRAIN.KNN.EVERY;
  return every > 0 && ((epoch + 1) % every === 0 || epoch === cfg.TRAIN.EPOCHS - 1);
}

/**
 * The online kNN monitor of SSL pretraining (TRAIN.KNN): the backbone's features of the evaluation transform, a
 * bank from the training set and queries from the validation set, scored by the weighted kNN of knn.ts, at each
 * bit setting of TRAIN.KNN.BITS. The monitor reads the encoder's weights and running statistics into its own
 * copy of the backbone and quantizes that copy (QUANT.BIT_CONFIG, ranges calibrated on linear evaluation's first
 * training batches as `linear` does), so training state (BN statistics, the method's quantizers and bit sampler,
 * every random stream) is never touched: a run with the monitor trains exactly as one without it. With several
 * ranks each extracts its shard of both sets; the bank is gathered back into dataset order, so each query sees
 * the same bank, and the correct counts are summed: the result equals one process's.
 */
export class KnnMonitor {
  private constructor(
    private readonly run: Run,
    private readonly model: ResNet,
    private readonly val: ImageDataset,
    private readonly bankSet: ImageDataset,
    private readonly bankLoader: DataLoader,
    private readonly queryLoader: DataLoader,
    private readonly calibLoader: DataLoader,
    private readonly queryLabels: Int32Array,
    private readonly classes: number,
    private readonly batchSize: number,
  ) {}

  /** The monitor of a run, or null when TRAIN.KNN.EVERY is 0. `train` is the run's training set (not owned). */
  static async create(run: Run, train: ImageDataset): Promise<KnnMonitor | null> {
    const { cfg, device, rank, worldSize } = run;
    if (cfg.TRAIN.KNN.EVERY <= 0) return null;
    const where = { root: cfg.DATA.ROOT || undefined, onCorrupt: cfg.DATA.ON_BAD_IMAGE };
    const val = subset(await openDataset(cfg.TRAIN.DATASET, "validation", where), cfg.DATA.VAL_SUBSET);
    try {
      const bankSet = subsetView(train, cfg.TRAIN.KNN.TRAIN_SUBSET);
      const maxLabel = (ds: ImageDataset) => ds.labels.reduce((m, v) => Math.max(m, v), -1);
      const classes = Math.max(maxLabel(bankSet), maxLabel(val)) + 1;
      if (classes < 1) throw new Error("kNN monitor: the datasets carry no labels");
      const pipes = linearEvalPipelines(cfg);
      const seed = cfg.SEED ?? 0;
      const batchSize = Math.min(256, 2 * cfg.TRAIN.BATCH_SIZE);
      const common = { seed, augmentOn: augmentDevice(device), upload: uploader(device) };
      const evalLoader = (dataset: ImageDataset) =>
        new DataLoader({
          dataset,
          pipeline: pipes.eval,
          batchSize,
          sampler: new DistributedEvalSampler({ length: dataset.length, batchSize, numReplicas: worldSize, rank }),
          ...common,
        });
      // linear's training loader (openClassifierData) as one process sees it, whose first batches calibrate the
      // quantizers: every rank observes the same images, so the ranges (and results) are one process's.
      const calibLoader = new DataLoader({
        dataset: train,
        pipeline: cfg.LINEAR.AUGMENT ? pipes.train : pipes.eval,
        batchSize: cfg.TRAIN.BATCH_SIZE,
        sampler: new DistributedSampler({ length: train.length, numReplicas: 1, rank: 0, shuffle: true, seed }),
        rank: 0,
        ...common,
      });
      const queryLoader = evalLoader(val);
      const queryLabels = Int32Array.from(queryLoader.sampler.indices(), (i) => val.labels[i]);
      // Its own generator: building the copy draws nothing from the training's random streams.
      const model = createResNet(cfg.MODEL.ARCH, new Generator(seed), { numClasses: Math.max(1, cfg.MODEL.NUM_CLASSES || classes) });
      moveToDevice(model, device);
      model.eval();
      return new KnnMonitor(run, model, val, bankSet, evalLoader(bankSet), queryLoader, calibLoader, queryLabels, classes, batchSize);
    } catch (e) {
      val.dispose();
      throw e;
    }
  }

  get bankSize(): number {
    return this.bankSet.length;
  }

  get querySize(): number {
    return this.val.length;
  }

  /** kNN accuracy of `encoder`'s backbone at every setting of TRAIN.KNN.BITS; every rank must call it. */
  async evaluate(encoder: ResNet): Promise<KnnResult[]> {
    const { cfg } = this.run;
    this.copyBackbone(encoder);
    const params: KnnParams = { k: cfg.TRAIN.KNN.K, t: cfg.TRAIN.KNN.T };
    const out: KnnResult[] = [];
    for (const setting of cfg.TRAIN.KNN.BITS) {
      const t0 = Date.now();
      const { w, a } = parseBitSetting(setting);
      const quant = w !== 0 || a !== 0 ? quantizeBackbone(this.model, cfg) : null;
      const owned: Tensor[] = [];
      try {
        if (quant) await calibrate(this.model, quant, this.calibLoader, calibrationBatches(cfg, this.calibLoader.length), { w, a });
        this.model.eval();
        const shard = await this.extract(this.bankLoader);
        if (shard) owned.push(shard);
        const features = await gatherInOrder(this.run.group, shard, this.bankSet.length, this.batchSize, this.model.featureDim, this.run.device);
        if (features !== shard) owned.push(features);
        const bank = featureBank(features, this.bankSet.labels, this.classes);
        owned.push(bank.labels);
        const queries = await this.extract(this.queryLoader);
        let counts = { top1: 0, top5: 0 };
        if (queries) {
          owned.push(queries);
          const labels = tensor(this.queryLabels, [this.queryLabels.length]).keep();
          owned.push(labels);
          counts = knnCorrect(queries, labels, bank, params);
        }
        const [c1, c5, n] = await allReduceCounts(this.run.group, [counts.top1, counts.top5, this.queryLabels.length]);
        out.push({ bits: formatBitSetting({ w, a }), top1: (100 * c1) / n, top5: (100 * c5) / n, bank: this.bankSet.length, queries: n, seconds: (Date.now() - t0) / 1000 });
      } finally {
        for (const t of owned) t.dispose();
        if (quant) {
          quant.fullPrecision();
          quant.dispose();
        }
      }
    }
    return out;
  }

  /** The encoder's backbone weights and BN statistics into the monitor's copy (its own head is never used). */
  private copyBackbone(encoder: ResNet): void {
    const mine = this.model.stateDict();
    const state = new Map([...encoder.stateDict()].filter(([k]) => !k.startsWith("fc.") && mine.has(k)));
    const { missing } = this.model.loadStateDict(state, false);
    const lacking = missing.filter((k) => !k.startsWith("fc."));
    if (lacking.length) throw new Error(`kNN monitor: the encoder has no ${lacking.join(", ")}`);
  }

  /** L2-normalised features [n, D] of this rank's shard, in its order; null for a rank without batches. */
  private async extract(loader: DataLoader): Promise<Tensor | null> {
    const parts: Tensor[] = [];
    try {
      for await (const b of loader.epoch(0)) {
        parts.push(noGrad(() => tidy(() => normalize(this.model.features(b.images)))));
        b.dispose();
      }
      if (parts.length === 0) return null;
      if (parts.length === 1) return parts.pop()!;
      return parts[0].wrap(parts[0].ops.concat(parts.map((t) => t.handle), 0));
    } finally {
      for (const t of parts) t.dispose();
    }
  }

  dispose(): void {
    this.model.dispose();
    this.val.dispose();
  }
}

/**
 * The monitor's quantizers: quantizeClassifier's (QUANT.W/A, BIT_CONFIG, the classifier in full precision), less
 * the BIT_CONFIG entries of the SSL projector's layers (fc.0, fc.3, ...), which the backbone does not have.
 */
function quantizeBackbone(model: ResNet, cfg: Config): QuantizedEncoder {
  const w = quantSideSpec(cfg.QUANT.W, "QUANT.W");
  const a = quantSideSpec(cfg.QUANT.A, "QUANT.A");
  const backbone = Object.entries(cfg.QUANT.BIT_CONFIG[0] ?? {}).filter(([name]) => !name.startsWith("fc."));
  return new QuantizedEncoder(model, encoderUnits(model), w, a, [{ ...Object.fromEntries(backbone), fc: { w: 0, a: 0 } }], cfg.QUANT.ROUNDING);
}

/** The first n images of `ds` without taking ownership (subset() of a dataset we do not own must not dispose it). */
function subsetView(ds: ImageDataset, n: number): ImageDataset {
  const s = subset(ds, n);
  return s === ds ? ds : { ...s, dispose: () => {} };
}

/**
 * The whole bank on every rank in dataset order, from each rank's DistributedEvalSampler shard (rank r holds
 * batches r, r + W, ...): shards are padded to one length for the all-gather, then the batches are put back in
 * order, so every rank holds what one process would have extracted.
 */
async function gatherInOrder(group: ProcessGroup | null, shard: Tensor | null, total: number, batch: number, dim: number, device: Run["device"]): Promise<Tensor> {
  if (!group || group.size === 1) {
    if (!shard) throw new Error("kNN monitor: the training bank is empty");
    return shard;
  }
  const world = group.size;
  const sizes = Array.from({ length: world }, (_, r) => new DistributedEvalSampler({ length: total, batchSize: batch, numReplicas: world, rank: r }).numSamples);
  const pad = Math.max(...sizes);
  const own = shard?.shape[0] ?? 0;
  const padded = tidy(() => {
    if (own === pad) return shard!;
    const fill = zeros([pad - own, dim], device);
    return shard ? fill.wrap(fill.ops.concat([shard.handle, fill.handle], 0)) : fill;
  });
  try {
    const all = await group.allGatherAsync(padded);
    try {
      return tidy(() => {
        const pieces: Tensor[] = [];
        for (let g = 0; g * batch < total; g++) {
          const r = g % world;
          const j = Math.floor(g / world);
          pieces.push(all.wrap(all.ops.narrow(all.handle, 0, r * pad + j * batch, Math.min(batch, total - g * batch))));
        }
        return all.wrap(all.ops.concat(pieces.map((p) => p.handle), 0));
      });
    } finally {
      all.dispose();
    }
  } finally {
    if (padded !== shard) padded.dispose();
  }
}
