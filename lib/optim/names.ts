import { ConfigError } from "../config/errors";
import type { Config } from "../config/schema";
import type { ScheduleOptions } from "./schedule";

/** The names TRAIN.OPTIMIZER.NAME and TRAIN.LR_SCHEDULER.TYPE take (native-free, so config validation can check them). */
export type Command = "ssl" | "linear";
export const OPTIMIZER_NAMES = ["sgd", "lars"] as const;
export const LR_SCHEDULER_TYPES = ["cosine", "multiStep"] as const;

export function optimizerName(cfg: Config): (typeof OPTIMIZER_NAMES)[number] {
  const name = cfg.TRAIN.OPTIMIZER.NAME.toLowerCase();
  if (name === "") return "sgd";
  if ((OPTIMIZER_NAMES as readonly string[]).includes(name)) return name as (typeof OPTIMIZER_NAMES)[number];
  throw new ConfigError(
    `TRAIN.OPTIMIZER.NAME: '${cfg.TRAIN.OPTIMIZER.NAME}' is not supported; supported: ${OPTIMIZER_NAMES.join(", ")} (empty = sgd)`,
    undefined,
    "TRAIN.OPTIMIZER.NAME",
  );
}

export function scheduleType(cfg: Config, command: Command): ScheduleOptions["type"] {
  const t = cfg.TRAIN.LR_SCHEDULER.TYPE;
  if (t === null || t === "") return command === "ssl" ? "cosine" : "step";
  if (t === "cosine") return "cosine";
  if (t === "multiStep") return "step";
  throw new ConfigError(
    `TRAIN.LR_SCHEDULER.TYPE: '${t}' is not supported; supported: ${LR_SCHEDULER_TYPES.join(", ")} ` +
      `(null = ${command === "ssl" ? "cosine, as the original's ssl runner" : "multiStep, as the original's linear worker"})`,
    undefined,
    "TRAIN.LR_SCHEDULER.TYPE",
  );
}

