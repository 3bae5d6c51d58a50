import type { Config } from "../../config";
import type { ReconstructOptions } from "./brecq";

/** QUANT.W.QUANTIZER value that makes ptq reconstruct the weight rounding (the original's quantizers/ptq/adaRound.py). */
export const ADAROUND = "adaRound";

/** Weight bit widths AdaRound / BRECQ reconstruct: the original's QUANT.W.BIT_RANGE [2, 9). */
export const RECONSTRUCT_BITS: readonly [number, number] = [2, 8];

export function wantsReconstruction(cfg: Config): boolean {
  return cfg.QUANT.W.QUANTIZER === ADAROUND;
}

/**
 * The reconstruction settings of a config at `wBits` weight bits, each bad value an error naming its key: the
 * iteration count, batch size, calibration size, schedule and the bit width itself.
 */
export function reconstructionOptions(cfg: Config, wBits: number, setting = `${wBits}w`): Omit<ReconstructOptions, "log" | "stateDir" | "fingerprint"> {
  const f = cfg.QUANT.FINETUNE;
  const bad = (key: string, msg: string) => new Error(`${key}: ${msg}`);
  if (cfg.QUANT.A.QUANTIZER === ADAROUND)
    throw bad("QUANT.A.QUANTIZER", "adaRound for activations (learning their scales after BRECQ) is not implemented; use uniform");
  if (f.METHOD !== "" && f.METHOD !== "brecq") throw bad("QUANT.FINETUNE.METHOD", `'${f.METHOD}' is not a finetune method; allowed: brecq (or empty)`);
  const [lo, hi] = RECONSTRUCT_BITS;
  if (!(wBits >= lo && wBits <= hi))
    throw bad("QUANT.W.QUANTIZER", `adaRound reconstructs ${lo}..${hi}-bit weights; the setting ${setting} quantizes weights to ${wBits} bits${wBits === 0 ? " (none: nothing to reconstruct)" : ""}`);
  if (!Number.isInteger(f.ITERS_W) || f.ITERS_W < 1)
    throw bad("QUANT.FINETUNE.ITERS_W", `${f.ITERS_W}: adaRound needs at least 1 optimisation step per block (AdaRound and BRECQ use 20000)`);
  if (!Number.isInteger(f.BATCHSIZE) || f.BATCHSIZE < 1) throw bad("QUANT.FINETUNE.BATCHSIZE", `${f.BATCHSIZE}: must be a positive number of samples per step`);
  const size = cfg.QUANT.CALIBRATION.SIZE;
  if (size < f.BATCHSIZE)
    throw bad("QUANT.CALIBRATION.SIZE", `${size} calibration images are fewer than one reconstruction batch (QUANT.FINETUNE.BATCHSIZE ${f.BATCHSIZE}); AdaRound uses 1024`);
  if (!(f.WARMUP >= 0 && f.WARMUP < 1)) throw bad("QUANT.FINETUNE.WARMUP", `${f.WARMUP}: must lie in [0, 1) (a fraction of ITERS_W)`);
  const [bStart, bEnd] = f.B_RANGE;
  if (f.B_RANGE.length !== 2 || !(bEnd > 0) || !(bStart >= bEnd))
    throw bad("QUANT.FINETUNE.B_RANGE", `[${f.B_RANGE.join(", ")}]: expected [start, end] with start >= end > 0 (the original's [20, 2])`);
  if (!(f.LR > 0)) throw bad("QUANT.FINETUNE.LR", `${f.LR}: must be > 0`);
  return {
    granularity: f.GRANULARITY,
    iters: f.ITERS_W,
    batchSize: f.BATCHSIZE,
    warmup: f.WARMUP,
    bStart,
    bEnd,
    lr: f.LR,
    seed: cfg.SEED ?? 0,
  };
}

/** The calibration images reconstruction uses: QUANT.CALIBRATION.SIZE rounded down to whole batches, as the original. */
export function reconstructionImages(cfg: Config): number {
  const bs = cfg.QUANT.FINETUNE.BATCHSIZE;
  return Math.floor(cfg.QUANT.CALIBRATION.SIZE / bs) * bs;
}
