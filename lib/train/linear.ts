import * as fs from "node:fs";
import * as path from "node:path";
import { batchIndices } from "../data/sampler";
import { describePipeline, type Pipeline } from "../data/transforms";
import { DistributedDataParallel } from "../distributed/ddp";
import { loadCheckpoint, type LoadedCheckpoint } from "../io/checkpoint";
import { buildOptimizer, epochLearningRate } from "../optim/build";
import type { SGD } from "../optim/sgd";
import { crossEntropy } from "../tensor/ops/loss";
import type { Tensor } from "../tensor/tensor";
import { bitSettings, runLabel } from "./bit_settings";
import { classifierAtBits, type ClassifierAtBits } from "./classifier";
import type { ClassifierData } from "./classifier_data";
import { openClassifierData } from "./classifier_data";
import { accuracy, evaluate, loaderBatches, type Accuracy, type LabelledBatch } from "./evaluate";
import { FeatureCache, isDeterministic } from "./feature_cache";
import { readStateDict, type LoadedStateDict } from "./pretrained";
import { runMarkdown, sweepResults, writeRunResults, type RunResults, type SettingResult } from "./results";
import { withRun, type Run, type RunOptions } from "./run";
import { freshStartEpoch } from "./resume_request";
import { writeSettingFolder } from "./setting_folder";
import { restoreTrainingState, saveTrainingState } from "./state";
import { trainEpochs } from "./train_loop";

/** Kept here for callers of the linear runner; ptq reads them from bit_settings. */
export { bitSettings, runLabel };

export interface LinearRunOptions extends RunOptions {
  printFreq: number;
  /**
   * true: continue the sweep in `output` (finished settings are kept, the one in progress resumes from its
   * checkpoint); a string: resume the (single) setting from that checkpoint; false: start afresh.
   */
  resume: string | boolean;
  /** Bit settings ("fp", "4w4f", ...); default LINEAR.BITS, or QUANT.W.BIT/A.BIT when that is empty. */
  settings?: readonly string[];
  /** Stop each setting after this many epochs of this process (tests of resume); the schedule spans TRAIN.EPOCHS. */
  stopAfterEpochs?: number;
  /** Replaces the linear-eval pipelines (tests: no augmentation). */
  pipelines?: { train: Pipeline; eval: Pipeline };
  shuffle?: boolean;
  /** Cache the frozen backbone's features when the pipelines allow it (default true; tests compare both paths). */
  cacheFeatures?: boolean;
}

export interface LinearRunResult {
  results: RunResults;
  /** Settings that finished every epoch in this call or before it. */
  complete: boolean;
}

/** What a setting's checkpoint keeps besides tensors, so a resumed run reports as an uninterrupted one. */
interface History {
  losses: number[];
  evals: { epoch: number; top1: number; top5: number; loss: number }[];
  seconds: number;
}

interface Context {
  run: Run;
  o: LinearRunOptions;
  data: ClassifierData;
  state: LoadedStateDict;
}

/**
 * Linear evaluation (TRAIN.LINEAR_EVAL) or fine-tuning of a pretrained backbone, one classifier per bit setting
 * (§6.1-6.2 of the reference, with its silent failures turned into errors): the backbone comes from MODEL.PRETRAINED
 * with every key accounted for, the frozen backbone is quantized from a calibration pass (at "fp" nothing is
 * quantized, the stem included), the classifier is always full precision, and each setting is checkpointed every
 * epoch and resumable. Writes `<output>/<bits>/` per setting and results.{json,md,csv,svg} for the sweep.
 */
export async function runLinear(o: LinearRunOptions): Promise<LinearRunResult> {
  const settings = bitSettings(o.cfg, o.settings);
  if (typeof o.resume === "string" && settings.length > 1) throw new Error("--resume PATH resumes one setting; pass --bits with one setting, or a bare --resume for the whole sweep");
  return withRun(o, (run) => sweep(run, o, settings));
}

async function sweep(run: Run, o: LinearRunOptions, settings: string[]): Promise<LinearRunResult> {
  const { cfg, progress } = run;
  if (cfg.MODEL.CHECKPOINT && settings.length > 1) throw new Error("MODEL.CHECKPOINT resumes one setting; for a sweep use --resume with the sweep's --output");
  // Only MODEL.CHECKPOINT set: the backbone (and scales) come from the run being resumed.
  const pretrained = cfg.MODEL.PRETRAINED || cfg.MODEL.CHECKPOINT;
  if (!pretrained) throw new Error("MODEL.PRETRAINED is not set: name the SSL checkpoint to evaluate (a run folder, checkpoint.json, or a PyTorch checkpoint.pth.tar)");
  const state = await readStateDict(pretrained);
  const data = await openClassifierData(cfg, { device: o.device, rank: run.rank, worldSize: run.worldSize, pipelines: o.pipelines, shuffle: o.shuffle });
  try {
    progress.log(`${cfg.TRAIN.LINEAR_EVAL ? "linear evaluation" : "fine-tuning"} of ${cfg.MODEL.ARCH} on ${data.train.name}: ${data.train.length} training / ${data.val.length} validation images, bits ${settings.join(", ")}`);
    progress.log(`train transform: ${describePipeline(data.pipelines.train)}\nval transform: ${describePipeline(data.pipelines.eval)}`);
    const results: SettingResult[] = [];
    let complete = true;
    for (const bits of settings) {
      const r = await runSetting({ run, o, data, state }, bits);
      if (r) results.push(r);
      else complete = false;
    }
    const out = sweepResults("linear", cfg, state, data.val.length, results);
    if (run.main && results.length) {
      await writeRunResults(o.output, out);
      progress.log(`\n${runMarkdown(out)}\nwritten: ${["results.json", "results.md", "results.csv", "results.svg"].map((f) => path.join(o.output, f)).join(", ")}`);
    }
    return { results: out, complete };
  } finally {
    data.dispose();
  }
}

/** Cached features batch by batch, gathered only when the loop asks for them. */
function* gathered(cache: FeatureCache, batches: Int32Array[]): IterableIterator<LabelledBatch> {
  for (const idx of batches) yield cache.batch(idx);
}

/** How a setting's classifier sees its data: through the whole model, or from the frozen backbone's cached features. */
interface DataPath {
  forward(x: Tensor): Tensor;
  batches(epoch: number): AsyncIterable<LabelledBatch> | Iterable<LabelledBatch>;
  validate(): Promise<Accuracy>;
  dispose(): void;
}

/** Linear evaluation on deterministic pipelines in one process: the frozen (and calibrated) backbone's features, computed once. */
async function dataPath(ctx: Context, c: ClassifierAtBits): Promise<DataPath> {
  const { run, o, data } = ctx;
  const { cfg } = run;
  const { model } = c;
  const evalBatch = Math.min(256, 2 * cfg.TRAIN.BATCH_SIZE);
  const cacheable = cfg.TRAIN.LINEAR_EVAL && !run.group && o.cacheFeatures !== false && isDeterministic(data.pipelines.train) && isDeterministic(data.pipelines.eval);
  if (!cacheable)
    return {
      forward: (x) => model.forward(x),
      batches: (epoch) => loaderBatches(data.trainLoader, epoch),
      validate: () => evaluate(model, data.valLoader, cfg.MODEL.NUM_CLASSES, run.group),
      dispose: () => {},
    };
  const tc = Date.now();
  const train = await FeatureCache.build(model, data.train, data.pipelines.train, evalBatch, o.device);
  const val = await FeatureCache.build(model, data.val, data.pipelines.eval, evalBatch, o.device).catch((e: unknown) => {
    train.dispose();
    throw e;
  });
  run.progress.log(`[${c.bits}] augmentation off: features of the frozen backbone cached once (${train.length} training, ${val.length} validation images, ${((Date.now() - tc) / 1000).toFixed(1)} s)`);
  const forward = (x: Tensor) => model.fc.forward(x);
  return {
    forward,
    batches: (epoch) => {
      const sampler = data.trainLoader.sampler;
      sampler.setEpoch(epoch);
      return gathered(train, batchIndices(sampler.indices(), cfg.TRAIN.BATCH_SIZE, false));
    },
    validate: async () => {
      const order = Int32Array.from({ length: val.length }, (_, i) => i);
      return accuracy(forward, gathered(val, batchIndices(order, evalBatch, false)), cfg.MODEL.NUM_CLASSES);
    },
    dispose: () => {
      train.dispose();
      val.dispose();
    },
  };
}

/** One bit setting: returns its result, or null when stopped early (stopAfterEpochs). */
async function runSetting(ctx: Context, bits: string): Promise<SettingResult | null> {
  const { run, o } = ctx;
  const { cfg, progress } = run;
  const dir = path.join(o.output, bits);
  const resultFile = path.join(dir, "result.json");
  const checkpointFile = path.join(dir, "checkpoint.json");
  if (o.resume === true && fs.existsSync(resultFile)) {
    const done = JSON.parse(fs.readFileSync(resultFile, "utf-8")) as SettingResult;
    progress.log(`[${bits}] already finished (${resultFile}): top-1 ${done.top1.toFixed(2)}`);
    return done;
  }
  const resumeFrom =
    typeof o.resume === "string" ? o.resume : o.resume === true ? (fs.existsSync(checkpointFile) ? checkpointFile : null) : cfg.MODEL.CHECKPOINT || null;
  const ckpt = resumeFrom ? await loadCheckpoint(resumeFrom) : null;
  const t0 = Date.now();
  // A fresh fc with the default init (the same for every setting), then the backbone (or, WARMUP_FC, all of it).
  const c = await classifierAtBits(run, ctx.data, ctx.state, bits, { classifier: cfg.TRAIN.WARMUP_FC ? "required" : "fresh", frozenBackbone: cfg.TRAIN.LINEAR_EVAL });
  let path_: DataPath | null = null;
  try {
    if (c.calibration) {
      const active = Object.keys(c.quant!.activeBits()).length;
      progress.log(`[${bits}] calibrated on ${c.calibration.batches} training batch(es) (${c.calibration.images} images); ${active} layers quantized, classifier in full precision`);
    } else progress.log(`[${bits}] full precision: no quantizer anywhere (the stem included)`);
    path_ = await dataPath(ctx, c);
    const history = await trainSetting(ctx, c, path_, ckpt, { dir, checkpointFile, t0 });
    if (!history) return null;
    const result = settingResult(c, history, cfg.TRAIN.EPOCHS);
    if (run.main) await writeSettingFolder(dir, cfg, { command: "linear", bits, weights: checkpointFile, evalPipeline: ctx.data.pipelines.eval, quant: c.quant });
    if (run.main) fs.writeFileSync(resultFile, JSON.stringify(result, null, 2) + "\n");
    return result;
  } finally {
    path_?.dispose();
    c.dispose();
  }
}

/** Trains one setting's classifier from `ckpt` (or its start); null when stopped before the last epoch. */
async function trainSetting(ctx: Context, c: ClassifierAtBits, data: DataPath, ckpt: LoadedCheckpoint | null, at: { dir: string; checkpointFile: string; t0: number }): Promise<History | null> {
  const { run, o } = ctx;
  const { cfg, group, progress } = run;
  const { model, bits } = c;
  const linearEval = cfg.TRAIN.LINEAR_EVAL;
  const params = model.parameters().filter((p) => p.requiresGrad);
  const optimizer = buildOptimizer(cfg, params);
  try {
    const { startEpoch, history } = ckpt ? resumeSetting(run, c, optimizer, ckpt) : { startEpoch: freshStartEpoch(cfg), history: { losses: [], evals: [], seconds: 0 } as History };
    const prior = history.seconds;
    const ddp = group ? await DistributedDataParallel.create(group, params, linearEval ? [] : model.namedBuffers().map(([, t]) => t)) : null;
    if (run.main) fs.mkdirSync(at.dir, { recursive: true });
    const metrics = run.metricsLog(path.join(at.dir, "metrics.jsonl"));
    const epochs = cfg.TRAIN.EPOCHS;
    const lastEpoch = Math.min(epochs, startEpoch + (o.stopAfterEpochs ?? epochs));
    await trainEpochs(
      {
        optimizer,
        ddp,
        broadcastBuffers: !linearEval,
        epochs,
        steps: ctx.data.trainLoader.length,
        processes: run.worldSize,
        progress,
        label: bits,
        lr: (epoch) => epochLearningRate(cfg, "linear", epoch),
        // Linear evaluation keeps the whole model in eval mode while training (BN frozen), as the original.
        beforeEpoch: () => model.train(!linearEval),
        batches: (epoch) => data.batches(epoch),
        forward: (batch) => ({ loss: crossEntropy(data.forward(batch.x), batch.labels, { labelSmoothing: cfg.TRAIN.LABEL_SMOOTHING }) }),
        afterEpoch: async ({ epoch, meanLoss, lr, seconds, images }) => {
          history.losses.push(meanLoss);
          let acc: Accuracy | null = null;
          if ((epoch > 0 && epoch % 20 === 0) || epoch === epochs - 1) {
            acc = await data.validate();
            history.evals.push({ epoch, top1: acc.top1, top5: acc.top5, loss: acc.loss });
            progress.log(`[${bits}] * Acc@1 ${acc.top1.toFixed(3)} Acc@5 ${acc.top5.toFixed(3)} (epoch ${epoch}, ${acc.images} images)`);
          }
          metrics?.write({ kind: "epoch", bits, epoch, loss: meanLoss, lr, imagesPerSec: images / Math.max(seconds, 1e-3), ...(acc ? { top1: acc.top1, top5: acc.top5, valLoss: acc.loss } : {}) });
          progress.log(`[${bits}] epoch ${epoch}: mean loss ${meanLoss.toFixed(4)} (${seconds.toFixed(1)} s)`);
          if (run.main) await saveSetting(ctx, c, optimizer, at.checkpointFile, epoch, { ...history, seconds: prior + (Date.now() - at.t0) / 1000 });
        },
      },
      startEpoch,
      lastEpoch,
    );
    history.seconds = prior + (Date.now() - at.t0) / 1000;
    return lastEpoch < epochs ? null : history;
  } finally {
    optimizer.dispose();
  }
}

/** Restores a setting's classifier and optimizer from its checkpoint, with the history so far. */
function resumeSetting(run: Run, c: ClassifierAtBits, optimizer: SGD, ckpt: LoadedCheckpoint): { startEpoch: number; history: History } {
  // An intermediate linear-eval checkpoint holds the classifier only (the frozen backbone is PRETRAINED's).
  const holds = (ckpt.manifest.config as { holds?: string } | null)?.holds;
  restoreTrainingState(ckpt, holds === "classifier" ? c.model.fc : c.model, optimizer, run.device);
  const startEpoch = ckpt.manifest.epoch;
  const m = ckpt.manifest.metrics as Partial<History> | null;
  run.progress.log(`[${c.bits}] resumed from ${ckpt.path} at epoch ${startEpoch}`);
  return { startEpoch, history: { losses: m?.losses ?? [], evals: m?.evals ?? [], seconds: m?.seconds ?? 0 } };
}

/**
 * A setting's checkpoint after `epoch`. With a frozen backbone only the classifier changes: the epochs before the
 * last save just it (a whole ResNet-18 every epoch would dominate a cached-feature run); the last epoch saves the
 * whole classifier model, which ptq and fine-tuning (WARMUP_FC) read.
 */
async function saveSetting(ctx: Context, c: ClassifierAtBits, optimizer: SGD, file: string, epoch: number, history: History): Promise<void> {
  const { cfg } = ctx.run;
  const linearEval = cfg.TRAIN.LINEAR_EVAL;
  const whole = !linearEval || epoch === cfg.TRAIN.EPOCHS - 1;
  await saveTrainingState(file, whole ? c.model : c.model.fc, optimizer, {
    epoch: epoch + 1,
    step: (epoch + 1) * ctx.data.trainLoader.length,
    config: { command: "linear", holds: whole ? "model" : "classifier", method: runLabel(ctx.state).method, bits: c.bits, arch: cfg.MODEL.ARCH, dataset: cfg.TRAIN.DATASET, numClasses: cfg.MODEL.NUM_CLASSES, linearEval, pretrained: ctx.state.file },
    metrics: history,
  });
}

/** The setting's result from its history: the last validation (which must be the last epoch's) and the best. */
function settingResult(c: ClassifierAtBits, history: History, epochs: number): SettingResult {
  const last = history.evals[history.evals.length - 1];
  if (!last || last.epoch !== epochs - 1) throw new Error(`[${c.bits}] no validation of the last epoch was recorded`);
  const best = history.evals.reduce((b, e) => (e.top1 > b.top1 ? e : b), last);
  return {
    bits: c.bits,
    w: c.w,
    a: c.a,
    top1: last.top1,
    top5: last.top5,
    bestTop1: best.top1,
    bestEpoch: best.epoch,
    valLoss: last.loss,
    trainLoss: history.losses[history.losses.length - 1] ?? null,
    epochs,
    calibration: c.calibration,
    seconds: history.seconds,
  };
}
