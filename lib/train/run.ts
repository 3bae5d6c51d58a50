import * as fs from "node:fs";
import * as path from "node:path";
import { dumpConfig, type Config } from "../config";
import { setDataThreads } from "../data/augment";
import { worldFromEnv } from "../distributed/launch";
import { destroyProcessGroup, distributed, initProcessGroup, type ProcessGroup } from "../distributed/process_group";
import type { Device } from "../tensor/binding";
import { MetricsLog } from "./metrics_log";
import { Progress } from "./progress";
import { TensorBoardSink } from "./tensorboard";

/** What every run command (ssl, linear, ptq) is given. */
export interface RunOptions {
  cfg: Config;
  output: string;
  device: Device;
  /** Data (augmentation) threads of this process. */
  workers: number;
  /** On a terminal, refresh the progress line every this many steps (default 1); otherwise one line per epoch. */
  printFreq?: number;
  quiet?: boolean;
}

/**
 * One process's view of a run: where it stands among the ranks and what it writes. The process group reaches
 * code only from here, as an argument (buildSslMethod, convertSyncBatchNorm, DistributedDataParallel, evaluate).
 */
export interface Run {
  readonly cfg: Config;
  readonly output: string;
  readonly device: Device;
  /** The ranks of a multi-process run (torchrun-style environment); null: a single process. */
  readonly group: ProcessGroup | null;
  readonly rank: number;
  readonly worldSize: number;
  /** Rank 0: the one process that writes files and prints. */
  readonly main: boolean;
  readonly progress: Progress;
  /**
   * Rank 0: a JSON-lines metrics log at `file` (closed when the run ends), its records also written as TensorBoard
   * scalars to an events.out.tfevents.* file beside it unless TRAIN.TENSORBOARD is False; other ranks: null.
   */
  metricsLog(file: string): MetricsLog | null;
}

/**
 * The run skeleton every command shares: joins the process group when launched on several ranks, sets the data
 * threads, has rank 0 create the output folder and write the effective config (config.yaml) there, runs `body`
 * with the Run, then closes the metrics logs and leaves the process group, whether `body` succeeded or not.
 */
export async function withRun<T>(o: RunOptions, body: (run: Run) => Promise<T>): Promise<T> {
  const world = worldFromEnv();
  // A job this process already joined (a caller running several commands) is used and left to its owner.
  const joined = distributed();
  const dist = joined ?? (world && world.worldSize > 1 ? await initProcessGroup({ world, device: o.device }) : null);
  const logs: MetricsLog[] = [];
  try {
    const rank = dist?.world.rank ?? 0;
    const main = rank === 0;
    setDataThreads(Math.max(1, o.workers));
    if (main) {
      fs.mkdirSync(o.output, { recursive: true });
      fs.writeFileSync(path.join(o.output, "config.yaml"), dumpConfig(o.cfg));
    }
    const run: Run = {
      cfg: o.cfg,
      output: o.output,
      device: o.device,
      group: dist?.group ?? null,
      rank,
      worldSize: dist?.world.worldSize ?? 1,
      main,
      progress: new Progress(o.printFreq ?? 1, process.stdout, main && !o.quiet),
      metricsLog(file) {
        if (!main) return null;
        // TRAIN.TENSORBOARD: the same records as TensorBoard scalars, in the log's folder.
        const log = new MetricsLog(file, o.cfg.TRAIN.TENSORBOARD ? [new TensorBoardSink(path.dirname(file))] : []);
        logs.push(log);
        return log;
      },
    };
    return await body(run);
  } finally {
    for (const log of logs) log.close();
    if (dist && !joined) await destroyProcessGroup();
  }
}
