import * as path from "node:path";
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import { readTrainingCurves, type TrainingCurves } from "../train/curves";
import { pretrainingCurves, readRunResults, writeMergedReport, type RunResults } from "../train/results";

const usage = `usage: node lib/main.js report --runs DIR [DIR ...] [--output chart.svg] [--labels A,B,...] [--title TEXT]

Merges the results.json of several linear (or ptq) runs, e.g. SimSiam and SSQL, into one table and one chart of
top-1 accuracy against bit setting. Writes the chart to --output (default ./report.svg) and, beside it, the table
as .md and .csv and the merged results as .json; prints the table.
It also draws the pretraining curves against epoch (<output>_loss.svg, _lr.svg, _knn.svg with the kNN monitor's
top-1 per bit setting) of each run's MODEL.PRETRAINED folder, and of any ssl run folder given in --runs itself.`;

/** `report --runs DIR1 DIR2 ... [--output chart.svg] [--labels A,B] [--title T]` */
export async function report(argv: string[]): Promise<number> {
  let values: { runs?: string[]; output?: string; labels?: string; title?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { runs: { type: "string", multiple: true }, output: { type: "string" }, labels: { type: "string" }, title: { type: "string" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (e) {
    throw new Error(`report: ${(e as Error).message.split("\n")[0]}\n\n${usage}`);
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  // `--runs A B C`: parseArgs takes one value per --runs, the rest arrive as positionals.
  const dirs = [...(values.runs ?? []), ...positionals];
  if (dirs.length === 0) throw new Error(`report: --runs needs at least one run folder\n\n${usage}`);
  const labels = values.labels?.split(",").map((s) => s.trim());
  if (labels && labels.length !== dirs.length) throw new Error(`report: --labels has ${labels.length} names for ${dirs.length} runs`);
  const runs: RunResults[] = [];
  const pretraining: TrainingCurves[] = [];
  dirs.forEach((d, i) => {
    // An ssl run folder (a metrics log, no results.json) adds its curves; anything else must be a linear/ptq run.
    const ssl = !fs.existsSync(path.join(d, "results.json")) ? readTrainingCurves(d, labels?.[i] ?? path.basename(path.resolve(d))) : null;
    if (ssl) return void pretraining.push(ssl);
    const r = readRunResults(d);
    if (labels) r.label = labels[i];
    runs.push(r);
  });
  const output = path.resolve(values.output ?? "report.svg");
  const title = values.title ?? (runs.length ? `Top-1 by bit setting: ${[...new Set(runs.map((r) => `${r.arch} on ${r.dataset}`))].join(", ")}` : "Pretraining");
  const { markdown, files } = await writeMergedReport(output, runs, title, [...pretrainingCurves(runs), ...pretraining]);
  console.log(markdown);
  console.log(`written: ${files.join(", ")}`);
  return 0;
}
