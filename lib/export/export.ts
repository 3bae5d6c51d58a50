import { stat } from "node:fs/promises";
import * as path from "node:path";
import type { Config } from "../config";
import { writeFileAtomic } from "../io/atomic";
import { saveSafetensors } from "../io/safetensors";
import { torchSaveStateDict } from "../io/torch_save";
import { buildResNetOnnx } from "./resnet_onnx";
import { openExportSource, type ExportSource } from "./source";
import { torchvisionStateDict } from "./torchvision_state";

export interface ExportOptions {
  from: string;
  output: string;
  bits?: string;
  cfg?: Config;
}

export interface ExportResult {
  output: string;
  format: "onnx" | "safetensors" | "pth";
  bits: string;
  bytes: number;
  source: ExportSource;
}

const FORMATS = { ".onnx": "onnx", ".safetensors": "safetensors", ".pth": "pth" } as const;

/** The ONNX model's metadata: how to feed it and what it computes. */
export function onnxMetadata(s: ExportSource & { input: NonNullable<ExportSource["input"]> }): Record<string, string> {
  return {
    "ssql.arch": s.arch,
    "ssql.bits": s.bits,
    "ssql.source": path.resolve(s.from),
    "ssql.dataset": s.dataset,
    "ssql.output": s.classifier ? "logits" : "features",
    "ssql.input.shape": JSON.stringify(s.input.shape),
    "ssql.input.mean": JSON.stringify(s.input.mean),
    "ssql.input.std": JSON.stringify(s.input.std),
    "ssql.input.preprocess": `NCHW float32 RGB: ${s.input.transform}; pixels scaled to [0, 1], then (x - mean) / std per channel`,
    "ssql.folding": "BatchNorm folded into each conv: s = gamma / sqrt(running_var + 1e-5), bias = beta - running_mean * s; quantized weights keep their integers and take scale * s",
  };
}

/**
 * `export`: the model of a run, setting folder or checkpoint as ONNX (with Q/DQ at a quantized setting) or as a
 * torchvision-named state dict (.safetensors, .pth). The file is written atomically: on any error nothing is left.
 */
export async function exportModel(o: ExportOptions): Promise<ExportResult> {
  const ext = path.extname(o.output).toLowerCase() as keyof typeof FORMATS;
  const format = FORMATS[ext];
  if (!format) throw new Error(`--output ${o.output}: unknown format '${ext || "(no extension)"}'; use .onnx, .safetensors or .pth`);
  const dir = path.dirname(path.resolve(o.output));
  const d = await stat(dir).catch(() => undefined);
  if (!d?.isDirectory()) throw new Error(`--output ${o.output}: the folder ${dir} does not exist`);
  const s = await openExportSource(o.from, { bits: o.bits, cfg: o.cfg });
  if (format !== "onnx" && s.bits !== "fp" && o.bits !== undefined)
    throw new Error(`--bits ${s.bits} with ${ext}: a state dict holds the float weights; quantized settings export to .onnx`);
  let bytes: number;
  if (format === "onnx") {
    if (!s.input) throw new Error(`${o.from} does not record the input it was trained on (size, normalisation): pass --config with the run's config (MODEL.INPUTSHAPE, TRAIN.DATASET, AUG)`);
    const model = buildResNetOnnx({ arch: s.arch, spec: s.spec, tensors: s.tensors, classifier: s.classifier, state: s.state, inputShape: s.input.shape, metadata: onnxMetadata({ ...s, input: s.input }) });
    await writeFileAtomic(o.output, [model]);
    bytes = model.byteLength;
  } else if (format === "safetensors") {
    bytes = (await saveSafetensors(o.output, torchvisionStateDict(s.tensors), { format: "pt" })).bytes;
  } else {
    const chunks = torchSaveStateDict(torchvisionStateDict(s.tensors));
    await writeFileAtomic(o.output, chunks);
    bytes = chunks.reduce((n, c) => n + c.byteLength, 0);
  }
  return { output: o.output, format, bits: s.bits, bytes, source: s };
}
