/**
 * The config schema: every key of the original yacs `config.py` with its default, plus the project's own keys
 * (marked "project key"). The TypeScript type `Config` is derived from this one table, so a key's type, default
 * and documentation live in one place.
 *
 * Typing follows yacs: a value must match its default's type, with these differences, all on purpose:
 * - an int is accepted where a float is expected (yacs refuses `BASE_LR: 1`);
 * - a key whose default is None still has a declared type here (yacs accepts anything), so `SEED: abc` is an
 *   error instead of a crash later;
 * - tuples (yacs writes `SCALE: (0.08, 1.0)` as a string that it `literal_eval`s) are number arrays.
 */

import { DATASET_NAMES, type DatasetName } from "../data/dataset_names";
import { ARCHS } from "../nn/resnet";
import type { BitConfig } from "../quant/bits";
import { ORIGINAL_OBSERVER_NAMES, type Granularity, type OriginalObserverName } from "../quant/names";

export type LeafKind = "int" | "float" | "bool" | "str" | "choice" | "ints" | "floats" | "strs" | "bitConfig";

export type { BitConfig };

export class Leaf<T> {
  constructor(
    readonly kind: LeafKind,
    readonly defaultValue: T,
    readonly doc: string,
    readonly nullable = false,
    readonly choices: readonly string[] = [],
  ) {}

  /** The type as error messages and help texts name it. */
  get typeName(): string {
    const base = {
      int: "int",
      float: "float",
      bool: "bool",
      str: "string",
      choice: `one of ${this.choices.join(" | ")}`,
      ints: "list of int",
      floats: "list of float",
      strs: "list of string",
      bitConfig: 'list of one mapping {layer: {"w": bits, "a": bits}}',
    }[this.kind];
    return this.nullable ? `${base} or null` : base;
  }
}

const int = (d: number, doc: string) => new Leaf<number>("int", d, doc);
const float = (d: number, doc: string) => new Leaf<number>("float", d, doc);
const bool = (d: boolean, doc: string) => new Leaf<boolean>("bool", d, doc);
/** A string; T narrows the TypeScript type where validateConfig checks the value against a list. */
const str = <T extends string = string>(d: NoInfer<T>, doc: string) => new Leaf<T>("str", d, doc);
const ints = (d: number[], doc: string) => new Leaf<readonly number[]>("ints", d, doc);
const floats = (d: number[], doc: string) => new Leaf<readonly number[]>("floats", d, doc);
const strs = (d: string[], doc: string) => new Leaf<readonly string[]>("strs", d, doc);
const choice = <C extends string>(choices: readonly C[], d: C, doc: string) =>
  new Leaf<C>("choice", d, doc, false, choices);
/** A key whose yacs default is None. */
const none = <T>(kind: LeafKind, doc: string) => new Leaf<T | null>(kind, null, doc, true);

/** MODEL.ARCH values: the backbones lib/nn builds. */
export const ARCH_NAMES: readonly string[] = Object.keys(ARCHS);
export const SSL_TYPES = ["SimSiam", "SSQL_SimSiam", "BYOL", "SSQL_BYOL", "MoCo", "SSQL_MoCo", "SimCLR"] as const;
export type SslType = (typeof SSL_TYPES)[number];

const interpolation = "interpolation: bilinear | bicubic | nearest";

function quantSide(side: "W" | "A") {
  const w = side === "W";
  const what = w ? "weight" : "activation";
  return {
    QUANTIZER: none<string>(
      "str",
      w
        ? "weight quantizer module: uniform (the one SSQL uses) | adaRound (ptq: AdaRound/BRECQ reconstruction of the rounding, see QUANT.FINETUNE)"
        : "activation quantizer module: uniform (the one SSQL uses)",
    ),
    BIT: int(8, `global ${what} bits; 0 = do not quantize. SSQL overwrites it every step with the sampled bits`),
    BIT_RANGE: ints(
      w ? [2, 9] : [4, 9],
      `SSQL sampling range [low, high): high excluded, so [${w ? "2, 9" : "4, 9"}] draws ${w ? "2..8" : "4..8"}`,
    ),
    SYMMETRY: bool(w, "symmetric (signed grid, zero-point 0) or asymmetric (unsigned grid with zero-point)"),
    GRANULARITY: str<Granularity>(w ? "channelwise" : "layerwise", "channelwise (per output channel) | layerwise (per tensor)"),
    OBSERVER_METHOD: {
      NAME: str<OriginalObserverName>("MINMAX", `range observer: ${ORIGINAL_OBSERVER_NAMES.join(" | ")}`),
      ALPHA: float(0.0001, "PERCENTILE observer: share of largest |x| cut off, in [0, 1] (0 = no cut)"),
      BINS: int(2049, "KL_HISTOGRAM observer: histogram bins over [-max|x|, max|x|] (>= 1; 2049 fits 2..9 bits)"),
    },
  };
}

function normalization() {
  return {
    MEAN: floats([], "per-channel mean subtracted after ToTensor"),
    STD: floats([], "per-channel standard deviation divided after ToTensor"),
  };
}

function evalResize() {
  return {
    ENABLE: bool(false, "resize the evaluation image"),
    SIZE: ints([-1, -1], "(h, w); a square size resizes the shorter side"),
    KEEP_RATIO: bool(true, "keep the aspect ratio"),
    INTERPOLATION: str("bilinear", interpolation),
  };
}

export const SCHEMA = {
  BASE_CONFIG: str("", "yaml file this one extends, relative to this file; merged first, this file wins"),
  DEVICE: none<string>("str", "cpu | cuda | cuda:N; null = cuda when available, else cpu (set by --device)"),
  RANK: int(0, "process rank (filled from the RANK environment variable)"),
  WORLD_SIZE: int(1, "number of processes (filled from WORLD_SIZE)"),
  LOCAL_RANK: int(0, "rank on this node (filled from LOCAL_RANK)"),
  SEED: none<number>("int", "random seed; null = not seeded (set by --seed)"),
  OUTPUT: str("", "output folder for logs and checkpoints (set by --output)"),
  EVALUATOR: str("", "unused (kept for compatibility)"),
  EVALUATION_DOMAIN: none<string>("str", "unused (kept for compatibility)"),

  MODEL: {
    ARCH: str("", `backbone: ${ARCH_NAMES.join(" | ")}`),
    CHECKPOINT: str("", "checkpoint to resume this command from (the original's resume key)"),
    PRETRAINED: str("", "SSL checkpoint to evaluate (linear) or a trained classifier (ptq)"),
    NUM_CLASSES: int(0, "classifier outputs (linear, ptq)"),
    INPUTSHAPE: ints([-1, -1], "input (h, w) of the network; crops and resizes produce this size"),
  },

  TRAIN: {
    USE_DDP: bool(false, "original: initialise torch.distributed; here processes join when WORLD_SIZE > 1"),
    SYNC_BN: bool(false, "synchronise batch-norm statistics across processes (ssl only)"),
    LINEAR_EVAL: bool(false, "linear: freeze the backbone (eval mode) and train only fc; false = fine-tune all"),
    WARMUP_FC: bool(false, "linear: PRETRAINED is a previous linear-eval checkpoint, loaded without key renaming"),
    RESUME: str("", "unused (resume goes through MODEL.CHECKPOINT or --resume)"),
    EPOCHS: int(0, "total epochs; also the horizon of the cosine schedule"),
    START_EPOCH: int(0, "first epoch of a run that does not resume; a resumed run starts at its checkpoint's epoch"),
    PRETRAIN: str("", "unused (kept for compatibility)"),
    DATASET: str<DatasetName | "">("", `dataset: ${DATASET_NAMES.join(" | ")}`),
    LABEL_SMOOTHING: float(0.0, "label smoothing of the classification loss"),
    BATCH_SIZE: int(1, "batch size per process (per GPU); validation uses min(256, 2 * BATCH_SIZE)"),
    NUM_WORKERS: int(0, "data-loading workers (set by -j)"),
    PRINT_FREQ: int(1, "refresh the terminal's progress line every N steps (set by -p); output to a file or pipe gets one line per epoch"),
    SAVE_FREQ: int(20, "project key. ssl: keep a periodic checkpoint_<epoch>.json every N epochs (epoch % N == 0) and at the last epoch; the original's every 20th (it also kept every 50th)"),
    KEEP_CHECKPOINTS: int(2, "project key. ssl: how many periodic checkpoints to keep (older ones deleted once the new one is on disk); 0 = keep all"),
    TENSORBOARD: bool(true, "project key. Write TensorBoard event files (events.out.tfevents.*) into the run folder"),
    KNN: {
      EVERY: int(0, "project key. ssl: run the kNN monitor every N epochs (and after the last); 0 = off"),
      K: int(200, "project key. kNN monitor: neighbours per query (all of the bank when it holds fewer)"),
      T: float(0.1, "project key. kNN monitor: temperature of the neighbour weights exp(sim / T)"),
      BITS: strs(["fp"], 'project key. kNN monitor: bit settings of the backbone, e.g. ["fp", "4w4f", "2w4f"] (QUANT.BIT_CONFIG applies, ranges calibrated as linear does)'),
      TRAIN_SUBSET: int(0, "project key. kNN monitor: the first N training images form the bank (0 = all of DATA.TRAIN_SUBSET)"),
    },
    LR_SCHEDULER: {
      TYPE: none<string>("str", "cosine | multiStep (x0.1 at each of DECAY_MILESTONES); null = cosine in ssl, multiStep in linear"),
      WARMUP_EPOCHS: int(0, "linear warm-up epochs from WARMUP_LR to BASE_LR (the original ignores it; honoured here)"),
      WARMUP_LR: float(0.0, "learning rate at the start of the warm-up"),
      BASE_LR: float(0.0, "initial learning rate, used as given (no batch-size scaling)"),
      FC_LR: float(0.0, "unused (kept for compatibility)"),
      MIN_LR: float(0.0, "unused by the original's ssl and linear paths"),
      SPECIFIC_LRS: floats([], "unused (kept for compatibility)"),
      DECAY_MILESTONES: ints([], "epochs at which a step schedule multiplies the learning rate by 0.1"),
      DECAY_EPOCH: int(0, "unused (kept for compatibility)"),
      DECAY_RATE: float(0.1, "unused by the original's linear path, which hard-codes 0.1"),
    },
    OPTIMIZER: {
      NAME: str("", "sgd | lars (LARS around SGD), any case; empty = sgd"),
      EPS: none<number>("float", "unused (timm only)"),
      BETAS: none<readonly number[]>("floats", "unused (timm only)"),
      MOMENTUM: float(0.0, "SGD momentum"),
      WEIGHT_DECAY: float(0.0, "SGD weight decay, applied to every parameter (BN and biases included)"),
    },
    LOSS: {
      CRITERION: {
        NAME: str("", "per SSL.TYPE: CosineSimilarity (SimSiam, BYOL families), CosineSimilarityv2 (BYOL family), CrossEntropy (MoCo family, linear), InfoNCEv2 | InfoNCE (SimCLR); empty = the method's own"),
        LPLOSS: {
          P: float(2.0, "LpLoss exponent (unused by SSQL)"),
          REDUCTION: str("none", "LpLoss reduction (unused by SSQL)"),
        },
      },
      REGULARIZER: {
        NAME: str("", "ssl: Slimming (LAMBDA x sum of |BN2d gamma|); empty = none. PACT is refused (no PACT quantizer)"),
      },
      LAMBDA: float(0.0, "regularizer weight: loss = criterion + LAMBDA x regularizer; no effect without one, as in the original"),
    },
    RUNNER: {
      NAME: str("", "ssl | default (informational here: the command decides)"),
    },
    METER: {
      NAME: str("", "average | ACC"),
      ACC: {
        TOPK: ints([], "top-k accuracies to report, e.g. [1, 5]"),
      },
      MAP: {},
      MIOU: {},
    },
  },

  AUG: {
    TRAIN: {
      RANDOMRESIZEDCROP: {
        ENABLE: bool(false, "RandomResizedCrop to MODEL.INPUTSHAPE"),
        SCALE: floats([0.08, 1.0], "area fraction range of the crop"),
        INTERPOLATION: str("bilinear", interpolation),
      },
      RESIZE: evalResize(),
      HORIZONTAL_FLIP: { PROB: float(0.0, "probability of a horizontal flip") },
      VERTICAL_FLIP: { PROB: float(0.0, "probability of a vertical flip") },
      RANDOMCROP: {
        ENABLE: bool(false, "RandomCrop to MODEL.INPUTSHAPE"),
        PADDING: int(0, "zero padding before the random crop"),
      },
      CENTERCROP: { ENABLE: bool(false, "CenterCrop to MODEL.INPUTSHAPE") },
      COLOR_JITTER: {
        PROB: float(0.0, "probability of applying colour jitter"),
        BRIGHTNESS: float(0.4, "brightness jitter strength"),
        CONTRAST: float(0.4, "contrast jitter strength"),
        SATURATION: float(0.2, "saturation jitter strength"),
        HUE: float(0.1, "hue jitter strength"),
      },
      AUTO_AUGMENT: {
        ENABLE: bool(false, "unused (kept for compatibility)"),
        POLICY: float(0.0, "unused (kept for compatibility)"),
      },
      RANDOMERASE: {
        PROB: float(0.0, "random-erasing probability"),
        MODE: str("const", "random-erasing fill: const | rand | pixel"),
        MAX_COUNT: none<number>("int", "most erased boxes per image"),
      },
      MIX: {
        PROB: float(0.0, "mixup/cutmix probability"),
        MODE: str("batch", "batch | pair | elem"),
        SWITCH_MIXUP_CUTMIX_PROB: float(0.0, "probability of cutmix instead of mixup"),
        MIXUP_ALPHA: float(0.0, "mixup beta-distribution alpha"),
        CUTMIX_ALPHA: float(0.0, "cutmix beta-distribution alpha"),
        CUTMIX_MIXMAX: none<readonly number[]>("floats", "cutmix (min, max) box ratio"),
      },
      NORMLIZATION: normalization(),
    },
    EVALUATION: {
      RESIZE: evalResize(),
      CENTERCROP: { ENABLE: bool(false, "CenterCrop to MODEL.INPUTSHAPE after the resize") },
      NORMLIZATION: normalization(),
    },
  },

  QUANT: {
    TYPE: str("", "quantizer family: ptq (static min/max ranges, what every SSQL config uses) | qat"),
    BIT_ASSIGNER: {
      NAME: none<string>("str", "mixed-precision search: HAWQ (unused by SSQL)"),
      W_BIT_CHOICES: ints([2, 4, 8], "HAWQ weight bit choices"),
      A_BIT_CHOICES: ints([2, 4, 8, 16], "HAWQ activation bit choices"),
      HAWQ: {
        EIGEN_TYPE: str("avg", "max | avg"),
        SENSITIVITY_CALC_ITER_NUM: int(50, "HAWQ sensitivity iterations"),
        LIMITATION: {
          BIT_ASCEND_SORT: bool(false, "HAWQ limitation"),
          BIT_WIDTH_COEFF: float(1e10, "HAWQ limitation"),
          BOPS_COEFF: float(1e10, "HAWQ limitation"),
        },
      },
    },
    BIT_CONFIG: new Leaf<BitConfig>(
      "bitConfig",
      [],
      'per-layer bits overriding W.BIT/A.BIT: [{"conv1": {"w": 8, "a": 8}, "fc.3": {"w": 8, "a": 0}}]',
    ),
    FOLD_BN: bool(
      false,
      "ptq: fold each BN into the conv before it before calibrating (the original's quant_tools/fold_bn.py); the folded " +
        "BN keeps only its shift (weight 1, running_mean 0, running_var 1 - eps, bias = the folded bias)",
    ),
    METHODS: strs(
      [],
      "project key. ptq: PTQ methods to compare, each run at every bit setting: an observer name (minmax, mse, percentile, " +
        "histogram, kl_histogram, gaussian, momentum_minmax: QUANT.{W,A}.OBSERVER_METHOD.NAME), adaround (layer-wise " +
        "reconstruction) or brecq (block-wise); [] = the config as it stands (set by --methods)",
    ),
    ROUNDING: choice(
      ["divide", "reciprocal"] as const,
      "divide",
      "project key. What fake quantization rounds: divide = x / scale (the original's uniform quantizer) | " +
        "reciprocal = x * (1 / scale) (PyTorch's fake_quantize_* ops); they differ on .5 ties, where SSQL's weight scale puts each channel's extreme weight",
    ),
    W: quantSide("W"),
    A: quantSide("A"),
    CALIBRATION: {
      PATH: str("", "calibration data (ptq); not read by ssl or linear"),
      TYPE: str("", "calibration data format"),
      MODULE_PATH: str("", "unused (kept for compatibility)"),
      SIZE: int(0, "calibration images"),
      BATCHSIZE: int(1, "calibration batch size"),
      NUM_WORKERS: int(0, "calibration loader workers (set by -j)"),
      BATCHES: int(
        0,
        "project key. linear/ptq: training batches observed to calibrate the quantizer ranges; 0 = the original's " +
          "effective count, ceil(batches per epoch / BATCH_SIZE) (1 batch for CIFAR-10 at 4 x 128)",
      ),
    },
    FINETUNE: {
      ENABLE: bool(false, "the original's switch for finetune/brecq; here ptq reconstructs whenever QUANT.W.QUANTIZER is adaRound"),
      METHOD: str("", "finetune method: '' or brecq (the only one)"),
      BATCHSIZE: int(32, "AdaRound/BRECQ: calibration samples per optimisation step"),
      ITERS_W: int(0, "AdaRound/BRECQ: optimisation steps per block (or layer) for the weight rounding; > 0 with adaRound (the papers use 20000)"),
      ITERS_A: int(0, "activation-scale learning after BRECQ (not implemented; must stay 0)"),
      BRECQ: { KEEP_GPU: bool(true, "keep the cached block inputs/outputs on the GPU (here they stay in host memory; batches are uploaded per step)") },
      GRANULARITY: choice(
        ["block", "layer"] as const,
        "block",
        "project key. What is reconstructed at once: block = the stem conv, then each residual block (the original's BRECQ " +
          "walk) | layer = each conv alone (AdaRound)",
      ),
      WARMUP: float(0.2, "project key. Fraction of ITERS_W before the rounding regularizer starts and its temperature decays (the original's 0.2)"),
      B_RANGE: floats([20, 2], "project key. Rounding regularizer temperature [start, end] (the original's (20, 2))"),
      LR: float(1e-3, "project key. Adam learning rate of the rounding variables (the original's Adam default 1e-3)"),
    },
  },

  SSL: {
    TYPE: none<SslType | "">("str", `method: ${SSL_TYPES.join(" | ")}; null or "" = none`),
    SETTING: {
      DIM: int(128, "projector output width (predictor in/out for SimSiam/BYOL; embedding for MoCo/SimCLR)"),
      HIDDEN_DIM: int(2048, "predictor hidden width (SimSiam family); projector hidden width (BYOL, MoCo, SimCLR)"),
      T: float(0.07, "temperature (MoCo logits, SimCLR NT-Xent)"),
      MOCO_K: int(65536, "MoCo queue length"),
      MOMENTUM: float(0.999, "EMA coefficient of the key/target encoder (BYOL, MoCo)"),
      MLP: bool(true, "MoCo/SimCLR: 2-layer MLP head"),
      PROJECTOR_HIDDEN: choice(
        ["head", "release"] as const,
        "head",
        "project key. SimSiam-family projector hidden width: head = max(backbone width, DIM) as in the original's " +
          "current code; release = HIDDEN_DIM as at the paper's release",
      ),
    },
  },

  DATA: {
    ROOT: str("", "project key. The first dataset root searched, before $SSQL_DATA_DIR and ./data (README.md, \"Dataset search order\")"),
    ON_BAD_IMAGE: choice(["error", "skip"] as const, "error", "project key. An unreadable image: error | skip (and count)"),
    TRAIN_SUBSET: int(0, "project key. Use only the first N training images (0 = all)"),
    VAL_SUBSET: int(0, "project key. Use only the first N validation images (0 = all)"),
  },

  LINEAR: {
    BITS: strs([], 'project key. Bit settings for a linear-eval sweep, e.g. ["fp", "8w8f", "4w4f", "2w4f"]; ' +
      "empty = the single setting of QUANT.W.BIT / QUANT.A.BIT"),
    AUGMENT: bool(
      true,
      "project key. linear: train the classifier on augmented images as the original (random crop and flip); false = " +
        "on the evaluation transform, which lets linear evaluation compute the frozen backbone's features once",
    ),
  },
};

export type Schema = typeof SCHEMA;
export type Section = { readonly [key: string]: Leaf<unknown> | Section };

type ValueOf<S> = S extends Leaf<infer T> ? T : { readonly [K in keyof S]: ValueOf<S[K]> };
/** The loaded, frozen configuration. Keys keep the original's names (`cfg.TRAIN.LR_SCHEDULER.BASE_LR`). */
export type Config = ValueOf<Schema>;


/** Every leaf key as a dotted path, with its leaf. */
export function leafEntries(section: Section = SCHEMA, prefix = ""): [string, Leaf<unknown>][] {
  const out: [string, Leaf<unknown>][] = [];
  for (const [k, v] of Object.entries(section)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v instanceof Leaf) out.push([key, v]);
    else out.push(...leafEntries(v, key));
  }
  return out;
}

/** Every section key (`TRAIN`, `TRAIN.LR_SCHEDULER`, ...) as a dotted path. */
export function sectionKeys(section: Section = SCHEMA, prefix = ""): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(section)) {
    if (v instanceof Leaf) continue;
    const key = prefix ? `${prefix}.${k}` : k;
    out.push(key, ...sectionKeys(v, key));
  }
  return out;
}

/** The schema node at a dotted path, or undefined. */
export function schemaAt(key: string): Leaf<unknown> | Section | undefined {
  let node: Leaf<unknown> | Section = SCHEMA;
  for (const part of key.split(".")) {
    if (node instanceof Leaf || !Object.prototype.hasOwnProperty.call(node, part)) return undefined;
    node = (node as Section)[part]!;
  }
  return node;
}

/** A fresh, mutable copy of the defaults. */
export function defaultValues(section: Section = SCHEMA): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(section)) {
    out[k] = v instanceof Leaf ? structuredClone(v.defaultValue) : defaultValues(v);
  }
  return out;
}
