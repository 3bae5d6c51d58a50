import * as fs from "node:fs";
import * as path from "node:path";
import { dumpConfig, type Config } from "../config";
import { formatBitSetting, parseBitSetting } from "../quant/bits";
import { setDataThreads } from "../data/augment";
import { describePipeline, type Pipeline } from "../data/transforms";
import { DistributedDataParallel } from "../distributed/ddp";
import { worldFromEnv } from "../distributed/launch";
import { destroyProcessGroup, initProcessGroup, type Distributed } from "../distributed/process_group";
import { loadCheckpoint } from "../io/checkpoint";
import { createResNet, type ResNet } from "../nn/resnet";
import { buildOptimizer, epochLearningRate } from "../optim/build";
import type { SGD } from "../optim/sgd";
import type { QuantizedEncoder } from "../quant/quant_model";
import { backward } from "../tensor/autograd";
import type { Device } from "../tensor/binding";
import { crossEntropy } from "../tensor/ops/loss";
import { Generator } from "../tensor/ops/random";
import { tidy } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import { calibrate, calibrationBatches, quantizeClassifier, type CalibrationResult } from "./calibrate";
import { openClassifierData, type ClassifierData } from "./classifier_data";
import { moveToDevice } from "./device_placement";
import { accuracy, evaluate, loaderBatches, type Accuracy, type LabelledBatch } from "./evaluate";
import { FeatureCache, isDeterministic } from "./feature_cache";
import { batchIndices } from "../data/sampler";
import { MetricsLog } from "./metrics_log";
import { freshStartEpoch } from "./resume_request";
import { describeLoad, loadIntoModel, readStateDict, type LoadedStateDict } from "./pretrained";
import { Progress } from "./progress";
import { runMarkdown, writeRunResults, type RunResults, type SettingResult } from "./results";
import { restoreTrainingState, saveTrainingState } from "./state";

export interface LinearRunOptions {
  cfg: Config;
  output: string;
  device: Device;
  workers: number;
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
  quiet?: boolean;
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

/** The settings a linear or ptq run evaluates: LINEAR.BITS, else the config's single QUANT.W.BIT / QUANT.A.BIT. */
export function bitSettings(cfg: Config, given?: readonly string[]): string[] {
  const list = given && given.length ? given : cfg.LINEAR.BITS.length ? cfg.LINEAR.BITS : [formatBitSetting({ w: cfg.QUANT.W.BIT, a: cfg.QUANT.A.BIT })];
  const out = list.map((s) => formatBitSetting(parseBitSetting(s)));
  const dup = out.find((s, i) => out.indexOf(s) !== i);
  if (dup) throw new Error(`bit setting '${dup}' is listed twice`);
  return out;
}

/** A run's label: the SSL method recorded in our checkpoint, else the checkpoint's file or folder name. */
export function runLabel(state: LoadedStateDict): { label: string; method: string | null } {
  const cfg = state.manifest?.config as { ssl?: unknown; method?: unknown } | null | undefined;
  const method = typeof cfg?.ssl === "string" ? cfg.ssl : typeof cfg?.method === "string" ? cfg.method : null;
  if (method) return { label: method, method };
  const p = state.file.replace(/[/\\]checkpoint\.json$/, "");
  return { label: path.basename(p).replace(/\.(pth\.tar|pth|pt|tar|json|safetensors)$/, ""), method: null };
}

/** What a setting's checkpoint keeps besides tensors, so a resumed run reports as an uninterrupted one. */
interface History {
  losses: number[];
  evals: { epoch: number; top1: number; top5: number; loss: number }[];
  seconds: number;
}

interface Context {
  o: LinearRunOptions;
  cfg: Config;
  data: ClassifierData;
  state: LoadedStateDict;
  dist: Distributed | null;
  main: boolean;
  progress: Progress;
}

/**
 * Linear evaluation (TRAIN.LINEAR_EVAL) or fine-tuning of a pretrained backbone, one classifier per bit setting
 * (§6.1-6.2 of the reference, with its silent failures turned into errors): the backbone comes from MODEL.PRETRAINED
 * with every key accounted for, the frozen backbone is quantized from a calibration pass (at "fp" nothing is
 * quantized, the stem included), the classifier is always full precision, and each setting is checkpointed every
 * epoch and resumable. Writes `<output>/<bits>/` per setting and results.{json,md,csv,svg} for the sweep.
 */
export async function runLinear(o: LinearRunOptions): Promise<LinearRunResult> {
  const { cfg } = o;
  const settings = bitSettings(cfg, o.settings);
  if (typeof o.resume === "string" && settings.length > 1) throw new Error("--resume PATH resumes one setting; pass --bits with one setting, or a bare --resume for the whole sweep");
  const world = worldFromEnv();
  const dist = world && world.worldSize > 1 ? await initProcessGroup({ world, device: o.device }) : null;
  const main = (dist?.world.rank ?? 0) === 0;
  try {
    setDataThreads(Math.max(1, o.workers));
    if (cfg.MODEL.CHECKPOINT && settings.length > 1) throw new Error("MODEL.CHECKPOINT resumes one setting; for a sweep use --resume with the sweep's --output");
    // Only MODEL.CHECKPOINT set: the backbone (and scales) come from the run being resumed.
    const pretrained = cfg.MODEL.PRETRAINED || cfg.MODEL.CHECKPOINT;
    if (!pretrained) throw new Error("MODEL.PRETRAINED is not set: name the SSL checkpoint to evaluate (a run folder, checkpoint.json, or a PyTorch checkpoint.pth.tar)");
    const state = await readStateDict(pretrained);
    const data = await openClassifierData(cfg, { device: o.device, rank: dist?.world.rank, worldSize: dist?.world.worldSize, pipelines: o.pipelines, shuffle: o.shuffle });
    const progress = new Progress(o.printFreq, process.stdout, main && !o.quiet);
    const ctx: Context = { o, cfg, data, state, dist, main, progress };
    if (main) {
      fs.mkdirSync(o.output, { recursive: true });
      fs.writeFileSync(path.join(o.output, "config.yaml"), dumpConfig(cfg));
      progress.log(`${cfg.TRAIN.LINEAR_EVAL ? "linear evaluation" : "fine-tuning"} of ${cfg.MODEL.ARCH} on ${data.train.name}: ${data.train.length} training / ${data.val.length} validation images, bits ${settings.join(", ")}`);
      progress.log(`train transform: ${describePipeline(data.pipelines.train)}\nval transform: ${describePipeline(data.pipelines.eval)}`);
    }
    const { label, method } = runLabel(state);
    const results: SettingResult[] = [];
    let complete = true;
    for (const bits of settings) {
      const r = await runSetting(ctx, bits);
      if (r) results.push(r);
      else complete = false;
    }
    const run: RunResults = {
      format: "ssql-linear-results",
      version: 1,
      command: "linear",
      label,
      method,
      pretrained: state.file,
      arch: cfg.MODEL.ARCH,
      dataset: cfg.TRAIN.DATASET,
      linearEval: cfg.TRAIN.LINEAR_EVAL,
      epochs: cfg.TRAIN.EPOCHS,
      valImages: data.val.length,
      settings: results,
    };
    if (main && results.length) {
      await writeRunResults(o.output, run);
      progress.log(`\n${runMarkdown(run)}\nwritten: ${["results.json", "results.md", "results.csv", "results.svg"].map((f) => path.join(o.output, f)).join(", ")}`);
    }
    data.dispose();
    return { results: run, complete };
  } finally {
    if (dist) await destroyProcessGroup();
  }
}

/** Cached features batch by batch, gathered only when the loop asks for them. */
function* gathered(cache: FeatureCache, batches: Int32Array[]): IterableIterator<LabelledBatch> {
  for (const idx of batches) yield cache.batch(idx);
}

/** One bit setting: returns its result, or null when stopped early (stopAfterEpochs). */
async function runSetting(ctx: Context, bits: string): Promise<SettingResult | null> {
  const { o, cfg, data, dist, main, progress } = ctx;
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
  const { w, a } = parseBitSetting(bits);
  const fp = w === 0 && a === 0;
  const seed = cfg.SEED ?? 0;
  const t0 = Date.now();

  // A fresh fc with the default init (the same for every setting), then the backbone (or, WARMUP_FC, all of it).
  const model: ResNet = createResNet(cfg.MODEL.ARCH, new Generator(seed), { numClasses: cfg.MODEL.NUM_CLASSES });
  let quant: QuantizedEncoder | null = null;
  let optimizer: SGD | null = null;
  let cache: { train: FeatureCache; val: FeatureCache } | null = null;
  try {
    const report = loadIntoModel(model, ctx.state, "cpu", cfg.TRAIN.WARMUP_FC ? "required" : "fresh");
    progress.log(`[${bits}] ${describeLoad(report, ctx.state.file)}`);
    moveToDevice(model, o.device);
    const linearEval = cfg.TRAIN.LINEAR_EVAL;
    if (linearEval) for (const [n, p] of model.namedParameters()) if (!n.startsWith("fc.")) p.requiresGrad = false;

    // Scales come from the pretrained weights before any training, so a resumed run recalibrates to the same ones.
    let calibration: CalibrationResult | null = null;
    if (!fp) {
      quant = quantizeClassifier(model, cfg);
      const n = calibrationBatches(cfg, data.trainLoader.length);
      calibration = await calibrate(model, quant, data.trainLoader, n, { w, a }, dist?.group ?? null);
      const active = Object.keys(quant.activeBits()).length;
      progress.log(`[${bits}] calibrated on ${calibration.batches} training batch(es) (${calibration.images} images); ${active} layers quantized, classifier in full precision`);
    } else progress.log(`[${bits}] full precision: no quantizer anywhere (the stem included)`);

    // Linear evaluation on a deterministic pipeline: the frozen (and calibrated) backbone's features, computed once.
    if (linearEval && !dist && o.cacheFeatures !== false && isDeterministic(data.pipelines.train) && isDeterministic(data.pipelines.eval)) {
      const tc = Date.now();
      const vbs = Math.min(256, 2 * cfg.TRAIN.BATCH_SIZE);
      const train = await FeatureCache.build(model, data.train, data.pipelines.train, vbs, o.device);
      const val = await FeatureCache.build(model, data.val, data.pipelines.eval, vbs, o.device).catch((e: unknown) => {
        train.dispose();
        throw e;
      });
      cache = { train, val };
      progress.log(`[${bits}] augmentation off: features of the frozen backbone cached once (${train.length} training, ${val.length} validation images, ${((Date.now() - tc) / 1000).toFixed(1)} s)`);
    }
    const cached = cache;
    const forward = (x: Tensor) => (cached ? model.fc.forward(x) : model.forward(x));
    const epochBatches = (epoch: number): AsyncIterable<LabelledBatch> | Iterable<LabelledBatch> => {
      if (!cached) return loaderBatches(data.trainLoader, epoch);
      const sampler = data.trainLoader.sampler;
      sampler.setEpoch(epoch);
      return gathered(cached.train, batchIndices(sampler.indices(), cfg.TRAIN.BATCH_SIZE, false));
    };
    const validate = async (): Promise<Accuracy> => {
      if (!cached) return evaluate(model, data.valLoader, cfg.MODEL.NUM_CLASSES, dist?.group ?? null);
      const c = cached.val;
      const order = Int32Array.from({ length: c.length }, (_, i) => i);
      return accuracy(forward, gathered(c, batchIndices(order, Math.min(256, 2 * cfg.TRAIN.BATCH_SIZE), false)), cfg.MODEL.NUM_CLASSES);
    };

    const params = model.parameters().filter((p) => p.requiresGrad);
    optimizer = buildOptimizer(cfg, params);

    let startEpoch = freshStartEpoch(cfg);
    let history: History = { losses: [], evals: [], seconds: 0 };
    if (ckpt) {
      // An intermediate linear-eval checkpoint holds the classifier only (the frozen backbone is PRETRAINED's).
      const holds = (ckpt.manifest.config as { holds?: string } | null)?.holds;
      restoreTrainingState(ckpt, holds === "classifier" ? model.fc : model, optimizer, o.device);
      startEpoch = ckpt.manifest.epoch;
      const m = ckpt.manifest.metrics as Partial<History> | null;
      history = { losses: m?.losses ?? [], evals: m?.evals ?? [], seconds: m?.seconds ?? 0 };
      progress.log(`[${bits}] resumed from ${ckpt.path} at epoch ${startEpoch}`);
    }
    const prior = history.seconds;
    const ddp = dist ? await DistributedDataParallel.create(dist.group, params, linearEval ? [] : model.namedBuffers().map(([, t]) => t)) : null;
    if (main) fs.mkdirSync(dir, { recursive: true });
    const metrics = main ? new MetricsLog(path.join(dir, "metrics.jsonl")) : null;
    const epochs = cfg.TRAIN.EPOCHS;
    const lastEpoch = Math.min(epochs, startEpoch + (o.stopAfterEpochs ?? epochs));
    const loader = data.trainLoader;

    for (let epoch = startEpoch; epoch < lastEpoch; epoch++) {
      const te = Date.now();
      const lr = epochLearningRate(cfg, "linear", epoch);
      for (const g of optimizer.paramGroups) g.lr = lr;
      // Linear evaluation keeps the whole model in eval mode while training (BN frozen), as the original.
      if (linearEval) model.eval();
      else model.train();
      let sum = 0;
      let count = 0;
      let images = 0;
      for await (const batch of epochBatches(epoch)) {
        if (ddp && !linearEval) await ddp.broadcastBuffers();
        const loss: Tensor = tidy(() => {
          const l = crossEntropy(forward(batch.x), batch.labels, { labelSmoothing: cfg.TRAIN.LABEL_SMOOTHING });
          if (ddp) ddp.backward(l);
          else backward(l);
          return l;
        });
        if (ddp) await ddp.finishGradientSync();
        optimizer.step();
        optimizer.zeroGrad();
        const value = await loss.item();
        loss.dispose();
        images += batch.size;
        batch.dispose();
        if (!Number.isFinite(value)) throw new Error(`[${bits}] the loss became ${value} at epoch ${epoch}; lower TRAIN.LR_SCHEDULER.BASE_LR`);
        sum += value;
        count++;
        const secs = (Date.now() - te) / 1000;
        progress.update({ epoch, epochs, step: count, steps: loader.length, loss: value, lr, imagesPerSec: images / Math.max(secs, 1e-3), extra: bits });
      }
      const meanLoss = sum / Math.max(1, count);
      history.losses.push(meanLoss);
      let acc: Accuracy | null = null;
      if ((epoch > 0 && epoch % 20 === 0) || epoch === epochs - 1) {
        acc = await validate();
        history.evals.push({ epoch, top1: acc.top1, top5: acc.top5, loss: acc.loss });
        progress.log(`[${bits}] * Acc@1 ${acc.top1.toFixed(3)} Acc@5 ${acc.top5.toFixed(3)} (epoch ${epoch}, ${acc.images} images)`);
      }
      metrics?.write({ kind: "epoch", bits, epoch, loss: meanLoss, lr, ...(acc ? { top1: acc.top1, top5: acc.top5, valLoss: acc.loss } : {}) });
      progress.log(`[${bits}] epoch ${epoch}: mean loss ${meanLoss.toFixed(4)} (${((Date.now() - te) / 1000).toFixed(1)} s)`);
      if (main) {
        // With a frozen backbone only the classifier changes: the epochs before the last save just it (a whole
        // ResNet-18 every epoch would dominate a cached-feature run); the last epoch saves the whole classifier
        // model, which ptq and fine-tuning (WARMUP_FC) read.
        const whole = !linearEval || epoch === epochs - 1;
        await saveTrainingState(checkpointFile, whole ? model : model.fc, optimizer, {
          epoch: epoch + 1,
          step: (epoch + 1) * loader.length,
          config: { command: "linear", holds: whole ? "model" : "classifier", method: runLabel(ctx.state).method, bits, arch: cfg.MODEL.ARCH, dataset: cfg.TRAIN.DATASET, numClasses: cfg.MODEL.NUM_CLASSES, linearEval, pretrained: ctx.state.file },
          metrics: { ...history, seconds: prior + (Date.now() - t0) / 1000 },
        });
      }
    }
    metrics?.close();
    if (lastEpoch < epochs) return null;
    const last = history.evals[history.evals.length - 1];
    if (!last || last.epoch !== epochs - 1) throw new Error(`[${bits}] no validation of the last epoch was recorded`);
    const best = history.evals.reduce((b, e) => (e.top1 > b.top1 ? e : b), last);
    const result: SettingResult = {
      bits,
      w,
      a,
      top1: last.top1,
      top5: last.top5,
      bestTop1: best.top1,
      bestEpoch: best.epoch,
      valLoss: last.loss,
      trainLoss: history.losses[history.losses.length - 1] ?? null,
      epochs,
      calibration,
      seconds: prior + (Date.now() - t0) / 1000,
    };
    if (main) fs.writeFileSync(resultFile, JSON.stringify(result, null, 2) + "\n");
    return result;
  } finally {
    cache?.train.dispose();
    cache?.val.dispose();
    optimizer?.dispose();
    quant?.dispose();
    model.dispose();
  }
}
