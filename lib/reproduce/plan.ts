/**
 * How a reproduction budget becomes a scale. Pure arithmetic on measured costs, so the rule is testable and the
 * page can state it. Costs are seconds per image, measured on this machine just before (see probe.ts).
 */

/** What the probe measured: seconds per training image of each method, and per image of a linear-eval setting. */
export interface Costs {
  /** SSQL_SimSiam pretraining: seconds per image (two views, forward and backward), at the planned batch. */
  ssqlPerImage: number;
  /** SimSiam pretraining: seconds per image, at the planned batch. */
  simsiamPerImage: number;
  /** One linear-eval setting (calibration, cached features, classifier epochs): seconds per train+val image. */
  linearPerImage: number;
  /** What a linear-eval process spends besides its settings (start, model and data loading), once per command. */
  linearProcessSeconds?: number;
  /** Seconds the probe itself took (spent from the budget). */
  probeSeconds: number;
  /**
   * The kNN monitor of the main pretraining: seconds per image embedded (bank or query) at one bit setting. Each
   * epoch embeds the subset and the validation queries once per monitored setting. Absent = not monitored.
   */
  knnPerImage?: number;
  /** Bit settings the monitor embeds per epoch, and its validation queries. */
  knnSettings?: number;
  knnQueries?: number;
}

export interface PlanOptions {
  budgetSeconds: number;
  batch: number;
  /** Bit settings of the sweep, and classifier seeds per setting for the main backbones. */
  settings: number;
  classifierSeeds: number;
}

export interface Plan {
  batch: number;
  /** The main pretraining of each method: subset size and epochs. */
  main: { images: number; epochs: number };
  /** The repeated pretraining (two seeds of each method) at the smaller scale. */
  repeat: { images: number; epochs: number };
  /** Linear evaluation: training and validation images of every classifier. */
  linear: { trainImages: number; valImages: number };
  /** The planned seconds of each part, for the page. */
  estimate: { pretrainMain: number; knn: number; pretrainRepeat: number; linear: number; total: number };
}

/** Shares of what the budget leaves after the probe. */
export const PRETRAIN_SHARE = 0.6;
export const LINEAR_SHARE = 0.35;
/** The repeated pretraining costs this fraction of the main one per run, and runs twice per method (two seeds). */
export const REPEAT_FRACTION = 0.25;
/** Epochs the per-epoch cosine schedule needs to anneal; beyond them more distinct images beat more passes. */
export const TARGET_EPOCHS = 8;
/** Fewest steps per epoch before epochs are added. */
export const MIN_STEPS_PER_EPOCH = 8;
/** Fewest linear-eval images per split: below this a top-1 measures nothing. */
export const MIN_LINEAR_IMAGES = 64;
export const FMNIST_TRAIN = 60000;
export const FMNIST_VAL = 10000;

const roundTo = (n: number, m: number) => Math.max(m, Math.floor(n / m) * m);

/**
 * Subset size and epochs for `imagePasses` images seen per method: up to TARGET_EPOCHS epochs, each of at least
 * MIN_STEPS_PER_EPOCH steps, then the subset grows to the whole training set, then the epochs again.
 */
export function scaleFor(imagePasses: number, batch: number): { images: number; epochs: number } {
  let epochs = Math.min(TARGET_EPOCHS, Math.max(1, Math.floor(imagePasses / (MIN_STEPS_PER_EPOCH * batch))));
  let images = roundTo(imagePasses / epochs, batch);
  if (images > FMNIST_TRAIN) {
    images = FMNIST_TRAIN;
    epochs = Math.max(TARGET_EPOCHS, Math.floor(imagePasses / FMNIST_TRAIN));
  }
  return { images, epochs };
}

/** The scale that spends the budget: see the shares and scaleFor. */
export function planFor(costs: Costs, o: PlanOptions): Plan {
  for (const [k, v] of Object.entries(costs)) if (!(Number.isFinite(v) && v >= 0)) throw new Error(`plan: measured ${k} is ${v}; expected a non-negative number`);
  if (!(o.budgetSeconds > 0)) throw new Error(`plan: the budget must be positive, got ${o.budgetSeconds} s`);
  const left = Math.max(0, o.budgetSeconds - costs.probeSeconds);
  const pair = costs.ssqlPerImage + costs.simsiamPerImage;
  // The main runs' kNN monitor embeds every training image once per setting and epoch, in both methods; the
  // queries are a fixed cost per epoch, charged after the scale is chosen.
  const knnPair = 2 * (costs.knnSettings ?? 0) * (costs.knnPerImage ?? 0);
  // Main pair once, plus two seeds of each method at REPEAT_FRACTION of the image passes.
  const passes = (PRETRAIN_SHARE * left) / (pair * (1 + 2 * REPEAT_FRACTION) + knnPair);
  const main = scaleFor(passes, o.batch);
  const knn = main.epochs * (main.images * knnPair + 2 * (costs.knnSettings ?? 0) * (costs.knnQueries ?? 0) * (costs.knnPerImage ?? 0));
  const repeat = { images: roundTo(main.images * REPEAT_FRACTION, o.batch), epochs: main.epochs };
  // Linear children: 2 methods x classifierSeeds, plus the 4 repeat backbones with one seed; each `settings` settings.
  const commands = 2 * o.classifierSeeds + 4;
  const evaluations = commands * o.settings;
  const processes = commands * (costs.linearProcessSeconds ?? 0);
  const perSide = Math.floor(Math.max(0, LINEAR_SHARE * left - processes) / (evaluations * 2 * Math.max(costs.linearPerImage, 1e-9)));
  const n = Math.min(FMNIST_VAL, Math.max(MIN_LINEAR_IMAGES, roundTo(perSide, o.batch)));
  const linear = { trainImages: n, valImages: n };
  const pretrainMain = main.images * main.epochs * pair;
  const pretrainRepeat = 2 * repeat.images * repeat.epochs * pair;
  const lin = processes + evaluations * 2 * n * costs.linearPerImage;
  return { batch: o.batch, main, repeat, linear, estimate: { pretrainMain, knn, pretrainRepeat, linear: lin, total: costs.probeSeconds + pretrainMain + knn + pretrainRepeat + lin } };
}

/** The rule in words, for the page. */
export const PLAN_RULE =
  `The budget left after the probe is split ${PRETRAIN_SHARE * 100}% pretraining, ${LINEAR_SHARE * 100}% linear evaluation ` +
  `(the rest is slack for process starts and load). Pretraining spends its share on the main SSQL_SimSiam and SimSiam runs (with ` +
  `their kNN monitor after every epoch, at the probe's measured cost per embedded image) plus ` +
  `two seeds of each method at ${REPEAT_FRACTION * 100}% of the main subset; the images seen per method become epochs first ` +
  `(up to ${TARGET_EPOCHS}, each of at least ${MIN_STEPS_PER_EPOCH} steps, so the per-epoch cosine schedule anneals), then a ` +
  `larger subset (more distinct images teach more than more passes over the same ones), up to all ${FMNIST_TRAIN} training images. ` +
  `Linear evaluation gets as many training and validation images (at least ${MIN_LINEAR_IMAGES}, at most ${FMNIST_VAL}) as its share pays for once each command's own start is paid, every classifier ` +
  `computing its frozen features once (augmentation off).`;
