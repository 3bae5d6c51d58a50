import * as fs from "node:fs";
import * as path from "node:path";

interface MetricsRecord {
  kind?: string;
  time?: string;
  epoch?: number;
  seconds?: number;
  bank?: number;
  queries?: number;
}

const records = (metricsFile: string): MetricsRecord[] =>
  fs
    .readFileSync(metricsFile, "utf-8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as MetricsRecord);

/**
 * Seconds per step of an ssl run from its metrics.jsonl: the mean gap between consecutive step records, so the
 * first step (process start, data threads, first allocations) is left out. Needs at least two steps.
 */
export function secondsPerStep(metricsFile: string): number {
  const times = records(metricsFile)
    .filter((r) => r.kind === "step" && typeof r.time === "string")
    .map((r) => Date.parse(r.time!));
  if (times.length < 2) throw new Error(`${metricsFile}: ${times.length} step record(s); the probe needs at least two to time a step`);
  return (times[times.length - 1] - times[0]) / 1000 / (times.length - 1);
}

/** The probe's ssl metrics file for a run folder. */
export const metricsOf = (dir: string) => path.join(dir, "metrics.jsonl");

/** The kNN monitor's cost in an ssl run's metrics.jsonl: seconds per embedded image, settings per epoch, queries. */
export interface KnnCost {
  perImage: number;
  settings: number;
  queries: number;
}

/** From the run's kNN records (null when it ran no monitor): every record's seconds over its bank plus queries. */
export function knnCost(metricsFile: string): KnnCost | null {
  const knn = records(metricsFile).filter((r) => r.kind === "knn" && typeof r.seconds === "number" && typeof r.bank === "number" && typeof r.queries === "number");
  if (knn.length === 0) return null;
  const images = knn.reduce((a, r) => a + r.bank! + r.queries!, 0);
  const epochs = new Set(knn.map((r) => r.epoch)).size;
  return { perImage: knn.reduce((a, r) => a + r.seconds!, 0) / images, settings: knn.length / epochs, queries: knn[0].queries! };
}
