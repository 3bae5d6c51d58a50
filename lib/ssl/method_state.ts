import type { CheckpointManifest } from "../io/checkpoint";
import type { SslMethodState } from "./method";

/** What checkpoints written before the `method` key kept under `rng` (same content, MoCo fields prefixed). */
interface LegacyLoopState {
  sampler?: unknown;
  mocoQueuePtr?: unknown;
  mocoKeySteps?: unknown;
}

const count = (v: unknown, what: string, file: string): number | undefined => {
  if (v === undefined || v === null) return undefined;
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new Error(`${file}: the checkpoint's ${what} must be a whole number >= 0, got ${JSON.stringify(v)}`);
  return v as number;
};

/**
 * The SSL method's state saved in a checkpoint: the `method` key, or the `rng` key of checkpoints from before it.
 * Each field is checked; the bit sampler's state is checked again when the method loads it.
 */
export function methodStateOf(manifest: Pick<CheckpointManifest, "method" | "rng">, file: string): SslMethodState {
  const fromMethod = manifest.method !== undefined && manifest.method !== null;
  const raw = (fromMethod ? manifest.method : manifest.rng) ?? {};
  if (typeof raw !== "object" || Array.isArray(raw)) throw new Error(`${file}: the checkpoint's method state is not a mapping: ${JSON.stringify(raw)}`);
  const r = raw as SslMethodState & LegacyLoopState;
  const state: SslMethodState = {};
  if (r.sampler !== undefined && r.sampler !== null) state.sampler = r.sampler as SslMethodState["sampler"];
  const queuePtr = count(fromMethod ? r.queuePtr : r.mocoQueuePtr, "MoCo queue pointer", file);
  const keySteps = count(fromMethod ? r.keySteps : r.mocoKeySteps, "MoCo key-shuffle step", file);
  if (queuePtr !== undefined) state.queuePtr = queuePtr;
  if (keySteps !== undefined) state.keySteps = keySteps;
  return state;
}
