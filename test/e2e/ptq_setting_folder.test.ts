import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildConfig, type Config } from "../../lib/config";
import { saveCheckpoint } from "../../lib/io/checkpoint";
import type { HostTensors } from "../../lib/io/host_tensor";
import { createResNet } from "../../lib/nn/resnet";
import { Generator } from "../../lib/tensor/ops/random";
import { openClassifierData } from "../../lib/train/classifier_data";
import { evaluate } from "../../lib/train/evaluate";
import { runPtq } from "../../lib/train/ptq";
import { loadSettingModel, openSettingFolder, readSettingInfo } from "../../lib/train/setting_folder";

const haveFmnist = existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
if (!haveFmnist) console.log("ptq setting folders: skipped (no Fashion-MNIST under /usr/share/datasets/fashion-mnist)");

function config(pretrained: string): Config {
  return buildConfig({
    SEED: 3,
    MODEL: { ARCH: "cifar_resnet18", NUM_CLASSES: 10, INPUTSHAPE: [16, 16], PRETRAINED: pretrained },
    DATA: { TRAIN_SUBSET: 64, VAL_SUBSET: 64 },
    LINEAR: { BITS: ["4w4f"], AUGMENT: false },
    TRAIN: { DATASET: "fmnist", BATCH_SIZE: 32 },
    QUANT: { W: { BIT: 0 }, A: { BIT: 0 }, FOLD_BN: true, METHODS: ["minmax", "adaround"], CALIBRATION: { SIZE: 16 }, FINETUNE: { ITERS_W: 2, BATCHSIZE: 8 } },
    AUG: { EVALUATION: { RESIZE: { ENABLE: true, SIZE: [16, 16] } } },
  } as never);
}

describe.skipIf(!haveFmnist)("ptq setting folders when the method changes the weights (BN folded, AdaRound)", () => {
  it("save the weights as evaluated, so the folder re-evaluates to the run's top-1 without recalibrating", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ptq-folder-"));
    const pretrained = join(dir, "classifier");
    const model = createResNet("cifar_resnet18", new Generator(1), { numClasses: 10 });
    const tensors: HostTensors = {};
    for (const [k, t] of model.stateDict()) tensors[`model.${k}`] = { dtype: "float32", shape: [...t.shape], data: t.toArraySync() as Float32Array };
    model.dispose();
    mkdirSync(pretrained);
    await saveCheckpoint(join(pretrained, "checkpoint.json"), tensors, { epoch: 1, step: 1, config: {} });
    const cfg = config(pretrained);
    const out = join(dir, "ptq");
    const r = await runPtq({ cfg, output: out, device: "cpu", workers: 2, quiet: true });
    const data = await openClassifierData(cfg, { device: "cpu" });
    try {
      for (const s of r.settings) {
        const folder = join(out, `${s.bits}-${s.ptqMethod}`);
        const info = (await readSettingInfo(folder))!;
        // Folded BN changed every conv weight: the folder holds the model as evaluated, not a path to the input.
        expect(info.weights).toBe("model.json");
        const m = loadSettingModel(await openSettingFolder(folder), "cpu");
        try {
          const acc = await evaluate(m.model, data.valLoader, 10);
          expect(acc.top1, folder).toBe(s.top1);
          expect(acc.top5, folder).toBe(s.top5);
          expect(acc.loss, folder).toBeCloseTo(s.valLoss, 5);
        } finally {
          m.dispose();
        }
      }
    } finally {
      data.dispose();
    }
  }, 600_000);
});
