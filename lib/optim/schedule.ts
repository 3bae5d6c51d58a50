/**
 * Per-epoch learning-rate schedules of the original runners. The SSL runner always uses the cosine schedule
 * lr = base · ½(1 + cos(π·epoch/epochs)) with no warm-up and no floor; we add an optional linear warm-up from
 * warmupLr over `warmupEpochs` (the original ignores TRAIN.LR_SCHEDULER.WARMUP_EPOCHS).
 */
export interface ScheduleOptions {
  type: "cosine" | "step";
  baseLr: number;
  epochs: number;
  warmupEpochs?: number;
  warmupLr?: number;
  /** Step decay: multiply by 0.1 at each milestone epoch (the linear worker hard-codes 0.1). */
  milestones?: readonly number[];
}

export function learningRate(epoch: number, o: ScheduleOptions): number {
  const warm = o.warmupEpochs ?? 0;
  if (epoch < warm) {
    const start = o.warmupLr ?? 0;
    return start + ((o.baseLr - start) * epoch) / warm;
  }
  if (o.type === "cosine") return o.baseLr * 0.5 * (1 + Math.cos((Math.PI * epoch) / o.epochs));
  let lr = o.baseLr;
  for (const m of o.milestones ?? []) if (epoch >= m) lr *= 0.1;
  return lr;
}
