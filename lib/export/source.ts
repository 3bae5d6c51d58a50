import { stat } from "node:fs/promises";
import { buildConfig, type Config } from "../config";
import { linearEvalPipelines } from "../data/transforms";
import type { HostTensors } from "../io/host_tensor";
import { ARCHS, createResNet, type ResNetSpec } from "../nn/resnet";
import { formatBitSetting, parseBitSetting } from "../quant/bits";
import type { QuantizerState } from "../quant/state";
import { Generator } from "../tensor/ops/random";
import { loadIntoModel, readStateDict } from "../train/pretrained";
import { inputSpec, loadSettingModel, openSettingFolder, readSettingInfo, type InputSpec } from "../train/setting_folder";

/** What export reads from --from: the weights under our (torchvision) names, the input, and the quantizers. */
export interface ExportSource {
  from: string;
  kind: "setting" | "checkpoint";
  arch: string;
  spec: ResNetSpec;
  /** Backbone, plus fc.* when the source is a trained classifier (a linear/ptq setting). */
  tensors: HostTensors;
  classifier: boolean;
  /** The bit setting the source holds ("fp" for checkpoints). */
  bits: string;
  state: QuantizerState | null;
  /** The input the model expects; null when the source does not say and no --config was given (ONNX needs it). */
  input: InputSpec | null;
  dataset: string;
}

export interface SourceOptions {
  /** A bit setting to export; it must be the one the source holds. */
  bits?: string;
  /** For checkpoints that do not record them: MODEL.ARCH, TRAIN.DATASET, MODEL.INPUTSHAPE, normalization. */
  cfg?: Config;
}

/** The model's state dict read back to the host, in its own key order. */
function hostState(model: ReturnType<typeof createResNet>, withClassifier: boolean): HostTensors {
  const out: HostTensors = {};
  for (const [k, t] of model.stateDict()) if (withClassifier || !k.startsWith("fc.")) out[k] = { dtype: "float32", shape: [...t.shape], data: t.toArraySync() as Float32Array };
  return out;
}

/**
 * Opens --from: a linear/ptq setting folder (setting.json: the classifier, its bits and quantizers), or a
 * checkpoint readStateDict accepts (an ssl run folder, checkpoint.json, the original's checkpoint.pth.tar), whose
 * backbone is loaded through the strict loader (every backbone key with its shape, or an error naming them).
 */
export async function openExportSource(from: string, o: SourceOptions = {}): Promise<ExportSource> {
  const wanted = o.bits === undefined ? undefined : formatBitSetting(parseBitSetting(o.bits));
  const st = await stat(from).catch(() => undefined);
  const info = st?.isDirectory() ? await readSettingInfo(from) : null;
  if (info) {
    if (wanted !== undefined && wanted !== info.bits)
      throw new Error(`--bits ${wanted}: ${from} is the ${info.bits} setting of its run; bit setting ${wanted} was not calibrated here (its sibling folder ../${wanted} holds it if the run evaluated it)`);
    const s = await openSettingFolder(from);
    // Loading it as eval does checks the weights (strict) and that the saved quantizers are exactly the ones the
    // setting's quantizer config makes active, with the same bits, symmetry, axis and rounding.
    const loaded = loadSettingModel(s, "cpu");
    try {
      return { from, kind: "setting", arch: info.arch, spec: ARCHS[info.arch]!, tensors: hostState(loaded.model, true), classifier: true, bits: info.bits, state: s.state, input: info.input, dataset: info.dataset };
    } finally {
      loaded.dispose();
    }
  }
  const state = await readStateDict(from);
  if (wanted !== undefined && wanted !== "fp")
    throw new Error(`--bits ${wanted}: ${state.file} is a checkpoint without quantizer state; quantized settings export from a linear/ptq setting folder (<output>/${wanted}/)`);
  const recorded = (state.manifest?.config ?? {}) as { arch?: unknown; dataset?: unknown };
  const arch = o.cfg?.MODEL.ARCH || (typeof recorded.arch === "string" ? recorded.arch : "");
  if (!arch) throw new Error(`${state.file} does not record its architecture: pass --config with MODEL.ARCH (and TRAIN.DATASET, for the input)`);
  if (!ARCHS[arch]) throw new Error(`unknown architecture '${arch}'; known: ${Object.keys(ARCHS).join(", ")}`);
  const dataset = o.cfg?.TRAIN.DATASET || (typeof recorded.dataset === "string" ? recorded.dataset : "");
  let input: InputSpec | null = null;
  try {
    const cfg = o.cfg ?? buildConfig({ MODEL: { ARCH: arch }, TRAIN: { DATASET: dataset } } as never);
    if (dataset) input = inputSpec(cfg, linearEvalPipelines(cfg).eval);
  } catch {
    input = null; // the checkpoint does not say enough (MODEL.INPUTSHAPE): only ONNX needs it, and asks for --config
  }
  const model = createResNet(arch, new Generator(0), { numClasses: 1 });
  try {
    loadIntoModel(model, state, "cpu", "fresh");
    return { from, kind: "checkpoint", arch, spec: ARCHS[arch]!, tensors: hostState(model, false), classifier: false, bits: "fp", state: null, input, dataset };
  } finally {
    model.dispose();
  }
}
