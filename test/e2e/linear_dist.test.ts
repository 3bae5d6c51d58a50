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
import { runPtq } from "../../lib/train/ptq";
import { readRunResults } from "../../lib/train/results";
import { ensureCompiled, reproducible, reproducibleConvolutions, root, tempDir } from "../distributed/helpers";
import { normErr } from "../helpers/numeric";

const haveFmnist = existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
const CONFIG = join(root, "configs/fmnist/resnet18_linear_eval_fmnist.yaml");

describe.skipIf(!haveFmnist)("linear and ptq on two processes", () => {
  // The one-process runs are in this process, the two-process ones spawned: the same convolution arithmetic in both.
  reproducibleConvolutions();
  let trainedFp = "";

  it("2 ranks x 16 images per step train the same classifier as 1 process x 32 (DDP averaging, merged calibration ranges) and validate it in shards to the same accuracy", async () => {
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
    // 100 validation images in batches of 32 (2 x 16): 4 batches, rank 0 validates 64 and rank 1 36.
    const opts = ["MODEL.PRETRAINED", pretrained, "MODEL.INPUTSHAPE", "[16, 16]", "DATA.TRAIN_SUBSET", "128", "DATA.VAL_SUBSET", "100", "TRAIN.EPOCHS", "2", "LINEAR.AUGMENT", "False"];
    const distOut = join(dir, "two");
    const stdout = runTwoProcesses("linear", [...opts, "TRAIN.BATCH_SIZE", "16"], distOut);
    const cfg = loadConfig(CONFIG, [...pairs(opts), { key: "TRAIN.BATCH_SIZE", value: "32" }]);
    const single = await runLinear({ cfg, output: join(dir, "one"), device: "cpu", workers: 1, printFreq: 1000, resume: false, quiet: true, settings: ["fp", "4w4f"] });
    trainedFp = join(dir, "one", "fp");
    const two = readRunResults(distOut);
    // Rank 0 reports the validation of the whole set, summed over both shards.
    expect(validatedImages(stdout)).toEqual([100, 100]);
    for (const [i, bits] of ["fp", "4w4f"].entries()) {
      const a = two.settings[i];
      const b = single.results.settings[i];
      expect(a.bits).toBe(bits);
      expect(a.calibration).toEqual(bits === "fp" ? null : { batches: 1, images: 16 });
      expect(a.top1, bits).toBe(b.top1);
      expect(a.top5, bits).toBe(b.top5);
      expect(Math.abs(a.valLoss - b.valLoss) / b.valLoss, bits).toBeLessThan(1e-5);
      const fcA = (await loadCheckpoint(join(distOut, bits))).tensors["model.fc.weight"].data as Float32Array;
      const fcB = (await loadCheckpoint(join(dir, "one", bits))).tensors["model.fc.weight"].data as Float32Array;
      expect(normErr(fcA, fcB), bits).toBeLessThan(1e-5);
    }
  }, 400_000);

  it("ptq of one trained classifier: 2 processes give the 1-process top-1, top-5 and image count (validation split in shards)", async () => {
    expect(trainedFp, "the first test trains the classifier").not.toBe("");
    const dir = tempDir("ptq-dist");
    // Calibration on the same 32 images: the first batch of 16 on each rank, the first two batches of 16 in one process.
    const opts = ["MODEL.PRETRAINED", trainedFp, "MODEL.INPUTSHAPE", "[16, 16]", "DATA.TRAIN_SUBSET", "128", "DATA.VAL_SUBSET", "100", "LINEAR.AUGMENT", "False", "TRAIN.BATCH_SIZE", "16"];
    const stdout = runTwoProcesses("ptq", [...opts, "QUANT.CALIBRATION.BATCHES", "1"], join(dir, "two"));
    const cfg = loadConfig(CONFIG, [...pairs(opts), { key: "QUANT.CALIBRATION.BATCHES", value: "2" }]);
    const single = await runPtq({ cfg, output: join(dir, "one"), device: "cpu", workers: 1, quiet: true, settings: ["fp", "4w4f"] });
    const two = readRunResults(join(dir, "two"));
    expect(validatedImages(stdout)).toEqual([100, 100]);
    for (const [i, bits] of ["fp", "4w4f"].entries()) {
      const a = two.settings[i];
      const b = single.settings[i];
      expect(a.bits).toBe(bits);
      expect(a.top1, bits).toBe(b.top1);
      expect(a.top5, bits).toBe(b.top5);
      expect(Math.abs(a.valLoss - b.valLoss) / b.valLoss, bits).toBeLessThan(1e-5);
    }
    expect(single.settings[1].calibration).toEqual({ batches: 2, images: 32 });
  }, 400_000);
});

/** Runs `node lib/main.js <command> --nproc-per-node 2 ...` and returns its stdout. */
function runTwoProcesses(command: string, opts: string[], output: string): string {
  try {
    return execFileSync(process.execPath, [join(root, "lib/main.js"), command, "--nproc-per-node", "2", "--config", CONFIG, "--bits", "fp,4w4f", "--output", output, "-j", "1", "--opts", ...opts], {
      encoding: "utf-8",
      stdio: "pipe",
      timeout: 300_000,
      env: { ...process.env, ...reproducible },
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`the 2-process ${command} run failed: ${err.message}\n${err.stdout ?? ""}\n${err.stderr ?? ""}`);
  }
}

/** The image counts of the validations reported on stdout (" * Acc@1 ... (..., N images ...)"). */
function validatedImages(stdout: string): number[] {
  return [...stdout.matchAll(/\* Acc@1 .*?(\d+) images/g)].map((m) => Number(m[1]));
}

function pairs(list: string[]): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (let i = 0; i < list.length; i += 2) out.push({ key: list[i], value: list[i + 1] });
  return out;
}
