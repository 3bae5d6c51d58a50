import type { NativeTensor as H } from "./core";

/** Opaque handle to a native process group (CPU: Gloo, native/cpu/gloo.cc; CUDA: NCCL, native/cuda/process_group.cc). */
export interface NativeProcessGroup {
  readonly __nativeProcessGroup: unique symbol;
}

/** "avg" is a sum divided by the group size (float32 only). */
export type ReduceOp = "sum" | "avg" | "max" | "min";

export interface ProcessGroupOptions {
  rank: number;
  size: number;
  /** The rendezvous store of lib/distributed/store.ts (its wire format: native/core/store_client.h). */
  storeHost: string;
  storePort: number;
  /** Namespace of this group's keys in the store, so several groups can form over one store. */
  prefix: string;
  /** Bound on rendezvous and on every collective; a peer that died or hangs becomes an error after at most this. */
  timeoutMs: number;
  /** Gloo: the address peers reach this rank at (default: this host's name), or the network interface to use. */
  hostname?: string;
  iface?: string;
}

/**
 * Collectives over a process group. Every rank must issue the same collectives in the same order; a group runs
 * them in that order. Tensors in one call travel as one message (a gradient bucket) and must share a dtype for
 * reductions (float32 or int32). Errors (a peer died, a timeout) are thrown or reject, never hang past timeoutMs,
 * and leave the group unusable.
 *
 * The plain forms return once later ops on the device see the result (CPU: they wait; CUDA: stream-ordered).
 * The Async forms let JavaScript go on; the tensors must not be read or written until the promise settles.
 */
export interface CollectiveOps {
  processGroupCreate(options: ProcessGroupOptions): Promise<NativeProcessGroup>;
  /** Frees the group; collectives queued and not yet started reject. */
  processGroupDestroy(group: NativeProcessGroup): void;

  allReduce_(group: NativeProcessGroup, tensors: readonly H[], op: ReduceOp): void;
  allReduceAsync_(group: NativeProcessGroup, tensors: readonly H[], op: ReduceOp): Promise<void>;
  broadcast_(group: NativeProcessGroup, tensors: readonly H[], root: number): void;
  broadcastAsync_(group: NativeProcessGroup, tensors: readonly H[], root: number): Promise<void>;
  /** Every rank's x concatenated along dim 0 in rank order (a scalar gathers to shape [size]). */
  allGather(group: NativeProcessGroup, x: H): H;
  allGatherAsync(group: NativeProcessGroup, x: H): Promise<H>;
  barrier(group: NativeProcessGroup): Promise<void>;
}
