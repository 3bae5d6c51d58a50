import { readFile, stat } from "node:fs/promises";
import { assertBackboneComplete, mapBackboneState, stateDictOf, type BackboneMapping } from "../io/backbone_keys";
import { CHECKPOINT_FORMAT, loadCheckpoint, type CheckpointManifest } from "../io/checkpoint";
import { FileFormatError } from "../io/errors";
import { setOwn, type HostTensors } from "../io/host_tensor";
import { parseSafetensors } from "../io/safetensors";
import { describeFormat, sniffFormat } from "../io/sniff";
import { parseTorchCheckpoint } from "../io/torch_pickle";
import type { Module } from "../nn/module";
import type { Device } from "../tensor/binding";
import type { Tensor } from "../tensor/tensor";
import { fromHost } from "./state";

/** A state dict read from a checkpoint file of any supported kind. */
export interface LoadedStateDict {
  file: string;
  /** trainer: our manifest + safetensors (keys "model.<name>"); torch: torch.save; safetensors: a bare tensors file. */
  kind: "trainer" | "torch" | "safetensors";
  tensors: HostTensors;
  /** Our checkpoints only: epoch, config summary, metrics. */
  manifest?: CheckpointManifest;
}

const OUR_MODEL = "model.";

/**
 * Reads the state dict of a checkpoint: one of this trainer's (a folder holding checkpoint.json, `<name>.json`,
 * or `<name>`), a PyTorch torch.save file such as the original's checkpoint.pth.tar (read without running any
 * code it asks for), or a bare safetensors file. Errors name the file and what it turned out to be.
 */
export async function readStateDict(file: string): Promise<LoadedStateDict> {
  const st = await stat(file).catch(() => undefined);
  if (!st || st.isDirectory() || file.endsWith(".json")) {
    if (!st && !(await stat(`${file}.json`).catch(() => undefined))) {
      throw new FileFormatError(file, "no such file or folder (expected a checkpoint folder, <name>.json, or a PyTorch .pth/.pth.tar file)");
    }
    return fromTrainer(file);
  }
  const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw new FileFormatError(file, `cannot read the file (${e.message})`);
  });
  const kind = sniffFormat(bytes);
  switch (kind) {
    case "json":
      return fromTrainer(file);
    case "zip":
    case "pickle":
    case "tar":
      return { file, kind: "torch", tensors: stateDictOf(parseTorchCheckpoint(bytes, file), file) };
    case "safetensors": {
      const content = parseSafetensors(bytes, file);
      // The tensors file of one of this trainer's checkpoints, named directly: its model is under "model.".
      if (content.metadata.format === CHECKPOINT_FORMAT) return { file, kind: "trainer", tensors: modelTensors(content.tensors, file) };
      return { file, kind: "safetensors", tensors: content.tensors };
    }
    default:
      throw new FileFormatError(
        file,
        `not a checkpoint: the file is ${describeFormat(kind)}; expected this trainer's checkpoint (a folder or .json ` +
          "manifest), a PyTorch torch.save file (.pth, .pth.tar) or a safetensors file",
      );
  }
}

async function fromTrainer(file: string): Promise<LoadedStateDict> {
  const ckpt = await loadCheckpoint(file);
  if ((ckpt.manifest.config as { holds?: unknown } | null)?.holds === "classifier") {
    throw new FileFormatError(
      ckpt.path,
      `the checkpoint of an unfinished linear evaluation (epoch ${ckpt.manifest.epoch}) holds only the classifier, not the frozen ` +
        "backbone; finish the run (linear --resume) first",
    );
  }
  return { file: ckpt.path, kind: "trainer", tensors: modelTensors(ckpt.tensors, ckpt.path), manifest: ckpt.manifest };
}

/** The model's tensors of one of our checkpoints, "model.<name>" (optimizer buffers live beside them under "optimizer."). */
function modelTensors(all: HostTensors, file: string): HostTensors {
  const tensors: HostTensors = {};
  for (const [k, t] of Object.entries(all)) if (k.startsWith(OUR_MODEL)) setOwn(tensors, k.slice(OUR_MODEL.length), t);
  if (Object.keys(tensors).length === 0) throw new FileFormatError(file, "the checkpoint holds no model tensors");
  return tensors;
}

export interface LoadReport {
  mapping: BackboneMapping;
  /** Tensors copied into the model. */
  loaded: number;
  /** The classifier (fc) came from the checkpoint (fine-tuning, ptq) rather than its fresh init. */
  classifierLoaded: boolean;
}

/**
 * Loads a checkpoint's backbone (and, with `classifier: "required"`, its classifier too) into `model`, choosing
 * the key mapping from the checkpoint's keys (never from its file name). Every backbone tensor must be found with
 * its shape: anything missing except the classifier is an error that lists the missing keys.
 */
export function loadIntoModel(model: Module, state: LoadedStateDict, device: Device, classifier: "fresh" | "required"): LoadReport {
  const own = model.stateDict();
  const shapes: Record<string, number[]> = {};
  for (const [k, t] of own) setOwn(shapes, k, [...t.shape]);
  const keepClassifier = classifier === "required";
  const mapping = mapBackboneState(state.tensors, shapes, { classifier: "fc.", keepClassifier });
  assertBackboneComplete(mapping, state.file);
  if (keepClassifier && mapping.missingClassifier.length) {
    throw new Error(
      `${state.file}: the checkpoint holds no trained classifier (missing ${mapping.missingClassifier.join(", ")}); ` +
        "expected a classifier checkpoint (a linear-eval or fine-tuning run's checkpoint), not an SSL one",
    );
  }
  const created: Tensor[] = [];
  try {
    const map = new Map<string, Tensor>();
    for (const [k, h] of Object.entries(mapping.mapped)) {
      const t = fromHost(h.dtype === "float64" ? { dtype: "float32", shape: h.shape, data: Float32Array.from(h.data as Float64Array) } : h, device);
      created.push(t);
      map.set(k, t);
    }
    model.loadStateDict(map, false);
    return { mapping, loaded: map.size, classifierLoaded: keepClassifier };
  } finally {
    for (const t of created) t.dispose();
  }
}

/** One line for the log: what was loaded from where, and what was left out on purpose. */
export function describeLoad(r: LoadReport, file: string): string {
  const m = r.mapping;
  const prefix = m.prefix ? `'${m.prefix}'` : "none";
  const head = r.classifierLoaded ? "classifier loaded too" : `classifier ${m.missingClassifier.join(", ") || "fc"} freshly initialised`;
  return `loaded ${r.loaded} tensors from ${file} (key prefix ${prefix}, ${m.layout} layout); ${head}; ${m.ignored.length} keys not used (projector, predictor, other branches, quantizer state, counters)`;
}
