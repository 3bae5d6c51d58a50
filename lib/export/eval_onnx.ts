import { readFile } from "node:fs/promises";
import { onnx } from "onnx-proto";
import * as ort from "onnxruntime-node";
import type { Config } from "../config";
import { FileFormatError } from "../io/errors";
import { noGrad } from "../tensor/autograd";
import type { Device } from "../tensor/binding";
import { tidy } from "../tensor/scope";
import { openClassifierData } from "../train/classifier_data";
import { loadSettingModel, openSettingFolder, readSettingInfo } from "../train/setting_folder";

export interface TopK {
  top1: number;
  top5: number;
}

export interface OnnxEvaluation {
  images: number;
  onnx: TopK;
  /** Our evaluation of the same setting folder (its saved quantizers, no recalibration), when there is one. */
  ours: TopK | null;
  /** Our setting folder (from --from or the model's metadata). */
  source: string | null;
  /** ||logits_onnx - logits_ours|| / ||logits_ours|| over the whole set. */
  logitsNormErr: number | null;
  /** Largest |logit difference|. */
  logitsMaxAbs: number | null;
}

/** Correct top-1 / top-k (k = min(5, classes)) of one row: the label's rank among the logits (ties count against it). */
function rank(logits: Float32Array, row: number, classes: number, label: number): number {
  const v = logits[row * classes + label]!;
  let r = 0;
  for (let c = 0; c < classes; c++) if (logits[row * classes + c]! > v || (logits[row * classes + c]! === v && c < label)) r++;
  return r;
}

/** The ONNX model's metadata_props. */
export async function onnxMetadataOf(file: string): Promise<Record<string, string>> {
  let m: onnx.ModelProto;
  try {
    m = onnx.ModelProto.decode(await readFile(file));
  } catch (e) {
    throw new FileFormatError(file, `not an ONNX model (${(e as Error).message})`);
  }
  return Object.fromEntries(m.metadataProps.map((p) => [p.key ?? "", p.value ?? ""]));
}

/**
 * `eval-onnx`: top-1/top-5 of an exported classifier over the validation set of `cfg` in ONNX Runtime (CPU), beside
 * our own evaluation of the setting folder it came from (`from`, else the model's ssql.source), batch by batch on
 * the same images, with the logits' normalized difference.
 */
export async function evaluateOnnx(o: { model: string; cfg: Config; device: Device; from?: string; threads?: number }): Promise<OnnxEvaluation> {
  const meta = await onnxMetadataOf(o.model);
  if (meta["ssql.output"] && meta["ssql.output"] !== "logits") throw new Error(`${o.model} outputs backbone features, not logits: export a linear/ptq setting folder to evaluate accuracy`);
  const session = await ort.InferenceSession.create(o.model, { intraOpNumThreads: o.threads ?? 0 });
  const from = o.from ?? meta["ssql.source"] ?? null;
  const info = from ? await readSettingInfo(from).catch(() => null) : null;
  if (o.from && !info) throw new Error(`--from ${o.from}: not a linear/ptq setting folder (no setting.json)`);
  const ours = info ? loadSettingModel(await openSettingFolder(from!), o.device) : null;
  const data = await openClassifierData(o.cfg, { device: o.device, shuffle: false });
  const classes = o.cfg.MODEL.NUM_CLASSES;
  const k = Math.min(5, classes);
  const want = meta["ssql.input.shape"] ? (JSON.parse(meta["ssql.input.shape"]) as number[]) : null;
  let images = 0;
  const hits = { o1: 0, o5: 0, u1: 0, u5: 0 };
  let diff2 = 0;
  let ref2 = 0;
  let maxAbs = 0;
  try {
    for await (const b of data.valLoader.epoch(0)) {
      try {
        const shape = [...b.images.shape];
        if (want && shape.slice(1).join(",") !== want.join(","))
          throw new Error(`the config's validation images are [${shape.slice(1)}], the model takes [${want}] (ssql.input.shape): use the run's config`);
        const x = (await b.images.toArray()) as Float32Array;
        const labels = await b.labels.toArray();
        const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor("float32", x, shape) });
        const logits = out[session.outputNames[0]!]!.data as Float32Array;
        if (logits.length !== b.size * classes) throw new Error(`${o.model} gives ${logits.length / b.size} outputs per image; MODEL.NUM_CLASSES is ${classes}`);
        let mine: Float32Array | null = null;
        if (ours) {
          const t = noGrad(() => tidy(() => ours.model.forward(b.images)));
          mine = (await t.toArray()) as Float32Array;
          t.dispose();
        }
        for (let i = 0; i < b.size; i++) {
          const label = Number(labels[i]);
          const r = rank(logits, i, classes, label);
          hits.o1 += r === 0 ? 1 : 0;
          hits.o5 += r < k ? 1 : 0;
          if (mine) {
            const ru = rank(mine, i, classes, label);
            hits.u1 += ru === 0 ? 1 : 0;
            hits.u5 += ru < k ? 1 : 0;
          }
        }
        if (mine)
          for (let i = 0; i < mine.length; i++) {
            const d = logits[i]! - mine[i]!;
            diff2 += d * d;
            ref2 += mine[i]! * mine[i]!;
            maxAbs = Math.max(maxAbs, Math.abs(d));
          }
        images += b.size;
      } finally {
        b.dispose();
      }
    }
  } finally {
    data.dispose();
    ours?.dispose();
    await session.release();
  }
  if (images === 0) throw new Error("eval-onnx: the validation set gave no images");
  const pct = (n: number) => (100 * n) / images;
  return {
    images,
    onnx: { top1: pct(hits.o1), top5: pct(hits.o5) },
    ours: ours ? { top1: pct(hits.u1), top5: pct(hits.u5) } : null,
    source: info ? from : null,
    logitsNormErr: ours ? Math.sqrt(diff2 / Math.max(ref2, 1e-30)) : null,
    logitsMaxAbs: ours ? maxAbs : null,
  };
}
