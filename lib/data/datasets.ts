import * as fs from "node:fs";
import * as path from "node:path";
import { env } from "../env";
import { CIFAR_FOLDERS, cifarFiles, readCifar, type CifarLayout } from "./cifar";
import type { ImageDataset, Mode } from "./dataset";
import { DATASET_NAMES, isDatasetName, type DatasetName } from "./dataset_names";
import { fmnistFiles, readFashionMnist } from "./fmnist";
import { ImageFolderDataset, type OnCorrupt } from "./image_folder";

export const MODES: readonly Mode[] = ["train", "validation"];

/** Folder of each ImageFolder dataset under a data root (the original's /data/datasets/<...>). */
const IMAGE_FOLDERS: Record<string, string> = {
  imagenet: "imagenet",
  aircraft: "aircraft",
  caltech101: "caltech101",
  dtd: path.join("dtd", "split1"),
  flowers: "flowers",
  food101: "food-101",
  pets: "pets",
};
export const FMNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist";

export interface DataRootOptions {
  /** Explicit root (the config's DATA.ROOT or a CLI flag), tried first. */
  readonly root?: string;
  /** Defaults to $SSQL_DATA_DIR. */
  readonly envDir?: string;
  /** Base of the relative defaults ./data and ./cache; defaults to process.cwd(). */
  readonly cwd?: string;
}

export interface DataLocation {
  /** The root under which the dataset was found. */
  readonly root: string;
  /** The dataset's own folder. */
  readonly dir: string;
  /** "python" or "binary" for CIFAR; "idx" for Fashion-MNIST; "folder" for ImageFolder sets. */
  readonly layout: CifarLayout | "idx" | "folder";
}

function exists(p: string): boolean {
  return fs.existsSync(p);
}

function candidates(name: DatasetName, o: DataRootOptions): string[] {
  const cwd = o.cwd ?? process.cwd();
  const roots = [o.root, "envDir" in o ? o.envDir : env.dataDir, path.join(cwd, "data")];
  // torchvision's CIFAR root in the original code was ./cache.
  if (name === "cifar10" || name === "cifar100") roots.push(path.join(cwd, "cache"));
  return [...new Set(roots.filter((r): r is string => !!r).map((r) => path.resolve(cwd, r)))];
}

function probe(name: DatasetName, root: string): DataLocation | undefined {
  if (name === "cifar10" || name === "cifar100") {
    for (const layout of ["python", "binary"] as const) {
      const folder = CIFAR_FOLDERS[name][layout];
      // The root may be the data root or the extracted folder itself.
      for (const dir of [path.join(root, folder), root])
        if (exists(path.join(dir, cifarFiles(name, layout, "validation")[0]))) return { root, dir, layout };
    }
    return undefined;
  }
  if (name === "fmnist") {
    const f = fmnistFiles("validation").images;
    for (const dir of [path.join(root, "fashion-mnist"), root])
      if (exists(path.join(dir, `${f}.gz`)) || exists(path.join(dir, f))) return { root, dir, layout: "idx" };
    return undefined;
  }
  const dir = path.join(root, IMAGE_FOLDERS[name]);
  if (exists(path.join(dir, "train")) || exists(path.join(dir, "val"))) return { root, dir, layout: "folder" };
  return undefined;
}

function expectedLayout(name: DatasetName): string {
  switch (name) {
    case "cifar10":
      return "<root>/cifar-10-batches-py/{data_batch_1..5, test_batch} (torchvision's python pickles) or <root>/cifar-10-batches-bin/{data_batch_1..5, test_batch}.bin (binary release)";
    case "cifar100":
      return "<root>/cifar-100-python/{train, test} (torchvision's python pickles) or <root>/cifar-100-binary/{train, test}.bin (binary release)";
    case "fmnist":
      return "<root>/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz";
    default:
      return `<root>/${IMAGE_FOLDERS[name]}/{train,val}/<class>/<image>.{jpg,jpeg,png} (torchvision ImageFolder)`;
  }
}

function howToObtain(name: DatasetName): string {
  switch (name) {
    case "cifar10":
      return "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (or cifar-10-binary.tar.gz) and extract it under a root";
    case "cifar100":
      return "download https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (or cifar-100-binary.tar.gz) and extract it under a root";
    case "fmnist":
      return "install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist), or copy the four .gz files from https://github.com/zalandoresearch/fashion-mnist";
    case "imagenet":
      return "obtain ILSVRC2012 from https://image-net.org and arrange train/ and val/ as one sub-folder per class (e.g. with the valprep.sh script)";
    default:
      return `download the ${name} dataset and arrange its train/ and val/ splits as one sub-folder per class`;
  }
}

/**
 * Finds where a dataset lives, in the order README.md states once ("Dataset search order"): DATA.ROOT,
 * $SSQL_DATA_DIR, ./data, ./cache (CIFAR), /usr/share/datasets/fashion-mnist (Fashion-MNIST). The error names
 * every path tried, the expected layout and how to obtain the data.
 */
export function resolveDataRoot(name: string, o: DataRootOptions = {}): DataLocation {
  if (!isDatasetName(name)) throw new Error(`unknown dataset '${name}'; known datasets: ${DATASET_NAMES.join(", ")}`);
  const roots = candidates(name, o);
  if (name === "fmnist") roots.push(FMNIST_SYSTEM_DIR);
  for (const r of roots) {
    const found = probe(name, r);
    if (found) return found;
  }
  throw new Error(
    `dataset '${name}' not found. Tried the roots:\n${roots.map((r) => `  ${r}`).join("\n")}\n` +
      `Expected layout: ${expectedLayout(name)}\n` +
      `To obtain it: ${howToObtain(name)}; pass the root with DATA.ROOT or SSQL_DATA_DIR.`,
  );
}

export interface OpenDatasetOptions extends DataRootOptions {
  /** ImageFolder sets: skip undecodable files (and count them) or fail on the first one. Default "error". */
  readonly onCorrupt?: OnCorrupt;
}

/** Opens TRAIN.DATASET in mode "train" or "validation" (the original's mode names). */
export async function openDataset(name: string, mode: Mode, o: OpenDatasetOptions = {}): Promise<ImageDataset> {
  if (!MODES.includes(mode)) throw new Error(`unknown mode '${mode}'; use "train" or "validation"`);
  const loc = resolveDataRoot(name, o);
  if (loc.layout === "idx") return readFashionMnist(loc.dir, mode);
  if (loc.layout === "python" || loc.layout === "binary") return readCifar(name as "cifar10" | "cifar100", loc.layout, loc.dir, mode);
  const split = path.join(loc.dir, mode === "train" ? "train" : "val");
  if (!exists(split))
    throw new Error(`dataset '${name}': split folder ${split} is missing. Expected layout: ${expectedLayout(name as DatasetName)}`);
  return ImageFolderDataset.open(name, mode, split, o.onCorrupt ?? "error");
}
