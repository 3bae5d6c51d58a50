import * as net from "node:net";
import { connectWithRetry } from "./connect";

/*
 * A client of PyTorch's c10d TCPStore (the store torchrun's agent serves on MASTER_PORT), speaking its wire
 * protocol as torch 2.13 does (checked against the real torch.distributed.TCPStore in test/distributed/
 * c10d_store.test.ts, both the libuv and the classic server). Everything is little-endian:
 *   handshake: u8 VALIDATE | u32 0x3C85F7CE, then u8 PING | u32 nonce; the server echoes the nonce (u32)
 *   string / bytes: u64 length | bytes; keys carry the "/" prefix torch's TCPStore clients add
 *   SET k v -> nothing; GET k -> bytes; ADD k i64 -> i64; COMPARE_SET k expected desired -> bytes (the value now)
 *   CHECK u64 n, n keys -> u8 (0 ready, 1 not ready); WAIT u64 n, n keys -> u8 STOP_WAITING (0) once all are set
 *   CANCEL_WAIT -> u8 WAIT_CANCELED (1), possibly after a late STOP_WAITING; DELETE_KEY k -> i64; GETNUMKEYS -> i64
 * Replies carry no request id, so requests go one at a time, as torch's client does.
 */
const Query = { validate: 0, set: 1, compareSet: 2, get: 3, add: 4, check: 5, wait: 6, numKeys: 7, deleteKey: 8, cancelWait: 12, ping: 13 } as const;
const validationMagic = 0x3c85f7ce;
const stopWaiting = 0;
const waitCanceled = 1;
const keyPrefix = "/";

/** A c10d store request that timed out; `missing` lists the keys that were never set. */
export class C10dTimeoutError extends Error {
  constructor(message: string, readonly missing: readonly string[]) {
    super(message);
    this.name = "C10dTimeoutError";
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n), 0);
  return b;
}

function i64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(n), 0);
  return b;
}

function blob(v: string | Uint8Array): Buffer {
  const b = Buffer.from(v);
  return Buffer.concat([u64(b.length), b]);
}

const key = (k: string) => blob(keyPrefix + k);

/** Reads fixed-size values and length-prefixed blobs off the socket as they arrive. */
class Reader {
  private pending: Buffer = Buffer.alloc(0);
  private want: { size: () => number | null; take: (b: Buffer) => void } | null = null;

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pump();
  }

  /** The next n bytes. */
  bytes(n: number): Promise<Buffer> {
    return new Promise((resolve) => this.expect(() => n, resolve));
  }

  /** A u64 length and that many bytes. */
  blob(): Promise<Buffer> {
    return new Promise((resolve) =>
      this.expect(
        () => (this.pending.length < 8 ? null : 8 + Number(this.pending.readBigUInt64LE(0))),
        (b) => resolve(b.subarray(8)),
      ),
    );
  }

  private expect(size: () => number | null, take: (b: Buffer) => void): void {
    if (this.want) throw new Error("c10d store: overlapping reads");
    this.want = { size, take };
    this.pump();
  }

  private pump(): void {
    if (!this.want) return;
    const n = this.want.size();
    if (n === null || this.pending.length < n) return;
    const w = this.want;
    this.want = null;
    const b = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    w.take(b);
  }
}

/** A client of a c10d TCPStore (torch.distributed.TCPStore). */
export class C10dStore {
  private readonly reader = new Reader();
  private queue: Promise<unknown> = Promise.resolve();
  private closedError: Error | null = null;
  private failClosed: ((e: Error) => void)[] = [];

  private constructor(private readonly socket: net.Socket, readonly host: string, readonly port: number, readonly timeoutMs: number) {
    socket.setNoDelay(true);
    socket.unref();
    socket.on("data", (chunk: Buffer) => this.reader.push(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closedError ??= new Error(`lost the connection to torch's TCPStore at ${this.where} (the torchrun agent exited?)`);
      for (const f of this.failClosed) f(this.closedError);
      this.failClosed = [];
    });
  }

  get where(): string {
    return `${this.host}:${this.port}`;
  }

  /** The address this host reaches the store from. */
  get localAddress(): string | undefined {
    return this.socket.localAddress?.replace(/^::ffff:/, "");
  }

  /**
   * Connects (retrying until timeoutMs while nothing listens) and runs the c10d handshake. A server that does not
   * echo the handshake within the timeout (another protocol, or a torch too old or too new) is named as such.
   */
  static connect(host: string, port: number, timeoutMs: number): Promise<C10dStore> {
    return connectWithRetry(
      host,
      port,
      timeoutMs,
      async (socket, deadline) => {
        const store = new C10dStore(socket, host, port, timeoutMs);
        await store.handshake(Math.max(1000, Math.min(deadline - Date.now(), 30_000)));
        return store;
      },
      "torch's TCPStore",
      "MASTER_ADDR/MASTER_PORT from torchrun",
      (e) => e instanceof C10dProtocolError,
    );
  }

  set(k: string, value: string | Uint8Array): Promise<void> {
    return this.exclusive(async () => {
      this.write(Buffer.from([Query.set]), key(k), blob(value));
    });
  }

  /** Waits up to timeoutMs for the key to be set, then reads it. */
  get(k: string, timeoutMs = this.timeoutMs): Promise<Buffer> {
    return this.exclusive(async () => {
      await this.doWait([k], timeoutMs);
      this.write(Buffer.from([Query.get]), key(k));
      return this.reply(this.reader.blob(), "get", this.timeoutMs);
    });
  }

  /** Adds delta to the integer under the key (0 when unset) and returns the new value. */
  add(k: string, delta: number): Promise<number> {
    return this.exclusive(async () => {
      this.write(Buffer.from([Query.add]), key(k), i64(delta));
      return Number((await this.reply(this.reader.bytes(8), "add", this.timeoutMs)).readBigInt64LE(0));
    });
  }

  /**
   * Sets the key to `desired` if it holds `expected` (or is unset and `expected` is empty); returns the value it
   * holds afterwards.
   */
  compareSet(k: string, expected: string | Uint8Array, desired: string | Uint8Array): Promise<Buffer> {
    return this.exclusive(async () => {
      this.write(Buffer.from([Query.compareSet]), key(k), blob(expected), blob(desired));
      return this.reply(this.reader.blob(), "compare_set", this.timeoutMs);
    });
  }

  check(keys: readonly string[]): Promise<boolean> {
    return this.exclusive(async () => {
      this.write(Buffer.from([Query.check]), u64(keys.length), ...keys.map(key));
      return (await this.reply(this.reader.bytes(1), "check", this.timeoutMs))[0] === 0;
    });
  }

  wait(keys: readonly string[], timeoutMs = this.timeoutMs): Promise<void> {
    return this.exclusive(() => this.doWait(keys, timeoutMs));
  }

  /** True when the key existed. */
  deleteKey(k: string): Promise<boolean> {
    return this.exclusive(async () => {
      this.write(Buffer.from([Query.deleteKey]), key(k));
      return (await this.reply(this.reader.bytes(8), "delete_key", this.timeoutMs)).readBigInt64LE(0) === 1n;
    });
  }

  numKeys(): Promise<number> {
    return this.exclusive(async () => {
      this.write(Buffer.from([Query.numKeys]));
      return Number((await this.reply(this.reader.bytes(8), "num_keys", this.timeoutMs)).readBigInt64LE(0));
    });
  }

  close(): void {
    this.closedError ??= new Error("the c10d store client is closed");
    this.socket.destroy();
  }

  private async handshake(timeoutMs: number): Promise<void> {
    const nonce = (process.pid ^ Math.floor(Math.random() * 0x7fffffff)) >>> 0;
    this.write(Buffer.from([Query.validate]), u32(validationMagic), Buffer.from([Query.ping]), u32(nonce));
    let echoed: Buffer;
    try {
      echoed = await this.reply(this.reader.bytes(4), "handshake", timeoutMs);
    } catch (e) {
      this.socket.destroy();
      throw new C10dProtocolError(
        `${this.where} does not speak torch's c10d TCPStore protocol (validation magic 0x3c85f7ce and ping, as torch 2.3 to 2.13): ` +
          `${e instanceof Error ? e.message : String(e)}. Is MASTER_PORT the torchrun agent's store?`,
      );
    }
    if (echoed.readUInt32LE(0) !== nonce) {
      this.socket.destroy();
      throw new C10dProtocolError(
        `${this.where} answered the c10d handshake with 0x${echoed.readUInt32LE(0).toString(16)} instead of echoing the ping nonce 0x${nonce.toString(16)}: another protocol or protocol version`,
      );
    }
  }

  private async doWait(keys: readonly string[], timeoutMs: number): Promise<void> {
    this.write(Buffer.from([Query.wait]), u64(keys.length), ...keys.map(key));
    const first = this.reader.bytes(1);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    let answer: Buffer | "timeout";
    try {
      answer = await this.reply(Promise.race([first, timedOut]), "wait", 0);
    } finally {
      clearTimeout(timer);
    }
    if (answer !== "timeout") return this.expectByte(answer, stopWaiting, "wait");
    // Cancel; the server may have answered STOP_WAITING just before, and then still confirms the cancel.
    this.write(Buffer.from([Query.cancelWait]));
    const reply = await this.reply(first, "cancel_wait", this.timeoutMs);
    if (reply[0] === stopWaiting) return this.expectByte(await this.reply(this.reader.bytes(1), "cancel_wait", this.timeoutMs), waitCanceled, "cancel_wait");
    this.expectByte(reply, waitCanceled, "cancel_wait");
    const missing: string[] = [];
    // Name the keys still missing (a CHECK per key: cheap, and only on this error path).
    for (const k of keys) {
      this.write(Buffer.from([Query.check]), u64(1), key(k));
      if ((await this.reply(this.reader.bytes(1), "check", this.timeoutMs))[0] !== 0) missing.push(k);
    }
    throw new C10dTimeoutError(
      `torch's TCPStore at ${this.where}: timed out after ${timeoutMs / 1000} s waiting for ${(missing.length ? missing : keys).map((k) => `'${k}'`).join(", ")}`,
      missing,
    );
  }

  private expectByte(b: Buffer, want: number, what: string): void {
    if (b[0] !== want) throw new C10dProtocolError(`torch's TCPStore at ${this.where}: unexpected reply ${b[0]} to ${what} (expected ${want})`);
  }

  private write(...parts: Buffer[]): void {
    if (this.closedError) throw this.closedError;
    this.socket.write(Buffer.concat(parts));
  }

  /** Awaits a reply; fails when the connection closes or (timeoutMs > 0) when it takes longer than that. */
  private reply<T>(p: Promise<T>, what: string, timeoutMs: number): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<T>((resolve, reject) => {
      const timer = timeoutMs > 0 ? setTimeout(() => reject(new Error(`torch's TCPStore at ${this.where} did not answer ${what} within ${timeoutMs / 1000} s`)), timeoutMs) : undefined;
      const fail = (e: Error) => {
        clearTimeout(timer);
        reject(e);
      };
      this.failClosed.push(fail);
      p.then(
        (v) => {
          clearTimeout(timer);
          this.failClosed = this.failClosed.filter((f) => f !== fail);
          resolve(v);
        },
        fail,
      );
    });
  }

  /** One request at a time; the socket keeps the process alive only while one is in flight. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      if (this.closedError) throw this.closedError;
      this.socket.ref();
      try {
        return await fn();
      } finally {
        this.socket.unref();
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => {});
    return next;
  }
}

/** The server at the other end does not speak the c10d TCPStore protocol of the torch versions we cover. */
export class C10dProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "C10dProtocolError";
  }
}
