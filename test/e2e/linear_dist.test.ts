import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config";
import { loadCheckpoint, saveCheckpoint } from "../../lib/io/checkpoint";
import type { HostTensors } from "../../lib/io/host_tensor";
import { createResNet } from "../../lib/nn/resnet";
import { Generator } from "../../lib/tensor/ops/random";
import { runLinear } from "../../lib/train/linear";
import { readRunResults } from "../../lib/train/results";
import { ensureCompiled, root, tempDir } from "../dist/helpers";
import { normErr } from "../helpers/numeric";

const haveFmnist = existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
const CONFIG = join(root, "configs/fmnist/resnet18_linear_eval_fmnist.yaml");

describe.skipIf(!haveFmnist)("linear on two processes", () => {
  it("2 ranks x 16 images per step train the same classifier as 1 process x 32 (DDP averaging, merged calibration ranges)", async () => {
    ensureCompiled();
    const dir = tempDir("linear-dist");
    const pretrained = join(dir, "ssl");
    mkdirSync(pretrained);
    const backbone = createResNet("cifar_resnet18", new Generator(4), { numClasses: 10 });
    const tensors: HostTensors = {};
    for (const [k, t] of backbone.stateDict()) tensors[`model.encoder.${k}`] = { dtype: "float32", shape: [...t.shape], data: t.toArraySync() as Float32Array };
    backbone.dispose();
    await saveCheckpoint(join(pretrained, "checkpoint.json"), tensors, { epoch: 1, step: 1 });
    // No augmentation, so both runs see the same images; rank r takes positions r, r + 2, ... of each epoch's
    // permutation, so the two ranks' batches of 16 together are the single process's batch of 32, and their
    // first batches (the calibration data) together are its first batch.
    const opts = ["MODEL.PRETRAINED", pretrained, "MODEL.INPUTSHAPE", "[16, 16]", "DATA.TRAIN_SUBSET", "128", "DATA.VAL_SUBSET", "64", "TRAIN.EPOCHS", "2", "LINEAR.AUGMENT", "False"];
    const distOut = join(dir, "two");
    try {
      execFileSync(process.execPath, [join(root, "lib/main.js"), "linear", "--nproc-per-node", "2", "--config", CONFIG, "--bits", "fp,4w4f", "--output", distOut, "-j", "1", "--opts", ...opts, "TRAIN.BATCH_SIZE", "16"], {
        encoding: "utf-8",
        stdio: "pipe",
        timeout: 300_000,
      });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`the 2-process run failed: ${err.message}\n${err.stdout ?? ""}\n${err.stderr ?? ""}`);
    }
    const cfg = loadConfig(CONFIG, [...pairs(opts), { key: "TRAIN.BATCH_SIZE", value: "32" }]);
    const single = await runLinear({ cfg, output: join(dir, "one"), device: "cpu", workers: 1, printFreq: 1000, resume: false, quiet: true, settings: ["fp", "4w4f"] });
    const two = readRunResults(distOut);
    for (const [i, bits] of ["fp", "4w4f"].entries()) {
      const a = two.settings[i];
      const b = single.results.settings[i];
      expect(a.bits).toBe(bits);
      expect(a.calibration).toEqual(bits === "fp" ? null : { batches: 1, images: 16 });
      expect(a.top1, bits).toBe(b.top1);
      expect(Math.abs(a.valLoss - b.valLoss) / b.valLoss, bits).toBeLessThan(1e-5);
      const fcA = (await loadCheckpoint(join(distOut, bits))).tensors["model.fc.weight"].data as Float32Array;
      const fcB = (await loadCheckpoint(join(dir, "one", bits))).tensors["model.fc.weight"].data as Float32Array;
      expect(normErr(fcA, fcB), bits).toBeLessThan(1e-5);
    }
  }, 400_000);
});

function pairs(list: string[]): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (let i = 0; i < list.length; i += 2) out.push({ key: list[i], value: list[i + 1] });
  return out;
}
