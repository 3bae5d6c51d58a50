import { DATASET_NAMES } from "../data/dataset_names";
import { MAX_BITS, isBitWidth } from "../quant/bits";
import { GRANULARITIES, ORIGINAL_OBSERVER_NAMES } from "../quant/names";
import { bitSettingProblem } from "./bit_setting_check";
import { ConfigError, didYouMean } from "./errors";
import { keyUseProblems } from "./key_use";
import { configFiles, originOf } from "./meta";
import { ARCH_NAMES, SSL_TYPES, type Config } from "./schema";

export type CommandName = "ssl" | "linear" | "ptq";

/**
 * Checks what the types alone cannot: known names (ARCH, DATASET, SSL.TYPE, observers, granularities), bits in
 * 0..16, non-empty BIT_RANGEs, sane counts. Reports every problem at once, each with where it was set.
 * loadConfig calls it; a key left empty ("" or null) is not checked here but by validateFor.
 */
export function validateConfig(cfg: Config): void {
  const problems: Problem[] = [];
  const bad = (key: string, message: string) => problems.push({ key, message });

  const known = (key: string, v: string | null, allowed: readonly string[], noun: string, optional = true) => {
    const value = v ?? "";
    if ((optional && value === "") || allowed.includes(value)) return;
    bad(key, `unknown ${noun} '${value}'${didYouMean(value, allowed)}; allowed: ${allowed.join(", ")}`);
  };
  known("MODEL.ARCH", cfg.MODEL.ARCH, ARCH_NAMES, "architecture");
  known("TRAIN.DATASET", cfg.TRAIN.DATASET, DATASET_NAMES, "dataset");
  known("SSL.TYPE", cfg.SSL.TYPE, SSL_TYPES, "SSL method");

  for (const side of ["W", "A"] as const) {
    const q = cfg.QUANT[side];
    const k = `QUANT.${side}`;
    if (!isBitWidth(q.BIT)) bad(`${k}.BIT`, `${q.BIT} bits is outside 0..${MAX_BITS} (0 = not quantized)`);
    const [lo, hi] = q.BIT_RANGE;
    if (q.BIT_RANGE.length !== 2 || lo === undefined || hi === undefined) {
      bad(`${k}.BIT_RANGE`, `expected [low, high] (high excluded), got [${q.BIT_RANGE.join(", ")}]`);
    } else if (lo >= hi) {
      bad(`${k}.BIT_RANGE`, `[${lo}, ${hi}] is empty or inverted: bits are drawn from low..high-1, so high must exceed low`);
    } else if (lo < 0 || hi - 1 > MAX_BITS) {
      bad(`${k}.BIT_RANGE`, `[${lo}, ${hi}] draws bits outside 0..${MAX_BITS}`);
    }
    known(`${k}.GRANULARITY`, q.GRANULARITY, GRANULARITIES, "granularity", false);
    known(`${k}.OBSERVER_METHOD.NAME`, q.OBSERVER_METHOD.NAME, ORIGINAL_OBSERVER_NAMES, "observer", false);
  }

  const bc = cfg.QUANT.BIT_CONFIG;
  if (bc.length > 1) bad("QUANT.BIT_CONFIG", `expected a list holding one mapping, got ${bc.length} mappings`);
  for (const entry of bc) {
    for (const [layer, bits] of Object.entries(entry)) {
      for (const side of ["w", "a"] as const) {
        const b = bits[side];
        if (b !== undefined && !isBitWidth(b)) {
          bad("QUANT.BIT_CONFIG", `layer '${layer}' "${side}": ${b} bits is outside 0..${MAX_BITS}`);
        }
      }
    }
  }

  for (const s of cfg.LINEAR.BITS) {
    const problem = bitSettingProblem(s);
    if (problem) bad("LINEAR.BITS", problem);
  }

  for (const s of cfg.TRAIN.KNN.BITS) {
    const problem = bitSettingProblem(s);
    if (problem) bad("TRAIN.KNN.BITS", problem);
  }
  if (cfg.TRAIN.KNN.BITS.length === 0) bad("TRAIN.KNN.BITS", "lists no bit setting; use [fp] for the full-precision backbone alone");
  if (!(cfg.TRAIN.KNN.T > 0)) bad("TRAIN.KNN.T", `${cfg.TRAIN.KNN.T} is not a positive temperature`);

  if (cfg.MODEL.INPUTSHAPE.length !== 2) bad("MODEL.INPUTSHAPE", `expected [h, w], got [${cfg.MODEL.INPUTSHAPE.join(", ")}]`);
  const atLeast = (key: string, v: number, min: number) => {
    if (v < min) bad(key, `${v} is below ${min}`);
  };
  atLeast("MODEL.NUM_CLASSES", cfg.MODEL.NUM_CLASSES, 0);
  atLeast("TRAIN.EPOCHS", cfg.TRAIN.EPOCHS, 0);
  atLeast("TRAIN.START_EPOCH", cfg.TRAIN.START_EPOCH, 0);
  atLeast("TRAIN.BATCH_SIZE", cfg.TRAIN.BATCH_SIZE, 1);
  atLeast("TRAIN.NUM_WORKERS", cfg.TRAIN.NUM_WORKERS, 0);
  atLeast("TRAIN.PRINT_FREQ", cfg.TRAIN.PRINT_FREQ, 1);
  atLeast("TRAIN.SAVE_FREQ", cfg.TRAIN.SAVE_FREQ, 1);
  atLeast("TRAIN.KEEP_CHECKPOINTS", cfg.TRAIN.KEEP_CHECKPOINTS, 0);
  atLeast("TRAIN.KNN.EVERY", cfg.TRAIN.KNN.EVERY, 0);
  atLeast("TRAIN.KNN.K", cfg.TRAIN.KNN.K, 1);
  atLeast("TRAIN.KNN.TRAIN_SUBSET", cfg.TRAIN.KNN.TRAIN_SUBSET, 0);
  atLeast("TRAIN.LR_SCHEDULER.WARMUP_EPOCHS", cfg.TRAIN.LR_SCHEDULER.WARMUP_EPOCHS, 0);
  atLeast("DATA.TRAIN_SUBSET", cfg.DATA.TRAIN_SUBSET, 0);
  atLeast("DATA.VAL_SUBSET", cfg.DATA.VAL_SUBSET, 0);
  atLeast("QUANT.CALIBRATION.BATCHES", cfg.QUANT.CALIBRATION.BATCHES, 0);
  const { EPOCHS } = cfg.TRAIN;
  const { WARMUP_EPOCHS } = cfg.TRAIN.LR_SCHEDULER;
  if (EPOCHS > 0 && WARMUP_EPOCHS > EPOCHS) {
    bad("TRAIN.LR_SCHEDULER.WARMUP_EPOCHS", `${WARMUP_EPOCHS} warm-up epochs exceed TRAIN.EPOCHS (${EPOCHS})`);
  }
  if (cfg.DEVICE !== null && !/^(cpu|cuda(:\d+)?)$/.test(cfg.DEVICE)) {
    bad("DEVICE", `unknown device '${cfg.DEVICE}'; allowed: cpu, cuda, cuda:N`);
  }

  report(cfg, problems, "invalid config");
}

/** Checks that `cfg` has what `command` needs (MODEL.ARCH for ssl, NUM_CLASSES for linear, ...), listing all gaps. */
export function validateFor(command: CommandName, cfg: Config): void {
  const problems: Problem[] = [];
  const need = (ok: boolean, key: string, message: string) => {
    if (!ok) problems.push({ key, message, origin: "missing" });
  };
  need(cfg.MODEL.ARCH !== "", "MODEL.ARCH", `set the backbone: ${ARCH_NAMES.join(", ")}`);
  need(cfg.TRAIN.DATASET !== "", "TRAIN.DATASET", `set the dataset: ${DATASET_NAMES.join(", ")}`);
  need(
    cfg.MODEL.INPUTSHAPE.length === 2 && cfg.MODEL.INPUTSHAPE.every((x) => x > 0),
    "MODEL.INPUTSHAPE",
    "set the input size [h, w], e.g. [32, 32] for CIFAR, [224, 224] for ImageNet",
  );
  if (command === "ssl") {
    need(cfg.SSL.TYPE !== null && cfg.SSL.TYPE !== "", "SSL.TYPE", `set the method: ${SSL_TYPES.join(", ")}`);
  } else {
    need(cfg.MODEL.NUM_CLASSES > 0, "MODEL.NUM_CLASSES", "set the number of classes of the classifier");
    need(
      cfg.MODEL.PRETRAINED !== "" || cfg.MODEL.CHECKPOINT !== "",
      "MODEL.PRETRAINED",
      command === "linear"
        ? "set the SSL checkpoint to evaluate (or MODEL.CHECKPOINT to resume a linear run)"
        : "set the trained classifier to quantize (or MODEL.CHECKPOINT)",
    );
  }
  if (command !== "ptq") {
    need(cfg.TRAIN.EPOCHS > 0, "TRAIN.EPOCHS", "set the number of epochs");
    need(cfg.TRAIN.LR_SCHEDULER.BASE_LR > 0, "TRAIN.LR_SCHEDULER.BASE_LR", "set the learning rate");
  }
  report(cfg, problems, `config is incomplete for '${command}'`);
  // Then every key set to a value this trainer would not honour (lib/config/key_use.ts).
  report(cfg, keyUseProblems(command, cfg), `config has settings '${command}' does not support`);
}

interface Problem {
  key: string;
  message: string;
  origin?: string;
}

function report(cfg: Config, problems: readonly Problem[], title: string): void {
  if (problems.length === 0) return;
  const files = configFiles(cfg);
  const file = files[files.length - 1] ?? "config";
  const line = (p: Problem) => `${p.origin === "missing" ? file : originOf(cfg, p.key)}: ${p.key}: ${p.message}`;
  const first = problems[0]!;
  const message =
    problems.length === 1 ? line(first) : `${title} (${problems.length} problems):\n  ${problems.map(line).join("\n  ")}`;
  throw new ConfigError(message, first.origin === "missing" ? file : originOf(cfg, first.key), first.key);
}
