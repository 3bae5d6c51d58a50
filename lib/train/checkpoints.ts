import * as fs from "node:fs";
import * as path from "node:path";
import type { Config } from "../config";
import { deleteCheckpoint, linkCheckpoint } from "../io/checkpoint";

/**
 * Periodic checkpoints of SSL pretraining beside the latest one (checkpoint.json): `checkpoint_<epoch>.json`
 * after every TRAIN.SAVE_FREQ-th epoch (epoch % SAVE_FREQ == 0, as the original's % 20) and after the last, the
 * newest TRAIN.KEEP_CHECKPOINTS of them kept (0 = all). A periodic checkpoint holds the state the latest one holds
 * at that moment, so it is a hard link to the latest's tensors file, never a second copy.
 */
export function periodicDue(cfg: Config, epoch: number): boolean {
  return epoch % cfg.TRAIN.SAVE_FREQ === 0 || epoch === cfg.TRAIN.EPOCHS - 1;
}

export function periodicName(output: string, epoch: number): string {
  return path.join(output, `checkpoint_${String(epoch).padStart(4, "0")}.json`);
}

/** The periodic checkpoints in `output`, oldest first. */
export function periodicCheckpoints(output: string): { epoch: number; file: string }[] {
  const found: { epoch: number; file: string }[] = [];
  for (const f of fs.existsSync(output) ? fs.readdirSync(output) : []) {
    const m = /^checkpoint_(\d+)\.json$/.exec(f);
    if (m) found.push({ epoch: Number(m[1]), file: path.join(output, f) });
  }
  return found.sort((a, b) => a.epoch - b.epoch);
}

/**
 * After the latest checkpoint of `epoch` is on disk: its periodic name when due (a hard link of the same tensors),
 * then, only once that is durable, the periodic checkpoints beyond the newest `keep` deleted. Returns whether the
 * periodic checkpoint had to be copied (no hard links on this filesystem).
 */
export async function keepPeriodic(cfg: Config, output: string, latest: string, epoch: number): Promise<{ saved: boolean; copied: boolean; deleted: string[] }> {
  if (!periodicDue(cfg, epoch)) return { saved: false, copied: false, deleted: [] };
  const { linked } = await linkCheckpoint(latest, periodicName(output, epoch));
  const keep = cfg.TRAIN.KEEP_CHECKPOINTS;
  const all = periodicCheckpoints(output);
  const old = keep > 0 ? all.slice(0, Math.max(0, all.length - keep)) : [];
  for (const c of old) await deleteCheckpoint(c.file);
  return { saved: true, copied: !linked, deleted: old.map((c) => c.file) };
}
