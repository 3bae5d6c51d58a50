import * as path from "node:path";
import { parseArgs } from "node:util";
import { readRunResults, writeMergedReport } from "../train/results";

const usage = `usage: node lib/main.js report --runs DIR [DIR ...] [--output chart.svg] [--labels A,B,...] [--title TEXT]

Merges the results.json of several linear (or ptq) runs, e.g. SimSiam and SSQL, into one table and one chart of
top-1 accuracy against bit setting. Writes the chart to --output (default ./report.svg) and, beside it, the table
as .md and .csv and the merged results as .json; prints the table.`;

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
  const runs = dirs.map((d) => readRunResults(d));
  if (values.labels !== undefined) {
    const labels = values.labels.split(",").map((s) => s.trim());
    if (labels.length !== runs.length) throw new Error(`report: --labels has ${labels.length} names for ${runs.length} runs`);
    labels.forEach((l, i) => (runs[i].label = l));
  }
  const output = path.resolve(values.output ?? "report.svg");
  const title = values.title ?? `Top-1 by bit setting: ${[...new Set(runs.map((r) => `${r.arch} on ${r.dataset}`))].join(", ")}`;
  const { markdown, files } = await writeMergedReport(output, runs, title);
  console.log(markdown);
  console.log(`written: ${files.join(", ")}`);
  return 0;
}
