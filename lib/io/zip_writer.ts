import { crc32 } from "node:zlib";

/** One file of a zip archive, stored uncompressed. */
export interface ZipFile {
  name: string;
  data: Uint8Array;
}

/**
 * A zip archive of stored (uncompressed) entries as chunks, each entry's data aligned to `align` bytes through
 * padding in the local header's extra field (as torch.save does, so readers may map tensors in place). No ZIP64:
 * archives past 4 GiB are refused.
 */
export function zipStored(files: readonly ZipFile[], align = 64): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, "utf-8");
    const crc = crc32(f.data);
    const headerLen = 30 + name.length;
    const pad = (align - ((offset + headerLen + 4) % align)) % align;
    const extraLen = pad + 4; // one padding record: id 0xFFFF (unassigned), length pad
    if (offset + headerLen + extraLen + f.data.length > 0xffffffff) throw new RangeError("zip: archives over 4 GiB are not supported");
    const local = Buffer.alloc(headerLen + extraLen);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(0, 10); // time, date
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(f.data.length, 18);
    local.writeUInt32LE(f.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extraLen, 28);
    name.copy(local, 30);
    local.writeUInt16LE(0xffff, 30 + name.length);
    local.writeUInt16LE(pad, 32 + name.length);
    const cd = Buffer.alloc(46 + name.length);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x0800, 8);
    cd.writeUInt16LE(0, 10);
    cd.writeUInt32LE(0, 12);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(f.data.length, 20);
    cd.writeUInt32LE(f.data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    name.copy(cd, 46);
    central.push(cd);
    chunks.push(local, f.data);
    offset += local.length + f.data.length;
  }
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(files.length, 8);
  eocd.writeUInt16LE(files.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(offset, 16);
  return [...chunks, ...central, eocd];
}
