import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildConfig, type Config } from "../../lib/config";
import { saveCheckpoint } from "../../lib/io/checkpoint";
import type { HostTensors } from "../../lib/io/host_tensor";
import { createResNet } from "../../lib/nn/resnet";
import { Generator } from "../../lib/tensor/ops/random";
import { runPtq } from "../../lib/train/ptq";
import type { RunResults } from "../../lib/train/results";

const haveFmnist = existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
if (!haveFmnist) console.log("ptq methods: skipped (no Fashion-MNIST under /usr/share/datasets/fashion-mnist)");

function config(pretrained: string, quant: Record<string, unknown> = {}): Config {
  return buildConfig({
    SEED: 3,
    MODEL: { ARCH: "cifar_resnet18", NUM_CLASSES: 10, INPUTSHAPE: [16, 16], PRETRAINED: pretrained },
    DATA: { TRAIN_SUBSET: 64, VAL_SUBSET: 32 },
    LINEAR: { BITS: ["fp", "4w4f"], AUGMENT: false },
    TRAIN: { DATASET: "fmnist", BATCH_SIZE: 32 },
    QUANT: {
      W: { BIT: 0 },
      A: { BIT: 0 },
      METHODS: ["minmax", "brecq"],
      CALIBRATION: { SIZE: 16 },
      FINETUNE: { ITERS_W: 3, BATCHSIZE: 8 },
      ...quant,
    },
    AUG: { EVALUATION: { RESIZE: { ENABLE: true, SIZE: [16, 16] } } },
  } as never);
}

/** Runs fn with the progress lines (written to stdout) collected into `lines`. */
async function capture<T>(lines: string[], fn: () => Promise<T>): Promise<T> {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    // Off a terminal every progress line starts with a timestamp (test/unit/progress.test.ts checks it): drop it here.
    lines.push(...String(chunk).split("\n").filter((l) => l !== "").map((l) => l.replace(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] /, "")));
    return true;
  }) as typeof process.stdout.write;
  try {
    return await fn();
  } finally {
    process.stdout.write = write;
  }
}

describe.skipIf(!haveFmnist)("ptq --methods (Fashion-MNIST subsets, 16 px)", () => {
  const dir = mkdtempSync(join(tmpdir(), "ptq-methods-"));
  const pretrained = join(dir, "classifier");
  const out = join(dir, "ptq");
  let r: RunResults;
  const lines: string[] = [];

  beforeAll(async () => {
    const model = createResNet("cifar_resnet18", new Generator(1), { numClasses: 10 });
    const tensors: HostTensors = {};
    for (const [k, t] of model.stateDict()) tensors[`model.${k}`] = { dtype: "float32", shape: [...t.shape], data: t.toArraySync() as Float32Array };
    model.dispose();
    mkdirSync(pretrained);
    await saveCheckpoint(join(pretrained, "checkpoint.json"), tensors, { epoch: 1, step: 1, config: {} });
    r = await capture(lines, () => runPtq({ cfg: config(pretrained), output: out, device: "cpu", workers: 2 }));
  }, 1_800_000);

  it("evaluates fp once and every method at 4w4f, with one table and one chart", () => {
    expect(r.settings.map((s) => [s.bits, s.ptqMethod])).toEqual([["fp", undefined], ["4w4f", "minmax"], ["4w4f", "brecq"]]);
    const md = readFileSync(join(out, "results.md"), "utf-8").split("\n");
    expect(md[2]).toBe("| bits | minmax | brecq |");
    const fp = r.settings[0];
    expect(md[4]).toBe(`| fp | ${Array(2).fill(`${fp.top1.toFixed(2)} / ${fp.top5.toFixed(2)}`).join(" | ")} |`);
    const q = r.settings.slice(1).map((s) => `${s.top1.toFixed(2)} / ${s.top5.toFixed(2)}`);
    expect(md[5]).toBe(`| 4w4f | ${q.join(" | ")} |`);
    const svg = readFileSync(join(out, "results.svg"), "utf-8");
    for (const m of ["minmax", "brecq"]) expect(svg).toContain(`<title>${m}: ${fp.top1.toFixed(2)}</title>`);
    const csv = readFileSync(join(out, "results.csv"), "utf-8").trim().split("\n");
    expect(csv.slice(2).map((l) => l.split(",")[1])).toEqual(["minmax", "brecq"]);
  });

  it("prints a line per reconstructed piece and keeps its state for a rerun", async () => {
    const pieces = lines.filter((l) => l.includes("] reconstruct "));
    // brecq: the stem and 8 blocks (adaround's 20 single convs are the same code at layer granularity: unit tests).
    expect(pieces.filter((l) => l.startsWith("[4w4f brecq]")).length).toBe(9);
    expect(pieces.find((l) => l.startsWith("[4w4f brecq] reconstruct layer1.0 "))).toMatch(/\(2 layers\): 3 iterations, rec loss [\d.]+ -> [\d.]+, rounded up/);
    expect(readdirSync(join(out, "reconstruction")).sort()).toEqual(["4w4f-brecq"]);
    const again: string[] = [];
    const r2 = await capture(again, () => runPtq({ cfg: config(pretrained, { METHODS: ["brecq"] }), output: out, device: "cpu", workers: 2, settings: ["4w4f"] }));
    expect(again.filter((l) => l.includes("resumed from saved state")).length).toBe(9);
    expect(r2.settings[0].top1).toBe(r.settings[2].top1);
  }, 1_800_000);

  it("stops with the key named when the calibration set is larger than the training set, or a method's setting is bad", async () => {
    await expect(runPtq({ cfg: config(pretrained, { METHODS: ["brecq"], CALIBRATION: { SIZE: 128 } }), output: join(dir, "bad"), device: "cpu", workers: 2, settings: ["4w4f"] }))
      .rejects.toThrow(/^QUANT\.CALIBRATION\.SIZE: 128 calibration images asked for, but the training set gives 64; lower it to at most 64$/);
    await expect(runPtq({ cfg: config(pretrained, { METHODS: ["minmax", "brecq"], FINETUNE: { ITERS_W: 0 } }), output: join(dir, "bad2"), device: "cpu", workers: 2, settings: ["4w4f"] }))
      .rejects.toThrow(/^QUANT\.FINETUNE\.ITERS_W: 0: adaRound needs at least 1/);
  }, 600_000);
});
