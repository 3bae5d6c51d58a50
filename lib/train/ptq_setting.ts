import { mkdir } from "node:fs/promises";
import * as path from "node:path";
import type { Config } from "../config";
import type { Pipeline } from "../data/transforms";
import { saveCheckpoint } from "../io/checkpoint";
import type { HostTensors } from "../io/host_tensor";
import { wantsReconstruction } from "../quant/reconstruct/options";
import type { ClassifierAtBits } from "./classifier";
import { writeSettingFolder } from "./setting_folder";
import { toHost } from "./state";

/**
 * A ptq setting's folder. When the method changed the weights (BN folded, rounding reconstructed), the setting's
 * weights are no longer the input's: the model as evaluated is saved beside the quantizers (`model.json` + tensors),
 * so re-evaluating or exporting the folder gives what was measured.
 */
export async function writePtqSetting(dir: string, cfg: Config, c: ClassifierAtBits, input: string, evalPipeline: Pipeline): Promise<void> {
  const changed = cfg.QUANT.FOLD_BN || (c.quant !== null && wantsReconstruction(cfg));
  let weights = input;
  if (changed) {
    const tensors: HostTensors = {};
    for (const [k, t] of c.model.stateDict()) tensors[`model.${k}`] = await toHost(t);
    await mkdir(dir, { recursive: true });
    const manifest = path.join(dir, "model.json");
    await saveCheckpoint(manifest, tensors, { epoch: 0, step: 0, config: { command: "ptq", holds: "model", bits: c.bits, arch: cfg.MODEL.ARCH, foldBn: cfg.QUANT.FOLD_BN } });
    weights = manifest;
  }
  await writeSettingFolder(dir, cfg, { command: "ptq", bits: c.bits, weights, evalPipeline: evalPipeline, quant: c.quant });
}
