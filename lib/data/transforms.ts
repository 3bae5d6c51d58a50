import { AUGMENT_RECORD, AugmentField as F, AugmentFlag, type Interpolation } from "../tensor/native/data";
import type { Rng } from "../tensor/prng";

export type Pair = readonly [number, number];
type Triple = readonly [number, number, number];

/** The geometric step, always first: it is the one resampling of the source. */
export type Geometry =
  /** RandomResizedCrop(size, scale, ratio). */
  | { readonly kind: "randomResizedCrop"; readonly size: Pair; readonly scale: Pair; readonly ratio: Pair }
  /** Resize(size) (an int resizes the shorter side, keeping the aspect ratio), then CenterCrop(crop) if given. */
  | { readonly kind: "resize"; readonly size: number | Pair; readonly crop?: Pair }
  /** CenterCrop(size) without resizing. */
  | { readonly kind: "centerCrop"; readonly size: Pair };

/** ColorJitter factor ranges in torchvision's normalized form: null turns an adjustment off. */
export interface ColorJitterSpec {
  readonly p: number;
  readonly brightness: Pair | null;
  readonly contrast: Pair | null;
  readonly saturation: Pair | null;
  readonly hue: Pair | null;
}

/** One augmentation pipeline, applied independently per image (and per view). */
export interface AugmentSpec {
  readonly geometry: Geometry;
  readonly interpolation: Interpolation;
  readonly hflip: number;
  readonly vflip: number;
  readonly colorJitter: ColorJitterSpec | null;
  readonly grayscale: number;
  /** RandomApply(GaussianBlur(sigma ~ U[sigma])) with PIL's radius = sigma. */
  readonly blur: { readonly p: number; readonly sigma: Pair } | null;
  readonly mean: Triple;
  readonly std: Triple;
}

/** A spec and how many independent views of each image it yields (2 = TwoCropsTransform). */
export interface Pipeline {
  readonly spec: AugmentSpec;
  readonly views: number;
}

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision ColorJitter._check_input for a single number: [max(0, 1 - v), 1 + v], or [-v, v] for hue. */
export function jitterRange(value: number | Pair, center: number, clipAtZero: boolean): Pair | null {
  let r: [number, number];
  if (typeof value === "number") {
    if (value < 0) throw new RangeError(`ColorJitter: a single value must be non-negative, got ${value}`);
    r = [center - value, center + value];
    if (clipAtZero) r[0] = Math.max(r[0], 0);
  } else r = [value[0], value[1]];
  return r[0] === center && r[1] === center ? null : r;
}

export function colorJitter(p: number, brightness: number | Pair, contrast: number | Pair, saturation: number | Pair, hue: number | Pair): ColorJitterSpec {
  const h = jitterRange(hue, 0, false);
  if (h && (h[0] < -0.5 || h[1] > 0.5)) throw new RangeError(`ColorJitter: hue must lie in [-0.5, 0.5], got [${h.join(", ")}]`);
  return { p, brightness: jitterRange(brightness, 1, true), contrast: jitterRange(contrast, 1, true), saturation: jitterRange(saturation, 1, true), hue: h };
}

export interface CropBox {
  readonly top: number;
  readonly left: number;
  readonly height: number;
  readonly width: number;
}

/** torchvision RandomResizedCrop.get_params: 10 tries in scale x log-uniform ratio, then a central crop. */
export function randomResizedCropParams(rng: Rng, height: number, width: number, scale: Pair, ratio: Pair): CropBox {
  const area = height * width;
  const logLo = Math.log(ratio[0]), logHi = Math.log(ratio[1]);
  for (let t = 0; t < 10; t++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.randint(0, height - h + 1);
      const left = rng.randint(0, width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w: number, h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** torchvision's Resize output size: an int sets the shorter side (the longer one is truncated), a pair is exact. */
export function resizedSize(height: number, width: number, size: number | Pair): Pair {
  if (typeof size !== "number") return size;
  if (width <= height) return [Math.trunc((size * height) / width), size];
  return [size, Math.trunc((size * width) / height)];
}

/** Output [h, w] for a source of the given size. */
export function outputSize(spec: AugmentSpec, height: number, width: number): Pair {
  const g = spec.geometry;
  if (g.kind === "randomResizedCrop" || g.kind === "centerCrop") return g.size;
  return g.crop ?? resizedSize(height, width, g.size);
}

/**
 * Draws one image's random parameters (in torchvision's order: crop, jitter, grayscale, blur, flips) and
 * writes them as one native record at `out[offset ...]`.
 */
export function sampleRecord(spec: AugmentSpec, rng: Rng, src: number, height: number, width: number, out: Float64Array, offset: number): void {
  const r = out.subarray(offset, offset + AUGMENT_RECORD);
  r.fill(0);
  r[F.src] = src;
  const [oh, ow] = outputSize(spec, height, width);
  const g = spec.geometry;
  if (g.kind === "randomResizedCrop") {
    const b = randomResizedCropParams(rng, height, width, g.scale, g.ratio);
    r[F.top] = b.top;
    r[F.height] = b.height;
    r[F.left] = b.left;
    r[F.width] = b.width;
    r[F.scaleY] = b.height / oh;
    r[F.scaleX] = b.width / ow;
  } else if (g.kind === "centerCrop") {
    if (oh > height || ow > width) throw new RangeError(`CenterCrop(${oh}x${ow}) is larger than the ${height}x${width} image (padding is not supported)`);
    r[F.top] = roundHalfEven((height - oh) / 2);
    r[F.left] = roundHalfEven((width - ow) / 2);
    r[F.height] = oh;
    r[F.width] = ow;
    r[F.scaleY] = r[F.scaleX] = 1;
  } else {
    // Resize the whole image, then crop: the crop offset is carried in source pixels so one resampling does both.
    const [rh, rw] = resizedSize(height, width, g.size);
    if (oh > rh || ow > rw) throw new RangeError(`CenterCrop(${oh}x${ow}) is larger than the resized ${rh}x${rw} image (padding is not supported)`);
    r[F.height] = height;
    r[F.width] = width;
    r[F.scaleY] = height / rh;
    r[F.scaleX] = width / rw;
    r[F.offY] = roundHalfEven((rh - oh) / 2) * r[F.scaleY];
    r[F.offX] = roundHalfEven((rw - ow) / 2) * r[F.scaleX];
  }

  let flags = 0;
  const cj = spec.colorJitter;
  if (cj && rng.random() < cj.p) {
    flags |= AugmentFlag.jitter;
    const order = rng.permutation(4);
    for (let i = 0; i < 4; i++) r[F.order + i] = order[i];
    const ranges = [cj.brightness, cj.contrast, cj.saturation, cj.hue];
    for (let i = 0; i < 4; i++) {
      const range = ranges[i];
      r[F.brightness + i] = range ? rng.uniform(range[0], range[1]) : NaN;
    }
  }
  if (spec.grayscale > 0 && rng.random() < spec.grayscale) flags |= AugmentFlag.grayscale;
  if (spec.blur && rng.random() < spec.blur.p) {
    flags |= AugmentFlag.blur;
    r[F.sigma] = rng.uniform(spec.blur.sigma[0], spec.blur.sigma[1]);
  }
  if (spec.hflip > 0 && rng.random() < spec.hflip) flags |= AugmentFlag.hflip;
  if (spec.vflip > 0 && rng.random() < spec.vflip) flags |= AugmentFlag.vflip;
  r[F.flags] = flags;
}

// ---------------------------------------------------------------------------------------------------------
// Pipelines from the config (reference §7).

/** The part of the config these pipelines read; keys and defaults as the original's config.py. */
export interface DataConfig {
  readonly MODEL: { readonly ARCH?: string; readonly INPUTSHAPE: readonly number[] };
  readonly TRAIN: { readonly DATASET: string };
  readonly AUG?: {
    readonly TRAIN?: AugTrainConfig;
    readonly EVALUATION?: AugEvalConfig;
  };
}

type PairLike = readonly number[] | string;
interface ResizeConfig {
  readonly ENABLE?: boolean;
  readonly SIZE?: PairLike;
  readonly KEEP_RATIO?: boolean;
  readonly INTERPOLATION?: string;
}
interface NormConfig {
  readonly MEAN?: readonly number[];
  readonly STD?: readonly number[];
}
export interface AugTrainConfig {
  readonly RANDOMRESIZEDCROP?: { readonly ENABLE?: boolean; readonly SCALE?: PairLike; readonly INTERPOLATION?: string };
  readonly RESIZE?: ResizeConfig;
  readonly HORIZONTAL_FLIP?: { readonly PROB?: number };
  readonly VERTICAL_FLIP?: { readonly PROB?: number };
  readonly RANDOMCROP?: { readonly ENABLE?: boolean; readonly PADDING?: number };
  readonly CENTERCROP?: { readonly ENABLE?: boolean };
  readonly COLOR_JITTER?: { readonly PROB?: number; readonly BRIGHTNESS?: number; readonly CONTRAST?: number; readonly SATURATION?: number; readonly HUE?: number };
  readonly RANDOMERASE?: { readonly PROB?: number };
  readonly MIX?: { readonly PROB?: number };
  readonly NORMLIZATION?: NormConfig;
}
export interface AugEvalConfig {
  readonly RESIZE?: ResizeConfig;
  readonly CENTERCROP?: { readonly ENABLE?: boolean };
  readonly NORMLIZATION?: NormConfig;
}

export const CIFAR_MEAN: Triple = [0.4914, 0.4822, 0.4465];
export const CIFAR_STD: Triple = [0.2023, 0.1994, 0.201];
export const IMAGENET_MEAN: Triple = [0.485, 0.456, 0.406];
export const IMAGENET_STD: Triple = [0.229, 0.224, 0.225];

/** A pair from a list or from yacs' tuple text such as "(0.08, 1.0)". */
export function parsePair(v: PairLike | undefined, fallback: Pair, what: string): Pair {
  if (v === undefined) return fallback;
  const nums = typeof v === "string" ? v.replace(/[()[\]\s]/g, "").split(",").filter(Boolean).map(Number) : [...v];
  if (nums.length !== 2 || nums.some((x) => !Number.isFinite(x))) throw new TypeError(`${what} must be a pair of numbers, got ${JSON.stringify(v)}`);
  return [nums[0], nums[1]];
}

function interpolation(name: string | undefined, what: string): Interpolation {
  const n = (name ?? "bilinear").toLowerCase();
  if (n === "bilinear" || n === "bicubic" || n === "box" || n === "hamming" || n === "lanczos") return n;
  throw new TypeError(`${what}: interpolation '${name}' is not supported (use bilinear, bicubic, box, hamming or lanczos)`);
}

function inputShape(cfg: DataConfig): Pair {
  const s = cfg.MODEL.INPUTSHAPE;
  if (s.length !== 2 || s.some((v) => !Number.isInteger(v) || v < 1)) throw new RangeError(`MODEL.INPUTSHAPE must be [h, w] with positive sizes, got [${s.join(", ")}]`);
  return [s[0], s[1]];
}

/** datasets/utils.py workaround_torch_size_bug: a square [h, h] is passed as the int h (shorter-side resize). */
function sizeArg(s: Pair): number | Pair {
  return s[0] === s[1] ? s[0] : s;
}

/** Two Normalize calls (mean with std 1, then std with mean 0), each skipped when its list is empty. */
function normalization(n: NormConfig | undefined): { mean: Triple; std: Triple } {
  const pick = (v: readonly number[] | undefined, d: number, what: string): Triple => {
    if (!v || v.length === 0) return [d, d, d];
    if (v.length !== 3) throw new RangeError(`AUG NORMLIZATION.${what} must hold 3 values, got ${v.length}`);
    return [v[0], v[1], v[2]];
  };
  return { mean: pick(n?.MEAN, 0, "MEAN"), std: pick(n?.STD, 1, "STD") };
}

const isCifar = (cfg: DataConfig) => cfg.TRAIN.DATASET.includes("cifar");
const isSmall = (cfg: DataConfig) => isCifar(cfg) || cfg.TRAIN.DATASET === "fmnist";

function plain(geometry: Geometry, interp: Interpolation, norm: { mean: Triple; std: Triple }, hflip = 0): AugmentSpec {
  return { geometry, interpolation: interp, hflip, vflip: 0, colorJitter: null, grayscale: 0, blur: null, ...norm };
}

/**
 * The SSL pre-training view (datasets/__init__.py build_ssl_transform), applied twice per image:
 * RandomResizedCrop(INPUTSHAPE, scale (0.2, 1)), ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale p 0.2,
 * GaussianBlur sigma U[0.1, 2] with p 0.5 except on CIFAR (and the 32-px Fashion-MNIST), flip p 0.5, and
 * AUG.TRAIN.NORMLIZATION. The yaml's other AUG keys are ignored, as in the original.
 */
export function sslPipeline(cfg: DataConfig): Pipeline {
  const n = cfg.AUG?.TRAIN?.NORMLIZATION;
  const spec: AugmentSpec = {
    geometry: { kind: "randomResizedCrop", size: inputShape(cfg), scale: [0.2, 1], ratio: [3 / 4, 4 / 3] },
    interpolation: "bilinear",
    hflip: 0.5,
    vflip: 0,
    colorJitter: colorJitter(0.8, 0.4, 0.4, 0.4, 0.1),
    grayscale: 0.2,
    blur: isSmall(cfg) ? null : { p: 0.5, sigma: [0.1, 2] },
    ...normalization(n),
  };
  return { spec, views: 2 };
}

/** build_train_transform: the config-driven training pipeline of the supervised and transfer runs. */
export function trainPipeline(cfg: DataConfig): Pipeline {
  const a = cfg.AUG?.TRAIN ?? {};
  const shape = inputShape(cfg);
  const unsupported = (what: string) => new Error(`AUG.TRAIN.${what} is not supported by this trainer's data pipeline`);
  if (a.RANDOMCROP?.ENABLE) throw unsupported("RANDOMCROP");
  if ((a.RANDOMERASE?.PROB ?? 0) > 0) throw unsupported("RANDOMERASE");
  if ((a.MIX?.PROB ?? 0) > 0) throw unsupported("MIX");
  let geometry: Geometry;
  let interp: Interpolation = "bilinear";
  const rrc = a.RANDOMRESIZEDCROP;
  if (rrc?.ENABLE) {
    if (a.RESIZE?.ENABLE) throw new Error("AUG.TRAIN: RANDOMRESIZEDCROP followed by RESIZE is not supported");
    geometry = { kind: "randomResizedCrop", size: shape, scale: parsePair(rrc.SCALE, [0.08, 1], "AUG.TRAIN.RANDOMRESIZEDCROP.SCALE"), ratio: [3 / 4, 4 / 3] };
    interp = interpolation(rrc.INTERPOLATION, "AUG.TRAIN.RANDOMRESIZEDCROP");
  } else geometry = resizeGeometry(a.RESIZE, a.CENTERCROP?.ENABLE ?? false, shape, "AUG.TRAIN");
  if (geometry.kind === "resize") interp = interpolation(a.RESIZE?.ENABLE ? a.RESIZE.INTERPOLATION : undefined, "AUG.TRAIN.RESIZE");
  const cj = a.COLOR_JITTER;
  return {
    spec: {
      geometry,
      interpolation: interp,
      hflip: a.HORIZONTAL_FLIP?.PROB ?? 0,
      vflip: a.VERTICAL_FLIP?.PROB ?? 0,
      colorJitter: (cj?.PROB ?? 0) > 0 ? colorJitter(cj!.PROB!, cj!.BRIGHTNESS ?? 0.4, cj!.CONTRAST ?? 0.4, cj!.SATURATION ?? 0.2, cj!.HUE ?? 0.1) : null,
      grayscale: 0,
      blur: null,
      ...normalization(a.NORMLIZATION),
    },
    views: 1,
  };
}

/** Resize (+ CenterCrop), CenterCrop alone, or the final Resize(INPUTSHAPE) when neither is enabled. */
function resizeGeometry(resize: ResizeConfig | undefined, centerCrop: boolean, shape: Pair, where: string): Geometry {
  if (resize?.ENABLE) {
    const size = parsePair(resize.SIZE, [-1, -1], `${where}.RESIZE.SIZE`);
    if (size.some((v) => !Number.isInteger(v) || v < 1)) throw new RangeError(`${where}.RESIZE.SIZE must be positive, got [${size.join(", ")}]`);
    return { kind: "resize", size: resize.KEEP_RATIO ?? true ? sizeArg(size) : size, crop: centerCrop ? shape : undefined };
  }
  if (centerCrop) return { kind: "centerCrop", size: shape };
  return { kind: "resize", size: sizeArg(shape) };
}

/** build_eval_transform: Resize (+ CenterCrop) from AUG.EVALUATION. */
export function evalPipeline(cfg: DataConfig): Pipeline {
  const e = cfg.AUG?.EVALUATION ?? {};
  const geometry = resizeGeometry(e.RESIZE, e.CENTERCROP?.ENABLE ?? false, inputShape(cfg), "AUG.EVALUATION");
  const interp = interpolation(e.RESIZE?.ENABLE ? e.RESIZE.INTERPOLATION : undefined, "AUG.EVALUATION.RESIZE");
  return { spec: plain(geometry, interp, normalization(e.NORMLIZATION)), views: 1 };
}

/**
 * The linear-evaluation pipelines (workers/linear.py): fixed ones for a CIFAR dataset with a cifar_* arch
 * (RandomResizedCrop(s, scale (0.8, 1), bicubic) + flip; Resize(s * 8 / 7, bicubic) + CenterCrop(s)) and for
 * ImageNet (RandomResizedCrop(224) + flip; Resize(256) + CenterCrop(224)), the config-driven ones otherwise.
 * Fashion-MNIST with a cifar_* arch takes the CIFAR geometry with the config's normalization.
 */
export function linearEvalPipelines(cfg: DataConfig): { train: Pipeline; eval: Pipeline } {
  const arch = cfg.MODEL.ARCH ?? "";
  const dataset = cfg.TRAIN.DATASET;
  const cifarArch = arch.includes("cifar");
  if ((isCifar(cfg) || dataset === "fmnist") && cifarArch) {
    const s = inputShape(cfg)[0];
    const norm = isCifar(cfg) ? { mean: CIFAR_MEAN, std: CIFAR_STD } : normalization(cfg.AUG?.TRAIN?.NORMLIZATION);
    const evalNorm = isCifar(cfg) ? norm : normalization(cfg.AUG?.EVALUATION?.NORMLIZATION);
    return {
      train: { spec: plain({ kind: "randomResizedCrop", size: [s, s], scale: [0.8, 1], ratio: [3 / 4, 4 / 3] }, "bicubic", norm, 0.5), views: 1 },
      eval: { spec: plain({ kind: "resize", size: Math.trunc((s * 8) / 7), crop: [s, s] }, "bicubic", evalNorm), views: 1 },
    };
  }
  if (dataset.includes("imagenet")) {
    const norm = { mean: IMAGENET_MEAN, std: IMAGENET_STD };
    return {
      train: { spec: plain({ kind: "randomResizedCrop", size: [224, 224], scale: [0.08, 1], ratio: [3 / 4, 4 / 3] }, "bilinear", norm, 0.5), views: 1 },
      eval: { spec: plain({ kind: "resize", size: 256, crop: [224, 224] }, "bilinear", norm), views: 1 },
    };
  }
  return { train: trainPipeline(cfg), eval: evalPipeline(cfg) };
}

/** A torchvision-like description for logs. */
export function describePipeline(p: Pipeline): string {
  const s = p.spec;
  const g = s.geometry;
  const steps: string[] = [];
  if (g.kind === "randomResizedCrop") steps.push(`RandomResizedCrop(size=(${g.size.join(", ")}), scale=(${g.scale.join(", ")}), ratio=(${g.ratio.map((v) => v.toFixed(4)).join(", ")}), interpolation=${s.interpolation})`);
  else if (g.kind === "centerCrop") steps.push(`CenterCrop(size=(${g.size.join(", ")}))`);
  else {
    steps.push(`Resize(size=${typeof g.size === "number" ? g.size : `(${g.size.join(", ")})`}, interpolation=${s.interpolation})`);
    if (g.crop) steps.push(`CenterCrop(size=(${g.crop.join(", ")}))`);
  }
  const cj = s.colorJitter;
  if (cj) {
    const f = (r: Pair | null) => (r ? `[${r.map((v) => +v.toFixed(4)).join(", ")}]` : "None");
    steps.push(`RandomApply(p=${cj.p}, ColorJitter(brightness=${f(cj.brightness)}, contrast=${f(cj.contrast)}, saturation=${f(cj.saturation)}, hue=${f(cj.hue)}))`);
  }
  if (s.grayscale > 0) steps.push(`RandomGrayscale(p=${s.grayscale})`);
  if (s.blur) steps.push(`RandomApply(p=${s.blur.p}, GaussianBlur(sigma=[${s.blur.sigma.join(", ")}]))`);
  if (s.hflip > 0) steps.push(`RandomHorizontalFlip(p=${s.hflip})`);
  if (s.vflip > 0) steps.push(`RandomVerticalFlip(p=${s.vflip})`);
  steps.push("ToTensor()", `Normalize(mean=[${s.mean.join(", ")}], std=[${s.std.join(", ")}])`);
  const body = `Compose(\n${steps.map((t) => `    ${t}`).join("\n")}\n)`;
  return p.views === 2 ? `TwoCropsTransform(${body})` : body;
}
