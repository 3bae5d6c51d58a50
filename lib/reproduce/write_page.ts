import * as fs from "node:fs";
import * as path from "node:path";
import { knnMarkdown, readTrainingCurves, writeCurveCharts, type TrainingCurves } from "../train/curves";
import { readRunResults } from "../train/results";
import { commandLine } from "./child";
import { mainChart, mainTable, noiseSummary, repeatChart, repeatTable, sources, type MainRuns, type RepeatRuns } from "./page";
import { PLAN_RULE, type Costs, type Plan } from "./plan";
import type { Job } from "./protocol";

export interface PageInput {
  out: string;
  budgetMinutes: number;
  command: string;
  info: string;
  loadStart: number[];
  loadEnd: number[];
  started: Date;
  /** Calls of the command that made the run (more than one when it was finished with --resume). */
  calls: number;
  wallSeconds: number;
  costs: Costs;
  plan: Plan;
  bits: readonly string[];
  seed: number;
  jobs: { job: Job; seconds: number | null }[];
}

const min = (s: number) => `${(s / 60).toFixed(1)} min`;
const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(", ");

/** Reads every linear run's results.json and groups them for the tables. */
export function collect(jobs: readonly Job[]): { main: MainRuns; repeat: RepeatRuns } {
  const lin = jobs.filter((j) => j.kind === "linear");
  const methods = [...new Set(lin.map((j) => j.method))];
  const main: MainRuns = { methods: methods.map((method) => ({ method, runs: lin.filter((j) => j.part === "main" && j.method === method).map((j) => ({ dir: j.output, results: readRunResults(j.output) })) })) };
  const seeds = [...new Set(lin.filter((j) => j.part === "repeat").map((j) => j.pretrainSeed))];
  const repeat: RepeatRuns = {
    seeds,
    methods: methods.map((method) => ({ method, bySeed: seeds.map((s) => lin.find((j) => j.part === "repeat" && j.method === method && j.pretrainSeed === s)!).map((j) => ({ dir: j.output, results: readRunResults(j.output) })) })),
  };
  return { main, repeat };
}

/** The main pretraining runs' per-epoch curves (loss, kNN monitor), in method order; runs without a log are left out. */
export function mainCurves(jobs: readonly Job[]): TrainingCurves[] {
  return jobs.filter((j) => j.kind === "ssl" && j.part === "main").flatMap((j) => readTrainingCurves(j.output, j.method) ?? []);
}

/** The kNN section: its table, and the charts written beside the page (curves_knn.svg, curves_loss.svg). */
async function curvesSection(out: string, curves: readonly TrainingCurves[]): Promise<string[]> {
  const files = (await writeCurveCharts(path.join(out, "curves"), curves)).map((f) => path.basename(f));
  const table = knnMarkdown(curves);
  const lines = ["## During pretraining: kNN monitor and loss (main runs)", ""];
  if (table) {
    lines.push(
      "Top-1 of a weighted kNN classifier (k 200, T 0.1) on the backbone's features after each epoch: the training subset is the bank, " +
        "the validation images (DATA.VAL_SUBSET of the pretraining config) the queries; quantized settings are calibrated as linear evaluation does. " +
        `Read from ${curves.map((c) => `\`${c.dir}/metrics.jsonl\``).join(" and ")}.`,
      "",
      table,
    );
  } else lines.push("The main runs logged no kNN results (TRAIN.KNN.EVERY was 0).", "");
  for (const f of files.filter((f) => !f.endsWith("_lr.svg"))) lines.push(`![${f.replace(/\.svg$/, "").replace("curves_", "")}](${f})`, "");
  return lines;
}

/** Writes results.md, results.svg, results_repeat.svg and the curves' charts into the run folder; returns the page. */
export async function writePage(p: PageInput): Promise<string> {
  const { main, repeat } = collect(p.jobs.map((j) => j.job));
  const curves = await curvesSection(p.out, mainCurves(p.jobs.map((j) => j.job)));
  const { plan, costs } = p;
  const nSeeds = main.methods[0].runs.length;
  fs.writeFileSync(path.join(p.out, "results.svg"), mainChart(main, p.bits, `SSQL_SimSiam vs SimSiam, Fashion-MNIST: mean of ${nSeeds} linear classifiers`));
  fs.writeFileSync(path.join(p.out, "results_repeat.svg"), repeatChart(repeat, p.bits, `Two pretraining seeds at the smaller scale (${plan.repeat.images} images)`));
  const cmdLines = p.jobs.map(({ job, seconds }) => `${commandLine(job.args)}${seconds === null ? "   # reused from an earlier call (--resume)" : `   # ${seconds.toFixed(0)} s`}`);
  const page = [
    `# SSQL_SimSiam vs SimSiam on Fashion-MNIST (budget ${p.budgetMinutes} min)`,
    "",
    `Produced by \`${p.command}\`, started ${p.started.toISOString()}; wall time ${min(p.wallSeconds)} ` +
      `${p.calls > 1 ? `over ${p.calls} calls, the commands themselves ${min(p.jobs.reduce((a, j) => a + (j.seconds ?? 0), 0))} ` : ""}` +
      `(planned ${min(plan.estimate.total)}). Load average (1, 5, 15 min) at the start ${load(p.loadStart)}, at the end ${load(p.loadEnd)}.`,
    "",
    "## Machine (`node lib/main.js info`)",
    "",
    "```",
    p.info.trimEnd(),
    "```",
    "",
    "## Scale",
    "",
    `Probe (${costs.probeSeconds.toFixed(0)} s): SSQL_SimSiam ${(costs.ssqlPerImage * 1000).toFixed(1)} ms and SimSiam ` +
      `${(costs.simsiamPerImage * 1000).toFixed(1)} ms per training image at batch ${plan.batch}; one linear-eval setting ` +
      `${(costs.linearPerImage * 1000).toFixed(1)} ms per training+validation image` +
      (costs.linearProcessSeconds !== undefined ? ` plus ${costs.linearProcessSeconds.toFixed(1)} s per linear command` : "") +
      (costs.knnPerImage !== undefined ? `; the kNN monitor ${(costs.knnPerImage * 1000).toFixed(1)} ms per embedded image and setting (${costs.knnSettings} settings, ${costs.knnQueries} queries).` : "."),
    "",
    PLAN_RULE,
    "",
    `- main pretraining, seed ${p.seed}: ${plan.main.images} training images, ${plan.main.epochs} epochs, batch ${plan.batch} ` +
      `(${Math.floor(plan.main.images / plan.batch) * plan.main.epochs} steps) for each method`,
    `- repeated pretraining, seeds ${repeat.seeds.join(" and ")}: ${plan.repeat.images} images, ${plan.repeat.epochs} epochs, batch ${plan.batch}`,
    `- linear evaluation: ${plan.linear.trainImages} training / ${plan.linear.valImages} validation images (the first of each split), ` +
      `the frozen backbone quantized at each setting after calibration, a float classifier trained on its cached features ` +
      `(configs/fmnist/resnet18_linear_eval_fmnist.yaml: ${main.methods[0].runs[0].results.epochs} epochs)`,
    "",
    `## Main comparison: top-1 (%), mean ± standard deviation over ${nSeeds} classifier seeds`,
    "",
    mainTable(main, p.bits),
    "![main comparison](results.svg)",
    "",
    `## Two pretraining seeds at the smaller scale: top-1 (%) of one classifier (seed ${p.seed})`,
    "",
    repeatTable(repeat, p.bits),
    "![repeated pretraining](results_repeat.svg)",
    "",
    noiseSummary(main, repeat, p.bits),
    ...curves,
    "## Where each number comes from",
    "",
    sources(main, repeat),
    "## Commands",
    "",
    "Every command this run made, in order (run from the repository root; each log is `<output>.log`):",
    "",
    "```sh",
    ...cmdLines,
    "```",
    "",
  ].join("\n");
  fs.writeFileSync(path.join(p.out, "results.md"), page);
  return page;
}
