import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { HostTensors } from "../../lib/io/host_tensor";
import { toNumbers } from "../../lib/io/host_tensor";
import { loadSafetensors, parseSafetensors, saveSafetensors, serializeSafetensors } from "../../lib/io/safetensors";

const FIXTURES = join(__dirname, "../fixtures/checkpoints");
const concat = (chunks: Uint8Array[]) => Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));

/** A safetensors file from a header object and raw data, for corrupt-input tests. */
function craft(header: object, data: Uint8Array, headerLen?: bigint): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

const sample = (): HostTensors => ({
  "encoder.conv1.weight": { dtype: "float32", shape: [2, 1, 1, 3], data: Float32Array.from([1, -2, 3.5, 0, -0, 1e-30]) },
  "bn.num_batches_tracked": { dtype: "int64", shape: [], data: BigInt64Array.from([9007199254740993n]) },
  ids: { dtype: "int32", shape: [3], data: Int32Array.from([-1, 2147483647, 0]) },
  pixels: { dtype: "uint8", shape: [2, 2], data: Uint8Array.from([0, 255, 7, 128]) },
  mask: { dtype: "bool", shape: [2], data: Uint8Array.from([1, 0]) },
  f64: { dtype: "float64", shape: [1], data: Float64Array.from([0.1]) },
  empty: { dtype: "float32", shape: [0, 4], data: new Float32Array(0) },
});

describe("safetensors", () => {
  it("writes the byte layout of the format's definition", () => {
    const bytes = concat(serializeSafetensors({ a: { dtype: "float32", shape: [2], data: Float32Array.from([1, -2]) } }));
    const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const padded = json + " ".repeat((8 - (json.length % 8)) % 8);
    expect(bytes.readBigUInt64LE(0)).toBe(BigInt(padded.length));
    expect(bytes.subarray(8, 8 + padded.length).toString()).toBe(padded);
    expect([...bytes.subarray(8 + padded.length)]).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    expect((8 + padded.length) % 8).toBe(0);
  });

  it("round-trips every writable dtype, scalars, empty tensors and metadata", async () => {
    const dir = mkdtempSync(join(tmpdir(), "st-"));
    const path = join(dir, "x.safetensors");
    const written = await saveSafetensors(path, sample(), { epoch: "3", note: "ü" });
    const back = await loadSafetensors(path);
    expect(back.metadata).toEqual({ epoch: "3", note: "ü" });
    expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(sample()).sort());
    for (const [name, t] of Object.entries(sample())) {
      expect(back.tensors[name].dtype).toBe(t.dtype);
      expect(back.tensors[name].shape).toEqual(t.shape);
      expect(back.tensors[name].data).toEqual(t.data);
    }
    // 2^53 + 1 survives as a BigInt and refuses to become an inexact number.
    expect(back.tensors["bn.num_batches_tracked"].data[0]).toBe(9007199254740993n);
    expect(() => toNumbers(back.tensors["bn.num_batches_tracked"])).toThrow(/does not fit/);
    expect(written.bytes).toBe(readFileSync(path).length);
    expect(readdirSync(dir)).toEqual(["x.safetensors"]); // no temporary file left behind
  });

  it("writes the same bytes for the same content", () => {
    const a = concat(serializeSafetensors(sample()));
    const reordered = Object.fromEntries(Object.entries(sample()).reverse());
    expect(concat(serializeSafetensors(reordered)).equals(a)).toBe(true);
  });

  it("reads F16 and BF16 as float32 with the values PyTorch gives", async () => {
    const { tensors, metadata } = await loadSafetensors(join(FIXTURES, "half.safetensors"));
    const ref = JSON.parse(readFileSync(join(FIXTURES, "tensors.json"), "utf-8"));
    const num = (v: number | string) => (typeof v === "string" ? Number(v.replace("inf", "Infinity")) : v);
    expect(metadata.writer).toBe("generate_checkpoints.py");
    expect(tensors.h.dtype).toBe("float32");
    expect(Array.from(tensors.h.data as Float32Array)).toEqual(ref.half.values.map(num));
    expect(Array.from(tensors.b.data as Float32Array)).toEqual(ref.bf16.values.map(num));
  });

  it("refuses a tensor whose typed array does not match its dtype or shape", () => {
    expect(() => serializeSafetensors({ x: { dtype: "float32", shape: [3], data: new Float32Array(2) } })).toThrow(/tensor 'x'/);
    expect(() => serializeSafetensors({ x: { dtype: "int64", shape: [1], data: new Float64Array(1) as never } })).toThrow(/tensor 'x'/);
  });

  describe("rejects corrupt input with errors naming the file and the tensor", () => {
    const good = concat(serializeSafetensors(sample()));
    const f32 = new Uint8Array(8);
    const cases: [string, Uint8Array, RegExp][] = [
      ["a truncated file", good.subarray(0, good.length - 3), /f\.safetensors: tensor '.*': data_offsets .* run past .*truncated/],
      ["a file cut inside the header", good.subarray(0, 20), /header length \d+ does not fit a 20-byte file \(truncated/],
      ["a 5-byte file", good.subarray(0, 5), /shorter than the 8-byte header length/],
      ["a PNG", Buffer.from("89504e470d0a1a0a0000000d49484452", "hex"), /it is a PNG image/],
      ["a zip", Buffer.from("504b0304140000000000", "hex"), /it is a zip archive/],
      ["a huge header length", craft({}, new Uint8Array(0), 1n << 60n), /header length \d+ does not fit/],
      ["a header that is not JSON", Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{oops")]), /not valid UTF-8 JSON/],
      ["overlapping tensors", craft({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, f32), /tensor 'b'.*overlap/],
      ["a hole", craft({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, f32), /tensor 'a': data_offsets start at 4/],
      ["trailing bytes", craft({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, f32), /4 bytes after the last tensor/],
      ["offsets past the end", craft({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, f32), /tensor 'a': data_offsets \[0, 16\] run past/],
      ["a shape that disagrees with the bytes", craft({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, f32), /tensor 'a': F32 shape \[3\] needs 12 bytes but data_offsets span 8/],
      ["reversed offsets", craft({ a: { dtype: "U8", shape: [0], data_offsets: [8, 0] } }, f32), /tensor 'a': data_offsets \[8, 0\] are reversed/],
      ["an unknown dtype", craft({ a: { dtype: "C64", shape: [1], data_offsets: [0, 8] } }, f32), /tensor 'a': unsupported dtype "C64"/],
      ["a negative dimension", craft({ a: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, f32), /tensor 'a': bad shape/],
      ["non-string metadata", craft({ __metadata__: { epoch: 3 } }, new Uint8Array(0)), /__metadata__ value 'epoch' is not a string/],
    ];
    for (const [what, bytes, message] of cases) {
      it(what, () => expect(() => parseSafetensors(bytes, "f.safetensors")).toThrow(message));
    }
  });

  it("leaves the old file intact and no temporary when a write fails", async () => {
    const dir = mkdtempSync(join(tmpdir(), "st-"));
    const path = join(dir, "x.safetensors");
    writeFileSync(path, "old");
    const bad = { x: { dtype: "float32", shape: [2], data: new Float32Array(1) } } as HostTensors;
    await expect(saveSafetensors(path, bad)).rejects.toThrow(/tensor 'x'/);
    await expect(saveSafetensors(join(dir, "missing-dir", "y.safetensors"), sample())).rejects.toThrow(/ENOENT/);
    expect(readFileSync(path, "utf-8")).toBe("old");
    expect(readdirSync(dir)).toEqual(["x.safetensors"]);
  });

  it("gives a '__proto__' tensor name its own entry", () => {
    // Written by hand: an object literal's __proto__ key would set its prototype instead.
    const header = '{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const { tensors } = parseSafetensors(Buffer.concat([len, Buffer.from(header), Buffer.from([7])]));
    expect(Object.keys(tensors)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(tensors)).toBe(Object.prototype);
    expect([...(tensors.__proto__ as unknown as { data: Uint8Array }).data]).toEqual([7]);
  });
});
