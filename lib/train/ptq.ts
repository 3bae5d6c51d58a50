import * as fs from "node:fs";
import * as path from "node:path";
import { dumpConfig, type Config } from "../config";
import { parseBitSetting } from "../quant/bits";
import { setDataThreads } from "../data/augment";
import { worldFromEnv } from "../distributed/launch";
import { destroyProcessGroup, initProcessGroup, type ProcessGroup } from "../distributed/process_group";
import { createResNet } from "../nn/resnet";
import type { Device } from "../tensor/binding";
import { Generator } from "../tensor/ops/random";
import { calibrate, calibrationBatches, quantizeClassifier, type CalibrationResult } from "./calibrate";
import { openClassifierData } from "./classifier_data";
import { moveToDevice } from "./device_placement";
import { evaluate } from "./evaluate";
import { bitSettings, runLabel } from "./linear";
import { describeLoad, loadIntoModel, readStateDict } from "./pretrained";
import { Progress } from "./progress";
import { runMarkdown, writeRunResults, type RunResults, type SettingResult } from "./results";
import type { Pipeline } from "../data/transforms";

export interface PtqRunOptions {
  cfg: Config;
  output: string;
  device: Device;
  workers: number;
  settings?: readonly string[];
  quiet?: boolean;
  pipelines?: { train: Pipeline; eval: Pipeline };
}

/**
 * The original's ptq worker, working (§6.3: as shipped it needed a missing module): a trained classifier
 * (MODEL.PRETRAINED, else MODEL.CHECKPOINT; every key including fc must load) is calibrated on the first training
 * batches, quantized at each bit setting with the classifier in full precision, and validated once. Under a
 * launcher (several processes) the calibration ranges are merged across ranks, each rank validates its shard of the
 * validation set, and only rank 0 writes.
 */
export async function runPtq(o: PtqRunOptions): Promise<RunResults> {
  const { cfg } = o;
  const settings = bitSettings(cfg, o.settings);
  const world = worldFromEnv();
  const dist = world && world.worldSize > 1 ? await initProcessGroup({ world, device: o.device }) : null;
  try {
    return await ptqSettings(o, settings, dist?.group ?? null);
  } finally {
    if (dist) await destroyProcessGroup();
  }
}

/** Every bit setting, on this process's share of the work. */
async function ptqSettings(o: PtqRunOptions, settings: string[], group: ProcessGroup | null): Promise<RunResults> {
  const { cfg } = o;
  const main = (group?.rank ?? 0) === 0;
  setDataThreads(Math.max(1, o.workers));
  const file = cfg.MODEL.PRETRAINED || cfg.MODEL.CHECKPOINT;
  if (!file) throw new Error("MODEL.PRETRAINED is not set: name the trained classifier (a linear run's setting folder or a PyTorch state dict)");
  const state = await readStateDict(file);
  const data = await openClassifierData(cfg, { device: o.device, rank: group?.rank, worldSize: group?.size, pipelines: o.pipelines });
  const progress = new Progress(1, process.stdout, main && !o.quiet);
  if (main) {
    fs.mkdirSync(o.output, { recursive: true });
    fs.writeFileSync(path.join(o.output, "config.yaml"), dumpConfig(cfg));
  }
  const results: SettingResult[] = [];
  try {
    for (const bits of settings) {
      const t0 = Date.now();
      const { w, a } = parseBitSetting(bits);
      const model = createResNet(cfg.MODEL.ARCH, new Generator(cfg.SEED ?? 0), { numClasses: cfg.MODEL.NUM_CLASSES });
      const quant = w === 0 && a === 0 ? null : quantizeClassifier(model, cfg);
      try {
        const report = loadIntoModel(model, state, "cpu", "required");
        progress.log(`[${bits}] ${describeLoad(report, state.file)}`);
        moveToDevice(model, o.device);
        let calibration: CalibrationResult | null = null;
        if (quant) calibration = await calibrate(model, quant, data.trainLoader, calibrationBatches(cfg, data.trainLoader.length), { w, a }, group);
        const acc = await evaluate(model, data.valLoader, cfg.MODEL.NUM_CLASSES, group);
        progress.log(`[${bits}] * Acc@1 ${acc.top1.toFixed(3)} Acc@5 ${acc.top5.toFixed(3)} (${acc.images} images${calibration ? `, calibrated on ${calibration.images}` : ""})`);
        results.push({ bits, w, a, top1: acc.top1, top5: acc.top5, bestTop1: acc.top1, bestEpoch: 0, valLoss: acc.loss, trainLoss: null, epochs: 0, calibration, seconds: (Date.now() - t0) / 1000 });
      } finally {
        quant?.dispose();
        model.dispose();
      }
    }
  } finally {
    data.dispose();
  }
  const { label, method } = runLabel(state);
  const run: RunResults = {
    format: "ssql-linear-results",
    version: 1,
    command: "ptq",
    label,
    method,
    pretrained: state.file,
    arch: cfg.MODEL.ARCH,
    dataset: cfg.TRAIN.DATASET,
    linearEval: true,
    epochs: 0,
    valImages: data.val.length,
    settings: results,
  };
  if (main) await writeRunResults(o.output, run);
  progress.log(`\n${runMarkdown(run)}`);
  return run;
}
