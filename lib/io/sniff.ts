/** What a file is, judged from its first bytes, for errors that say "this is a PNG, not a checkpoint". */
export type SniffedFormat =
  | "zip"
  | "pickle"
  | "safetensors"
  | "json"
  | "png"
  | "jpeg"
  | "gzip"
  | "tar"
  | "empty"
  | "unknown";

export function sniffFormat(bytes: Uint8Array): SniffedFormat {
  const b = bytes;
  if (b.length === 0) return "empty";
  const starts = (...sig: number[]) => sig.every((v, i) => b[i] === v);
  if (starts(0x50, 0x4b, 0x03, 0x04) || starts(0x50, 0x4b, 0x05, 0x06)) return "zip";
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "png";
  if (starts(0xff, 0xd8, 0xff)) return "jpeg";
  if (starts(0x1f, 0x8b)) return "gzip";
  if (b.length >= 262 && String.fromCharCode(...b.subarray(257, 262)) === "ustar") return "tar";
  if (b[0] === 0x80 && b.length > 1 && b[1] >= 2 && b[1] <= 5) return "pickle";
  if (b.length >= 9) {
    const n = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
    if (n > 1n && n <= BigInt(b.length - 8) && b[8] === 0x7b) return "safetensors";
  }
  let i = 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
  if (b[i] === 0x7b) return "json";
  return "unknown";
}

const DESCRIPTIONS: Record<SniffedFormat, string> = {
  zip: "a zip archive (a PyTorch torch.save file?)",
  pickle: "a Python pickle (a PyTorch checkpoint in the legacy format?)",
  safetensors: "a safetensors file",
  json: "a JSON document",
  png: "a PNG image",
  jpeg: "a JPEG image",
  gzip: "a gzip stream",
  tar: "a tar archive",
  empty: "empty",
  unknown: "of an unknown format",
};

export function describeFormat(format: SniffedFormat): string {
  return DESCRIPTIONS[format];
}
