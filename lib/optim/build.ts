import type { Config } from "../config/schema";
import type { Tensor } from "../tensor/tensor";
import { LARS } from "./lars";
import { optimizerName, scheduleType, type Command } from "./names";
import { learningRate } from "./schedule";
import { SGD, type ParamGroupInput } from "./sgd";

/**
 * The optimizer and learning-rate schedule named by TRAIN.OPTIMIZER.NAME and TRAIN.LR_SCHEDULER.TYPE, for the
 * `ssl` and `linear` commands. What the original's workers did:
 * - ssl: SGD whatever the name (the runner replaces timm's optimizer), cosine whatever the type;
 * - linear: LARS around SGD when the name is exactly `lars`, else SGD; cosine when the type is `cosine`, else
 *   x0.1 at each of DECAY_MILESTONES.
 * Here `sgd` and `lars` (any case; empty = sgd) and `cosine` and `multiStep` (null = the command's original
 * default) act as named in both commands; any other name stops the run naming the key (./names.ts).
 */

/** SGD (momentum, weight decay on every parameter) or LARS around it, at BASE_LR. */
export function buildOptimizer(cfg: Config, params: Tensor[] | ParamGroupInput[]): SGD {
  const o = cfg.TRAIN.OPTIMIZER;
  const hyper = { lr: cfg.TRAIN.LR_SCHEDULER.BASE_LR, momentum: o.MOMENTUM, weightDecay: o.WEIGHT_DECAY };
  return optimizerName(cfg) === "lars" ? new LARS(params, hyper) : new SGD(params, hyper);
}

/** The learning rate of `epoch` (0-based) under TRAIN.LR_SCHEDULER. */
export function epochLearningRate(cfg: Config, command: Command, epoch: number): number {
  const s = cfg.TRAIN.LR_SCHEDULER;
  return learningRate(epoch, {
    type: scheduleType(cfg, command),
    baseLr: s.BASE_LR,
    epochs: cfg.TRAIN.EPOCHS,
    milestones: s.DECAY_MILESTONES,
    warmupEpochs: s.WARMUP_EPOCHS,
    warmupLr: s.WARMUP_LR,
  });
}
