import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { FileFormatError } from "../io/errors";
import { InMemoryDataset, type Mode } from "./dataset";
import { NdArray, dictGet, unpickleNumpy, type PyValue } from "./numpy_pickle";

const IMAGE_BYTES = 3 * 32 * 32;

export type CifarVariant = "cifar10" | "cifar100";
export type CifarLayout = "python" | "binary";

/** Folder names under the data root, as the official archives extract. */
export const CIFAR_FOLDERS: Record<CifarVariant, Record<CifarLayout, string>> = {
  cifar10: { python: "cifar-10-batches-py", binary: "cifar-10-batches-bin" },
  cifar100: { python: "cifar-100-python", binary: "cifar-100-binary" },
};

export function cifarFiles(variant: CifarVariant, layout: CifarLayout, mode: Mode): string[] {
  const train = mode === "train";
  if (variant === "cifar10") {
    const names = train ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}`) : ["test_batch"];
    return layout === "python" ? names : names.map((n) => `${n}.bin`);
  }
  return [layout === "python" ? (train ? "train" : "test") : train ? "train.bin" : "test.bin"];
}

/** CHW planes of n images -> HWC, into out at image offset `at`. */
function chwToHwc(src: Uint8Array, srcStride: number, srcOffset: number, n: number, out: Uint8Array, at: number): void {
  for (let i = 0; i < n; i++) {
    const s = srcOffset + i * srcStride;
    const d = (at + i) * IMAGE_BYTES;
    for (let p = 0; p < 1024; p++) {
      out[d + 3 * p] = src[s + p];
      out[d + 3 * p + 1] = src[s + 1024 + p];
      out[d + 3 * p + 2] = src[s + 2048 + p];
    }
  }
}

interface Part {
  pixels: Uint8Array; // CHW rows
  stride: number;
  offset: number;
  labels: Int32Array;
}

function readPickleBatch(buf: Uint8Array, file: string, labelKey: string): Part {
  let d: PyValue;
  try {
    d = unpickleNumpy(buf, file);
  } catch (e) {
    if (e instanceof FileFormatError && /ends (early|inside)/.test(e.message)) throw new Error(`CIFAR file is truncated or corrupt: ${file} (${e.message})`);
    throw e;
  }
  const data = dictGet(d, "data");
  const labels = dictGet(d, labelKey);
  if (!(data instanceof NdArray) || data.shape.length !== 2 || data.shape[1] !== IMAGE_BYTES)
    throw new Error(`${file}: 'data' is not a uint8 array of shape [N, 3072]`);
  if (!Array.isArray(labels) || labels.some((v) => typeof v !== "number"))
    throw new Error(`${file}: '${labelKey}' is missing or not a list of ints`);
  if (labels.length !== data.shape[0]) throw new Error(`${file}: ${labels.length} labels for ${data.shape[0]} images`);
  return { pixels: data.data, stride: IMAGE_BYTES, offset: 0, labels: Int32Array.from(labels as number[]) };
}

function readBinaryBatch(buf: Uint8Array, file: string, variant: CifarVariant): Part {
  const labelBytes = variant === "cifar10" ? 1 : 2;
  const record = labelBytes + IMAGE_BYTES;
  if (buf.length === 0 || buf.length % record !== 0)
    throw new Error(`CIFAR file is truncated or corrupt: ${file} (${buf.length} bytes is not a multiple of the ${record}-byte record)`);
  const n = buf.length / record;
  const labels = new Int32Array(n);
  // CIFAR-100 records are <coarse label><fine label><pixels>; the fine label is the one used.
  for (let i = 0; i < n; i++) labels[i] = buf[i * record + labelBytes - 1];
  return { pixels: buf, stride: record, offset: labelBytes, labels };
}

async function readClasses(dir: string, variant: CifarVariant, layout: CifarLayout): Promise<string[]> {
  const n = variant === "cifar10" ? 10 : 100;
  const fallback = Array.from({ length: n }, (_, i) => String(i));
  try {
    if (layout === "binary") {
      const file = variant === "cifar10" ? "batches.meta.txt" : "fine_label_names.txt";
      const names = (await fsp.readFile(path.join(dir, file), "utf8")).split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
      return names.length === n ? names : fallback;
    }
    const file = path.join(dir, variant === "cifar10" ? "batches.meta" : "meta");
    const meta = unpickleNumpy(await fsp.readFile(file), file);
    const names = dictGet(meta, variant === "cifar10" ? "label_names" : "fine_label_names");
    if (Array.isArray(names) && names.length === n)
      return names.map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : String(v)));
  } catch {
    // The label names are cosmetic; a missing or odd meta file leaves numbered classes.
  }
  return fallback;
}

/** CIFAR-10/100 from torchvision's python pickles or the binary release, as one uint8 [N, 32, 32, 3] tensor. */
export async function readCifar(variant: CifarVariant, layout: CifarLayout, dir: string, mode: Mode): Promise<InMemoryDataset> {
  const parts: Part[] = [];
  for (const name of cifarFiles(variant, layout, mode)) {
    const file = path.join(dir, name);
    let buf: Buffer;
    try {
      buf = await fsp.readFile(file);
    } catch (e) {
      throw new Error(`cannot read CIFAR file ${file}: ${(e as Error).message}`);
    }
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    parts.push(layout === "python" ? readPickleBatch(bytes, file, variant === "cifar10" ? "labels" : "fine_labels") : readBinaryBatch(bytes, file, variant));
  }
  const total = parts.reduce((s, p) => s + p.labels.length, 0);
  const pixels = new Uint8Array(total * IMAGE_BYTES);
  const labels = new Int32Array(total);
  let at = 0;
  for (const p of parts) {
    chwToHwc(p.pixels, p.stride, p.offset, p.labels.length, pixels, at);
    labels.set(p.labels, at);
    at += p.labels.length;
  }
  const classes = await readClasses(dir, variant, layout);
  for (const l of labels) if (l < 0 || l >= classes.length) throw new Error(`${dir}: label ${l} is outside [0, ${classes.length})`);
  return new InMemoryDataset(variant, mode, dir, pixels, [total, 32, 32, 3], labels, classes);
}
