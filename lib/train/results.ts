import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../io/atomic";
import type { Config } from "../config";
import { runLabel } from "./bit_settings";
import { renderChart, type ChartSeries } from "./chart";
import { knnMarkdown, pretrainingDir, readTrainingCurves, writeCurveCharts, type TrainingCurves } from "./curves";
import type { LoadedStateDict } from "./pretrained";

/** One classifier trained (or one PTQ evaluation) at one bit setting. */
export interface SettingResult {
  /** "fp", "8w8f", ... */
  bits: string;
  w: number;
  a: number;
  /** Top-1 / top-5 (%) on the validation set after the last epoch: the number to report. */
  top1: number;
  top5: number;
  /** Best top-1 over the validations that ran (every 20 epochs and the last), with its epoch (0-based). */
  bestTop1: number;
  bestEpoch: number;
  valLoss: number;
  /** Mean training loss of the last epoch (null for ptq). */
  trainLoss: number | null;
  epochs: number;
  /** Calibration batches and images (null at fp, where nothing is quantized). */
  calibration: { batches: number; images: number } | null;
  seconds: number;
  /** ptq --methods: the PTQ method of this row (minmax, mse, adaround, brecq, ...); absent otherwise. */
  ptqMethod?: string;
}

/** results.json of a linear or ptq run. */
export interface RunResults {
  format: "ssql-linear-results";
  version: 1;
  command: "linear" | "ptq";
  /** How the run is named in tables and charts: the SSL method when known, else the checkpoint's name. */
  label: string;
  method: string | null;
  pretrained: string;
  arch: string;
  dataset: string;
  linearEval: boolean;
  epochs: number;
  valImages: number;
  settings: SettingResult[];
}

/** The results of a linear or ptq sweep over `settings` of the checkpoint `state`. */
export function sweepResults(
  command: RunResults["command"],
  cfg: Config,
  state: LoadedStateDict,
  valImages: number,
  settings: SettingResult[],
): RunResults {
  const { label, method } = runLabel(state);
  const ptq = command === "ptq";
  return {
    format: "ssql-linear-results",
    version: 1,
    command,
    label,
    method,
    pretrained: state.file,
    arch: cfg.MODEL.ARCH,
    dataset: cfg.TRAIN.DATASET,
    linearEval: ptq ? true : cfg.TRAIN.LINEAR_EVAL,
    epochs: ptq ? 0 : cfg.TRAIN.EPOCHS,
    valImages,
    settings,
  };
}

const fmt = (v: number | null, d = 2) => (v === null || !Number.isFinite(v) ? "" : v.toFixed(d));

/** The per-setting table of one run. */
export function runMarkdown(r: RunResults): string {
  if (r.settings.some((s) => s.ptqMethod)) return methodsMarkdown(r);
  const lines = [
    `${r.label}: ${r.command === "ptq" ? "post-training quantization" : r.linearEval ? "linear evaluation" : "fine-tuning"} of ${r.arch} on ${r.dataset} ` +
      `(${r.epochs} epochs, ${r.valImages} validation images; top-1 after the last epoch, best of the evaluated epochs beside it)`,
    "",
    "| bits | top-1 (%) | top-5 (%) | best top-1 (%) [epoch] | val loss | train loss | seconds |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...r.settings.map(
      (s) => `| ${s.bits} | ${fmt(s.top1)} | ${fmt(s.top5)} | ${fmt(s.bestTop1)} [${s.bestEpoch}] | ${fmt(s.valLoss, 4)} | ${fmt(s.trainLoss, 4)} | ${fmt(s.seconds, 1)} |`,
    ),
  ];
  return lines.join("\n") + "\n";
}

/** ptq --methods: one row per bit setting, one column per PTQ method. */
function methodsMarkdown(r: RunResults): string {
  const methods = [...new Set(r.settings.map((s) => s.ptqMethod).filter((m): m is string => !!m))];
  const bits = [...new Set(r.settings.map((s) => s.bits))];
  const cell = (b: string, m: string) => {
    const s = r.settings.find((x) => x.bits === b && (x.ptqMethod === m || b === "fp"));
    return s ? `${fmt(s.top1)} / ${fmt(s.top5)}` : "";
  };
  return [
    `${r.label}: post-training quantization of ${r.arch} on ${r.dataset} by method (${r.valImages} validation images; top-1 / top-5 %)`,
    "",
    `| bits | ${methods.join(" | ")} |`,
    `|---|${methods.map(() => "---:").join("|")}|`,
    ...bits.map((b) => `| ${b} | ${methods.map((m) => cell(b, m)).join(" | ")} |`),
  ].join("\n") + "\n";
}

const CSV_HEADER = "run,method,bits,w_bits,a_bits,top1,top5,best_top1,best_epoch,val_loss,train_loss,epochs,seconds";

function csvField(v: string | number | null): string {
  if (v === null) return "";
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvRows(r: RunResults): string[] {
  return r.settings.map((s) =>
    [r.label, s.ptqMethod ? `${r.method ?? ""}${r.method ? "+" : ""}${s.ptqMethod}` : r.method, s.bits, s.w, s.a, fmt(s.top1, 4), fmt(s.top5, 4), fmt(s.bestTop1, 4), s.bestEpoch, fmt(s.valLoss, 6), fmt(s.trainLoss, 6), s.epochs, fmt(s.seconds, 2)]
      .map(csvField)
      .join(","),
  );
}

export function runsCsv(runs: readonly RunResults[]): string {
  return [CSV_HEADER, ...runs.flatMap(csvRows)].join("\n") + "\n";
}

/** Bit settings in first-seen order across runs. */
function settingOrder(runs: readonly RunResults[]): string[] {
  const seen: string[] = [];
  for (const r of runs) for (const s of r.settings) if (!seen.includes(s.bits)) seen.push(s.bits);
  return seen;
}

/** Top-1 of several runs side by side: one row per bit setting, one column per run. */
export function mergedMarkdown(runs: readonly RunResults[]): string {
  const order = settingOrder(runs);
  const head = `| bits | ${runs.map((r) => `${r.label} top-1 (%)`).join(" | ")} |`;
  const rule = `|---|${runs.map(() => "---:").join("|")}|`;
  const rows = order.map((b) => {
    const cells = runs.map((r) => {
      const s = r.settings.find((x) => x.bits === b);
      return s ? `${fmt(s.top1)} (best ${fmt(s.bestTop1)})` : "";
    });
    return `| ${b} | ${cells.join(" | ")} |`;
  });
  const notes = runs.map((r) => `- ${r.label}: ${r.pretrained}, ${r.arch} on ${r.dataset}, ${r.epochs} epochs, ${r.valImages} validation images`);
  return [head, rule, ...rows, "", "Top-1 after the last epoch; in brackets the best of the evaluated epochs.", ...notes].join("\n") + "\n";
}

export function runsChart(runs: readonly RunResults[], title: string): string {
  const order = settingOrder(runs);
  const series: ChartSeries[] = runs.flatMap((r) => {
    const methods = [...new Set(r.settings.map((s) => s.ptqMethod).filter((m): m is string => !!m))];
    if (methods.length === 0) return [{ label: r.label, values: order.map((b) => r.settings.find((s) => s.bits === b)?.top1 ?? null) }];
    // fp is one row for every method: each series shows it as its full-precision point.
    return methods.map((m) => ({
      label: runs.length > 1 ? `${r.label} ${m}` : m,
      values: order.map((b) => r.settings.find((s) => s.bits === b && (s.ptqMethod === m || b === "fp"))?.top1 ?? null),
    }));
  });
  return renderChart({ title, categories: order, series, yLabel: "top-1 accuracy (%)", xLabel: "bit setting (weights w / features f)" });
}

/** Writes results.json, results.md, results.csv and results.svg of one run into `dir`. */
export async function writeRunResults(dir: string, r: RunResults): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const put = (name: string, text: string) => writeFileAtomic(path.join(dir, name), [Buffer.from(text, "utf-8")]);
  await put("results.json", JSON.stringify(r, null, 2) + "\n");
  await put("results.md", runMarkdown(r));
  await put("results.csv", runsCsv([r]));
  await put("results.svg", runsChart([r], `${r.label}: ${r.arch} on ${r.dataset}`));
}

/** Reads a run's results.json, given the file or its folder. */
export function readRunResults(where: string): RunResults {
  const file = fs.existsSync(where) && fs.statSync(where).isDirectory() ? path.join(where, "results.json") : where;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf-8");
  } catch (e) {
    throw new Error(`${file}: cannot read the run's results (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); run 'linear' or 'ptq' with --output there first`);
  }
  let r: RunResults;
  try {
    r = JSON.parse(text) as RunResults;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (r?.format !== "ssql-linear-results" || !Array.isArray(r.settings)) throw new Error(`${file}: not a results.json written by 'linear' or 'ptq'`);
  return r;
}

/**
 * Writes `<stem>.svg/.md/.csv/.json` for several runs merged (the report command and the demo), and the curves of
 * their pretraining runs (`curves`, by default read from each run's MODEL.PRETRAINED folder where it holds a
 * metrics.jsonl): `<stem>_loss.svg`, `<stem>_lr.svg`, `<stem>_knn.svg`, and a kNN table after the top-1 table.
 */
export async function writeMergedReport(
  chartFile: string,
  runs: readonly RunResults[],
  title: string,
  curves: readonly TrainingCurves[] = pretrainingCurves(runs),
): Promise<{ markdown: string; files: string[] }> {
  const dir = path.dirname(chartFile);
  fs.mkdirSync(dir, { recursive: true });
  const stem = chartFile.replace(/\.svg$/i, "");
  const knn = knnMarkdown(curves);
  const markdown = runs.length ? mergedMarkdown(runs) + (knn ? `\nkNN top-1 of the pretraining runs by epoch:\n\n${knn}` : "") : knn;
  if (runs.length === 0) {
    const charts = await writeCurveCharts(stem, curves);
    await writeFileAtomic(`${stem}.md`, [Buffer.from(markdown, "utf-8")]);
    return { markdown, files: [...charts, `${stem}.md`] };
  }
  const files = [`${stem}.svg`, `${stem}.md`, `${stem}.csv`, `${stem}.json`];
  const texts = [runsChart(runs, title), markdown, runsCsv(runs), JSON.stringify({ runs }, null, 2) + "\n"];
  for (let i = 0; i < files.length; i++) await writeFileAtomic(files[i], [Buffer.from(texts[i], "utf-8")]);
  files.push(...(await writeCurveCharts(stem, curves)));
  return { markdown, files };
}

/** The curves of each run's pretraining, where its MODEL.PRETRAINED folder holds a metrics log. */
export function pretrainingCurves(runs: readonly RunResults[]): TrainingCurves[] {
  return runs.map((r) => readTrainingCurves(pretrainingDir(r.pretrained), r.label)).filter((c): c is TrainingCurves => c !== null);
}
