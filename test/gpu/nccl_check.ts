/**
 * The NCCL process group through lib/dist (`check.js nccl`): a job of one process joined with
 * initProcessGroup({ device: "cuda" }), the collectives of ProcessGroup on lists of CUDA tensors, the argument
 * errors, all-reduce timings for 1 KB..64 MB buffers, and a missing peer turning into an error after the timeout
 * (the only failure one GPU can stage: NCCL refuses two ranks on one device).
 */
import * as fs from "node:fs";
import { destroyProcessGroup, initProcessGroup, ProcessGroup } from "../../lib/distributed/process_group";
import { cudaOps } from "../../lib/tensor/binding";
import { tensor, type Tensor } from "../../lib/tensor/tensor";
import { rand } from "../shared/op-cases";

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

function sameValues(t: Tensor, want: ArrayLike<number>, what: string): void {
  const got = t.toArraySync();
  assert(got.length === want.length, `${what}: ${got.length} values, expected ${want.length}`);
  for (let i = 0; i < got.length; i++) assert(got[i] === want[i], `${what}: [${i}] is ${got[i]}, expected ${want[i]}`);
}

async function expectError(f: () => unknown, kind: ErrorConstructor, pattern: RegExp): Promise<string> {
  try {
    await f();
  } catch (e) {
    assert(e instanceof kind, `expected ${kind.name}, got ${(e as Error).name}: ${(e as Error).message}`);
    assert(pattern.test((e as Error).message), `unexpected message: ${(e as Error).message}`);
    return (e as Error).message;
  }
  throw new Error(`expected a ${kind.name} matching ${pattern}`);
}

function withTimeout<T>(p: Promise<T>, ms: number, msg: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(msg)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export async function ncclCheck(out: string): Promise<number> {
  const cuda = cudaOps();
  const checks: Check[] = [];
  const bandwidth: Record<string, number | string>[] = [];
  const report = { device: cuda.cudaInfo(), checks, bandwidth };
  const save = () => fs.writeFileSync(out, JSON.stringify(report, null, 2));
  const check = async (name: string, f: () => Promise<string>) => {
    const t0 = performance.now();
    let ok = false, detail: string;
    try {
      detail = await f();
      ok = true;
    } catch (e) {
      detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    checks.push({ name, ok, detail, ms: Math.round(performance.now() - t0) });
    console.log(`  ${ok ? "pass " : "FAIL "} ${name}\n        ${detail}`);
    save();
  };

  const dist = await withTimeout(initProcessGroup({ device: "cuda", timeoutMs: 20_000 }), 60_000, "initProcessGroup did not settle in 60 s");
  const g = dist.group;
  console.log(`NCCL group formed: rank ${g.rank} of ${g.size} on ${g.device}`);
  const a0 = rand(1000, 1), b0 = rand(100, 2);
  const a = tensor(a0, [1000], "cuda").keep(), b = tensor(b0, [10, 10], "cuda").keep();
  const n0 = Int32Array.from({ length: 64 }, (_, i) => i * 7 - 100);
  const n = tensor(n0, [64], "cuda").keep();

  await check("allReduce_ / allReduceAsync_ of a float32 list and an int32 list (one rank: values unchanged)", async () => {
    for (const op of ["sum", "avg", "max", "min"] as const) {
      g.allReduce_([a, b], op);
      await g.allReduceAsync_([a, b], op);
    }
    g.allReduce_([n], "sum");
    await g.allReduceAsync_(n, "max");
    sameValues(a, a0, "a");
    sameValues(b, b0, "b");
    sameValues(n, n0, "int32");
    return "sum, avg, max, min over [1000] + [10,10] float32, and sum/max over int32 [64]";
  });
  await check("broadcast_ / broadcastAsync_ of a list with mixed dtypes", async () => {
    g.broadcast_([a, b, n], 0);
    await g.broadcastAsync_([b, n], 0);
    sameValues(a, a0, "a");
    sameValues(n, n0, "int32");
    return "root 0, three tensors";
  });
  await check("allGather / allGatherAsync concatenate along dim 0", async () => {
    const x = tensor(rand(12, 3), [3, 4], "cuda");
    const y = g.allGather(x);
    const z = await g.allGatherAsync(x);
    const s = tensor(Float32Array.of(2.5), [], "cuda");
    const sg = g.allGather(s);
    const shapes = [y.shape, z.shape, sg.shape].map((sh) => `[${sh}]`).join(" ");
    sameValues(y, x.toArraySync(), "allGather");
    sameValues(z, x.toArraySync(), "allGatherAsync");
    sameValues(sg, [2.5], "scalar allGather");
    for (const t of [x, y, z, s, sg]) t.dispose();
    assert(shapes === "[3,4] [3,4] [1]", `shapes ${shapes}`);
    return `shapes ${shapes}`;
  });
  await check("barrier resolves after the queued work", async () => {
    await withTimeout(g.barrier(), 20_000, "barrier did not resolve in 20 s");
    return "resolved";
  });
  await check("bad calls are JavaScript errors", async () => {
    const msgs = [
      await expectError(() => g.allReduce_([a, n], "sum"), TypeError, /mixes float32 and int32/),
      await expectError(() => g.allReduce_([n], "avg"), TypeError, /'avg' needs float32/),
      await expectError(() => g.allReduce_([], "sum"), RangeError, /holds no tensors/),
      await expectError(() => g.broadcast_([a], 1), RangeError, /must be in 0\.\.0/),
      await expectError(() => g.allReduce_([a], "prod" as "sum"), TypeError, /op must be/),
      await expectError(() => g.allReduce_([tensor(a0, [1000])], "sum"), TypeError, /got a tensor on cpu/),
    ];
    return msgs.join(" | ");
  });

  console.log("all-reduce (sum, in place, plain form; ms per call; one rank, so bus bandwidth is 0 by definition):");
  for (let bytes = 1024; bytes <= 64 * 2 ** 20; bytes *= 4) {
    const x = tensor(new Float32Array(bytes / 4).fill(1), [bytes / 4], "cuda");
    try {
      for (let i = 0; i < 5; i++) g.allReduce_(x, "sum");
      cuda.synchronize();
      const iters = Math.max(10, Math.min(200, Math.round(2e8 / bytes)));
      const t0 = performance.now();
      for (let i = 0; i < iters; i++) g.allReduce_(x, "sum");
      cuda.synchronize();
      const ms = (performance.now() - t0) / iters;
      const algbw = bytes / ms / 1e6;
      bandwidth.push({ bytes, iters, ms, algbw_gbps: algbw, busbw_gbps: (algbw * 2 * (g.size - 1)) / g.size });
      console.log(`  ${String(bytes).padStart(9)} B  ${ms.toFixed(4)} ms  algbw ${algbw.toFixed(1)} GB/s`);
    } catch (e) {
      bandwidth.push({ bytes, error: (e as Error).message });
      console.log(`  ${bytes} B: ERROR ${(e as Error).message}`);
    } finally {
      x.dispose();
    }
  }
  save();

  for (const t of [a, b, n]) t.dispose();
  await check("destroyProcessGroup leaves the group unusable", async () => {
    await withTimeout(destroyProcessGroup(), 30_000, "destroyProcessGroup did not settle in 30 s");
    const x = tensor(a0, [1000], "cuda");
    const msg = await expectError(() => g.allReduce_(x, "sum"), TypeError, /destroyed/);
    x.dispose();
    return msg;
  });
  await check("a missing peer is an error after the timeout, not a hang", async () => {
    // Rank 0 of a group of 2 whose rank 1 never comes: NCCL's non-blocking init is polled, then aborted.
    const { Store, StoreServer } = await import("../../lib/distributed/store");
    const server = await StoreServer.listen(0, "127.0.0.1");
    const store = await Store.connect("127.0.0.1", server.port, 10_000);
    store.server = server;
    try {
      const t0 = performance.now();
      const msg = await withTimeout(
        expectError(() => ProcessGroup.create(store, { rank: 0, size: 2, device: "cuda", name: "lonely", timeoutMs: 3000 }), Error, /did not complete|timed out|NCCL/),
        30_000, "the lonely group neither formed nor failed in 30 s (a hang)");
      const secs = (performance.now() - t0) / 1000;
      assert(secs < 20, `failed only after ${secs.toFixed(1)} s`);
      return `after ${secs.toFixed(1)} s: ${msg}`;
    } finally {
      await store.close();
    }
  });
  save();
  return checks.every((c) => c.ok) ? 0 : 1;
}
