import * as path from "node:path";
import { DataLoader } from "../data/loader";
import { openDataset } from "../data/datasets";
import type { ImageDataset } from "../data/dataset";
import { DistributedSampler } from "../data/sampler";
import { sslPipeline } from "../data/transforms";
import { subset } from "../data/subset";
import { DistributedDataParallel } from "../distributed/ddp";
import { convertSyncBatchNorm } from "../distributed/sync_bn";
import { loadCheckpoint } from "../io/checkpoint";
import { regularizerName } from "../losses/regularizer_name";
import { addRegularizer } from "../losses/regularizers";
import { buildOptimizer, epochLearningRate } from "../optim/build";
import type { SGD } from "../optim/sgd";
import { buildSslMethod } from "../ssl/build";
import type { SslMethod } from "../ssl/method";
import { methodStateOf } from "../ssl/method_state";
import { Generator } from "../tensor/ops/random";
import { augmentDevice, moveToDevice, uploader } from "./device_placement";
import { withRun, type Run, type RunOptions } from "./run";
import { freshStartEpoch } from "./resume_request";
import { keepPeriodic } from "./checkpoints";
import { KnnMonitor, knnDue } from "./knn_monitor";
import { restoreTrainingState, resumePath, saveTrainingState } from "./state";
import { trainEpochs } from "./train_loop";

export interface SslRunOptions extends RunOptions {
  printFreq: number;
  /** true: the latest checkpoint in `output`; a string: that checkpoint. */
  resume: string | boolean;
  /** Stop after this many epochs of this process (for tests of resume); the schedule still spans TRAIN.EPOCHS. */
  stopAfterEpochs?: number;
}

export interface SslRunResult {
  epochs: number;
  losses: number[];
  checkpoint: string;
}

/**
 * SSL / SSQL pretraining as the original's ssl worker and runner (§3, §4): SGD with momentum and weight decay on
 * every parameter, the per-epoch cosine learning rate, a checkpoint after every epoch plus the original's periodic
 * copies, and an exact resume (weights, optimizer, epoch, and the method's own state: bit sampler, MoCo queue).
 */
export function runSsl(o: SslRunOptions): Promise<SslRunResult> {
  return withRun(o, (run) => pretrain(run, o));
}

/** The training set's two-view batches, sharded over the ranks; the last partial batch dropped if the method asks. */
function sslLoader(run: Run, dataset: ImageDataset, dropLast: boolean): DataLoader {
  const { cfg, rank, worldSize, device } = run;
  const seed = cfg.SEED ?? 0;
  const loader = new DataLoader({
    dataset,
    pipeline: sslPipeline(cfg),
    batchSize: cfg.TRAIN.BATCH_SIZE,
    sampler: new DistributedSampler({ length: dataset.length, numReplicas: worldSize, rank, shuffle: true, seed }),
    dropLast,
    seed,
    rank,
    augmentOn: augmentDevice(device),
    upload: uploader(device),
  });
  if (loader.length === 0) throw new Error(`the training set (${dataset.length} images) gives no batch of ${cfg.TRAIN.BATCH_SIZE} per process`);
  return loader;
}

/**
 * After an epoch (rank 0): checkpoint.json, then the periodic checkpoint when due (the same tensors file under a
 * second name) and the pruning of old periodic ones (lib/train/checkpoints.ts).
 */
async function saveEpoch(run: Run, method: SslMethod, optimizer: SGD, epoch: number, stepsPerEpoch: number, meanLoss: number): Promise<void> {
  const { cfg } = run;
  const state = { epoch: epoch + 1, step: (epoch + 1) * stepsPerEpoch, method: method.state(), metrics: { loss: meanLoss } };
  const latest = path.join(run.output, "checkpoint.json");
  await saveTrainingState(latest, method, optimizer, { ...state, config: { ssl: cfg.SSL.TYPE, arch: cfg.MODEL.ARCH, dataset: cfg.TRAIN.DATASET } });
  const kept = await keepPeriodic(cfg, run.output, latest, epoch);
  if (kept.copied) run.progress.log("warning: this filesystem has no hard links; the periodic checkpoint is a second copy of the weights");
}

async function pretrain(run: Run, o: SslRunOptions): Promise<SslRunResult> {
  const { cfg, group, worldSize, main, progress } = run;
  const seed = cfg.SEED ?? 0;
  const dataset = subset(
    await openDataset(cfg.TRAIN.DATASET, "train", { root: cfg.DATA.ROOT || undefined, onCorrupt: cfg.DATA.ON_BAD_IMAGE }),
    cfg.DATA.TRAIN_SUBSET,
  );
  const built = buildSslMethod(cfg, new Generator(seed), { group });
  const { method } = built;
  let monitor: KnnMonitor | null = null;
  try {
    monitor = await KnnMonitor.create(run, dataset);
    // Before any step: e.g. MoCo's queue must take whole global batches.
    method.checkBatch(cfg.TRAIN.BATCH_SIZE, worldSize);
    const loader = sslLoader(run, dataset, method.dropLast);
    moveToDevice(method, o.device);
    method.train();
    if (cfg.TRAIN.SYNC_BN) convertSyncBatchNorm(method, group);
    const params = method.parameters();
    const optimizer = buildOptimizer(cfg, params);
    const regularizer = regularizerName(cfg.TRAIN.LOSS.REGULARIZER.NAME);
    try {
      const from = resumePath(o.resume, o.output);
      const ckpt = from ? await loadCheckpoint(from) : null;
      let startEpoch = freshStartEpoch(cfg);
      if (ckpt) {
        restoreTrainingState(ckpt, method, optimizer, o.device);
        method.loadState(methodStateOf(ckpt.manifest, ckpt.path));
        startEpoch = ckpt.manifest.epoch;
      }
      const ddp = group ? await DistributedDataParallel.create(group, params, method.namedBuffers().map(([, t]) => t)) : null;
      const metrics = run.metricsLog(path.join(o.output, "metrics.jsonl"));
      const checkpoint = path.join(o.output, "checkpoint.json");
      const epochs = cfg.TRAIN.EPOCHS;
      const lastEpoch = Math.min(epochs, startEpoch + (o.stopAfterEpochs ?? epochs));
      progress.log(
        `${cfg.SSL.TYPE} on ${dataset.name} (${dataset.length} images, ${loader.length} steps/epoch, ${worldSize} process${worldSize > 1 ? "es" : ""}, ${o.device}); epochs ${startEpoch}..${epochs - 1}`,
      );

      let lastKnn: string | undefined;
      const losses = await trainEpochs(
        {
          optimizer,
          ddp,
          broadcastBuffers: true,
          epochs,
          steps: loader.length,
          processes: worldSize,
          progress,
          lr: (epoch) => epochLearningRate(cfg, "ssl", epoch),
          batches: (epoch) => loader.epoch(epoch),
          forward: (batch) => {
            const out = method.step(batch.views[0], batch.views[1]);
            return { ...out, loss: addRegularizer(out.loss, method, regularizer, cfg.TRAIN.LOSS.LAMBDA) };
          },
          afterStep: () => method.afterStep(),
          status: () => lastKnn,
          onStep: ({ epoch, batch, loss, lr, bits }) =>
            metrics?.write({ kind: "step", epoch, step: batch.index, globalStep: epoch * loader.length + batch.index, loss, lr, ...(bits ? { wBits: bits.w, aBits: bits.a } : {}) }),
          afterEpoch: async ({ epoch, meanLoss, lr, seconds, images }) => {
            metrics?.write({ kind: "epoch", epoch, loss: meanLoss, lr, seconds, imagesPerSec: images / Math.max(seconds, 1e-3) });
            progress.log(`epoch ${epoch}: mean loss ${meanLoss.toFixed(4)} (${seconds.toFixed(1)} s)`);
            if (main) await saveEpoch(run, method, optimizer, epoch, loader.length, meanLoss);
            if (monitor && knnDue(cfg, epoch)) {
              const results = await monitor.evaluate(method.encoder);
              lastKnn = `kNN ${results.map((r) => `${r.bits} ${r.top1.toFixed(1)}`).join(" ")}`;
              for (const r of results) {
                metrics?.write({ kind: "knn", epoch, bits: r.bits, top1: r.top1, top5: r.top5, k: cfg.TRAIN.KNN.K, bank: r.bank, queries: r.queries, seconds: r.seconds });
                progress.log(`epoch ${epoch}: kNN [${r.bits}] top-1 ${r.top1.toFixed(2)} top-5 ${r.top5.toFixed(2)} (k ${Math.min(cfg.TRAIN.KNN.K, r.bank)}, ${r.bank} bank / ${r.queries} queries, ${r.seconds.toFixed(1)} s)`);
              }
            }
          },
        },
        startEpoch,
        lastEpoch,
      );
      return { epochs: lastEpoch, losses, checkpoint };
    } finally {
      optimizer.dispose();
    }
  } finally {
    monitor?.dispose();
    method.dispose();
    built.quant?.dispose();
    dataset.dispose();
  }
}
