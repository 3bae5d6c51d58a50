import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic";
import { FileFormatError } from "../io/errors";
import type { HostTensor, HostTensors } from "../io/host_tensor";
import { hashChunks, parseSafetensors, serializeSafetensors } from "../io/safetensors";
import type { Device } from "../tensor/binding";
import { tensor } from "../tensor/tensor";
import { isBitWidth } from "./bits";
import { quantRange, validateRounding, type QuantRounding } from "./fake_quant";
import type { QuantizedEncoder } from "./quant_model";
import type { UniformQuantizer } from "./quantizer";

/**
 * A calibrated model's quantizers as files: `quantizers.json` (what each quantizer is) beside
 * `quantizers.safetensors` (its held scale, zero point and identity flag). Whatever observer computed them
 * (its name is recorded, nothing else of it), the held qparams are what apply() uses, so installing them back
 * reproduces the calibrated model's outputs bit for bit without observing anything.
 */
export const QUANT_STATE_FORMAT = "ssql-quantizer-state";
export const QUANT_STATE_VERSION = 1;
export const QUANT_STATE_JSON = "quantizers.json";
export const QUANT_STATE_TENSORS = "quantizers.safetensors";

/** One active quantizer: `<layer>.weight` or `<layer>.output`. */
export interface QuantizerEntry {
  name: string;
  layer: string;
  role: "weight" | "output";
  bits: number;
  symmetric: boolean;
  /** Channel axis of scale / zero point, or null for one per tensor. */
  axis: number | null;
  /** Values in scale / zero point (channels along `axis`, or 1). */
  channels: number;
  observer: string;
  quantMin: number;
  quantMax: number;
  rounding: QuantRounding;
  /** false: the original's identity rule fired (min(scale) == 0), apply() passes values through. */
  enabled: boolean;
}

export interface QuantizerState {
  /** The bit setting ("4w4f"). */
  bits: string;
  entries: QuantizerEntry[];
  /** `<name>.scale` float32, `<name>.zero_point` int32, `<name>.enabled` int32 [1]. */
  tensors: HostTensors;
}

interface Manifest {
  format: string;
  version: number;
  bits: string;
  tensors: { file: string; sha256: string; bytes: number };
  quantizers: QuantizerEntry[];
}

function quantizersOf(quant: QuantizedEncoder): { q: UniformQuantizer; layer: string; role: "weight" | "output" }[] {
  const out: { q: UniformQuantizer; layer: string; role: "weight" | "output" }[] = [];
  for (const l of quant.layers) {
    if (l.weight) out.push({ q: l.weight, layer: l.name, role: "weight" });
    if (l.act) out.push({ q: l.act, layer: l.name, role: "output" });
  }
  return out;
}

/** The held qparams of every active quantizer (computed from the observers first if not yet held). */
export async function captureQuantizerState(quant: QuantizedEncoder, bits: string): Promise<QuantizerState> {
  const entries: QuantizerEntry[] = [];
  const tensors: HostTensors = {};
  for (const { q, layer, role } of quantizersOf(quant)) {
    if (q.bits === 0 || !q.quantEnabled) continue;
    const { qp } = q.qparams();
    const name = `${layer}.${role}`;
    const scale = (await qp.scale.toArray()) as Float32Array;
    const zeroPoint = (await qp.zeroPoint.toArray()) as Int32Array;
    const enabled = qp.enabled ? ((await qp.enabled.toArray()) as Int32Array) : Int32Array.of(1);
    tensors[`${name}.scale`] = { dtype: "float32", shape: [scale.length], data: scale };
    tensors[`${name}.zero_point`] = { dtype: "int32", shape: [zeroPoint.length], data: zeroPoint };
    tensors[`${name}.enabled`] = { dtype: "int32", shape: [1], data: Int32Array.of(enabled[0] ? 1 : 0) };
    entries.push({
      name, layer, role, bits: q.bits, symmetric: q.symmetric, axis: q.axis, channels: scale.length, observer: q.observer.name,
      quantMin: qp.quantMin, quantMax: qp.quantMax, rounding: qp.rounding ?? q.rounding, enabled: enabled[0] !== 0,
    });
  }
  return { bits, entries, tensors };
}

/** Writes `<dir>/quantizers.safetensors`, then `<dir>/quantizers.json` (the commit point, with the tensors' sha256). */
export async function saveQuantizerState(dir: string, state: QuantizerState): Promise<void> {
  const chunks = serializeSafetensors(state.tensors, { format: QUANT_STATE_FORMAT });
  const { sha256, bytes } = hashChunks(chunks);
  await writeFileAtomic(join(dir, QUANT_STATE_TENSORS), chunks);
  const m: Manifest = { format: QUANT_STATE_FORMAT, version: QUANT_STATE_VERSION, bits: state.bits, tensors: { file: QUANT_STATE_TENSORS, sha256, bytes }, quantizers: state.entries };
  await writeFileAtomic(join(dir, QUANT_STATE_JSON), [Buffer.from(JSON.stringify(m, null, 1) + "\n", "utf-8")]);
}

/** Reads and checks what saveQuantizerState wrote; every problem is an error naming the file and the quantizer. */
export async function loadQuantizerState(dir: string): Promise<QuantizerState> {
  const json = join(dir, QUANT_STATE_JSON);
  const raw = await readFile(json, "utf-8").catch((e: NodeJS.ErrnoException) => {
    throw new FileFormatError(json, e.code === "ENOENT" ? "no quantizer state here (this folder was not calibrated: a linear/ptq setting folder at a quantized bit setting holds one)" : `cannot read (${e.message})`);
  });
  let m: Manifest;
  try {
    m = JSON.parse(raw) as Manifest;
  } catch (e) {
    throw new FileFormatError(json, `not valid JSON, so truncated or corrupt (${(e as Error).message})`);
  }
  const fail = (msg: string): never => {
    throw new FileFormatError(json, msg);
  };
  if (m?.format !== QUANT_STATE_FORMAT) fail(`not a quantizer state: no "format": "${QUANT_STATE_FORMAT}"`);
  if (m.version !== QUANT_STATE_VERSION) fail(`quantizer state version ${JSON.stringify(m.version)}; this program reads ${QUANT_STATE_VERSION}`);
  if (typeof m.bits !== "string" || !Array.isArray(m.quantizers) || typeof m.tensors?.sha256 !== "string") fail("malformed: needs bits, quantizers and tensors");
  const file = join(dir, QUANT_STATE_TENSORS);
  const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw new FileFormatError(file, e.code === "ENOENT" ? `the quantizer tensors named by ${json} do not exist` : `cannot read (${e.message})`);
  });
  if (bytes.length !== m.tensors.bytes) throw new FileFormatError(file, `${bytes.length} bytes, but ${json} records ${m.tensors.bytes}: the file is truncated or not the one saved with it`);
  const sha = createHash("sha256").update(bytes).digest("hex");
  if (sha !== m.tensors.sha256) throw new FileFormatError(file, `sha256 differs from the one recorded in ${json}: the file is corrupt or was replaced`);
  const { tensors } = parseSafetensors(bytes, file);
  for (const e of m.quantizers) checkEntry(e, tensors, json);
  return { bits: m.bits, entries: m.quantizers, tensors };
}

function checkEntry(e: QuantizerEntry, tensors: HostTensors, file: string): void {
  const fail = (msg: string): never => {
    throw new FileFormatError(file, `quantizer '${e?.name}': ${msg}`);
  };
  if (typeof e?.name !== "string" || typeof e.layer !== "string" || (e.role !== "weight" && e.role !== "output")) fail("malformed entry (needs name, layer, role)");
  if (!isBitWidth(e.bits) || e.bits === 0) fail(`bits ${JSON.stringify(e.bits)} is not a width in 1..16`);
  const [lo, hi] = quantRange(e.bits, e.symmetric === true);
  if (e.quantMin !== lo || e.quantMax !== hi) fail(`quantMin/quantMax [${e.quantMin}, ${e.quantMax}] differ from the ${e.bits}-bit ${e.symmetric ? "signed" : "unsigned"} grid [${lo}, ${hi}]`);
  validateRounding(e.rounding, `quantizer '${e.name}'.rounding`);
  const want: [string, string, number][] = [["scale", "float32", e.channels], ["zero_point", "int32", e.channels], ["enabled", "int32", 1]];
  for (const [k, dtype, n] of want) {
    const t = tensors[`${e.name}.${k}`];
    if (!t) fail(`tensor '${e.name}.${k}' is missing`);
    if (t.dtype !== dtype || t.data.length !== n) fail(`tensor '${e.name}.${k}' is ${t.dtype} [${t.shape}], expected ${dtype} [${n}]`);
  }
}

/** The held tensors of one entry. */
export function entryTensors(state: QuantizerState, e: QuantizerEntry): { scale: Float32Array; zeroPoint: Int32Array; enabled: boolean } {
  const get = (k: string): HostTensor => state.tensors[`${e.name}.${k}`]!;
  return { scale: get("scale").data as Float32Array, zeroPoint: get("zero_point").data as Int32Array, enabled: (get("enabled").data as Int32Array)[0] !== 0 };
}

/**
 * Puts a saved state into `quant`, whose bits must already be allocated (quant.quantize(w, a)): every active
 * quantizer takes its saved qparams and is frozen. A quantizer active here without saved state, saved state for a
 * quantizer that is inactive or absent here, or one saved with other bits, symmetry, axis or rounding is an error.
 */
export function installQuantizerState(quant: QuantizedEncoder, state: QuantizerState, device: Device): void {
  const byName = new Map(state.entries.map((e) => [e.name, e]));
  const seen = new Set<string>();
  for (const { q, layer, role } of quantizersOf(quant)) {
    const name = `${layer}.${role}`;
    const e = byName.get(name);
    const active = q.bits > 0 && q.quantEnabled;
    if (!e) {
      if (active) throw new Error(`quantizer state (${state.bits}): no saved qparams for '${name}', which is quantized at ${q.bits} bits here`);
      continue;
    }
    seen.add(name);
    if (!active) throw new Error(`quantizer state (${state.bits}): '${name}' was saved at ${e.bits} bits but is not quantized here`);
    const mismatch = [
      e.bits !== q.bits && `bits ${e.bits} (here ${q.bits})`,
      e.symmetric !== q.symmetric && `symmetric ${e.symmetric} (here ${q.symmetric})`,
      e.axis !== q.axis && `axis ${e.axis} (here ${q.axis})`,
      e.rounding !== q.rounding && `rounding ${e.rounding} (here ${q.rounding})`,
    ].filter(Boolean);
    if (mismatch.length) throw new Error(`quantizer state (${state.bits}): '${name}' was saved with ${mismatch.join(", ")}`);
    const t = entryTensors(state, e);
    q.installQParams(
      e.bits,
      tensor(Float32Array.from(t.scale), [t.scale.length], device).keep(),
      tensor(Int32Array.from(t.zeroPoint), [t.zeroPoint.length], device).keep(),
      tensor(Int32Array.of(t.enabled ? 1 : 0), [1], device).keep(),
    );
  }
  const extra = state.entries.filter((e) => !seen.has(e.name)).map((e) => e.name);
  if (extra.length) throw new Error(`quantizer state (${state.bits}): saved qparams for quantizers this model does not have: ${extra.join(", ")}`);
}
