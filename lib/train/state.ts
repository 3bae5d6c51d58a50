import * as fs from "node:fs";
import * as path from "node:path";
import type { HostTensor, HostTensors } from "../io/host_tensor";
import { saveCheckpoint, type CheckpointState, type LoadedCheckpoint } from "../io/checkpoint";
import type { Module } from "../nn/module";
import type { SGD, SGDStateDict } from "../optim/sgd";
import { cpuOps, type Device } from "../tensor/binding";
import { Tensor, tensor } from "../tensor/tensor";

/** Host copy of a native tensor (read back from the device). */
export async function toHost(t: Tensor): Promise<HostTensor> {
  const data = await t.toArray();
  return { dtype: t.dtype, shape: [...t.shape], data } as HostTensor;
}

export function fromHost(h: HostTensor, device: Device): Tensor {
  if (h.dtype !== "float32" && h.dtype !== "int32" && h.dtype !== "uint8")
    throw new TypeError(`checkpoint tensor of dtype ${h.dtype} cannot be loaded into the model (float32, int32 or uint8 expected)`);
  return tensor(h.data as Float32Array | Int32Array | Uint8Array, h.shape, device);
}

const MODEL = "model.";
const OPTIM = "optimizer.";

/**
 * Saves module state and optimizer momentum buffers (tensors) with the loop's state (JSON) as one atomic
 * checkpoint `<dir>/<name>.json` + tensors file.
 */
export async function saveTrainingState(file: string, model: Module, optimizer: SGD, state: CheckpointState): Promise<void> {
  const tensors: HostTensors = {};
  for (const [k, t] of model.stateDict()) tensors[MODEL + k] = await toHost(t);
  const sd = optimizer.stateDict();
  for (const [i, { momentumBuffer }] of Object.entries(sd.state)) tensors[`${OPTIM}${i}.momentum_buffer`] = await toHost(momentumBuffer);
  const groups = sd.paramGroups;
  const convAlgorithms = cpuOps().convAlgorithms();
  await saveCheckpoint(file, tensors, {
    ...state,
    optimizer: { name: "sgd", paramGroups: groups },
    ...(Object.keys(convAlgorithms).length ? { convAlgorithms } : {}),
  });
}

/** Restores what saveTrainingState wrote (read with loadCheckpoint); every model key must be present with its shape. */
export function restoreTrainingState(ckpt: LoadedCheckpoint, model: Module, optimizer: SGD | null, device: Device): void {
  const state = new Map<string, Tensor>();
  const created: Tensor[] = [];
  try {
    for (const [k, h] of Object.entries(ckpt.tensors)) {
      if (!k.startsWith(MODEL)) continue;
      const t = fromHost(h, device);
      created.push(t);
      state.set(k.slice(MODEL.length), t);
    }
    model.loadStateDict(state, true);
    // The algorithms the first part timed, so that resuming computes bit for bit as an uninterrupted run.
    if (device === "cpu" && ckpt.manifest.convAlgorithms !== undefined) {
      try {
        cpuOps().setConvAlgorithms(ckpt.manifest.convAlgorithms);
      } catch (e) {
        throw new Error(`${ckpt.path}: its convAlgorithms cannot be adopted: ${(e as Error).message}`);
      }
    }
    if (optimizer) {
      const saved = (ckpt.manifest.optimizer as { paramGroups?: SGDStateDict["paramGroups"] } | undefined)?.paramGroups;
      if (!saved) throw new Error(`${ckpt.path}: the checkpoint holds no optimizer state`);
      const optState: SGDStateDict["state"] = {};
      for (const [k, h] of Object.entries(ckpt.tensors)) {
        const m = /^optimizer\.(\d+)\.momentum_buffer$/.exec(k);
        if (!m) continue;
        const t = fromHost(h, device);
        created.push(t);
        optState[Number(m[1])] = { momentumBuffer: t };
      }
      optimizer.loadStateDict({ state: optState, paramGroups: saved });
    }
  } finally {
    for (const t of created) t.dispose();
  }
}

/** The checkpoint to resume from: an explicit path, or `<output>/checkpoint.json` for a bare --resume. */
export function resumePath(resume: string | boolean, output: string): string | null {
  if (resume === false) return null;
  const p = resume === true ? path.join(output, "checkpoint.json") : resume;
  if (resume === true && !fs.existsSync(p)) throw new Error(`--resume: no checkpoint in ${output} (expected ${p})`);
  return p;
}
