import { backward, setLeafGradHook } from "../tensor/autograd";
import { tensor, zeros, type Tensor } from "../tensor/tensor";
import type { ProcessGroup } from "./process_group";

export interface DdpOptions {
  /** Gradient bucket size (PyTorch's bucket_cap_mb). */
  bucketCapMb?: number;
  /** The first bucket (the last parameters) is smaller so that communication starts early, as in PyTorch. */
  firstBucketCapMb?: number;
  /** Broadcast buffers (BN running stats) from rank 0 in broadcastBuffers() (PyTorch's default, kept by SSQL). */
  broadcastBuffers?: boolean;
  /**
   * Parameters outside this step's graph contribute zeros; those unused on every rank keep their .grad untouched
   * (null stays null, so the optimizer skips them), as PyTorch's find_unused_parameters=True. Costs one small
   * all-reduce per step.
   */
  findUnusedParameters?: boolean;
}

const MB = 1024 * 1024;

/** Leaf tensors that need a gradient and are reachable from `root` through the tape. */
function reachableLeaves(root: Tensor): Set<Tensor> {
  const leaves = new Set<Tensor>();
  const seen = new Set<Tensor>([root]);
  const stack = [root];
  while (stack.length) {
    const t = stack.pop()!;
    if (!t.gradFn) {
      if (t.requiresGrad) leaves.add(t);
      continue;
    }
    for (const input of t.gradFn.inputs) {
      if (!input || !input.requiresGrad || seen.has(input)) continue;
      seen.add(input);
      stack.push(input);
    }
  }
  return leaves;
}

/** One backward pass's bookkeeping. */
interface Sync {
  waiting: number[]; // per bucket: parameters whose gradient has not arrived yet
  ready: boolean[]; // per parameter
  nextBucket: number;
  reductions: Promise<void>[];
  /** Zero gradients standing in for parameters with no .grad that this rank did not use. */
  standIns: Map<number, Tensor>;
  usedMap: Tensor | null;
  usedReduction: Promise<void> | null;
}

/**
 * Data-parallel training over a process group, as torch.nn.parallel.DistributedDataParallel: every rank holds a
 * replica, gradients are averaged across ranks in buckets (reverse registration order) while backward still runs,
 * so every replica takes the same optimizer step.
 *
 *   const ddp = await DistributedDataParallel.create(group, model.parameters(), model.buffers());
 *   for (...) {
 *     await ddp.broadcastBuffers();                         // before the forward
 *     tidy(() => { const loss = ...forward...; ddp.backward(loss); });
 *     await ddp.finishGradientSync();                       // all buckets averaged
 *     optimizer.step(); optimizer.zeroGrad();
 *   }
 */
export class DistributedDataParallel {
  /** Parameters that take gradients, in registration order, without duplicates. */
  readonly parameters: readonly Tensor[];
  readonly buffers: readonly Tensor[];
  /** Indices into `parameters`, one list per bucket, in the order buckets are reduced. */
  readonly buckets: readonly (readonly number[])[];
  private readonly bucketOf: Map<Tensor, number>;
  private readonly indexOf: Map<Tensor, number>;
  private readonly opts: Required<DdpOptions>;
  private sync: Sync | null = null;

  private constructor(readonly group: ProcessGroup, parameters: readonly Tensor[], buffers: readonly Tensor[], opts: DdpOptions) {
    this.opts = { bucketCapMb: 25, firstBucketCapMb: 1, broadcastBuffers: true, findUnusedParameters: true, ...opts };
    this.parameters = [...new Set(parameters)].filter((p) => p.requiresGrad);
    this.buffers = [...new Set(buffers)];
    for (const p of this.parameters)
      if (p.dtype !== "float32") throw new TypeError(`DistributedDataParallel: parameter ${p} is not float32`);
    this.indexOf = new Map(this.parameters.map((p, i) => [p, i]));
    this.buckets = this.assignBuckets();
    this.bucketOf = new Map();
    this.buckets.forEach((b, k) => b.forEach((i) => this.bucketOf.set(this.parameters[i], k)));
  }

  /** Wraps the model's tensors and makes every rank start from rank 0's parameters and buffers. */
  static async create(group: ProcessGroup, parameters: readonly Tensor[], buffers: readonly Tensor[] = [], opts: DdpOptions = {}): Promise<DistributedDataParallel> {
    const ddp = new DistributedDataParallel(group, parameters, buffers, opts);
    if (group.size > 1) {
      // Frozen parameters (a momentum encoder) are replicated too.
      const all = [...new Set([...parameters, ...buffers])];
      for (const chunk of ddp.chunks(all)) await group.broadcastAsync_(chunk, 0);
    }
    return ddp;
  }

  private assignBuckets(): number[][] {
    const buckets: number[][] = [];
    let current: number[] = [];
    let bytes = 0;
    for (let i = this.parameters.length - 1; i >= 0; i--) {
      const cap = (buckets.length === 0 ? this.opts.firstBucketCapMb : this.opts.bucketCapMb) * MB;
      current.push(i);
      bytes += this.parameters[i].numel * 4;
      if (bytes >= cap) {
        buckets.push(current);
        current = [];
        bytes = 0;
      }
    }
    if (current.length) buckets.push(current);
    return buckets;
  }

  private chunks(ts: readonly Tensor[]): Tensor[][] {
    const out: Tensor[][] = [];
    let cur: Tensor[] = [];
    let bytes = 0;
    for (const t of ts) {
      cur.push(t);
      bytes += t.numel * 4;
      if (bytes >= this.opts.bucketCapMb * MB) {
        out.push(cur);
        cur = [];
        bytes = 0;
      }
    }
    if (cur.length) out.push(cur);
    return out;
  }

  /** Buckets whose averaging has started in the current backward (diagnostics: they overlap the backward). */
  get bucketsInFlight(): number {
    return this.sync?.reductions.length ?? 0;
  }

  /** DDP's broadcast_buffers: rank 0's buffers overwrite the others'. Call before each forward. */
  async broadcastBuffers(): Promise<void> {
    if (!this.opts.broadcastBuffers || this.group.size === 1 || this.buffers.length === 0) return;
    for (const chunk of this.chunks(this.buffers)) await this.group.broadcastAsync_(chunk, 0);
  }

  /**
   * Back-propagates from `loss` (as autograd's backward) and starts averaging each gradient bucket across ranks
   * as soon as all its gradients are final. Synchronous, so it can run inside the step's tidy(); await
   * finishGradientSync() before reading the gradients.
   */
  backward(loss: Tensor, grad?: Tensor): void {
    if (this.sync) throw new Error("DistributedDataParallel.backward(): finishGradientSync() of the previous backward was not awaited");
    if (this.group.size === 1) return backward(loss, grad);
    const reached = reachableLeaves(loss);
    const sync: Sync = {
      waiting: this.buckets.map((b) => b.length),
      ready: this.parameters.map(() => false),
      nextBucket: 0,
      reductions: [],
      standIns: new Map(),
      usedMap: null,
      usedReduction: null,
    };
    this.sync = sync;
    if (this.opts.findUnusedParameters) {
      const used = Int32Array.from(this.parameters, (p) => (reached.has(p) ? 1 : 0));
      sync.usedMap = tensor(used, [used.length], this.group.device).keep();
      sync.usedReduction = this.track(this.group.allReduceAsync_(sync.usedMap, "sum"));
    }
    // Parameters outside the graph are ready from the start.
    this.parameters.forEach((p, i) => {
      if (!reached.has(p)) this.markReady(i);
    });
    const previous = setLeafGradHook((leaf) => {
      previous?.(leaf);
      const i = this.indexOf.get(leaf);
      if (i !== undefined && this.sync === sync && !sync.ready[i]) this.markReady(i);
    });
    try {
      backward(loss, grad);
    } finally {
      setLeafGradHook(previous);
    }
  }

  private markReady(i: number): void {
    const sync = this.sync!;
    sync.ready[i] = true;
    sync.waiting[this.bucketOf.get(this.parameters[i])!]--;
    // Buckets go out in a fixed order on every rank, whatever order their gradients arrive in.
    while (sync.nextBucket < this.buckets.length && sync.waiting[sync.nextBucket] === 0) this.launch(sync.nextBucket++);
  }

  private launch(k: number): void {
    const sync = this.sync!;
    const grads = this.buckets[k].map((i) => {
      const p = this.parameters[i];
      if (p.grad && !p.grad.disposed) return p.grad;
      const z = zeros(p.shape, p.device).keep();
      sync.standIns.set(i, z);
      return z;
    });
    sync.reductions.push(this.track(this.group.allReduceAsync_(grads, "avg")));
  }

  /** Keeps a rejection from counting as unhandled before finishGradientSync() awaits it. */
  private track(p: Promise<void>): Promise<void> {
    p.catch(() => {});
    return p;
  }

  /** Waits until every gradient is averaged across ranks; then the optimizer may step. */
  async finishGradientSync(): Promise<void> {
    const sync = this.sync;
    if (!sync) return;
    try {
      // Buckets with a parameter that was in the graph but got no gradient go out now, counting it as zero.
      while (sync.nextBucket < this.buckets.length) this.launch(sync.nextBucket++);
      await Promise.all(sync.reductions);
      if (sync.usedReduction) await sync.usedReduction;
      // Read back only when some parameter had no gradient here (rare), so the usual step never waits on it.
      const used = sync.usedMap && sync.standIns.size ? (sync.usedMap.toArraySync() as Int32Array) : null;
      for (const [i, z] of sync.standIns) {
        const p = this.parameters[i];
        if (used && used[i] === 0) z.dispose();
        else p.grad = z;
      }
    } catch (e) {
      for (const z of sync.standIns.values()) z.dispose();
      throw e;
    } finally {
      sync.usedMap?.dispose();
      this.sync = null;
    }
  }
}
