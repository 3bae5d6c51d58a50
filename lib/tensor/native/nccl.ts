import type { NativeTensor as H } from "./core";

/** Opaque communicator handle from commInit(). */
export interface Communicator {
  readonly __communicator: unique symbol;
}

/**
 * NCCL communicators of ssql_cuda.node (native/cuda/nccl.cc), the engine under the CUDA process group;
 * the CPU addon has none (its collectives are Gloo process groups, ./collective.ts).
 * Every collective is queued on the device's stream like any other op.
 */
export interface NcclOps {
  /** A fresh 128-byte id; rank 0 creates it and hands it to the other ranks (e.g. through the rendezvous store). */
  commUniqueId(): Uint8Array;
  /** Joins the communicator of `worldSize` ranks; blocks until all ranks have called it with the same id. */
  commInit(uniqueId: Uint8Array, rank: number, worldSize: number): Communicator;
  /** In place: x = sum (or mean) of x over all ranks (float32). */
  ncclAllReduce_(comm: Communicator, x: H, op: "sum" | "avg"): void;
  /** In place: every rank's x becomes rank `root`'s x. */
  ncclBroadcast_(comm: Communicator, x: H, root: number): void;
  /** [worldSize, ...x.shape]: every rank's x in rank order. */
  ncclAllGather(comm: Communicator, x: H): H;
  /** null, or the asynchronous error the communicator hit (e.g. a peer died). */
  commAsyncError(comm: Communicator): string | null;
  /** Flushes queued collectives and frees the communicator. */
  commDestroy(comm: Communicator): void;
  /** Frees the communicator at once, abandoning queued collectives (after a failure). */
  commAbort(comm: Communicator): void;
}
