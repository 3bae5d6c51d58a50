import * as fs from "node:fs";
import { clusterFromEnv } from "./cluster_env";

/**
 * `--resume` as torchrun's restarts need it: when torchrun restarted the workers (TORCHELASTIC_RESTART_COUNT > 0,
 * after a worker died) and `existing` (the run's checkpoint, or its output folder) is there, continue from it as a
 * bare --resume would. An explicit --resume, a first attempt and every other launcher keep `resume` as given.
 */
export function resumeAfterRestart(resume: string | boolean, existing: string, env: NodeJS.ProcessEnv = process.env): string | boolean {
  if (resume !== false) return resume;
  const cluster = clusterFromEnv(env);
  if (!cluster || cluster.restartCount === 0 || !fs.existsSync(existing)) return resume;
  if (cluster.world.rank === 0) console.log(`torchrun restart ${cluster.restartCount}: resuming from ${existing}`);
  return true;
}
