import { env } from "../env";
import { opsFor, type Device } from "../tensor/binding";
import type { DeviceOps, NativeProcessGroup, NativeTensor, ReduceOp } from "../tensor/native";
import type { Tensor } from "../tensor/tensor";
import { watchLauncher, worldFromEnv, type World } from "./launch";
import { clusterFromEnv, type ClusterEnv } from "./cluster_env";
import { agentStoreOf, openStore } from "./rendezvous";
import type { Store } from "./store";

export type { ReduceOp } from "../tensor/native";

/** Default bound on the rendezvous and on each collective (SSQL_DIST_TIMEOUT seconds overrides it). */
export function defaultTimeoutMs(): number {
  return (env.distTimeout ?? 300) * 1000;
}

const isLoopback = (addr: string) => addr === "localhost" || addr.startsWith("127.") || addr === "::1";

export interface ProcessGroupOptions {
  rank: number;
  size: number;
  /** "cpu" forms a Gloo group, "cuda" an NCCL one. */
  device?: Device;
  /** Distinguishes groups formed over the same store; ranks must create groups in the same order. */
  name?: string;
  timeoutMs?: number;
}

/**
 * A set of ranks that run collectives together (torch.distributed's ProcessGroup). Every rank must call the same
 * collectives in the same order. Plain forms return once later ops see the result; Async forms return a promise
 * and the tensors must be left alone until it settles. Reductions take one tensor or a list that travels as one
 * message (all float32 or all int32).
 */
export class ProcessGroup {
  private handle: NativeProcessGroup | null;

  private constructor(handle: NativeProcessGroup, readonly rank: number, readonly size: number, readonly device: Device, readonly timeoutMs: number) {
    this.handle = handle;
  }

  static async create(store: Store, opts: ProcessGroupOptions): Promise<ProcessGroup> {
    const device = opts.device ?? "cpu";
    const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs();
    const local = store.localAddress;
    const handle = await opsFor(device).processGroupCreate({
      rank: opts.rank,
      size: opts.size,
      storeHost: store.host,
      storePort: store.port,
      prefix: `pg/${opts.name ?? "default"}`,
      timeoutMs,
      // Peers reach this rank at the address it reaches the store from, unless an interface is named.
      hostname: isLoopback(store.host) ? "127.0.0.1" : local?.replace(/^::ffff:/, ""),
      iface: env.glooIface,
    });
    return new ProcessGroup(handle, opts.rank, opts.size, device, timeoutMs);
  }

  private get ops(): DeviceOps {
    return opsFor(this.device);
  }

  private get native(): NativeProcessGroup {
    if (!this.handle) throw new TypeError("the process group is destroyed");
    return this.handle;
  }

  private handles(xs: Tensor | readonly Tensor[]): NativeTensor[] {
    const list: readonly Tensor[] = Array.isArray(xs) ? xs : [xs];
    for (const t of list)
      if (t.device !== this.device) throw new TypeError(`a ${this.device} process group got a tensor on ${t.device}`);
    return list.map((t) => t.handle);
  }

  allReduce_(xs: Tensor | readonly Tensor[], op: ReduceOp = "sum"): void {
    this.ops.allReduce_(this.native, this.handles(xs), op);
  }

  allReduceAsync_(xs: Tensor | readonly Tensor[], op: ReduceOp = "sum"): Promise<void> {
    return this.ops.allReduceAsync_(this.native, this.handles(xs), op);
  }

  broadcast_(xs: Tensor | readonly Tensor[], root = 0): void {
    this.ops.broadcast_(this.native, this.handles(xs), root);
  }

  broadcastAsync_(xs: Tensor | readonly Tensor[], root = 0): Promise<void> {
    return this.ops.broadcastAsync_(this.native, this.handles(xs), root);
  }

  /** Every rank's x concatenated along dim 0 in rank order (not differentiable). */
  allGather(x: Tensor): Tensor {
    this.handles(x);
    return x.wrap(this.ops.allGather(this.native, x.handle));
  }

  async allGatherAsync(x: Tensor): Promise<Tensor> {
    this.handles(x);
    return x.wrap(await this.ops.allGatherAsync(this.native, x.handle));
  }

  barrier(): Promise<void> {
    return this.ops.barrier(this.native);
  }

  destroy(): void {
    if (!this.handle) return;
    this.ops.processGroupDestroy(this.handle);
    this.handle = null;
  }
}

/** A joined job: where this process sits, the rendezvous store, and the default process group. */
export interface Distributed {
  world: World;
  store: Store;
  group: ProcessGroup;
}

let current: Distributed | null = null;

/** The job joined by initProcessGroup, or null in a single process that never joined one. */
export function distributed(): Distributed | null {
  return current;
}

export interface InitOptions {
  /** Default: worldFromEnv(), or a world of one process. */
  world?: World;
  device?: Device;
  timeoutMs?: number;
}

/**
 * Joins the job described by the torchrun variables (init_process_group(init_method="env://")): rank 0 serves the
 * rendezvous store on MASTER_ADDR:MASTER_PORT (under torchrun, it publishes its store in the agent's store there
 * instead: rendezvous.ts), every rank connects and waits for the others (a timeout names the ranks that did not
 * arrive), then the default process group forms. Works for a single process too.
 */
export async function initProcessGroup(opts: InitOptions = {}): Promise<Distributed> {
  if (current) throw new Error("initProcessGroup(): this process already joined a job");
  watchLauncher();
  const world = opts.world ?? worldFromEnv() ?? { rank: 0, localRank: 0, worldSize: 1, localWorldSize: 1, masterAddr: "127.0.0.1", masterPort: 0 };
  const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs();
  // Under torchrun, the agent's c10d TCPStore is on MASTER_PORT; the world must be the one its variables describe.
  const cluster = opts.world ? clusterFromEnvOrNull() : clusterFromEnv();
  const agent = cluster && cluster.world.masterPort === world.masterPort ? agentStoreOf(cluster) : null;
  const store = await openStore(world, timeoutMs, agent);
  try {
    await store.barrier("init", world.rank, world.worldSize, timeoutMs);
    const group = await ProcessGroup.create(store, { rank: world.rank, size: world.worldSize, device: opts.device, timeoutMs });
    current = { world, store, group };
    return current;
  } catch (e) {
    void store.close();
    throw e;
  }
}

/** The job from the environment, or null when the environment describes none (or a broken one) and the caller passed its world. */
function clusterFromEnvOrNull(): ClusterEnv | null {
  try {
    return clusterFromEnv();
  } catch {
    return null;
  }
}

/** Leaves the job: waits for every rank (so rank 0 keeps serving the store until the last one is done), then frees. */
export async function destroyProcessGroup(): Promise<void> {
  if (!current) return;
  const { world, store, group } = current;
  current = null;
  try {
    await store.barrier("exit", world.rank, world.worldSize);
  } finally {
    group.destroy();
    await store.close(10_000);
  }
}
