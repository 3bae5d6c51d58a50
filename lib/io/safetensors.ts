import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { endianness } from "node:os";
import { writeFileAtomic } from "./atomic";
import { FileFormatError } from "./errors";
import { FILE_ELEMENTS, decodeElements, type FileElement } from "./elements";
import { bytesPerElement, type HostDType, type HostTensor, type HostTensors, isHostTensor, numelOf, setOwn } from "./host_tensor";
import { describeFormat, sniffFormat } from "./sniff";

/** The safetensors dtype names this reader accepts; F16 and BF16 are read as float32. */
export type SafetensorsDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

const READ_AS: Record<SafetensorsDType, FileElement> = {
  F64: FILE_ELEMENTS.float64,
  F32: FILE_ELEMENTS.float32,
  F16: FILE_ELEMENTS.float16,
  BF16: FILE_ELEMENTS.bfloat16,
  I64: FILE_ELEMENTS.int64,
  I32: FILE_ELEMENTS.int32,
  I16: FILE_ELEMENTS.int16,
  I8: FILE_ELEMENTS.int8,
  U8: FILE_ELEMENTS.uint8,
  BOOL: FILE_ELEMENTS.bool,
};

const WRITE_AS: Record<HostDType, SafetensorsDType> = {
  float64: "F64",
  float32: "F32",
  int64: "I64",
  int32: "I32",
  int16: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

/** The reference implementation's limit; a larger header is a corrupt length field, not a real header. */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsContent {
  tensors: HostTensors;
  metadata: Record<string, string>;
}

function requireLittleEndian(): void {
  if (endianness() !== "LE") throw new Error("safetensors: big-endian hosts are not supported");
}

/** Parses and validates a whole safetensors file held in memory; `file` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, file = "<buffer>"): SafetensorsContent {
  requireLittleEndian();
  const fail = (msg: string): never => {
    throw new FileFormatError(file, msg);
  };
  if (bytes.length < 8) fail(`not a safetensors file: ${bytes.length} bytes is shorter than the 8-byte header length`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(bytes.length - 8) || headerLen > BigInt(MAX_HEADER_BYTES) || headerLen < 2n) {
    const kind = sniffFormat(bytes);
    if (kind !== "unknown" && kind !== "safetensors") fail(`not a safetensors file: it is ${describeFormat(kind)}`);
    fail(
      `header length ${headerLen} does not fit a ${bytes.length}-byte file` +
        (headerLen > BigInt(bytes.length - 8) && headerLen <= BigInt(MAX_HEADER_BYTES) ? " (truncated file?)" : " (not a safetensors file?)"),
    );
  }
  const n = Number(headerLen);
  const headerBytes = bytes.subarray(8, 8 + n);
  if (headerBytes[0] !== 0x7b) {
    const kind = sniffFormat(bytes);
    fail(`not a safetensors file: ${kind === "unknown" ? "the header does not start with '{'" : `it is ${describeFormat(kind)}`}`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (err) {
    fail(`the header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("the header is not a JSON object");

  const data = bytes.subarray(8 + n);
  const metadata: Record<string, string> = {};
  const entries: { name: string; st: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("__metadata__ is not an object");
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__ value '${k}' is not a string`);
        setOwn(metadata, k, v as string);
      }
      continue;
    }
    const bad = (msg: string): never => fail(`tensor '${name}': ${msg}`);
    if (name === "") bad("empty tensor name");
    if (typeof raw !== "object" || raw === null) bad("entry is not an object");
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== "string" || !Object.hasOwn(READ_AS, e.dtype)) bad(`unsupported dtype ${JSON.stringify(e.dtype)}`);
    const st = e.dtype as SafetensorsDType;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`bad shape ${JSON.stringify(e.shape)}`);
    const shape = e.shape as number[];
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      bad(`bad data_offsets ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as number[];
    if (begin > end) bad(`data_offsets [${begin}, ${end}] are reversed`);
    if (end > data.length) bad(`data_offsets [${begin}, ${end}] run past the ${data.length} data bytes (truncated file?)`);
    const expected = numelOf(shape) * READ_AS[st].bytes;
    if (end - begin !== expected) bad(`${st} shape [${shape}] needs ${expected} bytes but data_offsets span ${end - begin}`);
    entries.push({ name, st, shape, begin, end });
  }

  // Like the reference implementation: tensors tile the data section exactly, no overlaps, no holes.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin < pos) fail(`tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap another tensor`);
    if (e.begin > pos) fail(`tensor '${e.name}': data_offsets start at ${e.begin}, leaving bytes ${pos}..${e.begin} unused`);
    pos = e.end;
  }
  if (pos !== data.length) fail(`${data.length - pos} bytes after the last tensor are not described by the header`);

  const tensors: HostTensors = {};
  for (const e of entries) {
    const el = READ_AS[e.st];
    const t = { dtype: el.dtype, shape: e.shape, data: decodeElements(el, data.subarray(e.begin, e.end), numelOf(e.shape)) } as HostTensor;
    setOwn(tensors, e.name, t);
  }
  return { tensors, metadata };
}

export async function loadSafetensors(path: string): Promise<SafetensorsContent> {
  return parseSafetensors(await readFile(path), path);
}

/**
 * The file as a list of chunks (header, then each tensor's bytes as a view, no copies), tensors in
 * name order so the same content always gives the same bytes.
 */
export function serializeSafetensors(tensors: HostTensors, metadata: Record<string, string> = {}): Uint8Array[] {
  requireLittleEndian();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new TypeError(`safetensors metadata '${k}' must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  const names = Object.keys(tensors).sort();
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    if (name === "" || name === "__metadata__") throw new TypeError(`safetensors: '${name}' cannot be a tensor name`);
    if (!isHostTensor(t)) {
      throw new TypeError(`safetensors: tensor '${name}' is not a { dtype, shape, data } whose typed array matches its dtype and shape`);
    }
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.length * bytesPerElement(t.dtype));
    setOwn(header, name, { dtype: WRITE_AS[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.length] });
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // pad so the data section starts 8-aligned
  const headerBytes = Buffer.from(json, "utf-8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  return [prefix, headerBytes, ...chunks];
}

export interface WrittenFile {
  path: string;
  bytes: number;
  sha256: string;
}

/** Writes a safetensors file atomically and returns its size and sha256. */
export async function saveSafetensors(path: string, tensors: HostTensors, metadata: Record<string, string> = {}): Promise<WrittenFile> {
  const chunks = serializeSafetensors(tensors, metadata);
  await writeFileAtomic(path, chunks);
  return { path, ...hashChunks(chunks) };
}

export function hashChunks(chunks: readonly Uint8Array[]): { bytes: number; sha256: string } {
  const hash = createHash("sha256");
  let bytes = 0;
  for (const c of chunks) {
    hash.update(c);
    bytes += c.byteLength;
  }
  return { bytes, sha256: hash.digest("hex") };
}
