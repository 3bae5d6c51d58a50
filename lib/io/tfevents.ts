import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { maskedCrc32c } from "./crc32c";

/**
 * TensorBoard event files (events.out.tfevents.*): a TFRecord stream (u64 length, masked CRC-32C of the length,
 * the bytes, masked CRC-32C of the bytes) of tensorflow.Event protos, the first a file_version "brain.Event:2",
 * then one Event per step holding a Summary of scalar (simple_value) values. The protos are encoded by hand:
 * Event {1: wall_time double, 2: step int64, 3: file_version string, 5: summary}, Summary {1: repeated Value},
 * Value {1: tag string, 2: simple_value float}.
 */
export interface Scalar {
  tag: string;
  value: number;
}

class ProtoWriter {
  private readonly parts: Uint8Array[] = [];

  private varint(v: bigint | number): void {
    let x = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    while (x >= 0x80n) {
      out.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(Number(x));
    this.parts.push(Uint8Array.from(out));
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  double(field: number, v: number): this {
    this.key(field, 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.parts.push(b);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.parts.push(b);
    return this;
  }

  int64(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  bytes(field: number, v: Uint8Array | string): this {
    const b = typeof v === "string" ? Buffer.from(v, "utf8") : v;
    this.key(field, 2);
    this.varint(b.length);
    this.parts.push(b);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function encodeEvent(e: { wallTime: number; step?: number; fileVersion?: string; scalars?: readonly Scalar[] }): Buffer {
  const w = new ProtoWriter().double(1, e.wallTime);
  if (e.step !== undefined) w.int64(2, e.step);
  if (e.fileVersion !== undefined) w.bytes(3, e.fileVersion);
  if (e.scalars) {
    const summary = new ProtoWriter();
    for (const s of e.scalars) summary.bytes(1, new ProtoWriter().bytes(1, s.tag).float(2, s.value).finish());
    w.bytes(5, summary.finish());
  }
  return w.finish();
}

/** One TFRecord: the framing around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(data.length));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(maskedCrc32c(len));
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(maskedCrc32c(data));
  return Buffer.concat([len, head, data, tail]);
}

let uid = 0;

/**
 * Appends events to a new events.out.tfevents.<time>.<host>.<pid>.<n> file in `dir`. Records are buffered and
 * written by flush() (each epoch, and at close), whole records at a time, so a live `tensorboard --logdir` sees
 * complete epochs and a process killed mid-write leaves at most one truncated record at the end.
 */
export class EventFileWriter {
  readonly file: string;
  private fd: number | null;
  private pending: Buffer[] = [];

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${os.hostname()}.${process.pid}.${uid++}`);
    this.fd = fs.openSync(this.file, "a");
    this.pending.push(tfRecord(encodeEvent({ wallTime: Date.now() / 1000, fileVersion: "brain.Event:2" })));
    this.flush();
  }

  addScalars(step: number, scalars: readonly Scalar[], wallTime = Date.now() / 1000): void {
    const finite = scalars.filter((s) => typeof s.value === "number" && !Number.isNaN(s.value));
    if (finite.length) this.pending.push(tfRecord(encodeEvent({ wallTime, step, scalars: finite })));
  }

  flush(): void {
    if (this.fd === null || this.pending.length === 0) return;
    fs.writeSync(this.fd, Buffer.concat(this.pending));
    this.pending = [];
  }

  close(): void {
    if (this.fd === null) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = null;
  }
}
