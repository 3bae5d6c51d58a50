import { createHash } from "node:crypto";
import * as path from "node:path";
import type { Config } from "../config";
import type { DataLoader } from "../data/loader";
import type { QParams } from "../quant/fake_quant";
import { reconstructWeights, type PieceReport } from "../quant/reconstruct/brecq";
import { HostRows } from "../quant/reconstruct/block_data";
import { reconstructionImages, reconstructionOptions } from "../quant/reconstruct/options";
import { noGrad } from "../tensor/autograd";
import { tidy } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import { calibrationBatches } from "./calibrate";
import type { ClassifierAtBits } from "./classifier";
import type { Run } from "./run";

/**
 * QUANT.W.QUANTIZER adaRound in ptq, after calibration (weights' scales fixed): the first QUANT.CALIBRATION.SIZE
 * training images (whole QUANT.FINETUNE.BATCHSIZE batches) drive AdaRound/BRECQ reconstruction of every quantized
 * weight (the classifier stays full precision), which leaves the hard-rounded weights in the model's parameters
 * with the weight quantizers unchanged; then the activation ranges are calibrated again on the weight-quantized
 * model, as the original's finetune calibrates activations after the weights. Per-piece state goes to
 * <output>/reconstruction/<setting>/, so an interrupted run resumes at the next piece.
 */
export async function reconstructClassifier(run: Run, cfg: Config, loader: DataLoader, c: ClassifierAtBits, label: string): Promise<PieceReport[]> {
  if (!c.quant) return [];
  const opts = reconstructionOptions(cfg, c.w, c.bits);
  if (run.worldSize > 1) throw new Error("QUANT.W.QUANTIZER adaRound: reconstruction runs in one process (each rank would round its weights differently); run ptq without --nproc-per-node");
  const images = await calibrationImages(loader, reconstructionImages(cfg), opts.batchSize);
  const qparams = new Map<string, QParams>();
  for (const l of c.quant.layers) if (l.weight && l.weight.bits > 0) qparams.set(l.name, l.weight.qparams().qp);
  const fingerprint = createHash("sha256")
    .update(JSON.stringify({ opts, bits: c.bits, arch: cfg.MODEL.ARCH, file: cfg.MODEL.PRETRAINED || cfg.MODEL.CHECKPOINT, images: cfg.QUANT.CALIBRATION.SIZE, foldBn: cfg.QUANT.FOLD_BN, w: cfg.QUANT.W }))
    .digest("hex");
  try {
    const reports = await reconstructWeights(c.model, qparams, images, {
      ...opts,
      log: (line) => run.progress.log(`[${c.bits} ${label}] ${line}`),
      stateDir: run.main ? path.join(run.output, "reconstruction", `${c.bits}-${label}`) : null,
      fingerprint,
    });
    await recalibrateActivations(c, loader, calibrationBatches(cfg, loader.length));
    return reports;
  } finally {
    for (const t of images) t.dispose();
  }
}

/** `count` images from the start of epoch 0, in batches of `batchSize` on the loader's device. */
async function calibrationImages(loader: DataLoader, count: number, batchSize: number): Promise<Tensor[]> {
  const rows = new HostRows();
  let device: Tensor["device"] = "cpu";
  for await (const batch of loader.epoch(0)) {
    device = batch.images.device;
    await rows.append(batch.images);
    batch.dispose();
    if (rows.length >= count) break;
  }
  if (rows.length < count)
    throw new Error(`QUANT.CALIBRATION.SIZE: ${count} calibration images asked for, but the training set gives ${rows.length}; lower it to at most ${rows.length}`);
  const out: Tensor[] = [];
  for (let s = 0; s < count; s += batchSize) out.push(rows.gather(Int32Array.from({ length: batchSize }, (_, i) => s + i), device).keep());
  return out;
}

/** Calibrates the output quantizers again (weights stay as reconstructed, their quantizers untouched). */
async function recalibrateActivations(c: ClassifierAtBits, loader: DataLoader, batches: number): Promise<void> {
  const quant = c.quant!;
  const model = c.model;
  for (const l of quant.layers) l.act?.reset();
  model.slot.hooks = {
    weight: (_n, w) => w,
    output: (n, y) => {
      quant.layer(n)?.act?.observe(y);
      return y;
    },
  };
  const wasTraining = model.training;
  model.eval();
  let n = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      noGrad(() => tidy(() => void model.forward(batch.images)));
      batch.dispose();
      if (++n >= batches) break;
    }
  } finally {
    model.train(wasTraining);
  }
  quant.quantize(c.w, c.a);
  for (const l of quant.layers) l.act?.freeze();
}
