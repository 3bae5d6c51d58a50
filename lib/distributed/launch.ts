import { fork, type ChildProcess } from "node:child_process";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { clusterFromEnv } from "./cluster_env";

/** Where this process sits in a data-parallel job: the variables torchrun sets. */
export interface World {
  rank: number;
  localRank: number;
  worldSize: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
}

/**
 * The world described by RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT (as torchrun,
 * our launcher and a Kubernetes PyTorchJob set them), or by Slurm's SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID under
 * srun (see cluster_env.ts). Null when this is a plain single-process run.
 */
export function worldFromEnv(env: NodeJS.ProcessEnv = process.env): World | null {
  return clusterFromEnv(env)?.world ?? null;
}

/**
 * In a worker started by spawnWorkers: exit when the launcher dies (its IPC channel closes), and do not let that
 * channel keep the process alive. A no-op elsewhere.
 */
let watching = false;

export function watchLauncher(): void {
  if (watching || !process.send || process.env.SSQL_LAUNCHER !== "1") return;
  watching = true;
  process.channel?.unref();
  process.on("disconnect", () => {
    process.stderr.write(`rank ${process.env.RANK}: the launcher is gone; stopping\n`);
    process.exit(1);
  });
}

/** A TCP port that was free a moment ago. */
export function findFreePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen({ port: 0, host }, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface LaunchOptions {
  /** Nodes in the job and this node's index (torchrun's --nnodes/--node-rank). */
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  /** Default: a free port on a single node, 29500 across nodes (every node must agree). */
  masterPort?: number;
  /** The script each worker runs (default lib/main.js). */
  script?: string;
  /** Extra environment for the workers. */
  env?: NodeJS.ProcessEnv;
  /** Time between SIGTERM and SIGKILL when stopping the workers. */
  gracePeriodMs?: number;
  /** Lines of each worker's stderr kept for the failure report. */
  tailLines?: number;
  /** Where the workers' output goes (default: this process's stdout/stderr). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export interface LaunchResult {
  /** 0 when every worker exited with 0; otherwise the failing rank's code (128 + signal when killed). */
  exitCode: number;
  failedRank: number | null;
  /** The report printed for the failure, "rank R failed: ...". */
  message: string | null;
}

const signalNumbers = os.constants.signals as Record<string, number>;

/** Copies a worker's output, prefixing every line with "[rank R] " for rank > 0, and keeps a tail of it. */
class OutputForwarder {
  private atLineStart = true;
  private partial = "";
  readonly tail: string[] = [];

  constructor(private readonly out: NodeJS.WritableStream, private readonly prefix: string, private readonly keep: number) {}

  write(chunk: Buffer): void {
    const text = chunk.toString("utf8");
    if (this.keep > 0) {
      const lines = (this.partial + text).split("\n");
      this.partial = lines.pop() ?? "";
      for (const l of lines) if (l.trim()) this.tail.push(l);
      if (this.tail.length > this.keep) this.tail.splice(0, this.tail.length - this.keep);
    }
    if (!this.prefix) return void this.out.write(text);
    let s = "";
    for (const piece of text.split(/(?<=\n)/)) {
      if (this.atLineStart) s += this.prefix;
      s += piece;
      this.atLineStart = piece.endsWith("\n");
    }
    this.out.write(s);
  }

  lastLines(): string[] {
    return this.partial.trim() ? [...this.tail, this.partial].slice(-this.keep) : this.tail;
  }
}

/**
 * Forks nprocPerNode copies of `node <script> ...argv` with the torchrun variables set, forwards their output,
 * and waits for them. When a worker fails (non-zero exit or a signal), the others get SIGTERM, then SIGKILL after
 * the grace period, and the result reports "rank R failed: <its last stderr lines>". SIGINT/SIGTERM to the
 * launcher stop every worker the same way.
 */
export async function spawnWorkers(nprocPerNode: number, argv: readonly string[], opts: LaunchOptions = {}): Promise<LaunchResult> {
  const nnodes = opts.nnodes ?? 1;
  const nodeRank = opts.nodeRank ?? 0;
  if (!Number.isInteger(nprocPerNode) || nprocPerNode < 1) throw new RangeError(`nproc-per-node must be a positive integer, got ${nprocPerNode}`);
  if (!Number.isInteger(nnodes) || nnodes < 1) throw new RangeError(`nnodes must be a positive integer, got ${nnodes}`);
  if (!Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= nnodes) throw new RangeError(`node-rank must be in 0..${nnodes - 1}, got ${nodeRank}`);
  const masterAddr = opts.masterAddr ?? "127.0.0.1";
  if (nnodes > 1 && opts.masterAddr === undefined) throw new Error("a multi-node launch needs --master-addr (the address of node 0)");
  const masterPort = opts.masterPort ?? (nnodes > 1 ? 29500 : await findFreePort());
  const worldSize = nnodes * nprocPerNode;
  const script = opts.script ?? path.resolve(__dirname, "..", "main.js");
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const grace = opts.gracePeriodMs ?? 5000;
  const keep = opts.tailLines ?? 20;
  // N processes each using every core would oversubscribe the CPU, as torchrun warns.
  const threads = process.env.OMP_NUM_THREADS || process.env.SSQL_THREADS ? {} : { OMP_NUM_THREADS: String(Math.max(1, Math.floor(os.availableParallelism() / nprocPerNode))) };

  const children: ChildProcess[] = [];
  const errTails: OutputForwarder[] = [];
  let stopping = false;
  let interrupted: NodeJS.Signals | null = null;
  let failure: { rank: number; code: number; message: string } | null = null;
  let exited = 0;
  let resolveAll!: () => void;
  const allExited = new Promise<void>((r) => (resolveAll = r));
  let killTimer: NodeJS.Timeout | undefined;

  const stopAll = () => {
    if (stopping) return;
    stopping = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
    killTimer = setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }, grace);
  };

  for (let local = 0; local < nprocPerNode; local++) {
    const rank = nodeRank * nprocPerNode + local;
    const child = fork(script, [...argv], {
      stdio: [rank === 0 ? "inherit" : "ignore", opts.stdout === undefined && rank === 0 && process.stdout.isTTY ? "inherit" : "pipe", "pipe", "ipc"],
      env: {
        ...process.env,
        ...threads,
        ...opts.env,
        RANK: String(rank),
        LOCAL_RANK: String(local),
        WORLD_SIZE: String(worldSize),
        LOCAL_WORLD_SIZE: String(nprocPerNode),
        GROUP_RANK: String(nodeRank),
        MASTER_ADDR: masterAddr,
        MASTER_PORT: String(masterPort),
        SSQL_LAUNCHER: "1",
      },
    });
    const prefix = rank === 0 ? "" : `[rank ${rank}] `;
    const out = new OutputForwarder(stdout, prefix, 0);
    const err = new OutputForwarder(stderr, prefix, keep);
    child.stdout?.on("data", (d: Buffer) => out.write(d));
    child.stderr?.on("data", (d: Buffer) => err.write(d));
    children.push(child);
    errTails.push(err);
    child.on("error", (e) => {
      if (failure) return;
      failure = { rank, code: 1, message: `rank ${rank} failed: could not start '${script}': ${e.message}` };
      stopAll();
    });
    // 'close' comes after the worker's output is fully read, so the tail is complete. Exits while stopping are ours.
    child.on("close", (code, signal) => {
      exited++;
      if (code !== 0 && !stopping) {
        if (signal === "SIGINT") {
          interrupted ??= signal; // Ctrl-C reached the workers before this process
        } else {
          const how = signal ? `killed by ${signal}` : `exit code ${code}`;
          const tail = err.lastLines();
          failure = {
            rank,
            code: signal ? 128 + (signalNumbers[signal] ?? 0) : code ?? 1,
            message: `rank ${rank} failed: ${how}${tail.length ? `; its last error lines:\n${tail.map((l) => `  ${l}`).join("\n")}` : " (no error output)"}`,
          };
        }
        stopAll();
      }
      if (exited === nprocPerNode) resolveAll();
    });
  }

  const onSignal = (sig: NodeJS.Signals) => {
    interrupted ??= sig;
    stopAll();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    await allExited;
  } finally {
    clearTimeout(killTimer);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  const f = failure as { rank: number; code: number; message: string } | null;
  if (f) {
    stderr.write(`${f.message}\n`);
    return { exitCode: f.code, failedRank: f.rank, message: f.message };
  }
  if (interrupted) {
    const message = `interrupted (${interrupted}); stopped all ${nprocPerNode} ranks`;
    stderr.write(`${message}\n`);
    return { exitCode: 128 + (signalNumbers[interrupted] ?? 0), failedRank: null, message };
  }
  return { exitCode: 0, failedRank: null, message: null };
}
