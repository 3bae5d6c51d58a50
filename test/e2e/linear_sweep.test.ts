import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { report } from "../../lib/cli/report";
import { buildConfig, type Config } from "../../lib/config";
import { loadCheckpoint, saveCheckpoint } from "../../lib/io/checkpoint";
import type { HostTensors } from "../../lib/io/host_tensor";
import { createResNet } from "../../lib/nn/resnet";
import { Generator } from "../../lib/tensor/ops/random";
import { calibrationBatches } from "../../lib/train/calibrate";
import { bitSettings, runLinear } from "../../lib/train/linear";
import { readStateDict } from "../../lib/train/pretrained";
import { runPtq } from "../../lib/train/ptq";
import { readRunResults, type RunResults } from "../../lib/train/results";
import { normErr } from "../helpers/numeric";

const haveFmnist = existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");

// The fmnist recipe's BIT_CONFIG: stem at 8 bits, pre-add and downsample outputs and the classifier in float.
const BIT_CONFIG = [
  {
    conv1: { w: 8, a: 8 },
    ...Object.fromEntries(["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1"].map((b) => [`${b}.conv2`, { a: 0 }])),
    ...Object.fromEntries(["layer2.0", "layer3.0", "layer4.0"].map((b) => [`${b}.downsample`, { a: 0 }])),
    fc: { a: 0 },
  },
];

function config(pretrained: string, extra: Record<string, unknown> = {}): Config {
  return buildConfig({
    SEED: 3,
    MODEL: { ARCH: "cifar_resnet18", NUM_CLASSES: 10, INPUTSHAPE: [16, 16], PRETRAINED: pretrained },
    DATA: { TRAIN_SUBSET: 64, VAL_SUBSET: 48 },
    LINEAR: { BITS: ["fp", "4w4f"] },
    TRAIN: {
      DATASET: "fmnist",
      EPOCHS: 2,
      BATCH_SIZE: 32,
      LINEAR_EVAL: true,
      OPTIMIZER: { NAME: "sgd", MOMENTUM: 0.9 },
      LR_SCHEDULER: { TYPE: "cosine", BASE_LR: 0.05 },
    },
    QUANT: { BIT_CONFIG, W: { BIT: 0 }, A: { BIT: 0 } },
    AUG: { TRAIN: { NORMLIZATION: { MEAN: [0.286, 0.286, 0.286], STD: [0.353, 0.353, 0.353] } } },
    ...extra,
  } as never);
}

describe.skipIf(!haveFmnist)("linear sweep, resume, ptq and report (Fashion-MNIST subsets, 16 px)", () => {
  const dir = mkdtempSync(join(tmpdir(), "linear-sweep-"));
  const pretrained = join(dir, "ssl");
  const out = join(dir, "sweep");
  let full: RunResults;

  beforeAll(async () => {
    const backbone = createResNet("cifar_resnet18", new Generator(1), { numClasses: 10 });
    const tensors: HostTensors = {};
    for (const [k, t] of backbone.stateDict()) tensors[`model.encoder.${k}`] = { dtype: "float32", shape: [...t.shape], data: t.toArraySync() as Float32Array };
    backbone.dispose();
    mkdirSync(pretrained);
    await saveCheckpoint(join(pretrained, "checkpoint.json"), tensors, { epoch: 1, step: 1, config: { ssl: "SSQL_SimSiam" } });
    full = (await runLinear({ cfg: config(pretrained), output: out, device: "cpu", workers: 2, printFreq: 100, resume: false, quiet: true })).results;
  }, 240_000);

  it("writes results.json, .md, .csv and .svg with one row per setting", () => {
    const json = readRunResults(out);
    expect(json).toEqual(full);
    expect(json.label).toBe("SSQL_SimSiam");
    expect(json.settings.map((s) => [s.bits, s.w, s.a, s.epochs])).toEqual([["fp", 0, 0, 2], ["4w4f", 4, 4, 2]]);
    const [fp, q] = json.settings;
    // Only the last epoch (1) is validated in a 2-epoch run; best = last.
    for (const s of json.settings) {
      expect(s.bestEpoch).toBe(1);
      expect(s.bestTop1).toBe(s.top1);
      expect(s.top1).toBeGreaterThanOrEqual(0);
      expect(s.top5).toBeGreaterThanOrEqual(s.top1);
    }
    // fp: nothing quantized, nothing calibrated; 4w4f: the original's ceil(2 batches / 32) = 1 calibration batch.
    expect(fp.calibration).toBeNull();
    expect(q.calibration).toEqual({ batches: 1, images: 32 });
    expect(q.valLoss).not.toBe(fp.valLoss);

    const md = readFileSync(join(out, "results.md"), "utf-8").trim().split("\n");
    expect(md[2]).toMatch(/^\| bits \| top-1 \(%\) \| top-5 \(%\) \| best top-1/);
    expect(md.slice(4)).toEqual([
      expect.stringMatching(new RegExp(`^\\| fp \\| ${fp.top1.toFixed(2)} \\| ${fp.top5.toFixed(2)} \\| ${fp.bestTop1.toFixed(2)} \\[1\\] \\| ${fp.valLoss.toFixed(4)} \\|`)),
      expect.stringMatching(new RegExp(`^\\| 4w4f \\| ${q.top1.toFixed(2)} \\| ${q.top5.toFixed(2)} \\|`)),
    ]);
    const csv = readFileSync(join(out, "results.csv"), "utf-8").trim().split("\n");
    expect(csv[0]).toBe("run,method,bits,w_bits,a_bits,top1,top5,best_top1,best_epoch,val_loss,train_loss,epochs,seconds");
    expect(csv.length).toBe(3);
    expect(csv[1].split(",").slice(0, 7)).toEqual(["SSQL_SimSiam", "SSQL_SimSiam", "fp", "0", "0", fp.top1.toFixed(4), fp.top5.toFixed(4)]);
    expect(csv[2].split(",").slice(0, 6)).toEqual(["SSQL_SimSiam", "SSQL_SimSiam", "4w4f", "4", "4", q.top1.toFixed(4)]);
    const svg = readFileSync(join(out, "results.svg"), "utf-8");
    expect(svg.startsWith("<svg ")).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
    expect([...svg.matchAll(/<title>SSQL_SimSiam: ([\d.]+)<\/title>/g)].map((m) => m[1])).toEqual([fp.top1.toFixed(2), q.top1.toFixed(2)]);
    for (const b of ["fp", "4w4f"]) {
      for (const f of ["checkpoint.json", "result.json", "metrics.jsonl"]) expect(existsSync(join(out, b, f)), `${b}/${f}`).toBe(true);
    }
  });

  it("an interrupted sweep resumed with --resume ends exactly where the uninterrupted one did", async () => {
    const out2 = join(dir, "interrupted");
    const first = await runLinear({ cfg: config(pretrained), output: out2, device: "cpu", workers: 2, printFreq: 100, resume: false, quiet: true, stopAfterEpochs: 1 });
    expect(first.complete).toBe(false);
    // Before the last epoch a linear-eval checkpoint holds just the classifier and its momentum (the backbone is frozen).
    const partial = await loadCheckpoint(join(out2, "4w4f"));
    expect(Object.keys(partial.tensors).sort()).toEqual(["model.bias", "model.weight", "optimizer.0.momentum_buffer", "optimizer.1.momentum_buffer"]);
    await expect(readStateDict(join(out2, "4w4f"))).rejects.toThrow(/unfinished linear evaluation \(epoch 1\) holds only the classifier/);
    const second = await runLinear({ cfg: config(pretrained), output: out2, device: "cpu", workers: 2, printFreq: 100, resume: true, quiet: true });
    expect(second.complete).toBe(true);
    const strip = (r: RunResults) => r.settings.map(({ seconds: _s, ...rest }) => rest);
    expect(strip(second.results)).toEqual(strip(full));
  }, 240_000);

  it("ptq of the trained fp classifier reproduces its accuracy at fp, and quantizes it at 8w8f", async () => {
    const cfg = config(join(out, "fp"));
    const r = await runPtq({ cfg, output: join(dir, "ptq"), device: "cpu", workers: 2, quiet: true, settings: ["fp", "8w8f"] });
    const fp = full.settings[0];
    expect(r.settings[0].top1).toBe(fp.top1);
    expect(r.settings[0].valLoss).toBeCloseTo(fp.valLoss, 6);
    expect(r.settings[1].calibration).toEqual({ batches: 1, images: 32 });
    expect(Math.abs(r.settings[1].valLoss - fp.valLoss)).toBeGreaterThan(0);
    expect(Math.abs(r.settings[1].valLoss - fp.valLoss) / fp.valLoss).toBeLessThan(0.05); // 8 bits: a small change
    expect(readRunResults(join(dir, "ptq")).command).toBe("ptq");
  }, 240_000);

  it("fine-tuning (LINEAR_EVAL off, WARMUP_FC) with LARS trains the whole quantized network from a linear checkpoint", async () => {
    const cfg = config(join(out, "fp"), {
      LINEAR: { BITS: ["4w4f"] },
      TRAIN: {
        DATASET: "fmnist",
        EPOCHS: 1,
        BATCH_SIZE: 32,
        LINEAR_EVAL: false,
        WARMUP_FC: true,
        OPTIMIZER: { NAME: "lars", MOMENTUM: 0.9, WEIGHT_DECAY: 1e-4 },
        LR_SCHEDULER: { TYPE: "multiStep", BASE_LR: 0.5, DECAY_MILESTONES: [] },
      },
    });
    const ftOut = join(dir, "finetune");
    const r = await runLinear({ cfg, output: ftOut, device: "cpu", workers: 2, printFreq: 100, resume: false, quiet: true });
    expect(r.complete).toBe(true);
    expect(r.results.linearEval).toBe(false);
    expect(r.results.label).toBe("SSQL_SimSiam"); // carried over from the linear checkpoint's record
    const before = await loadCheckpoint(join(out, "fp"));
    const after = await loadCheckpoint(join(ftOut, "4w4f"));
    const changed = (k: string) => normErr(after.tensors[k].data as Float32Array, before.tensors[k].data as Float32Array);
    // Every part moved: conv weights (SGD through the fake-quantized weights), BN statistics (train mode), classifier.
    for (const k of ["model.conv1.weight", "model.layer4.1.conv2.weight", "model.fc.weight", "model.layer2.0.bn1.running_mean"]) expect(changed(k), k).toBeGreaterThan(0);
    // LARS caps every step at trust 0.001 x lr of the weight's norm (x 1/(1 - momentum) at most): tiny relative moves.
    expect(changed("model.layer4.1.conv2.weight")).toBeLessThan(0.5 * 0.001 * 10 * 2 + 1e-9);
    expect(Object.keys(after.tensors).filter((k) => k.startsWith("optimizer.")).length).toBe(62); // every parameter trains
  }, 240_000);

  it("report merges several runs into one table and one chart", async () => {
    const chart = join(dir, "report", "chart.svg");
    const log: string[] = [];
    const orig = console.log;
    console.log = (...a: unknown[]) => void log.push(a.join(" "));
    try {
      expect(await report(["--runs", out, join(dir, "ptq"), "--labels", "SSQL,PTQ", "--output", chart])).toBe(0);
    } finally {
      console.log = orig;
    }
    const md = readFileSync(join(dir, "report", "chart.md"), "utf-8").split("\n");
    expect(md[0]).toBe("| bits | SSQL top-1 (%) | PTQ top-1 (%) |");
    const ptq = readRunResults(join(dir, "ptq"));
    expect(md.slice(2, 5)).toEqual([
      `| fp | ${full.settings[0].top1.toFixed(2)} (best ${full.settings[0].bestTop1.toFixed(2)}) | ${ptq.settings[0].top1.toFixed(2)} (best ${ptq.settings[0].top1.toFixed(2)}) |`,
      `| 4w4f | ${full.settings[1].top1.toFixed(2)} (best ${full.settings[1].bestTop1.toFixed(2)}) |  |`,
      `| 8w8f |  | ${ptq.settings[1].top1.toFixed(2)} (best ${ptq.settings[1].top1.toFixed(2)}) |`,
    ]);
    expect(readFileSync(join(dir, "report", "chart.csv"), "utf-8").trim().split("\n").length).toBe(5);
    const svg = readFileSync(chart, "utf-8");
    expect(svg.match(/<path /g)?.length).toBe(2);
    expect(svg).toContain(">SSQL<");
    expect(svg).toContain(">PTQ<");
    expect(log.join("\n")).toContain("| bits | SSQL top-1 (%) | PTQ top-1 (%) |");
    await expect(report(["--runs", join(dir, "nowhere")])).rejects.toThrow(/nowhere: cannot read the run's results/);
  });
});

describe("settings and calibration length", () => {
  it("bit settings come from LINEAR.BITS, else QUANT.W.BIT / A.BIT (0/0 = fp)", () => {
    expect(bitSettings(buildConfig({ LINEAR: { BITS: ["FP", "8w8f"] } }))).toEqual(["fp", "8w8f"]);
    expect(bitSettings(buildConfig({ QUANT: { W: { BIT: 2 }, A: { BIT: 4 } } }))).toEqual(["2w4f"]);
    expect(bitSettings(buildConfig({ QUANT: { W: { BIT: 0 }, A: { BIT: 0 } } }))).toEqual(["fp"]);
    expect(() => bitSettings(buildConfig({ LINEAR: { BITS: ["4w4f", "4w4f"] } }))).toThrow(/'4w4f' is listed twice/);
  });

  it("calibrates on the original's ceil(len(loader) / BATCH_SIZE) batches unless QUANT.CALIBRATION.BATCHES is set", () => {
    // CIFAR-10 on 4 GPUs at 128 per GPU: 98 batches per rank -> 1; ImageNet on 4 GPUs at 256: 1252 -> 5 (§6.1).
    expect(calibrationBatches(buildConfig({ TRAIN: { BATCH_SIZE: 128 } }), 98)).toBe(1);
    expect(calibrationBatches(buildConfig({ TRAIN: { BATCH_SIZE: 256 } }), 1252)).toBe(5);
    expect(calibrationBatches(buildConfig({ TRAIN: { BATCH_SIZE: 256 }, QUANT: { CALIBRATION: { BATCHES: 7 } } }), 1252)).toBe(7);
    expect(calibrationBatches(buildConfig({ TRAIN: { BATCH_SIZE: 8 }, QUANT: { CALIBRATION: { BATCHES: 50 } } }), 3)).toBe(3);
  });
});
