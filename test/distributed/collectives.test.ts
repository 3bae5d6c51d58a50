import { beforeAll, describe, expect, it } from "vitest";
import { ProcessGroup } from "../../lib/distributed/process_group";
import { Store, StoreServer } from "../../lib/distributed/store";
import { cpuOps } from "../../lib/tensor/binding";
import { tensor } from "../../lib/tensor/tensor";
import { ensureCompiled, launch, readRanks, tempDir } from "./helpers";

type Out = Record<string, unknown> & { rank: number; size: number };

// What rank r of `size` contributes in workers/collectives.js; the expected results are computed from these.
const sumOver = (size: number, f: (r: number) => number[]) =>
  Array.from({ length: size }, (_, r) => f(r)).reduce((acc, v) => acc.map((a, i) => a + v[i]));

describe("Gloo collectives across processes", () => {
  beforeAll(() => ensureCompiled());

  for (const size of [2, 3]) {
    it(`every collective gives the reference result on ${size} ranks`, async () => {
      const dir = tempDir("collectives");
      const run = await launch("collectives.js", size, { OUT_DIR: dir });
      expect(run.stderr).toBe("");
      expect(run.exitCode).toBe(0);
      const outs = readRanks<Out>(dir, size);
      const ranks = Array.from({ length: size }, (_, r) => r);
      for (const o of outs) {
        expect(o.size).toBe(size);
        expect(o.sum).toEqual(sumOver(size, (r) => [1 + r, 2 * r, -r, 0.5]));
        expect(o.avgList).toEqual([
          sumOver(size, (r) => [r, r + 1, r + 2]).map((v) => v / size),
          [sumOver(size, (r) => [10 * r])[0] / size],
          sumOver(size, (r) => [1, 2, 3, 4, 5, 6].map((v) => v * (r + 1))).map((v) => v / size),
        ]);
        expect(o.max).toEqual([size - 1, 0, 3]);
        expect(o.minInt).toEqual([0, 8 - size, 100]);
        expect(o.sumInt).toEqual([size, sumOver(size, (r) => [r])[0], size << 20]);
        const s = sumOver(size, (r) => [r + 1])[0];
        expect(o.bigChecks).toEqual([0, 96 * s, 0, (3_000_000 % 97) * s]);
        expect(o.broadcast).toEqual([[size - 1, size - 1, size - 1], [(size - 1) * 5, 9]]);
        expect(o.broadcastAsync).toEqual([0.25]);
        expect(o.gather).toEqual({ shape: [2 * size, 2], values: ranks.flatMap((r) => [r, r + 0.5, r + 1, r + 1.5]) });
        expect(o.gatherScalar).toEqual({ shape: [size], values: ranks.map((r) => 3 * r) });
        expect(o.behind).toEqual([100 * sumOver(size, (r) => [r])[0]]);
        expect(o.many).toEqual(Array.from({ length: 20 }, (_, k) => sumOver(size, (r) => [k + r])[0]));
        expect(o.counts).toEqual([size * 20_000_001 + sumOver(size, (r) => [r])[0], sumOver(size, (r) => [r])[0]]);
        expect(o.means).toEqual([(size - 1) / 2, 1.5]);
        expect(o.mixedDtypeError).toBe("allReduce_(): argument 1 'tensors' mixes float32 and int32");
        expect(o.intAvgError).toBe("allReduce_(): 'avg' needs float32 tensors (int32 would truncate)");
      }
    });
  }
});

describe("Gloo process group in one process", () => {
  it("a group of one forms without peers and its collectives are identities", async () => {
    const server = await StoreServer.listen(0, "127.0.0.1");
    const store = await Store.connect("127.0.0.1", server.port, 5000);
    const g = await ProcessGroup.create(store, { rank: 0, size: 1, timeoutMs: 5000 });
    const x = tensor([1, 2, 3], [3]);
    await g.allReduceAsync_(x, "avg");
    g.broadcast_(x, 0);
    expect(Array.from(x.toArraySync())).toEqual([1, 2, 3]);
    const y = g.allGather(tensor([4, 5], [1, 2]));
    expect(y.shape).toEqual([1, 2]);
    expect(Array.from(y.toArraySync())).toEqual([4, 5]);
    await g.barrier();
    g.destroy();
    expect(() => g.allReduce_(x)).toThrow("the process group is destroyed");
    await store.close();
    server.close();
  });

  it("rendezvous with a peer that never comes fails after the timeout, naming its key", async () => {
    const server = await StoreServer.listen(0, "127.0.0.1");
    const store = await Store.connect("127.0.0.1", server.port, 5000);
    const t0 = performance.now();
    const err = await ProcessGroup.create(store, { rank: 0, size: 2, timeoutMs: 800, name: "lonely" }).catch((e: unknown) => e);
    const seconds = (performance.now() - t0) / 1000;
    expect((err as Error).message).toMatch(/processGroupCreate \(gloo, rank 0 of 2\): .*timed out after 0.8 s waiting for keys: pg\/lonely\/1/);
    expect(seconds).toBeGreaterThan(0.7);
    expect(seconds).toBeLessThan(5);
    await store.close();
    server.close();
  });

  it("bad arguments are JavaScript errors", async () => {
    const ops = cpuOps();
    const bad = (o: Record<string, unknown>) => ops.processGroupCreate({ rank: 0, size: 1, storeHost: "127.0.0.1", storePort: 1, prefix: "p", timeoutMs: 100, ...o } as never);
    expect(() => bad({ rank: 2, size: 2 })).toThrow(RangeError);
    expect(() => bad({ storePort: 70000 })).toThrow("storePort must be in 1..65535");
    expect(() => bad({ prefix: 3 })).toThrow("options.prefix must be a string");
    expect(() => ops.allReduce_({} as never, [], "sum")).toThrow("must be a process group handle");
    const server = await StoreServer.listen(0, "127.0.0.1");
    const store = await Store.connect("127.0.0.1", server.port, 5000);
    const g = await ProcessGroup.create(store, { rank: 0, size: 1, timeoutMs: 5000 });
    expect(() => g.allReduce_(tensor([1], [1]), "mean" as never)).toThrow("op must be 'sum', 'avg', 'max' or 'min', got 'mean'");
    expect(() => g.allReduce_([])).toThrow("holds no tensors");
    expect(() => g.broadcast_(tensor([1], [1]), 1)).toThrow("root' must be in 0..0, got 1");
    g.destroy();
    await store.close();
    server.close();
  });
});
