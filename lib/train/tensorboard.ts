import { EventFileWriter, type Scalar } from "../io/tfevents";
import type { MetricsSink } from "./metrics_log";

/** Metric fields shown in TensorBoard, by their name in metrics.jsonl. */
const FIELDS: Readonly<Record<string, string>> = {
  loss: "loss",
  lr: "lr",
  wBits: "w_bits",
  aBits: "a_bits",
  imagesPerSec: "images_per_sec",
  top1: "top1",
  top5: "top5",
  valLoss: "loss",
};

/** Fields of an epoch record that are validation results, shown under val/. */
const VALIDATION = new Set(["top1", "top5", "valLoss"]);

/**
 * The scalars of one metrics.jsonl record and their TensorBoard step: "step" records at the global step
 * (train_step/loss, train_step/lr, train_step/w_bits, ...), "epoch" records at the epoch (train/loss, train/lr,
 * train/images_per_sec; val/top1, val/top5, val/loss), "knn" records at the epoch (knn/top1, knn/top5), "eval"
 * records (ptq) at step 0 (val/...). A record with a bit setting gets it as the tag's last part ("knn/top1/4w4f").
 */
export function scalarsOf(record: Record<string, unknown>): { step: number; scalars: Scalar[] } | null {
  const kind = record.kind;
  let step: number;
  let group: string;
  if (kind === "step") {
    step = Number(record.globalStep ?? record.step);
    group = "train_step";
  } else if (kind === "epoch") {
    step = Number(record.epoch);
    group = "train";
  } else if (kind === "knn") {
    step = Number(record.epoch);
    group = "knn";
  } else if (kind === "eval") {
    step = Number(record.epoch ?? 0);
    group = "val";
  } else return null;
  if (!Number.isFinite(step)) return null;
  const suffix = typeof record.bits === "string" ? `/${record.bits}` : "";
  const scalars: Scalar[] = [];
  for (const [field, name] of Object.entries(FIELDS)) {
    const v = record[field];
    if (typeof v !== "number") continue;
    const g = kind === "epoch" && VALIDATION.has(field) ? "val" : group;
    scalars.push({ tag: `${g}/${name}${suffix}`, value: v });
  }
  return { step, scalars };
}

/** A metrics-log sink writing TensorBoard event files into the log's folder; flushed at every non-step record. */
export class TensorBoardSink implements MetricsSink {
  private readonly writer: EventFileWriter;

  constructor(dir: string) {
    this.writer = new EventFileWriter(dir);
  }

  get file(): string {
    return this.writer.file;
  }

  write(record: Record<string, unknown>): void {
    const s = scalarsOf(record);
    if (s && s.scalars.length) this.writer.addScalars(s.step, s.scalars);
    // Step records wait for their epoch's record: one write per epoch, whole records.
    if (record.kind !== "step") this.writer.flush();
  }

  close(): void {
    this.writer.close();
  }
}
