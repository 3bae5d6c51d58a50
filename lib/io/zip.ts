import { crc32, inflateRawSync } from "node:zlib";
import { FileFormatError } from "./errors";

export interface ZipEntry {
  name: string;
  /** 0 = stored (what torch.save writes), 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;

/**
 * A read-only view of a zip archive held in memory: the central directory (ZIP64 included, which
 * torch uses past 4 GiB), stored and deflated entries, and CRC checks on every read.
 */
export class ZipReader {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    readonly file = "<buffer>",
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.entries = this.readCentralDirectory();
  }

  private fail(msg: string): never {
    throw new FileFormatError(this.file, msg);
  }

  private u16(at: number): number {
    return this.view.getUint16(at, true);
  }

  private u32(at: number): number {
    return this.view.getUint32(at, true);
  }

  private u64(at: number, what: string): number {
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`zip ${what} ${v} is too large`);
    return Number(v);
  }

  private need(at: number, len: number, what: string): void {
    if (at < 0 || at + len > this.bytes.length) this.fail(`zip ${what} at byte ${at} runs past the end of the file (truncated?)`);
  }

  private findEndOfCentralDirectory(): number {
    const n = this.bytes.length;
    const lowest = Math.max(0, n - 22 - 0xffff);
    for (let at = n - 22; at >= lowest; at--) {
      if (this.u32(at) === SIG_EOCD && at + 22 + this.u16(at + 20) <= n) return at;
    }
    return this.fail("no zip end-of-central-directory record: the file is truncated or not a zip archive");
  }

  private readCentralDirectory(): Map<string, ZipEntry> {
    if (this.bytes.length < 22) this.fail(`${this.bytes.length} bytes is too short for a zip archive`);
    const eocd = this.findEndOfCentralDirectory();
    let count = this.u16(eocd + 10);
    let cdSize = this.u32(eocd + 12);
    let cdOffset = this.u32(eocd + 16);
    if (this.u16(eocd + 4) !== 0 || this.u16(eocd + 6) !== 0) this.fail("multi-disk zip archives are not supported");

    const locator = eocd - 20;
    if (locator >= 0 && this.u32(locator) === SIG_ZIP64_LOCATOR) {
      const at = this.u64(locator + 8, "ZIP64 record offset");
      this.need(at, 56, "ZIP64 end-of-central-directory record");
      if (this.u32(at) !== SIG_ZIP64_EOCD) this.fail("the ZIP64 locator points at something that is not a ZIP64 record");
      count = this.u64(at + 32, "entry count");
      cdSize = this.u64(at + 40, "central directory size");
      cdOffset = this.u64(at + 48, "central directory offset");
    } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      this.fail("the archive needs ZIP64 records but has none (truncated?)");
    }
    this.need(cdOffset, cdSize, "central directory");

    const entries = new Map<string, ZipEntry>();
    let at = cdOffset;
    for (let i = 0; i < count; i++) {
      this.need(at, 46, "central directory entry");
      if (this.u32(at) !== SIG_CENTRAL) this.fail(`central directory entry ${i} has a bad signature`);
      const flags = this.u16(at + 8);
      const method = this.u16(at + 10);
      const crc = this.u32(at + 16);
      let compressedSize = this.u32(at + 20);
      let size = this.u32(at + 24);
      const nameLen = this.u16(at + 28);
      const extraLen = this.u16(at + 30);
      const commentLen = this.u16(at + 32);
      let localHeaderOffset = this.u32(at + 42);
      this.need(at + 46, nameLen + extraLen + commentLen, "central directory entry");
      const nameBytes = this.bytes.subarray(at + 46, at + 46 + nameLen);
      const name = Buffer.from(nameBytes).toString(flags & 0x800 ? "utf-8" : "latin1");
      if (flags & 0x1) this.fail(`entry '${name}' is encrypted`);

      // ZIP64 extra field: the 64-bit values, in this order, of whichever fields hold 0xFFFFFFFF.
      let e = at + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = this.u16(e);
        const len = this.u16(e + 2);
        if (id === 0x0001) {
          let p = e + 4;
          const take = (what: string): number => {
            if (p + 8 > e + 4 + len) this.fail(`entry '${name}' has a short ZIP64 extra field`);
            const v = this.u64(p, what);
            p += 8;
            return v;
          };
          if (size === 0xffffffff) size = take("size");
          if (compressedSize === 0xffffffff) compressedSize = take("compressed size");
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take("header offset");
        }
        e += 4 + len;
      }
      entries.set(name, { name, method, compressedSize, size, crc32: crc, localHeaderOffset });
      at = extraEnd + commentLen;
    }
    return entries;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The entry's bytes: a view into the archive for stored entries, inflated for deflated ones; CRC-checked. */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) this.fail(`no entry '${name}' in the archive`);
    const at = entry.localHeaderOffset;
    this.need(at, 30, `local header of '${name}'`);
    if (this.u32(at) !== SIG_LOCAL) this.fail(`entry '${name}' has a bad local header signature`);
    const start = at + 30 + this.u16(at + 26) + this.u16(at + 28);
    this.need(start, entry.compressedSize, `data of '${name}'`);
    const raw = this.bytes.subarray(start, start + entry.compressedSize);
    let data: Uint8Array;
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.size) this.fail(`stored entry '${name}' has differing sizes`);
      data = raw;
    } else if (entry.method === 8) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1) });
      } catch (err) {
        this.fail(`entry '${name}' does not inflate: ${(err as Error).message}`);
      }
      if (data.length !== entry.size) this.fail(`entry '${name}' inflates to ${data.length} bytes, not ${entry.size}`);
    } else {
      this.fail(`entry '${name}' uses unsupported compression method ${entry.method}`);
    }
    if (crc32(data) >>> 0 !== entry.crc32) this.fail(`entry '${name}' fails its CRC-32 check: the file is corrupt`);
    return data;
  }
}
