import * as path from "node:path";
import type { Pipeline } from "../data/transforms";
import { bitSettings } from "./bit_settings";
import { classifierAtBits } from "./classifier";
import { openClassifierData } from "./classifier_data";
import { evaluate } from "./evaluate";
import { readStateDict } from "./pretrained";
import { runMarkdown, sweepResults, writeRunResults, type RunResults, type SettingResult } from "./results";
import { writePtqSetting } from "./ptq_setting";
import { withRun, type RunOptions } from "./run";
import { foldBatchNorms } from "../nn/fold_bn";
import { methodConfigs } from "../quant/reconstruct/methods";
import { reconstructionOptions, wantsReconstruction } from "../quant/reconstruct/options";
import { parseBitSetting } from "../quant/bits";
import { quantSideSpec } from "../quant/config";
import { reconstructClassifier } from "./ptq_reconstruct";

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
  // Every method's config is checked before any work, so a sweep does not stop halfway on a bad key.
  const methods = methodConfigs(o.cfg);
  for (const m of methods) {
    quantSideSpec(m.cfg.QUANT.W, "QUANT.W");
    quantSideSpec(m.cfg.QUANT.A, "QUANT.A");
    if (wantsReconstruction(m.cfg)) for (const b of settings) if (b !== "fp") reconstructionOptions(m.cfg, parseBitSetting(b).w, b);
  }
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
        // Full precision is the same under every method: evaluated once.
        for (const m of bits === "fp" ? methods.slice(0, 1) : methods) {
          const t0 = Date.now();
          const tag = m.method ? `${bits} ${m.method}` : bits;
          const mcfg = m.cfg;
          const prepare = mcfg.QUANT.FOLD_BN ? async (model: Parameters<typeof foldBatchNorms>[0]) => void progress.log(`[${tag}] folded BN into ${(await foldBatchNorms(model)).length} convs`) : undefined;
          const c = await classifierAtBits({ ...run, cfg: mcfg }, data, state, bits, { classifier: "required", prepare });
          try {
            if (c.quant && wantsReconstruction(mcfg)) await reconstructClassifier(run, mcfg, data.trainLoader, c, m.method ?? "adaround");
            const acc = await evaluate(c.model, data.valLoader, cfg.MODEL.NUM_CLASSES, group);
            const calibrated = c.calibration ? `, calibrated on ${c.calibration.images}` : "";
            progress.log(`[${tag}] * Acc@1 ${acc.top1.toFixed(3)} Acc@5 ${acc.top5.toFixed(3)} (${acc.images} images${calibrated})`);
            const { w, a, calibration } = c;
            const ptqMethod = m.method && bits !== "fp" ? { ptqMethod: m.method } : {};
            metrics?.write({ kind: "eval", bits, ...(m.method ? { method: m.method } : {}), top1: acc.top1, top5: acc.top5, valLoss: acc.loss });
            if (run.main) await writePtqSetting(path.join(o.output, ptqMethod.ptqMethod ? `${bits}-${ptqMethod.ptqMethod}` : bits), mcfg, c, state.file, data.pipelines.eval);
            results.push({ bits, w, a, top1: acc.top1, top5: acc.top5, bestTop1: acc.top1, bestEpoch: 0, valLoss: acc.loss, trainLoss: null, epochs: 0, calibration, seconds: (Date.now() - t0) / 1000, ...ptqMethod });
          } finally {
            c.dispose();
          }
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
