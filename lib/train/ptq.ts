import * as path from "node:path";
import type { Pipeline } from "../data/transforms";
import { bitSettings } from "./bit_settings";
import { classifierAtBits } from "./classifier";
import { openClassifierData } from "./classifier_data";
import { evaluate } from "./evaluate";
import { readStateDict } from "./pretrained";
import { runMarkdown, sweepResults, writeRunResults, type RunResults, type SettingResult } from "./results";
import { withRun, type RunOptions } from "./run";

export interface PtqRunOptions extends RunOptions {
  settings?: readonly string[];
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
  const settings = bitSettings(o.cfg, o.settings);
  return withRun(o, async (run) => {
    const { cfg, group, progress } = run;
    const file = cfg.MODEL.PRETRAINED || cfg.MODEL.CHECKPOINT;
    if (!file) throw new Error("MODEL.PRETRAINED is not set: name the trained classifier (a linear run's setting folder or a PyTorch state dict)");
    const state = await readStateDict(file);
    const data = await openClassifierData(cfg, { device: o.device, rank: run.rank, worldSize: run.worldSize, pipelines: o.pipelines });
    const results: SettingResult[] = [];
    const metrics = run.metricsLog(path.join(o.output, "metrics.jsonl"));
    try {
      for (const bits of settings) {
        const t0 = Date.now();
        const c = await classifierAtBits(run, data, state, bits, { classifier: "required" });
        try {
          const acc = await evaluate(c.model, data.valLoader, cfg.MODEL.NUM_CLASSES, group);
          const calibrated = c.calibration ? `, calibrated on ${c.calibration.images}` : "";
          progress.log(`[${bits}] * Acc@1 ${acc.top1.toFixed(3)} Acc@5 ${acc.top5.toFixed(3)} (${acc.images} images${calibrated})`);
          const { w, a, calibration } = c;
          metrics?.write({ kind: "eval", bits, top1: acc.top1, top5: acc.top5, valLoss: acc.loss });
          results.push({ bits, w, a, top1: acc.top1, top5: acc.top5, bestTop1: acc.top1, bestEpoch: 0, valLoss: acc.loss, trainLoss: null, epochs: 0, calibration, seconds: (Date.now() - t0) / 1000 });
        } finally {
          c.dispose();
        }
      }
    } finally {
      data.dispose();
    }
    const out = sweepResults("ptq", cfg, state, data.val.length, results);
    if (run.main) await writeRunResults(o.output, out);
    progress.log(`\n${runMarkdown(out)}`);
    return out;
  });
}
