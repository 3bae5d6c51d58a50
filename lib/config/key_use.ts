import { linearCriterion, sslCriterion } from "../losses/criteria";
import { regularizerName } from "../losses/regularizer_name";
import { optimizerName, scheduleType } from "../optim/names";
import { ConfigError } from "./errors";
import { Leaf, leafEntries, type Config, type SslType } from "./schema";

/**
 * What this trainer does with every key of the schema, so that no key is read and silently ignored:
 * - `acts`: read, with the effect described (the files named read it; test/unit/config-key-use.test.ts checks);
 * - `inert`: has no effect here, nor in the original's ssl/linear/ptq workers; any value but the default (or one
 *   of `accepts`, values that mean the same) stops the run with an error naming the key;
 * - `info`: a label or a setting of the original's machinery that this trainer replaces, accepted with a
 *   documented meaning (README "What differs") and checked per command where its value would change the run.
 * Per-command rules (optimizer, schedule, criterion, regularizer names, ...) are in `keyUseProblems`.
 */
export type KeyUse =
  | { readonly acts: readonly string[] }
  | { readonly inert: string; readonly accepts?: readonly unknown[] }
  | { readonly info: string };

const acts = (...where: string[]): KeyUse => ({ acts: where });
const inert = (why: string, ...accepts: unknown[]): KeyUse => ({ inert: why, accepts });
const info = (what: string): KeyUse => ({ info: what });

const transforms = "lib/data/transforms.ts";
const quantSide = "lib/quant/config.ts";
const build = "lib/ssl/build.ts";
const notRead = "not read by the original's ssl, linear or ptq workers";
const recon = "lib/quant/reconstruct/options.ts";
const hawq = "the HAWQ bit assigner (mixed-precision search) is not implemented (SSQL does not use it)";

export const KEY_USE: Readonly<Record<string, KeyUse>> = {
  BASE_CONFIG: acts("lib/config/load.ts"),
  DEVICE: acts("lib/cli/run_command.ts"),
  RANK: inert("set from the RANK environment variable by the launcher (--nproc-per-node)"),
  WORLD_SIZE: inert("set from the WORLD_SIZE environment variable by the launcher (--nproc-per-node)"),
  LOCAL_RANK: inert("set from the LOCAL_RANK environment variable by the launcher (--nproc-per-node)"),
  SEED: acts("lib/train/ssl.ts", "lib/train/linear.ts"),
  OUTPUT: acts("lib/cli/run_command.ts"),
  EVALUATOR: inert(notRead),
  EVALUATION_DOMAIN: inert(notRead),
  "MODEL.ARCH": acts(build),
  "MODEL.CHECKPOINT": acts("lib/train/resume_request.ts", "lib/train/linear.ts", "lib/train/ptq.ts"),
  "MODEL.PRETRAINED": acts("lib/train/linear.ts", "lib/train/ptq.ts"),
  "MODEL.NUM_CLASSES": acts("lib/train/linear.ts"),
  "MODEL.INPUTSHAPE": acts(transforms),
  "TRAIN.USE_DDP": info("processes join one data-parallel group whenever the launcher starts several (WORLD_SIZE > 1)"),
  "TRAIN.SYNC_BN": acts("lib/train/ssl.ts"),
  "TRAIN.LINEAR_EVAL": acts("lib/train/linear.ts"),
  "TRAIN.WARMUP_FC": acts("lib/train/linear.ts"),
  "TRAIN.RESUME": inert(`${notRead}; resume with MODEL.CHECKPOINT or --resume`),
  "TRAIN.EPOCHS": acts("lib/train/ssl.ts", "lib/optim/build.ts"),
  "TRAIN.START_EPOCH": acts("lib/train/resume_request.ts"),
  "TRAIN.PRETRAIN": inert(notRead),
  "TRAIN.DATASET": acts("lib/train/ssl.ts"),
  "TRAIN.LABEL_SMOOTHING": acts("lib/train/linear.ts"),
  "TRAIN.BATCH_SIZE": acts("lib/train/ssl.ts"),
  "TRAIN.NUM_WORKERS": acts("lib/cli/args.ts"),
  "TRAIN.PRINT_FREQ": acts("lib/cli/run_command.ts"),
  "TRAIN.SAVE_FREQ": acts("lib/train/checkpoints.ts"),
  "TRAIN.KEEP_CHECKPOINTS": acts("lib/train/checkpoints.ts"),
  "TRAIN.TENSORBOARD": acts("lib/train/run.ts"),
  "TRAIN.KNN.EVERY": acts("lib/train/knn_monitor.ts"),
  "TRAIN.KNN.K": acts("lib/train/knn_monitor.ts"),
  "TRAIN.KNN.T": acts("lib/train/knn_monitor.ts"),
  "TRAIN.KNN.BITS": acts("lib/train/knn_monitor.ts"),
  "TRAIN.KNN.TRAIN_SUBSET": acts("lib/train/knn_monitor.ts"),
  "TRAIN.LR_SCHEDULER.TYPE": acts("lib/optim/names.ts"),
  "TRAIN.LR_SCHEDULER.WARMUP_EPOCHS": acts("lib/optim/build.ts"),
  "TRAIN.LR_SCHEDULER.WARMUP_LR": acts("lib/optim/build.ts"),
  "TRAIN.LR_SCHEDULER.BASE_LR": acts("lib/optim/build.ts"),
  "TRAIN.LR_SCHEDULER.FC_LR": inert(notRead),
  "TRAIN.LR_SCHEDULER.MIN_LR": inert("the original's ssl and linear schedules have no floor"),
  "TRAIN.LR_SCHEDULER.SPECIFIC_LRS": inert(notRead),
  "TRAIN.LR_SCHEDULER.DECAY_MILESTONES": acts("lib/optim/build.ts"),
  "TRAIN.LR_SCHEDULER.DECAY_EPOCH": inert(notRead),
  "TRAIN.LR_SCHEDULER.DECAY_RATE": inert("multiStep multiplies by 0.1 at each milestone, as the original's linear worker hard-codes"),
  "TRAIN.OPTIMIZER.NAME": acts("lib/optim/names.ts"),
  "TRAIN.OPTIMIZER.EPS": inert("used only by timm's adaptive optimizers, which are not supported"),
  "TRAIN.OPTIMIZER.BETAS": inert("used only by timm's adaptive optimizers, which are not supported"),
  "TRAIN.OPTIMIZER.MOMENTUM": acts("lib/optim/build.ts"),
  "TRAIN.OPTIMIZER.WEIGHT_DECAY": acts("lib/optim/build.ts"),
  "TRAIN.LOSS.CRITERION.NAME": acts("lib/losses/criteria.ts", build),
  "TRAIN.LOSS.CRITERION.LPLOSS.P": inert("LpLoss applies to no SSL method (TRAIN.LOSS.CRITERION.NAME)"),
  "TRAIN.LOSS.CRITERION.LPLOSS.REDUCTION": inert("LpLoss applies to no SSL method (TRAIN.LOSS.CRITERION.NAME)"),
  "TRAIN.LOSS.REGULARIZER.NAME": acts("lib/losses/regularizer_name.ts", "lib/train/ssl.ts"),
  "TRAIN.LOSS.LAMBDA": acts("lib/train/ssl.ts"),
  "TRAIN.RUNNER.NAME": info("the command picks the loop: ssl needs ssl (or empty), linear and ptq default (or empty)"),
  "TRAIN.METER.NAME": info("what the log prints: ssl logs the loss (average), linear top-1 (ACC)"),
  "TRAIN.METER.ACC.TOPK": info("linear reports top-1 and top-5 whatever the list, as the original printed them"),
  "AUG.TRAIN.RANDOMRESIZEDCROP.ENABLE": acts(transforms),
  "AUG.TRAIN.RANDOMRESIZEDCROP.SCALE": acts(transforms),
  "AUG.TRAIN.RANDOMRESIZEDCROP.INTERPOLATION": acts(transforms),
  "AUG.TRAIN.RESIZE.ENABLE": acts(transforms),
  "AUG.TRAIN.RESIZE.SIZE": acts(transforms),
  "AUG.TRAIN.RESIZE.KEEP_RATIO": acts(transforms),
  "AUG.TRAIN.RESIZE.INTERPOLATION": acts(transforms),
  "AUG.TRAIN.HORIZONTAL_FLIP.PROB": acts(transforms),
  "AUG.TRAIN.VERTICAL_FLIP.PROB": acts(transforms),
  "AUG.TRAIN.RANDOMCROP.ENABLE": acts(transforms),
  "AUG.TRAIN.RANDOMCROP.PADDING": acts(transforms),
  "AUG.TRAIN.CENTERCROP.ENABLE": acts(transforms),
  "AUG.TRAIN.COLOR_JITTER.PROB": acts(transforms),
  "AUG.TRAIN.COLOR_JITTER.BRIGHTNESS": acts(transforms),
  "AUG.TRAIN.COLOR_JITTER.CONTRAST": acts(transforms),
  "AUG.TRAIN.COLOR_JITTER.SATURATION": acts(transforms),
  "AUG.TRAIN.COLOR_JITTER.HUE": acts(transforms),
  "AUG.TRAIN.AUTO_AUGMENT.ENABLE": inert("AutoAugment is not implemented"),
  "AUG.TRAIN.AUTO_AUGMENT.POLICY": inert("AutoAugment is not implemented"),
  "AUG.TRAIN.RANDOMERASE.PROB": acts(transforms),
  "AUG.TRAIN.RANDOMERASE.MODE": inert("random erasing is not implemented (AUG.TRAIN.RANDOMERASE.PROB > 0 is refused)"),
  "AUG.TRAIN.RANDOMERASE.MAX_COUNT": inert("random erasing is not implemented (AUG.TRAIN.RANDOMERASE.PROB > 0 is refused)"),
  "AUG.TRAIN.MIX.PROB": acts(transforms),
  "AUG.TRAIN.MIX.MODE": inert("mixup/cutmix is not implemented (AUG.TRAIN.MIX.PROB > 0 is refused)"),
  "AUG.TRAIN.MIX.SWITCH_MIXUP_CUTMIX_PROB": inert("mixup/cutmix is not implemented (AUG.TRAIN.MIX.PROB > 0 is refused)"),
  "AUG.TRAIN.MIX.MIXUP_ALPHA": inert("mixup/cutmix is not implemented (AUG.TRAIN.MIX.PROB > 0 is refused)"),
  "AUG.TRAIN.MIX.CUTMIX_ALPHA": inert("mixup/cutmix is not implemented (AUG.TRAIN.MIX.PROB > 0 is refused)"),
  "AUG.TRAIN.MIX.CUTMIX_MIXMAX": inert("mixup/cutmix is not implemented (AUG.TRAIN.MIX.PROB > 0 is refused)"),
  "AUG.TRAIN.NORMLIZATION.MEAN": acts(transforms),
  "AUG.TRAIN.NORMLIZATION.STD": acts(transforms),
  "AUG.EVALUATION.RESIZE.ENABLE": acts(transforms),
  "AUG.EVALUATION.RESIZE.SIZE": acts(transforms),
  "AUG.EVALUATION.RESIZE.KEEP_RATIO": acts(transforms),
  "AUG.EVALUATION.RESIZE.INTERPOLATION": acts(transforms),
  "AUG.EVALUATION.CENTERCROP.ENABLE": acts(transforms),
  "AUG.EVALUATION.NORMLIZATION.MEAN": acts(transforms),
  "AUG.EVALUATION.NORMLIZATION.STD": acts(transforms),
  "QUANT.TYPE": inert("quantizers here are the static-range (ptq) kind every SSQL config uses; qat is not implemented", "ptq"),
  "QUANT.BIT_ASSIGNER.NAME": inert(hawq),
  "QUANT.BIT_ASSIGNER.W_BIT_CHOICES": inert(hawq),
  "QUANT.BIT_ASSIGNER.A_BIT_CHOICES": inert(hawq),
  "QUANT.BIT_ASSIGNER.HAWQ.EIGEN_TYPE": inert(hawq),
  "QUANT.BIT_ASSIGNER.HAWQ.SENSITIVITY_CALC_ITER_NUM": inert(hawq),
  "QUANT.BIT_ASSIGNER.HAWQ.LIMITATION.BIT_ASCEND_SORT": inert(hawq),
  "QUANT.BIT_ASSIGNER.HAWQ.LIMITATION.BIT_WIDTH_COEFF": inert(hawq),
  "QUANT.BIT_ASSIGNER.HAWQ.LIMITATION.BOPS_COEFF": inert(hawq),
  "QUANT.BIT_CONFIG": acts(build, "lib/quant/quant_model.ts"),
  "QUANT.ROUNDING": acts(build, "lib/train/calibrate.ts"),
  "QUANT.FOLD_BN": acts("lib/train/ptq.ts"),
  "QUANT.METHODS": acts("lib/quant/reconstruct/methods.ts"),
  "QUANT.CALIBRATION.PATH": info("the original's ptq worker calibrated on this file; here linear and ptq calibrate on QUANT.CALIBRATION.BATCHES training batches"),
  "QUANT.CALIBRATION.TYPE": info("format of QUANT.CALIBRATION.PATH (see there)"),
  "QUANT.CALIBRATION.MODULE_PATH": inert(notRead),
  "QUANT.CALIBRATION.SIZE": acts(recon),
  "QUANT.CALIBRATION.BATCHSIZE": info("batch size over QUANT.CALIBRATION.PATH (see there); calibration batches here are TRAIN.BATCH_SIZE"),
  "QUANT.CALIBRATION.NUM_WORKERS": acts("lib/cli/args.ts"),
  "QUANT.CALIBRATION.BATCHES": acts("lib/train/linear.ts", "lib/train/calibrate.ts"),
  "QUANT.FINETUNE.ENABLE": info("ptq reconstructs whenever QUANT.W.QUANTIZER is adaRound"),
  "QUANT.FINETUNE.METHOD": acts(recon),
  "QUANT.FINETUNE.BATCHSIZE": acts(recon),
  "QUANT.FINETUNE.ITERS_W": acts(recon),
  "QUANT.FINETUNE.ITERS_A": inert("learning the activation scales after BRECQ (the original's ITERS_A with QUANT.A.QUANTIZER adaRound) is not implemented"),
  "QUANT.FINETUNE.BRECQ.KEEP_GPU": info("cached block inputs/outputs stay in host memory; each step uploads its batch"),
  "QUANT.FINETUNE.GRANULARITY": acts(recon),
  "QUANT.FINETUNE.WARMUP": acts(recon),
  "QUANT.FINETUNE.B_RANGE": acts(recon),
  "QUANT.FINETUNE.LR": acts(recon),
  "SSL.TYPE": acts(build),
  "SSL.SETTING.DIM": acts(build),
  "SSL.SETTING.HIDDEN_DIM": acts(build),
  "SSL.SETTING.T": acts(build),
  "SSL.SETTING.MOCO_K": acts(build),
  "SSL.SETTING.MOMENTUM": acts(build),
  "SSL.SETTING.MLP": acts(build),
  "SSL.SETTING.PROJECTOR_HIDDEN": acts(build),
  "DATA.ROOT": acts("lib/train/ssl.ts"),
  "DATA.ON_BAD_IMAGE": acts("lib/train/ssl.ts"),
  "DATA.TRAIN_SUBSET": acts("lib/train/ssl.ts"),
  "DATA.VAL_SUBSET": acts("lib/train/classifier_data.ts"),
  "LINEAR.BITS": acts("lib/train/linear.ts"),
  "LINEAR.AUGMENT": acts("lib/train/classifier_data.ts"),
};

for (const side of ["W", "A"]) {
  const k = (s: string) => `QUANT.${side}.${s}` as const;
  Object.assign(KEY_USE, {
    [k("QUANTIZER")]: acts(quantSide),
    [k("BIT")]: acts(quantSide),
    [k("BIT_RANGE")]: acts(quantSide),
    [k("SYMMETRY")]: acts(quantSide),
    [k("GRANULARITY")]: acts(quantSide),
    [k("OBSERVER_METHOD.NAME")]: acts(quantSide),
    [k("OBSERVER_METHOD.ALPHA")]: acts(quantSide),
    [k("OBSERVER_METHOD.BINS")]: acts(quantSide),
  });
}

export type KeyUseCommand = "ssl" | "linear" | "ptq";

interface Problem {
  key: string;
  message: string;
}

function valueAt(cfg: Config, key: string): unknown {
  return key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], cfg);
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const show = (v: unknown) => (typeof v === "string" ? `'${v}'` : JSON.stringify(v));

/** Every key set to a value this trainer would not honour for `command`, with what is supported. */
export function keyUseProblems(command: KeyUseCommand, cfg: Config): Problem[] {
  const problems: Problem[] = [];
  for (const [key, leaf] of leafEntries()) {
    const use = KEY_USE[key];
    if (!use || !("inert" in use)) continue;
    const v = valueAt(cfg, key);
    const ok = [(leaf as Leaf<unknown>).defaultValue, ...(use.accepts ?? [])];
    if (!ok.some((a) => same(a, v))) {
      problems.push({ key, message: `${show(v)} has no effect in this trainer (${use.inert}); supported: ${ok.map(show).join(" or ")}` });
    }
  }
  const check = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof ConfigError) || !e.key) throw e;
      problems.push({ key: e.key, message: e.message.replace(`${e.key}: `, "") });
    }
  };
  const t = cfg.TRAIN;
  const runner = t.RUNNER.NAME;
  if (command === "ssl") {
    check(() => optimizerName(cfg));
    check(() => scheduleType(cfg, "ssl"));
    if (cfg.SSL.TYPE) check(() => sslCriterion(cfg.SSL.TYPE as SslType, t.LOSS.CRITERION.NAME));
    check(() => regularizerName(t.LOSS.REGULARIZER.NAME));
    if (t.LABEL_SMOOTHING > 0) {
      problems.push({ key: "TRAIN.LABEL_SMOOTHING", message: `${t.LABEL_SMOOTHING}: ssl's criteria here are unsmoothed (the original smoothed only MoCo's CrossEntropy); supported: 0` });
    }
    if (runner !== "" && runner !== "ssl") problems.push({ key: "TRAIN.RUNNER.NAME", message: `'${runner}' is not the ssl loop; supported for ssl: ssl (or empty)` });
  } else {
    if (command === "linear") {
      check(() => optimizerName(cfg));
      check(() => scheduleType(cfg, "linear"));
    }
    check(() => linearCriterion(t.LOSS.CRITERION.NAME));
    if (t.LOSS.REGULARIZER.NAME !== "") {
      problems.push({ key: "TRAIN.LOSS.REGULARIZER.NAME", message: `'${t.LOSS.REGULARIZER.NAME}': ${command} trains with cross entropy alone, as the original's ${command} worker (which ignored the regularizer); supported: empty` });
    }
    if (runner !== "" && runner !== "default") problems.push({ key: "TRAIN.RUNNER.NAME", message: `'${runner}' is not the ${command} loop; supported for ${command}: default (or empty)` });
  }
  if (command !== "ptq" && cfg.QUANT.W.QUANTIZER === "adaRound") {
    problems.push({ key: "QUANT.W.QUANTIZER", message: `'adaRound': only ptq reconstructs the weight rounding (AdaRound/BRECQ); supported for ${command}: uniform` });
  }
  const { START_EPOCH, EPOCHS } = t;
  if (command !== "ptq" && EPOCHS > 0 && START_EPOCH >= EPOCHS) {
    problems.push({ key: "TRAIN.START_EPOCH", message: `${START_EPOCH} leaves no epoch to run (TRAIN.EPOCHS is ${EPOCHS}); supported: 0..${EPOCHS - 1}` });
  }
  const topk = t.METER.ACC.TOPK;
  if (topk.some((k) => k !== 1 && k !== 5)) problems.push({ key: "TRAIN.METER.ACC.TOPK", message: `[${topk.join(", ")}]: only top-1 (and top-5) are reported; supported: [1], [1, 5]` });
  return problems;
}
