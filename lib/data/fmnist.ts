import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { InMemoryDataset, type Mode } from "./dataset";

const gunzip = promisify(zlib.gunzip);

export const FMNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
/** Border added on each side so the 28x28 images become 32x32, the CIFAR models' input. */
const PAD = 2;

export function fmnistFiles(mode: Mode): { images: string; labels: string } {
  const p = mode === "train" ? "train" : "t10k";
  return { images: `${p}-images-idx3-ubyte`, labels: `${p}-labels-idx1-ubyte` };
}

async function readIdx(dir: string, base: string): Promise<{ dims: number[]; data: Uint8Array; file: string }> {
  let file = path.join(dir, `${base}.gz`);
  let raw: Buffer;
  try {
    raw = await gunzip(await fsp.readFile(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`cannot read ${file}: ${(e as Error).message}`);
    file = path.join(dir, base);
    raw = await fsp.readFile(file).catch((e2: Error) => {
      throw new Error(`cannot read ${file} (nor ${file}.gz): ${e2.message}`);
    });
  }
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0 || raw[2] !== 0x08) throw new Error(`${file} is not an idx file of unsigned bytes`);
  const nd = raw[3];
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) {
    if (raw.length < 8 + 4 * i) throw new Error(`${file} is truncated`);
    dims.push(raw.readUInt32BE(4 + 4 * i));
  }
  const offset = 4 + 4 * nd;
  const n = dims.reduce((a, b) => a * b, 1);
  if (raw.length < offset + n) throw new Error(`${file} is truncated: ${raw.length - offset} data bytes, expected ${n}`);
  return { dims, data: new Uint8Array(raw.buffer, raw.byteOffset + offset, n), file };
}

/** Fashion-MNIST idx files, gray 28x28 padded by 2 px and repeated to 3 channels: uint8 [N, 32, 32, 3]. */
export async function readFashionMnist(dir: string, mode: Mode): Promise<InMemoryDataset> {
  const names = fmnistFiles(mode);
  const img = await readIdx(dir, names.images);
  const lab = await readIdx(dir, names.labels);
  if (img.dims.length !== 3 || lab.dims.length !== 1 || img.dims[0] !== lab.dims[0])
    throw new Error(`${img.file} and ${lab.file} do not hold matching images [N, H, W] and labels [N]`);
  const [n, h, w] = img.dims;
  const H = h + 2 * PAD, W = w + 2 * PAD;
  const pixels = new Uint8Array(n * H * W * 3);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h; y++) {
      const s = (i * h + y) * w;
      const d = ((i * H + y + PAD) * W + PAD) * 3;
      for (let x = 0; x < w; x++) {
        const v = img.data[s + x];
        pixels[d + 3 * x] = v;
        pixels[d + 3 * x + 1] = v;
        pixels[d + 3 * x + 2] = v;
      }
    }
  }
  const labels = Int32Array.from(lab.data);
  for (const l of labels) if (l >= FMNIST_CLASSES.length) throw new Error(`${lab.file}: label ${l} is outside [0, 10)`);
  return new InMemoryDataset("fmnist", mode, dir, pixels, [n, H, W, 3], labels, FMNIST_CLASSES);
}

/** Per-channel mean and std of the padded 32x32 training images (all three channels are equal). */
export const FMNIST_MEAN = [0.219, 0.219, 0.219] as const;
export const FMNIST_STD = [0.3318, 0.3318, 0.3318] as const;
