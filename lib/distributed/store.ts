import * as net from "node:net";
import { connectWithRetry } from "./connect";

/*
 * The rendezvous store: a small key-value server on MASTER_ADDR:MASTER_PORT, hosted by rank 0, that the ranks
 * use to find each other (Gloo's addresses, NCCL's unique id) and to meet at barriers. Native code talks to it
 * with native/core/store_client.h. Frames are little-endian:
 *   request:  u32 bodyLength | u32 requestId | u8 command | u32 timeoutMs | u32 count | count x (u32 length | bytes)
 *   response: u32 bodyLength | u32 requestId | u8 status  | u32 count | count x (u32 length | bytes)
 * A get or wait on keys that are missing is answered when they are set, or with status Timeout (listing the keys
 * still missing) after timeoutMs.
 */
const Command = { set: 1, get: 2, add: 3, wait: 4, check: 5, delete: 6 } as const;
const Status = { ok: 0, timeout: 1, error: 2 } as const;

/** A store request that timed out; `missing` lists the keys that were never set. */
export class StoreTimeoutError extends Error {
  constructor(message: string, readonly missing: readonly string[]) {
    super(message);
    this.name = "StoreTimeoutError";
  }
}

/** A barrier that timed out; `missingRanks` never arrived. */
export class BarrierTimeoutError extends StoreTimeoutError {
  constructor(message: string, missing: readonly string[], readonly missingRanks: readonly number[]) {
    super(message, missing);
    this.name = "BarrierTimeoutError";
  }
}

function frame(head: Buffer, blobs: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4), head, u32(blobs.length)];
  for (const b of blobs) parts.push(u32(b.length), b);
  const out = Buffer.concat(parts);
  out.writeUInt32LE(out.length - 4, 0);
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

function readBlobs(body: Buffer, offset: number): Buffer[] {
  const count = body.readUInt32LE(offset);
  let off = offset + 4;
  const blobs: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const n = body.readUInt32LE(off);
    off += 4;
    if (off + n > body.length) throw new RangeError("store: truncated frame");
    blobs.push(body.subarray(off, off + n));
    off += n;
  }
  return blobs;
}

/** Splits a byte stream into frame bodies. */
class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const bodies: Buffer[] = [];
    while (this.pending.length >= 4) {
      const n = this.pending.readUInt32LE(0);
      if (this.pending.length < 4 + n) break;
      bodies.push(this.pending.subarray(4, 4 + n));
      this.pending = this.pending.subarray(4 + n);
    }
    return bodies;
  }
}

interface Waiter {
  keys: readonly string[];
  ready(): void;
  timer: NodeJS.Timeout;
  socket: net.Socket;
}

/** The server side, run by rank 0. It never keeps the process alive by itself. */
export class StoreServer {
  private readonly data = new Map<string, Buffer>();
  private readonly waiters = new Set<Waiter>();
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, readonly port: number) {}

  /** Listens on host:port (port 0 picks a free one; host undefined means every interface). */
  static listen(port: number, host?: string): Promise<StoreServer> {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once("error", (e: NodeJS.ErrnoException) => {
        const where = `${host ?? "*"}:${port}`;
        reject(e.code === "EADDRINUSE"
          ? new Error(`rendezvous store: port ${port} is in use (${where}); pick another MASTER_PORT`)
          : new Error(`rendezvous store: cannot listen on ${where}: ${e.message}`));
      });
      server.listen({ port, host }, () => {
        server.unref();
        const s = new StoreServer(server, (server.address() as net.AddressInfo).port);
        server.on("connection", (socket) => s.accept(socket));
        resolve(s);
      });
    });
  }

  /** Resolves once every client has disconnected, or after timeoutMs. */
  drain(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const deadline = Date.now() + timeoutMs;
      const poll = () => {
        if (this.sockets.size === 0 || Date.now() >= deadline) return resolve();
        setTimeout(poll, 20);
      };
      poll();
    });
  }

  close(): void {
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters.clear();
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }

  private accept(socket: net.Socket): void {
    socket.unref();
    socket.setNoDelay(true);
    this.sockets.add(socket);
    const reader = new FrameReader();
    socket.on("data", (chunk) => {
      try {
        for (const body of reader.push(chunk)) this.handle(socket, body);
      } catch (e) {
        socket.destroy(e instanceof Error ? e : new Error(String(e)));
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.sockets.delete(socket);
      for (const w of this.waiters) {
        if (w.socket !== socket) continue;
        clearTimeout(w.timer);
        this.waiters.delete(w);
      }
    });
  }

  private handle(socket: net.Socket, body: Buffer): void {
    const id = body.readUInt32LE(0);
    const command = body.readUInt8(4);
    const timeoutMs = body.readUInt32LE(5);
    const args = readBlobs(body, 9);
    const reply = (status: number, blobs: readonly Buffer[] = []) => {
      if (!socket.destroyed) socket.write(frame(Buffer.concat([u32(id), Buffer.from([status])]), blobs));
    };
    const key = () => {
      if (!args.length) throw new RangeError("store: request without a key");
      return args[0].toString("utf8");
    };
    switch (command) {
      case Command.set:
        if (args.length !== 2) throw new RangeError("store: set needs a key and a value");
        this.data.set(key(), Buffer.from(args[1]));
        reply(Status.ok);
        this.wakeWaiters();
        return;
      case Command.get: {
        const k = key();
        this.whenSet(socket, [k], timeoutMs, () => reply(Status.ok, [this.data.get(k)!]), (missing) => reply(Status.timeout, missing));
        return;
      }
      case Command.add: {
        const k = key();
        const next = Number(this.data.get(k)?.toString("utf8") ?? "0") + Number(args[1]?.toString("utf8"));
        if (!Number.isFinite(next)) return reply(Status.error, [Buffer.from(`add: key '${k}' does not hold a number`)]);
        this.data.set(k, Buffer.from(String(next)));
        reply(Status.ok, [Buffer.from(String(next))]);
        this.wakeWaiters();
        return;
      }
      case Command.wait: {
        const keys = args.map((a) => a.toString("utf8"));
        this.whenSet(socket, keys, timeoutMs, () => reply(Status.ok), (missing) => reply(Status.timeout, missing));
        return;
      }
      case Command.check:
        reply(Status.ok, [Buffer.from(args.every((a) => this.data.has(a.toString("utf8"))) ? "1" : "0")]);
        return;
      case Command.delete:
        this.data.delete(key());
        reply(Status.ok);
        return;
      default:
        reply(Status.error, [Buffer.from(`unknown command ${command}`)]);
    }
  }

  private whenSet(socket: net.Socket, keys: readonly string[], timeoutMs: number, ready: () => void, timedOut: (missing: Buffer[]) => void): void {
    if (keys.every((k) => this.data.has(k))) return ready();
    const w: Waiter = {
      keys,
      socket,
      ready,
      timer: setTimeout(() => {
        this.waiters.delete(w);
        timedOut(keys.filter((k) => !this.data.has(k)).map((k) => Buffer.from(k)));
      }, timeoutMs),
    };
    w.timer.unref();
    this.waiters.add(w);
  }

  private wakeWaiters(): void {
    for (const w of this.waiters) {
      if (!w.keys.every((k) => this.data.has(k))) continue;
      clearTimeout(w.timer);
      this.waiters.delete(w);
      w.ready();
    }
  }
}

interface Pending {
  resolve(blobs: Buffer[]): void;
  reject(e: Error): void;
  timeoutMs: number;
}

/** A client of the store. Requests may overlap; each resolves with its own reply. */
export class Store {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly barrierRounds = new Map<string, number>();
  private closedError: Error | null = null;
  /** Set when this process hosts the server (rank 0); close() stops it. */
  server: StoreServer | null = null;

  private constructor(private readonly socket: net.Socket, readonly host: string, readonly port: number, readonly timeoutMs: number) {
    socket.setNoDelay(true);
    socket.unref();
    const reader = new FrameReader();
    socket.on("data", (chunk) => {
      for (const body of reader.push(chunk)) this.onReply(body);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closedError ??= new Error(`lost the connection to the rendezvous store at ${this.where} (rank 0 exited?)`);
      for (const p of this.pending.values()) p.reject(this.closedError);
      this.pending.clear();
    });
  }

  /** The address this host uses to reach the store: one the other ranks can reach it at, too. */
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  get where(): string {
    return `${this.host}:${this.port}`;
  }

  /** Connects, retrying until timeoutMs (rank 0 may not listen yet). `timeoutMs` is also the default for waits. */
  static connect(host: string, port: number, timeoutMs: number): Promise<Store> {
    return connectWithRetry(host, port, timeoutMs, async (socket) => new Store(socket, host, port, timeoutMs), "the rendezvous store", "is rank 0 running? check MASTER_ADDR/MASTER_PORT");
  }

  set(key: string, value: string | Uint8Array): Promise<void> {
    return this.request(Command.set, 0, [Buffer.from(key), Buffer.from(value)]).then(() => undefined);
  }

  /** Waits up to timeoutMs for the key to be set. */
  async get(key: string, timeoutMs = this.timeoutMs): Promise<Buffer> {
    return (await this.request(Command.get, timeoutMs, [Buffer.from(key)]))[0];
  }

  /** Adds delta to the integer under key (0 when unset) and returns the new value. */
  async add(key: string, delta: number): Promise<number> {
    return Number((await this.request(Command.add, 0, [Buffer.from(key), Buffer.from(String(delta))]))[0].toString("utf8"));
  }

  wait(keys: readonly string[], timeoutMs = this.timeoutMs): Promise<void> {
    return this.request(Command.wait, timeoutMs, keys.map((k) => Buffer.from(k))).then(() => undefined);
  }

  async check(keys: readonly string[]): Promise<boolean> {
    return (await this.request(Command.check, 0, keys.map((k) => Buffer.from(k))))[0].toString() === "1";
  }

  delete(key: string): Promise<void> {
    return this.request(Command.delete, 0, [Buffer.from(key)]).then(() => undefined);
  }

  /**
   * Returns once all `size` ranks called barrier(name) as often as this rank has; a timeout names the ranks
   * that did not arrive.
   */
  async barrier(name: string, rank: number, size: number, timeoutMs = this.timeoutMs): Promise<void> {
    const round = this.barrierRounds.get(name) ?? 0;
    this.barrierRounds.set(name, round + 1);
    const keyOf = (r: number) => `barrier/${name}/${round}/${r}`;
    await this.set(keyOf(rank), "1");
    try {
      await this.wait(Array.from({ length: size }, (_, r) => keyOf(r)), timeoutMs);
    } catch (e) {
      if (!(e instanceof StoreTimeoutError)) throw e;
      const ranks = e.missing.map((k) => Number(k.slice(k.lastIndexOf("/") + 1)));
      throw new BarrierTimeoutError(
        `barrier '${name}' timed out after ${timeoutMs / 1000} s: rank${ranks.length > 1 ? "s" : ""} ${ranks.join(", ")} of ${size} did not arrive`,
        e.missing,
        ranks,
      );
    }
  }

  /** Disconnects; a hosted server first waits (up to drainMs) for the other ranks to disconnect. */
  async close(drainMs = 0): Promise<void> {
    this.closedError ??= new Error("the store client is closed");
    this.socket.destroy();
    const server = this.server;
    this.server = null;
    if (!server) return;
    if (drainMs > 0) await server.drain(drainMs);
    server.close();
  }

  private request(command: number, timeoutMs: number, args: readonly Buffer[]): Promise<Buffer[]> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const head = Buffer.alloc(9);
    head.writeUInt32LE(id, 0);
    head.writeUInt8(command, 4);
    head.writeUInt32LE(Math.max(0, Math.min(timeoutMs, 0xffffffff)), 5);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, timeoutMs });
      // Keep the process alive only while waiting for a reply.
      if (this.pending.size === 1) this.socket.ref();
      this.socket.write(frame(head, args));
    });
  }

  private onReply(body: Buffer): void {
    const id = body.readUInt32LE(0);
    const status = body.readUInt8(4);
    const blobs = readBlobs(body, 5);
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.socket.unref();
    if (status === Status.ok) return p.resolve(blobs);
    const detail = blobs.map((b) => b.toString("utf8"));
    if (status === Status.timeout)
      return p.reject(new StoreTimeoutError(`rendezvous store at ${this.where}: timed out after ${p.timeoutMs / 1000} s waiting for ${detail.map((k) => `'${k}'`).join(", ")}`, detail));
    p.reject(new Error(`rendezvous store at ${this.where}: ${detail.join(", ")}`));
  }
}
