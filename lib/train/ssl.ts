import * as fs from "node:fs";
import * as path from "node:path";
import { dumpConfig, type Config } from "../config";
import { DataLoader, sslDropLast } from "../data/loader";
import { openDataset } from "../data/datasets";
import { DistributedSampler } from "../data/sampler";
import { setDataThreads } from "../data/augment";
import { sslPipeline } from "../data/transforms";
import { subset } from "../data/subset";
import { initProcessGroup, destroyProcessGroup, type Distributed } from "../distributed/process_group";
import { DistributedDataParallel } from "../distributed/ddp";
import { worldFromEnv } from "../distributed/launch";
import { BatchNorm } from "../nn/layers";
import { regularizerName } from "../losses/regularizer_name";
import { addRegularizer } from "../losses/regularizers";
import { buildOptimizer, epochLearningRate } from "../optim/build";
import type { BitSamplerState } from "../quant/sampling";
import { buildSslMethod } from "../ssl/build";
import { MoCo } from "../ssl/moco";
import { backward } from "../tensor/autograd";
import type { Device } from "../tensor/binding";
import { Generator } from "../tensor/ops/random";
import { tidy } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import { MetricsLog } from "./metrics_log";
import { freshStartEpoch } from "./resume_request";
import { Progress } from "./progress";
import { restoreTrainingState, resumePath, saveTrainingState } from "./state";
import { loadCheckpoint } from "../io/checkpoint";
import { augmentDevice, moveToDevice, uploader } from "./device_placement";

export interface SslRunOptions {
  cfg: Config;
  output: string;
  device: Device;
  workers: number;
  printFreq: number;
  /** true: the latest checkpoint in `output`; a string: that checkpoint. */
  resume: string | boolean;
  /** Stop after this many epochs of this process (for tests of resume); the schedule still spans TRAIN.EPOCHS. */
  stopAfterEpochs?: number;
  quiet?: boolean;
}

export interface SslRunResult {
  epochs: number;
  losses: number[];
  checkpoint: string;
}

/** State that is not a tensor and must survive a resume, so the run continues exactly. */
interface LoopState {
  sampler?: BitSamplerState;
  mocoQueuePtr?: number;
  /** MoCo's key-shuffle step: the next permutation of the multi-process shuffle-BN. */
  mocoKeySteps?: number;
}

/**
 * SSL / SSQL pretraining as the original's ssl worker and runner (§3, §4): SGD with momentum and weight decay on
 * every parameter, the per-epoch cosine learning rate, a checkpoint after every epoch plus the original's periodic
 * copies, and an exact resume (weights, optimizer, epoch, bit sampler, MoCo queue).
 */
export async function runSsl(o: SslRunOptions): Promise<SslRunResult> {
  const { cfg } = o;
  const world = worldFromEnv();
  const dist: Distributed | null = world && world.worldSize > 1 ? await initProcessGroup({ world, device: o.device }) : null;
  const rank = dist?.world.rank ?? 0;
  const size = dist?.world.worldSize ?? 1;
  const main = rank === 0;
  try {
    setDataThreads(Math.max(1, o.workers));
    const seed = cfg.SEED ?? 0;
    const dataset = subset(
      await openDataset(cfg.TRAIN.DATASET, "train", { root: cfg.DATA.ROOT || undefined, onCorrupt: cfg.DATA.ON_BAD_IMAGE }),
      cfg.DATA.TRAIN_SUBSET,
    );
    const dropLast = sslDropLast(cfg.SSL.TYPE);
    const loader = new DataLoader({
      dataset,
      pipeline: sslPipeline(cfg),
      batchSize: cfg.TRAIN.BATCH_SIZE,
      sampler: new DistributedSampler({ length: dataset.length, numReplicas: size, rank, shuffle: true, seed }),
      dropLast,
      seed,
      rank,
      augmentOn: augmentDevice(o.device),
      upload: uploader(o.device),
    });
    if (loader.length === 0) throw new Error(`the training set (${dataset.length} images) gives no batch of ${cfg.TRAIN.BATCH_SIZE} per process`);

    const from = resumePath(o.resume, o.output);
    const ckpt = from ? await loadCheckpoint(from) : null;
    const resumed = (ckpt?.manifest.rng ?? {}) as LoopState;
    const built = buildSslMethod(cfg, new Generator(seed), resumed.sampler);
    const method = built.method;
    moveToDevice(method, o.device);
    method.train();
    if (dist && cfg.TRAIN.SYNC_BN) for (const [, m] of method.namedModules()) if (m instanceof BatchNorm) m.syncGroup = dist.group;
    method.useProcessGroup(dist?.group ?? null);
    // Before any step: MoCo drops the last partial batch, so every step enqueues TRAIN.BATCH_SIZE keys per process.
    if (method instanceof MoCo) method.checkGlobalBatch(cfg.TRAIN.BATCH_SIZE, size);
    const params = method.parameters();
    const optimizer = buildOptimizer(cfg, params);
    const regularizer = regularizerName(cfg.TRAIN.LOSS.REGULARIZER.NAME);

    fs.mkdirSync(o.output, { recursive: true });
    const checkpoint = path.join(o.output, "checkpoint.json");
    let startEpoch = freshStartEpoch(cfg);
    if (ckpt) {
      restoreTrainingState(ckpt, method, optimizer, o.device);
      startEpoch = ckpt.manifest.epoch;
      if (method instanceof MoCo) {
        if (resumed.mocoQueuePtr !== undefined) method.queuePtr = resumed.mocoQueuePtr;
        if (resumed.mocoKeySteps !== undefined) method.keySteps = resumed.mocoKeySteps;
      }
    }
    const ddp = dist ? await DistributedDataParallel.create(dist.group, params, method.namedBuffers().map(([, t]) => t)) : null;

    if (main) fs.writeFileSync(path.join(o.output, "config.yaml"), dumpConfig(cfg));
    const metrics = main ? new MetricsLog(path.join(o.output, "metrics.jsonl")) : null;
    const progress = new Progress(o.printFreq, process.stdout, main && !o.quiet);
    const epochs = cfg.TRAIN.EPOCHS;
    const lastEpoch = Math.min(epochs, startEpoch + (o.stopAfterEpochs ?? epochs));
    const losses: number[] = [];
    if (main && !o.quiet)
      progress.log(`${cfg.SSL.TYPE} on ${dataset.name} (${dataset.length} images, ${loader.length} steps/epoch, ${size} process${size > 1 ? "es" : ""}, ${o.device}); epochs ${startEpoch}..${epochs - 1}`);

    for (let epoch = startEpoch; epoch < lastEpoch; epoch++) {
      const lr = epochLearningRate(cfg, "ssl", epoch);
      for (const g of optimizer.paramGroups) g.lr = lr;
      let sum = 0;
      let count = 0;
      const t0 = Date.now();
      let images = 0;
      for await (const batch of loader.epoch(epoch)) {
        if (ddp) await ddp.broadcastBuffers();
        const [x1, x2] = batch.views;
        let bits: { w: number; a: number } | undefined;
        const loss: Tensor = tidy(() => {
          const out = method.step(x1, x2);
          bits = out.bits;
          const total = addRegularizer(out.loss, method, regularizer, cfg.TRAIN.LOSS.LAMBDA);
          if (ddp) ddp.backward(total);
          else backward(total);
          return total;
        });
        if (ddp) await ddp.finishGradientSync();
        optimizer.step();
        optimizer.zeroGrad();
        method.afterStep();
        const value = await loss.item();
        loss.dispose();
        images += batch.size * size;
        batch.dispose();
        if (!Number.isFinite(value)) throw new Error(`the loss became ${value} at epoch ${epoch}, step ${batch.index}; lower TRAIN.LR_SCHEDULER.BASE_LR`);
        sum += value;
        count++;
        const secs = (Date.now() - t0) / 1000;
        progress.update({
          epoch,
          epochs,
          step: count,
          steps: loader.length,
          loss: value,
          lr,
          imagesPerSec: images / Math.max(secs, 1e-3),
          extra: bits ? `bits ${bits.w}w${bits.a}f` : undefined,
        });
        metrics?.write({ kind: "step", epoch, step: batch.index, loss: value, lr, ...(bits ? { wBits: bits.w, aBits: bits.a } : {}) });
      }
      const meanLoss = sum / Math.max(1, count);
      losses.push(meanLoss);
      metrics?.write({ kind: "epoch", epoch, loss: meanLoss, lr, seconds: (Date.now() - t0) / 1000 });
      progress.log(`epoch ${epoch}: mean loss ${meanLoss.toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      if (main) {
        const loopState: LoopState = {
          sampler: built.sampler?.state(),
          mocoQueuePtr: method instanceof MoCo ? method.queuePtr : undefined,
          mocoKeySteps: method instanceof MoCo ? method.keySteps : undefined,
        };
        await saveTrainingState(checkpoint, method, optimizer, {
          epoch: epoch + 1,
          step: (epoch + 1) * loader.length,
          config: { ssl: cfg.SSL.TYPE, arch: cfg.MODEL.ARCH, dataset: cfg.TRAIN.DATASET },
          rng: loopState,
          metrics: { loss: meanLoss },
        });
        if (epoch === epochs - 1 || epoch % 20 === 0 || epoch % 50 === 0)
          await saveTrainingState(path.join(o.output, `checkpoint_${String(epoch).padStart(4, "0")}.json`), method, optimizer, {
            epoch: epoch + 1,
            step: (epoch + 1) * loader.length,
            rng: loopState,
            metrics: { loss: meanLoss },
          });
      }
    }
    metrics?.close();
    optimizer.dispose();
    method.dispose();
    built.quant?.dispose();
    dataset.dispose();
    return { epochs: lastEpoch, losses, checkpoint };
  } finally {
    if (dist) await destroyProcessGroup();
  }
}
