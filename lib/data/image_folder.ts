import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { cpuOps } from "../tensor/binding";
import { Tensor } from "../tensor/tensor";
import type { ImageDataset, Mode, SourceBatch } from "./dataset";

/** torchvision's IMG_EXTENSIONS; files with other extensions are not part of the dataset. */
export const IMG_EXTENSIONS = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"];

/**
 * The extensions the native decoder reads (libjpeg-turbo, libpng). Files with torchvision's other extensions are
 * left out of the dataset, counted, and reported once when it opens, rather than listed and then failing to decode.
 */
export const DECODED_EXTENSIONS = [".jpg", ".jpeg", ".png"];

/** "3 .webp, 1 .bmp": the counts of left-out files by extension. */
function describeCounts(counts: ReadonlyMap<string, number>): string {
  return [...counts].map(([ext, n]) => `${n} ${ext}`).join(", ");
}

/** What to do with a file that cannot be decoded (corrupt, truncated, or not JPEG/PNG inside). */
export type OnCorrupt = "skip" | "error";

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function isDir(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => null))?.isDirectory() ?? false;
}

/** os.walk(top, followlinks=True) as torchvision sorts it: directories by path, then file names. */
async function walkSorted(top: string): Promise<string[]> {
  const dirs: string[] = [];
  const files = new Map<string, string[]>();
  const visit = async (dir: string) => {
    dirs.push(dir);
    const names: string[] = [];
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const dirLike = e.isDirectory() || (e.isSymbolicLink() && (await isDir(p)));
      if (dirLike) await visit(p);
      else names.push(e.name);
    }
    files.set(dir, names.sort(byCodePoint));
  };
  await visit(top);
  dirs.sort(byCodePoint);
  return dirs.flatMap((d) => files.get(d)!.map((f) => path.join(d, f)));
}

/**
 * torchvision.datasets.ImageFolder: one class per sub-folder of `root` (sorted), every image file below it
 * (any depth, sorted as os.walk), decoded per batch on the data pool.
 */
export class ImageFolderDataset implements ImageDataset {
  private constructor(
    readonly name: string,
    readonly mode: Mode,
    readonly location: string,
    readonly classes: readonly string[],
    readonly files: readonly string[],
    readonly labels: Int32Array,
    readonly onCorrupt: OnCorrupt,
  ) {}

  /** Files torchvision would list that this trainer cannot decode, by extension (.webp -> count). */
  readonly leftOut = new Map<string, number>();

  /** Files that failed to decode so far (path -> reason), kept for the run summary. */
  readonly skippedFiles = new Map<string, string>();

  static async open(name: string, mode: Mode, root: string, onCorrupt: OnCorrupt = "error"): Promise<ImageFolderDataset> {
    if (!(await isDir(root))) throw new Error(`${name}: image folder ${root} does not exist`);
    const entries = await fsp.readdir(root, { withFileTypes: true });
    const classes: string[] = [];
    for (const e of entries) if (e.isDirectory() || (e.isSymbolicLink() && (await isDir(path.join(root, e.name))))) classes.push(e.name);
    classes.sort(byCodePoint);
    if (classes.length === 0) throw new Error(`${name}: no class folders in ${root} (expected ${root}/<class>/<image>.jpg)`);
    const files: string[] = [];
    const labels: number[] = [];
    const empty: string[] = [];
    const leftOut = new Map<string, number>();
    for (let c = 0; c < classes.length; c++) {
      const found: string[] = [];
      for (const f of await walkSorted(path.join(root, classes[c]))) {
        const ext = path.extname(f).toLowerCase();
        if (DECODED_EXTENSIONS.includes(ext)) found.push(f);
        else if (IMG_EXTENSIONS.includes(ext)) leftOut.set(ext, (leftOut.get(ext) ?? 0) + 1);
      }
      if (found.length === 0) empty.push(classes[c]);
      for (const f of found) {
        files.push(f);
        labels.push(c);
      }
    }
    const why = leftOut.size ? ` (left out ${describeCounts(leftOut)}: only JPEG and PNG are decoded; convert them, e.g. with ImageMagick's mogrify -format png)` : "";
    if (empty.length)
      throw new Error(`${name}: found no JPEG or PNG image for the classes ${empty.join(", ")} in ${root}${why}. Decoded extensions: ${DECODED_EXTENSIONS.join(", ")}`);
    if (leftOut.size) console.warn(`${name} (${mode}): ${root}: ${files.length} images${why}`);
    const ds = new ImageFolderDataset(name, mode, root, classes, files, Int32Array.from(labels), onCorrupt);
    for (const [ext, n] of leftOut) ds.leftOut.set(ext, n);
    return ds;
  }

  get length(): number {
    return this.files.length;
  }

  async load(indices: Int32Array): Promise<SourceBatch> {
    for (const k of indices) if (!(k >= 0 && k < this.length)) throw new RangeError(`${this.name}: index ${k} is outside [0, ${this.length})`);
    const paths = Array.from(indices, (k) => this.files[k]);
    const decoded = await cpuOps().decodeImages(paths);
    const images: Tensor[] = [];
    const labels: number[] = [];
    const sizes: [number, number][] = [];
    const skipped: string[] = [];
    let failure: string | undefined;
    decoded.forEach((d, i) => {
      if (typeof d === "string") {
        skipped.push(paths[i]);
        this.skippedFiles.set(paths[i], d);
        failure ??= `${paths[i]}: ${d}`;
        return;
      }
      const t = new Tensor(d, "cpu").keep();
      images.push(t);
      sizes.push([t.shape[0], t.shape[1]]);
      labels.push(this.labels[indices[i]]);
    });
    if (failure && this.onCorrupt === "error") {
      for (const t of images) t.dispose();
      throw new Error(`cannot decode image ${failure} (set the corrupt-image policy to "skip" to leave such files out)`);
    }
    return {
      images,
      src: Int32Array.from(images, (_, i) => i),
      sizes,
      labels: Int32Array.from(labels),
      skipped,
      dispose: () => images.forEach((t) => t.dispose()),
    };
  }

  dispose(): void {}
}
