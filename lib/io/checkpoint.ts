import { createHash } from "node:crypto";
import { copyFile, link, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { syncDir, writeFileAtomic } from "./atomic";
import { FileFormatError } from "./errors";
import type { HostTensors } from "./host_tensor";
import { decodeJson, encodeJson } from "./json_codec";
import { hashChunks, parseSafetensors, serializeSafetensors } from "./safetensors";
import { describeFormat, sniffFormat } from "./sniff";

/**
 * The trainer's own checkpoint: `<name>.json` (the manifest: epoch, step, config, optimizer
 * hyper-state, RNG states, metrics) beside `<name>.<sha256 prefix>.safetensors` (every tensor: model
 * state and optimizer buffers). Both are written atomically and the manifest last: it is the commit
 * point, and a checkpoint is valid only when its manifest names a tensors file whose sha256 matches
 * the one it records. The content hash in the tensors file's name means overwriting a checkpoint
 * never touches the file the current manifest names, so a run killed at any moment leaves either the
 * old checkpoint or the new one, never neither.
 */
export const CHECKPOINT_FORMAT = "ssql-trainer-checkpoint";
export const CHECKPOINT_VERSION = 1;

export interface CheckpointState {
  epoch: number;
  step: number;
  config?: unknown;
  /** Optimizer hyper-state (name, lr, momentum, ...); its buffers belong in the tensors. */
  optimizer?: unknown;
  /** Checkpoints before the `method` key kept the SSL method's state here (read by methodStateOf). */
  rng?: unknown;
  /** The SSL method's own state (SslMethod.state()). */
  method?: unknown;
  metrics?: unknown;
  /** The CPU convolution algorithm chosen per problem (ConvAlgorithmOps): a resumed run adopts them. */
  convAlgorithms?: Record<string, string>;
}

export interface CheckpointManifest extends CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  createdAt: string;
  tensors: { file: string; sha256: string; bytes: number; count: number };
}

export interface LoadedCheckpoint {
  manifest: CheckpointManifest;
  tensors: HostTensors;
  /** The manifest's path. */
  path: string;
}

/** The manifest path for a checkpoint given as a folder, `<name>`, or `<name>.json`. */
export async function manifestPath(path: string): Promise<string> {
  if (path.endsWith(".json")) return path;
  const s = await stat(path).catch(() => undefined);
  return s?.isDirectory() ? join(path, "checkpoint.json") : `${path}.json`;
}

/**
 * Saves `tensors` and `state` as the checkpoint `<name>` (`<name>.json` plus its tensors file), or
 * as `<name>/checkpoint.json` when `<name>` is a folder. The tensors are written from views of their
 * arrays: they must not change until the promise settles (copy them first if training goes on).
 */
export async function saveCheckpoint(name: string, tensors: HostTensors, state: CheckpointState): Promise<CheckpointManifest> {
  if (!Number.isSafeInteger(state.epoch) || !Number.isSafeInteger(state.step)) {
    throw new TypeError(`saveCheckpoint: epoch and step must be integers, got ${state.epoch} and ${state.step}`);
  }
  const json = await manifestPath(name);
  const dir = dirname(json);
  const stem = basename(json, ".json");
  const previous = await readFile(json, "utf-8")
    .then((text) => (decodeJson(text) as Partial<CheckpointManifest>).tensors?.file)
    .catch(() => undefined);

  const chunks = serializeSafetensors(tensors, { format: CHECKPOINT_FORMAT });
  const { sha256, bytes } = hashChunks(chunks);
  const file = `${stem}.${sha256.slice(0, 16)}.safetensors`;
  await writeFileAtomic(join(dir, file), chunks);

  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    createdAt: new Date().toISOString(),
    epoch: state.epoch,
    step: state.step,
    config: state.config ?? null,
    optimizer: state.optimizer ?? null,
    rng: state.rng ?? null,
    ...(state.method !== undefined ? { method: state.method } : {}),
    metrics: state.metrics ?? null,
    ...(state.convAlgorithms !== undefined ? { convAlgorithms: state.convAlgorithms } : {}),
    tensors: { file, sha256, bytes, count: Object.keys(tensors).length },
  };
  await writeFileAtomic(json, [Buffer.from(encodeJson(manifest) + "\n", "utf-8")]);
  if (previous && previous !== file && isPlainFileName(previous)) await unlink(join(dir, previous)).catch(() => undefined);
  return manifest;
}

/**
 * Makes `<name>` a second checkpoint holding exactly what the checkpoint `source` holds, without a second copy of
 * its tensors: the tensors file gets a second name (a hard link, `<stem>.<sha256 prefix>.safetensors`), then the
 * new manifest, naming it with the same sha256, is written atomically. On a filesystem without hard links the file
 * is copied instead and `linked` is false. As saveCheckpoint, `<name>`'s previous tensors file goes last.
 */
export async function linkCheckpoint(source: string, name: string): Promise<{ manifest: CheckpointManifest; linked: boolean }> {
  const from = await loadManifest(await manifestPath(source));
  const json = await manifestPath(name);
  const dir = dirname(json);
  const stem = basename(json, ".json");
  const previous = await readFile(json, "utf-8")
    .then((text) => (decodeJson(text) as Partial<CheckpointManifest>).tensors?.file)
    .catch(() => undefined);
  const src = join(dirname(await manifestPath(source)), from.tensors.file);
  const file = `${stem}.${from.tensors.sha256.slice(0, 16)}.safetensors`;
  const dst = join(dir, file);
  let linked = true;
  if (!(await stat(dst).catch(() => undefined))) {
    // Linked (or copied) under a temporary name and renamed, so `dst` is never a partial file.
    const tmp = join(dir, `.${file}.${process.pid}.tmp`);
    await unlink(tmp).catch(() => undefined);
    try {
      await link(src, tmp);
    } catch {
      linked = false;
      await copyFile(src, tmp);
    }
    await rename(tmp, dst);
    await syncDir(dir);
  }
  const manifest: CheckpointManifest = { ...from, createdAt: new Date().toISOString(), tensors: { ...from.tensors, file } };
  await writeFileAtomic(json, [Buffer.from(encodeJson(manifest) + "\n", "utf-8")]);
  if (previous && previous !== file && isPlainFileName(previous)) await unlink(join(dir, previous)).catch(() => undefined);
  return { manifest, linked };
}

/** Deletes a checkpoint: its manifest first (so it stops being a checkpoint at once), then its tensors file. */
export async function deleteCheckpoint(name: string): Promise<void> {
  const json = await manifestPath(name);
  const file = await readFile(json, "utf-8")
    .then((text) => (decodeJson(text) as Partial<CheckpointManifest>).tensors?.file)
    .catch(() => undefined);
  await unlink(json).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e;
  });
  await syncDir(dirname(json));
  if (file && isPlainFileName(file)) await unlink(join(dirname(json), file)).catch(() => undefined);
}

async function loadManifest(json: string): Promise<CheckpointManifest> {
  const m = decodeJson(await readFile(json, "utf-8")) as Partial<CheckpointManifest>;
  if (m?.format !== CHECKPOINT_FORMAT || !m.tensors || !isPlainFileName(m.tensors.file)) throw new FileFormatError(json, "not a checkpoint manifest");
  return m as CheckpointManifest;
}

function isPlainFileName(f: string): boolean {
  return f.length > 0 && f === basename(f) && f !== "." && f !== ".." && !f.includes("\\");
}

/**
 * Loads and verifies a checkpoint given as a folder, `<name>` or `<name>.json`. Errors name the file
 * and the problem: missing, not a manifest (another kind of file), truncated or corrupt, written by a
 * newer format version, or a tensors file whose sha256 differs from the recorded one.
 */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const json = await manifestPath(path);
  const fail = (file: string, msg: string): never => {
    throw new FileFormatError(file, msg);
  };
  const raw = await readFile(json).catch((err: NodeJS.ErrnoException) =>
    fail(json, err.code === "ENOENT" ? "no checkpoint here: the manifest file does not exist" : `cannot read the manifest (${err.message})`),
  );
  const kind = sniffFormat(raw);
  if (kind !== "json") {
    const hint = kind === "zip" || kind === "pickle" ? " (PyTorch checkpoints are read with loadTorchCheckpoint)" : "";
    fail(json, `not a checkpoint manifest: the file is ${describeFormat(kind)}${hint}`);
  }
  let parsed: unknown;
  try {
    parsed = decodeJson(raw.toString("utf-8"));
  } catch (err) {
    fail(json, `the manifest is not valid JSON, so it is truncated or corrupt (${(err as Error).message})`);
  }
  const m = parsed as Partial<CheckpointManifest>;
  if (typeof m !== "object" || m === null || m.format !== CHECKPOINT_FORMAT) {
    fail(json, `not a checkpoint manifest: no "format": "${CHECKPOINT_FORMAT}" field`);
  }
  if (!Number.isSafeInteger(m.version) || (m.version as number) < 1) fail(json, `bad format version ${JSON.stringify(m.version)}`);
  if ((m.version as number) > CHECKPOINT_VERSION) {
    fail(json, `written in checkpoint format version ${m.version}, newer than this program reads (${CHECKPOINT_VERSION}); update the trainer`);
  }
  const t = m.tensors;
  if (
    typeof t !== "object" || t === null || typeof t.file !== "string" || !isPlainFileName(t.file) ||
    typeof t.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(t.sha256) || !Number.isSafeInteger(t.bytes) || !Number.isSafeInteger(t.count)
  ) {
    fail(json, "the manifest's tensors entry is malformed (needs file, sha256, bytes, count)");
  }
  if (!Number.isSafeInteger(m.epoch) || !Number.isSafeInteger(m.step)) fail(json, "the manifest's epoch or step is not an integer");

  const tensorsPath = join(dirname(json), t!.file);
  const data = await readFile(tensorsPath).catch((err: NodeJS.ErrnoException) =>
    fail(tensorsPath, err.code === "ENOENT" ? `the tensors file named by ${json} does not exist` : `cannot read (${err.message})`),
  );
  if (data.length !== t!.bytes) {
    fail(tensorsPath, `${data.length} bytes, but ${json} records ${t!.bytes}: the file is ${data.length < t!.bytes ? "truncated" : "not the one the manifest names"}`);
  }
  const sha = createHash("sha256").update(data).digest("hex");
  if (sha !== t!.sha256) fail(tensorsPath, `sha256 ${sha} differs from ${t!.sha256} recorded in ${json}: the file is corrupt or was replaced`);
  const { tensors } = parseSafetensors(data, tensorsPath);
  if (Object.keys(tensors).length !== t!.count) fail(tensorsPath, `${Object.keys(tensors).length} tensors, but ${json} records ${t!.count}`);
  return { manifest: m as CheckpointManifest, tensors, path: json };
}
