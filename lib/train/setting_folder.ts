import { mkdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { buildConfig, type Config } from "../config";
import type { Pipeline } from "../data/transforms";
import { describePipeline } from "../data/transforms";
import { writeFileAtomic } from "../io/atomic";
import { FileFormatError } from "../io/errors";
import { createResNet, type ResNet } from "../nn/resnet";
import { parseBitSetting } from "../quant/bits";
import type { QuantizedEncoder } from "../quant/quant_model";
import { captureQuantizerState, installQuantizerState, loadQuantizerState, saveQuantizerState, type QuantizerState } from "../quant/state";
import type { Device } from "../tensor/binding";
import { Generator } from "../tensor/ops/random";
import { quantizeClassifier } from "./calibrate";
import { moveToDevice } from "./device_placement";
import { loadIntoModel, readStateDict, type LoadedStateDict } from "./pretrained";

/**
 * A linear/ptq setting folder `<output>/<bits>/` as a deployable unit: `setting.json` says what the model is
 * (arch, classes, bits, where its weights are, the input it expects, the quantizer config) and, at a quantized
 * setting, `quantizers.{json,safetensors}` hold its calibrated qparams. `export` and `eval-onnx` read it; loading
 * it gives the calibrated classifier without recalibrating.
 */
export const SETTING_JSON = "setting.json";
export const SETTING_FORMAT = "ssql-setting";

export interface InputSpec {
  /** [channels, height, width] of one image after the eval transform. */
  shape: [number, number, number];
  mean: number[];
  std: number[];
  /** The eval transform in torchvision's words. */
  transform: string;
}

export interface SettingInfo {
  format: typeof SETTING_FORMAT;
  version: 1;
  command: "linear" | "ptq";
  bits: string;
  arch: string;
  numClasses: number;
  dataset: string;
  /** The classifier's weights: relative to the folder when inside it (linear's checkpoint.json), else absolute. */
  weights: string;
  input: InputSpec;
  /** The quantizer config the state was saved under (QUANT.W, QUANT.A, BIT_CONFIG, ROUNDING). */
  quant: Pick<Config["QUANT"], "W" | "A" | "BIT_CONFIG" | "ROUNDING">;
  /** quantizers.{json,safetensors} are here (every quantized setting). */
  quantizers: boolean;
}

/** The image size after an eval pipeline (its crop, or a fixed resize), else MODEL.INPUTSHAPE. */
export function inputSpec(cfg: Config, p: Pipeline): InputSpec {
  const g = p.spec.geometry;
  let hw: [number, number] = [cfg.MODEL.INPUTSHAPE[0], cfg.MODEL.INPUTSHAPE[1]];
  if (g.kind === "centerCrop" || g.kind === "randomResizedCrop") hw = [g.size[0], g.size[1]];
  else if (g.crop) hw = [g.crop[0], g.crop[1]];
  else if (typeof g.size !== "number") hw = [g.size[0], g.size[1]];
  return { shape: [3, hw[0], hw[1]], mean: [...p.spec.mean], std: [...p.spec.std], transform: describePipeline(p) };
}

/**
 * Writes setting.json (and the quantizer state when `quant` is given) into `dir`. The quantizer files come first:
 * setting.json, written last, is what makes the folder readable.
 */
export async function writeSettingFolder(
  dir: string, cfg: Config, o: { command: "linear" | "ptq"; bits: string; weights: string; evalPipeline: Pipeline; quant: QuantizedEncoder | null },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (o.quant) await saveQuantizerState(dir, await captureQuantizerState(o.quant, o.bits));
  const abs = path.resolve(o.weights);
  const rel = path.relative(path.resolve(dir), abs);
  const info: SettingInfo = {
    format: SETTING_FORMAT,
    version: 1,
    command: o.command,
    bits: o.bits,
    arch: cfg.MODEL.ARCH,
    numClasses: cfg.MODEL.NUM_CLASSES,
    dataset: cfg.TRAIN.DATASET,
    weights: rel.startsWith("..") || path.isAbsolute(rel) ? abs : rel,
    input: inputSpec(cfg, o.evalPipeline),
    quant: { W: cfg.QUANT.W, A: cfg.QUANT.A, BIT_CONFIG: cfg.QUANT.BIT_CONFIG, ROUNDING: cfg.QUANT.ROUNDING },
    quantizers: o.quant !== null,
  };
  await writeFileAtomic(path.join(dir, SETTING_JSON), [Buffer.from(JSON.stringify(info, null, 2) + "\n", "utf-8")]);
}

/** setting.json of `dir`, or null when there is none (not a setting folder). */
export async function readSettingInfo(dir: string): Promise<SettingInfo | null> {
  const file = path.join(dir, SETTING_JSON);
  const raw = await readFile(file, "utf-8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT" || e.code === "ENOTDIR") return null;
    throw new FileFormatError(file, `cannot read (${e.message})`);
  });
  if (raw === null) return null;
  let info: SettingInfo;
  try {
    info = JSON.parse(raw) as SettingInfo;
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
  if (info?.format !== SETTING_FORMAT || typeof info.arch !== "string" || typeof info.bits !== "string" || typeof info.weights !== "string")
    throw new FileFormatError(file, `not a setting description (needs "format": "${SETTING_FORMAT}", arch, bits, weights)`);
  parseBitSetting(info.bits);
  return info;
}

/** A setting folder's parts: its description, the classifier's weights and (quantized) its quantizer state. */
export interface SettingFolder {
  dir: string;
  info: SettingInfo;
  weights: LoadedStateDict;
  state: QuantizerState | null;
}

export async function openSettingFolder(dir: string): Promise<SettingFolder> {
  const info = await readSettingInfo(dir);
  if (!info) throw new FileFormatError(dir, `not a linear/ptq setting folder: no ${SETTING_JSON}`);
  const weights = await readStateDict(path.resolve(dir, info.weights));
  const { w, a } = parseBitSetting(info.bits);
  let state: QuantizerState | null = null;
  if (w !== 0 || a !== 0) {
    state = await loadQuantizerState(dir);
    if (state.bits !== info.bits) throw new FileFormatError(path.join(dir, "quantizers.json"), `holds bits ${state.bits}, but ${SETTING_JSON} says ${info.bits}`);
  }
  return { dir, info, weights, state };
}

/** The config a setting's classifier is rebuilt under (its arch, classes and quantizer config). */
export function settingConfig(info: SettingInfo): Config {
  return buildConfig({ MODEL: { ARCH: info.arch, NUM_CLASSES: info.numClasses }, TRAIN: { DATASET: info.dataset }, QUANT: info.quant } as never, info.dataset);
}

/** The setting's classifier on `device`, in eval mode, with its saved quantizers installed and frozen (no calibration). */
export function loadSettingModel(s: SettingFolder, device: Device): { model: ResNet; quant: QuantizedEncoder | null; dispose(): void } {
  const cfg = settingConfig(s.info);
  const model = createResNet(cfg.MODEL.ARCH, new Generator(0), { numClasses: cfg.MODEL.NUM_CLASSES });
  let quant: QuantizedEncoder | null = null;
  const dispose = () => {
    quant?.dispose();
    model.dispose();
  };
  try {
    loadIntoModel(model, s.weights, "cpu", "required");
    moveToDevice(model, device);
    model.eval();
    if (s.state) {
      const { w, a } = parseBitSetting(s.info.bits);
      quant = quantizeClassifier(model, cfg);
      quant.quantize(w, a);
      installQuantizerState(quant, s.state, device);
    }
    return { model, quant, dispose };
  } catch (e) {
    dispose();
    throw e;
  }
}
