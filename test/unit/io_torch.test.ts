import { readFileSync } from "node:fs";
import { crc32 } from "node:zlib";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type HostTensor, isHostTensor } from "../../lib/io/host_tensor";
import { unpickle } from "../../lib/io/pickle";
import { loadTorchCheckpoint, parseTorchCheckpoint } from "../../lib/io/torch_pickle";
import { ZipReader } from "../../lib/io/zip";

const FIXTURES = join(__dirname, "../fixtures/checkpoints");
type Ref = Record<string, { dtype: string; shape: number[]; values: (number | string)[] }>;
const readRef = (name: string): Ref => JSON.parse(readFileSync(join(FIXTURES, name), "utf-8"));

/** The node at "a/b/c" of a loaded tree. */
function at(tree: unknown, path: string): unknown {
  return path.split("/").reduce((node, k) => (node as Record<string, unknown>)[k], tree);
}

/** Checks every tensor PyTorch listed in the JSON reference: dtype as loaded, shape and exact values. */
function expectMatchesReference(tree: unknown, ref: Ref): void {
  const loadedDtype: Record<string, string> = { float16: "float32", bfloat16: "float32" };
  for (const [path, want] of Object.entries(ref)) {
    if (!want || typeof want !== "object" || !Object.hasOwn(want, "values")) continue;
    const t = at(tree, path) as HostTensor;
    expect(isHostTensor(t), path).toBe(true);
    expect(t.dtype, path).toBe(loadedDtype[want.dtype] ?? want.dtype);
    expect(t.shape, path).toEqual(want.shape);
    const got = t.dtype === "int64" ? Array.from(t.data as BigInt64Array, String) : Array.from(t.data as ArrayLike<number>);
    const expected = want.values.map((v) => (t.dtype === "int64" ? v : typeof v === "string" ? Number(v.replace("inf", "Infinity")) : v));
    // float32 values widened to float64 by PyTorch compare exactly after rounding back to float32.
    expect(got.map((v) => (typeof v === "number" ? Math.fround(v) : v)), path).toEqual(
      expected.map((v) => (typeof v === "number" ? Math.fround(v) : v)),
    );
  }
}

/**
 * A zip written by the APPNOTE's ZIP64 rules in their fullest form: every size and offset in the local
 * and central headers is 0xFFFFFFFF with the real value in a ZIP64 extra field, and the end record
 * defers to a ZIP64 end record, as a writer must past 4 GiB.
 */
function zip64Archive(entries: [string, Uint8Array][]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const n = Buffer.from(name);
    const local = Buffer.alloc(30 + n.length + 20);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(45, 4);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(0xffffffff, 18);
    local.writeUInt32LE(0xffffffff, 22);
    local.writeUInt16LE(n.length, 26);
    local.writeUInt16LE(20, 28);
    n.copy(local, 30);
    local.writeUInt16LE(1, 30 + n.length);
    local.writeUInt16LE(16, 32 + n.length);
    local.writeBigUInt64LE(BigInt(data.length), 34 + n.length);
    local.writeBigUInt64LE(BigInt(data.length), 42 + n.length);
    const cd = Buffer.alloc(46 + n.length + 28);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(45, 4);
    cd.writeUInt16LE(45, 6);
    cd.writeUInt32LE(crc32(data), 16);
    cd.writeUInt32LE(0xffffffff, 20);
    cd.writeUInt32LE(0xffffffff, 24);
    cd.writeUInt16LE(n.length, 28);
    cd.writeUInt16LE(28, 30);
    cd.writeUInt32LE(0xffffffff, 42);
    n.copy(cd, 46);
    cd.writeUInt16LE(1, 46 + n.length);
    cd.writeUInt16LE(24, 48 + n.length);
    cd.writeBigUInt64LE(BigInt(data.length), 50 + n.length);
    cd.writeBigUInt64LE(BigInt(data.length), 58 + n.length);
    cd.writeBigUInt64LE(BigInt(offset), 66 + n.length);
    parts.push(local, Buffer.from(data));
    central.push(cd);
    offset += local.length + data.length;
  }
  const cdBytes = Buffer.concat(central);
  const end64 = Buffer.alloc(56);
  end64.writeUInt32LE(0x06064b50, 0);
  end64.writeBigUInt64LE(44n, 4);
  end64.writeUInt16LE(45, 12);
  end64.writeUInt16LE(45, 14);
  end64.writeBigUInt64LE(BigInt(entries.length), 24);
  end64.writeBigUInt64LE(BigInt(entries.length), 32);
  end64.writeBigUInt64LE(BigInt(cdBytes.length), 40);
  end64.writeBigUInt64LE(BigInt(offset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(offset + cdBytes.length), 8);
  locator.writeUInt32LE(1, 16);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(0xffff, 8);
  end.writeUInt16LE(0xffff, 10);
  end.writeUInt32LE(0xffffffff, 12);
  end.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([...parts, cdBytes, end64, locator, end]);
}

describe("PyTorch checkpoints (torch.save zip format)", () => {
  it("reads every tensor of a torch.save file exactly: OrderedDict, Parameter, strided views, all dtypes", async () => {
    const tree = await loadTorchCheckpoint(join(FIXTURES, "tensors.pt"));
    expectMatchesReference(tree, readRef("tensors.json"));
    const root = tree as Record<string, unknown>;
    expect(Object.keys(root.state_dict as object)).toEqual([
      "conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "fc.weight", "fc.bias",
    ]);
    expect(Array.from((root.transposed as HostTensor).data as Float32Array).slice(0, 5)).toEqual([0, 6, 12, 18, 1]);
    expect(root.misc).toEqual({ tuple: [1, "two", 3.25, null, true], big: 2n ** 70n, neg: -(2 ** 40), bytes: Uint8Array.from([0, 1]) });
  });

  it("reads re-packings of the same archive (ZIP64 headers everywhere, deflate) to the same values", async () => {
    const ref = readRef("tensors.json");
    for (const file of ["tensors_zip64_local.pt", "tensors_deflated.pt"]) {
      expectMatchesReference(await loadTorchCheckpoint(join(FIXTURES, file)), ref);
    }
    expect([...new ZipReader(readFileSync(join(FIXTURES, "tensors_deflated.pt"))).entries.values()].some((e) => e.method === 8)).toBe(true);
    const torchZip = new ZipReader(readFileSync(join(FIXTURES, "tensors.pt")));
    const full64 = zip64Archive([...torchZip.entries.keys()].map((name) => [name, torchZip.read(name)]));
    const reread = new ZipReader(full64, "full64.pt");
    expect([...reread.entries.values()].every((e) => e.localHeaderOffset >= 0 && e.size === torchZip.entries.get(e.name)!.size)).toBe(true);
    expectMatchesReference(parseTorchCheckpoint(full64, "full64.pt"), ref);
  });

  it("reads the original's {epoch, state_dict, optimizer} checkpoint, optimizer state as plain objects", async () => {
    const tree = (await loadTorchCheckpoint(join(FIXTURES, "original_like.pth.tar"))) as Record<string, any>;
    const ref = readRef("original_like.json") as any;
    expectMatchesReference(tree, ref);
    expect(tree.epoch).toBe(3);
    expect(tree.optimizer.param_groups).toEqual(ref.param_groups);
    expect(Object.keys(tree.optimizer.state)).toEqual(["0", "1", "2", "3", "4"]);
    expect(isHostTensor(tree.optimizer.state["0"].momentum_buffer)).toBe(true);
    expect(tree.state_dict["bn.num_batches_tracked"].data).toEqual(BigInt64Array.from([2n]));
  });

  it("refuses a pickle that asks for os.system, and runs nothing", async () => {
    await expect(loadTorchCheckpoint(join(FIXTURES, "os_system.pt"))).rejects.toThrow(
      /os_system\.pt: refusing to load (posix|os)\.system: the checkpoint asks to run code/,
    );
    const raw = readFileSync(join(FIXTURES, "os_system.pkl"));
    expect(() => unpickle(raw, { file: "os_system.pkl", globals: new Map() })).toThrow(/refusing to load (posix|os)\.system/);
  });

  it("refuses calls of allowed non-functions, foreign BUILDs and instantiation", () => {
    const torchFloat = Buffer.from("ctorch\nFloatStorage\n)R.", "latin1");
    const globals = new Map([["torch.FloatStorage", { module: "torch", name: "FloatStorage" }]]);
    expect(() => unpickle(torchFloat, { file: "p", globals })).toThrow(/refusing to call torch\.FloatStorage/);
    expect(() => unpickle(Buffer.from("\x80\x02}}b.", "latin1"), { file: "p", globals })).toThrow(/refusing to BUILD a dict/);
    const stackGlobal = Buffer.from("\x80\x04\x8c\x08builtins\x8c\x04eval\x93.", "latin1");
    expect(() => unpickle(stackGlobal, { file: "p", globals })).toThrow(/refusing to load builtins\.eval/);
    expect(() => unpickle(Buffer.from("ibuiltins\nobject\n.", "latin1"), { file: "p", globals })).toThrow(/refusing to load builtins\.object/);
    const patchGlobal = Buffer.from("ctorch\nFloatStorage\nX\x04\x00\x00\x00callK\x01s.", "latin1");
    expect(() => unpickle(patchGlobal, { file: "p", globals })).toThrow(/SETITEM on a non-dict/);
    expect(() => unpickle(Buffer.from("\x80\x02]q\x00(K\x01K\x02", "latin1"), { file: "p", globals })).toThrow(/p: pickle data ends early/);
  });

  it("rejects a tensor view that reaches past its storage, and a storage shorter than it claims", () => {
    const str = (v: string) => {
      const b = Buffer.alloc(5 + Buffer.byteLength(v));
      b[0] = 0x58; // BINUNICODE
      b.writeUInt32LE(Buffer.byteLength(v), 1);
      b.write(v, 5);
      return b;
    };
    const int = (v: number) => Buffer.from([0x4b, v]); // BININT1
    // _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', numel), 0, (size,), (1,), False, OrderedDict())
    const pkl = (numel: number, size: number) =>
      Buffer.concat([
        Buffer.from("\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((", "latin1"),
        str("storage"), Buffer.from("ctorch\nFloatStorage\n", "latin1"), str("0"), str("cpu"), int(numel),
        Buffer.from("tQ", "latin1"), int(0), Buffer.from("(", "latin1"), int(size), Buffer.from("t(", "latin1"), int(1),
        Buffer.from("t\x89ccollections\nOrderedDict\n)RtR.", "latin1"),
      ]);
    const archive = (numel: number, size: number, bytes: number) =>
      zip64Archive([["archive/data.pkl", pkl(numel, size)], ["archive/data/0", new Uint8Array(bytes)]]);
    expect((parseTorchCheckpoint(archive(2, 2, 8), "ok.pt") as HostTensor).shape).toEqual([2]);
    expect(() => parseTorchCheckpoint(archive(2, 5, 8), "v.pt")).toThrow(/v\.pt: tensor: view \(offset 0, size \[5\], stride \[1\]\) reaches element 4 of storage '0' which has 2/);
    expect(() => parseTorchCheckpoint(archive(4, 2, 8), "s.pt")).toThrow(/s\.pt: storage '0' has 8 bytes but 4 FloatStorage elements need 16/);
  });

  it("explains how to convert a legacy (pre-1.6) checkpoint", async () => {
    await expect(loadTorchCheckpoint(join(FIXTURES, "legacy.pt"))).rejects.toThrow(/legacy checkpoint format.*re-save it with torch >= 1\.6/);
  });

  it("rejects truncated, corrupt and foreign files with errors naming them", () => {
    const good = readFileSync(join(FIXTURES, "tensors.pt"));
    expect(() => parseTorchCheckpoint(good.subarray(0, good.length - 100), "t.pt")).toThrow(/t\.pt: no zip end-of-central-directory record.*truncated/);
    const zip = new ZipReader(good);
    const storage = [...zip.entries.values()].find((e) => /\/data\/0$/.test(e.name))!;
    const flipped = Buffer.from(good);
    const start = storage.localHeaderOffset + 30 + flipped.readUInt16LE(storage.localHeaderOffset + 26) + flipped.readUInt16LE(storage.localHeaderOffset + 28);
    flipped[start] ^= 0x40;
    expect(() => parseTorchCheckpoint(flipped, "t.pt")).toThrow(/t\.pt: entry '.*\/data\/0' fails its CRC-32 check/);
    const png = Buffer.from("89504e470d0a1a0a0000000d4948445200000001", "hex");
    expect(() => parseTorchCheckpoint(png, "x.pth")).toThrow(/x\.pth: not a PyTorch checkpoint: the file is a PNG image/);
  });
});
