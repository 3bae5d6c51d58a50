import { renderChart } from "../train/chart";
import type { RunResults } from "../train/results";
import { meanSd } from "./stats";

/** A linear run's results with the folder they were read from (the page names it). */
export interface SourcedResults {
  dir: string;
  results: RunResults;
}

/** The main comparison: per method, one linear sweep per classifier seed. */
export interface MainRuns {
  methods: { method: string; runs: SourcedResults[] }[];
}

/** The repeated pretraining: per method and pretraining seed, one linear sweep. */
export interface RepeatRuns {
  seeds: number[];
  methods: { method: string; bySeed: SourcedResults[] }[];
}

const f2 = (v: number) => v.toFixed(2);

function top1(r: RunResults, bits: string): number {
  const s = r.settings.find((x) => x.bits === bits);
  if (!s) throw new Error(`${r.pretrained}: no result at ${bits}`);
  return s.top1;
}

/** The classifier seeds' top-1 of one method at one setting. */
export function seedTop1(runs: readonly SourcedResults[], bits: string): number[] {
  return runs.map((r) => top1(r.results, bits));
}

/** `| bits | A mean ± sd | B mean ± sd | A - B |`, one row per setting, every number from the runs' results.json. */
export function mainTable(main: MainRuns, settings: readonly string[]): string {
  const [a, b] = main.methods;
  const head = `| bits | ${main.methods.map((m) => `${m.method} top-1 (%)`).join(" | ")} | ${a.method} − ${b.method} |`;
  const rule = `|---|${main.methods.map(() => "---:").join("|")}|---:|`;
  const rows = settings.map((bits) => {
    const stats = main.methods.map((m) => meanSd(seedTop1(m.runs, bits)));
    return `| ${bits} | ${stats.map((s) => `${f2(s.mean)} ± ${f2(s.sd)}`).join(" | ")} | ${f2(stats[0].mean - stats[1].mean)} |`;
  });
  return [head, rule, ...rows].join("\n") + "\n";
}

/** `| bits | A seed s1 | A seed s2 | B seed s1 | B seed s2 | A − B (s1) | A − B (s2) |`, single classifiers. */
export function repeatTable(rep: RepeatRuns, settings: readonly string[]): string {
  const [a, b] = rep.methods;
  const cols = rep.methods.flatMap((m) => rep.seeds.map((s) => `${m.method} seed ${s}`));
  const diffs = rep.seeds.map((s) => `${a.method} − ${b.method} (seed ${s})`);
  const head = `| bits | ${[...cols, ...diffs].join(" | ")} |`;
  const rule = `|---|${[...cols, ...diffs].map(() => "---:").join("|")}|`;
  const rows = settings.map((bits) => {
    const vals = rep.methods.flatMap((m) => m.bySeed.map((r) => top1(r.results, bits)));
    const d = rep.seeds.map((_, i) => top1(a.bySeed[i].results, bits) - top1(b.bySeed[i].results, bits));
    return `| ${bits} | ${[...vals, ...d].map(f2).join(" | ")} |`;
  });
  return [head, rule, ...rows].join("\n") + "\n";
}

export function mainChart(main: MainRuns, settings: readonly string[], title: string): string {
  return renderChart({
    title,
    categories: [...settings],
    series: main.methods.map((m) => ({ label: `${m.method} (mean)`, values: settings.map((b) => meanSd(seedTop1(m.runs, b)).mean) })),
    yLabel: "top-1 accuracy (%)",
    xLabel: "bit setting (weights w / features f)",
  });
}

export function repeatChart(rep: RepeatRuns, settings: readonly string[], title: string): string {
  return renderChart({
    title,
    categories: [...settings],
    series: rep.methods.flatMap((m) => m.bySeed.map((r, i) => ({ label: `${m.method} seed ${rep.seeds[i]}`, values: settings.map((b) => top1(r.results, b)) }))),
    yLabel: "top-1 accuracy (%)",
    xLabel: "bit setting (weights w / features f)",
  });
}

/** The run folders each table column was read from. */
export function sources(main: MainRuns, rep: RepeatRuns): string {
  const lines = main.methods.map((m) => `- ${m.method}, main: ${m.runs.map((r) => `\`${r.dir}/results.json\``).join(", ")}`);
  for (const m of rep.methods) lines.push(`- ${m.method}, repeat: ${m.bySeed.map((r, i) => `seed ${rep.seeds[i]} \`${r.dir}/results.json\``).join(", ")}`);
  return lines.join("\n") + "\n";
}

/**
 * The noise beside the effect, in one paragraph: the largest spread over classifier seeds, the largest difference
 * between the two pretraining seeds of a method, and the range of the main gap. A gap inside these is not a result.
 */
export function noiseSummary(main: MainRuns, rep: RepeatRuns, settings: readonly string[]): string {
  const [a, b] = main.methods;
  const sdMax = main.methods.map((m) => Math.max(...settings.map((s) => meanSd(seedTop1(m.runs, s)).sd)));
  const seedGap = rep.methods.map((m) => Math.max(...settings.map((s) => Math.abs(top1(m.bySeed[0].results, s) - top1(m.bySeed[1].results, s)))));
  const gaps = settings.map((s) => meanSd(seedTop1(a.runs, s)).mean - meanSd(seedTop1(b.runs, s)).mean);
  return (
    `Noise: across classifier seeds the standard deviation reaches ${main.methods.map((m, i) => `${f2(sdMax[i])} (${m.method})`).join(" and ")} points; ` +
    `between pretraining seeds ${rep.seeds.join(" and ")} at the smaller scale the top-1 of one method differs by up to ` +
    `${rep.methods.map((m, i) => `${f2(seedGap[i])} (${m.method})`).join(" and ")} points. ` +
    `The main ${a.method} − ${b.method} gap runs from ${f2(Math.min(...gaps))} to ${f2(Math.max(...gaps))} points over the settings.\n`
  );
}
