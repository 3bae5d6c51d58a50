import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Seconds per step of an ssl run from its metrics.jsonl: the mean gap between consecutive step records, so the
 * first step (process start, data threads, first allocations) is left out. Needs at least two steps.
 */
export function secondsPerStep(metricsFile: string): number {
  const times = fs
    .readFileSync(metricsFile, "utf-8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { kind?: string; time?: string })
    .filter((r) => r.kind === "step" && typeof r.time === "string")
    .map((r) => Date.parse(r.time!));
  if (times.length < 2) throw new Error(`${metricsFile}: ${times.length} step record(s); the probe needs at least two to time a step`);
  return (times[times.length - 1] - times[0]) / 1000 / (times.length - 1);
}

/** The probe's ssl metrics file for a run folder. */
export const metricsOf = (dir: string) => path.join(dir, "metrics.jsonl");
