import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../io/atomic";
import { renderCurves, type Curve } from "./curve_chart";
import { readMetrics } from "./metrics_log";

/** The per-epoch history of one SSL pretraining run, from its metrics.jsonl. */
export interface TrainingCurves {
  label: string;
  /** The run folder read. */
  dir: string;
  /** Mean loss and learning rate per epoch, in epoch order. */
  epochs: { epoch: number; loss: number; lr: number }[];
  /** kNN top-1 per bit setting, each in epoch order. */
  knn: Map<string, { epoch: number; top1: number }[]>;
}

/**
 * The curves of the pretraining run in `dir` (its metrics.jsonl), or null when it has none. A resumed (or rerun)
 * run appends to the log: the last record of each epoch (and bit setting) wins.
 */
export function readTrainingCurves(dir: string, label: string): TrainingCurves | null {
  const file = path.join(dir, "metrics.jsonl");
  if (!fs.existsSync(file)) return null;
  let records: Record<string, unknown>[];
  try {
    records = readMetrics(file);
  } catch (e) {
    throw new Error(`${file}: not a metrics log (${(e as Error).message})`);
  }
  const epochs = new Map<number, { epoch: number; loss: number; lr: number }>();
  const knn = new Map<string, Map<number, number>>();
  for (const r of records) {
    const epoch = r.epoch;
    if (typeof epoch !== "number") continue;
    // SSL epochs carry no bit setting (linear's do, one log per setting).
    if (r.kind === "epoch" && r.bits === undefined && typeof r.loss === "number" && typeof r.lr === "number") epochs.set(epoch, { epoch, loss: r.loss, lr: r.lr });
    if (r.kind === "knn" && typeof r.bits === "string" && typeof r.top1 === "number") {
      if (!knn.has(r.bits)) knn.set(r.bits, new Map());
      knn.get(r.bits)!.set(epoch, r.top1);
    }
  }
  if (epochs.size === 0 && knn.size === 0) return null;
  const sorted = <T extends { epoch: number }>(xs: T[]) => xs.sort((a, b) => a.epoch - b.epoch);
  return {
    label,
    dir,
    epochs: sorted([...epochs.values()]),
    knn: new Map([...knn].map(([bits, m]) => [bits, sorted([...m].map(([epoch, top1]) => ({ epoch, top1 })))])),
  };
}

/** The pretraining folder behind a linear/ptq run's MODEL.PRETRAINED (a folder, or its checkpoint .json). */
export function pretrainingDir(pretrained: string): string {
  return pretrained.endsWith(".json") ? path.dirname(pretrained) : pretrained;
}

const fmt = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "" : v.toFixed(2));

/** kNN top-1 by epoch, one column per run and bit setting (e.g. SSQL fp | SSQL 4w4f | SimSiam fp | ...). */
export function knnMarkdown(runs: readonly TrainingCurves[]): string {
  const cols = runs.flatMap((r) => [...r.knn.keys()].map((bits) => ({ r, bits })));
  if (cols.length === 0) return "";
  const epochs = [...new Set(cols.flatMap(({ r, bits }) => r.knn.get(bits)!.map((p) => p.epoch)))].sort((a, b) => a - b);
  return [
    `| epoch | ${cols.map(({ r, bits }) => `${r.label} ${bits} kNN top-1 (%)`).join(" | ")} |`,
    `|---:|${cols.map(() => "---:").join("|")}|`,
    ...epochs.map((e) => `| ${e} | ${cols.map(({ r, bits }) => fmt(r.knn.get(bits)!.find((p) => p.epoch === e)?.top1)).join(" | ")} |`),
  ].join("\n") + "\n";
}

/**
 * Writes `<stem>_loss.svg`, `<stem>_lr.svg` and, when a run has kNN results, `<stem>_knn.svg` (every run's lines
 * in one chart: a colour per run, full precision solid, quantized settings dashed). Returns the files written.
 */
export async function writeCurveCharts(stem: string, runs: readonly TrainingCurves[]): Promise<string[]> {
  if (runs.length === 0) return [];
  const names = runs.map((r) => r.label).join(" vs ");
  const charts: [string, string][] = [];
  const withEpochs = runs.filter((r) => r.epochs.length);
  if (withEpochs.length) {
    const series = (pick: (p: TrainingCurves["epochs"][number]) => number): Curve[] =>
      runs.map((r, i) => ({ label: r.label, color: i, points: r.epochs.map((p) => [p.epoch, pick(p)] as [number, number]) }));
    charts.push([`${stem}_loss.svg`, renderCurves({ title: `Pretraining loss: ${names}`, xLabel: "epoch", yLabel: "mean training loss", curves: series((p) => p.loss) })]);
    charts.push([`${stem}_lr.svg`, renderCurves({ title: `Learning rate: ${names}`, xLabel: "epoch", yLabel: "learning rate", curves: series((p) => p.lr), logY: true })]);
  }
  const knn: Curve[] = runs.flatMap((r, i) =>
    [...r.knn].map(([bits, pts]) => ({ label: `${r.label} ${bits}`, color: i, dashed: bits !== "fp", points: pts.map((p) => [p.epoch, p.top1] as [number, number]) })),
  );
  if (knn.length) charts.push([`${stem}_knn.svg`, renderCurves({ title: `kNN top-1 during pretraining: ${names}`, xLabel: "epoch", yLabel: "kNN top-1 accuracy (%)", curves: knn, percent: true })]);
  for (const [file, svg] of charts) await writeFileAtomic(file, [Buffer.from(svg, "utf-8")]);
  return charts.map(([f]) => f);
}
