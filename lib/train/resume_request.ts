import * as fs from "node:fs";
import { ConfigError } from "../config/errors";
import type { Config } from "../config/schema";
import { describeFormat, sniffFormat } from "../io/sniff";

/**
 * What `ssl` resumes from: the `--resume` flag when given (an explicit flag wins over the yaml, as `--opts` does),
 * else the original's resume key MODEL.CHECKPOINT, which must then be one of this trainer's checkpoints
 * (`checkpoint.json` or a `checkpoint_NNNN.json`): weights, optimizer, epoch and bit sampler continue exactly, and
 * the checkpoint's epoch replaces TRAIN.START_EPOCH, as in the original's ssl worker.
 */
export function sslResumeRequest(flag: string | boolean, cfg: Config): string | boolean {
  if (flag !== false) return flag;
  const file = cfg.MODEL.CHECKPOINT;
  if (!file) return false;
  let head: Uint8Array;
  try {
    const fd = fs.openSync(file, "r");
    head = new Uint8Array(512);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    fs.closeSync(fd);
    head = head.subarray(0, n);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : (e as Error).message;
    throw new ConfigError(`MODEL.CHECKPOINT: ${why}: ${file} (a checkpoint of this trainer to resume from, or empty)`, undefined, "MODEL.CHECKPOINT");
  }
  const format = sniffFormat(head);
  if (format !== "json") {
    throw new ConfigError(
      `MODEL.CHECKPOINT: ${file} is ${describeFormat(format)}; ssl resumes only this trainer's checkpoints ` +
        "(checkpoint.json in an ssl --output folder). An original checkpoint.pth.tar cannot continue here " +
        "(its optimizer state and module names are PyTorch's); evaluate it with linear (MODEL.PRETRAINED) instead",
      undefined,
      "MODEL.CHECKPOINT",
    );
  }
  return file;
}

/** The first epoch of a run that does not resume: TRAIN.START_EPOCH, as the original's loops `range(START_EPOCH, EPOCHS)`. */
export function freshStartEpoch(cfg: Config): number {
  return cfg.TRAIN.START_EPOCH;
}
