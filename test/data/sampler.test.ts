import { describe, expect, it } from "vitest";
import { Rng } from "../../lib/tensor/prng";
import { DistributedEvalSampler, DistributedSampler, batchIndices } from "../../lib/data/sampler";

describe("DistributedSampler", () => {
  it("pads by wrapping and strides by rank, as torch (hand-computed, no shuffle)", () => {
    const ranks = [0, 1, 2].map((rank) => Array.from(new DistributedSampler({ length: 10, numReplicas: 3, rank, shuffle: false }).indices()));
    expect(ranks).toEqual([[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]);
    const dropped = [0, 1, 2].map((rank) => Array.from(new DistributedSampler({ length: 10, numReplicas: 3, rank, shuffle: false, dropLast: true }).indices()));
    expect(dropped).toEqual([[0, 3, 6], [1, 4, 7], [2, 5, 8]]);
    // Padding longer than the dataset repeats it whole.
    const tiny = [0, 1, 2, 3, 4].map((rank) => Array.from(new DistributedSampler({ length: 2, numReplicas: 5, rank, shuffle: false }).indices()));
    expect(tiny).toEqual([[0], [1], [0], [1], [0]]);
  });

  it("shuffles with one permutation per epoch shared by all ranks", () => {
    const make = (rank: number) => new DistributedSampler({ length: 101, numReplicas: 4, rank, seed: 42 });
    const samplers = [0, 1, 2, 3].map(make);
    const epoch = (e: number) => {
      samplers.forEach((s) => s.setEpoch(e));
      return samplers.map((s) => Array.from(s.indices()));
    };
    const e0 = epoch(0);
    expect(e0.every((r) => r.length === 26)).toBe(true);
    const union = new Set(e0.flat());
    expect(union.size).toBe(101);
    expect(epoch(0)).toEqual(e0);
    expect(epoch(1)).not.toEqual(e0);
    // A fresh sampler on another process draws the same order.
    const other = make(2);
    other.setEpoch(1);
    expect(Array.from(other.indices())).toEqual(epoch(1)[2]);
  });

  it("batches with and without drop_last", () => {
    const idx = Int32Array.from([5, 4, 3, 2, 1, 0, 9]);
    expect(batchIndices(idx, 3, false).map((b) => Array.from(b))).toEqual([[5, 4, 3], [2, 1, 0], [9]]);
    expect(batchIndices(idx, 3, true).map((b) => Array.from(b))).toEqual([[5, 4, 3], [2, 1, 0]]);
  });
});

describe("Rng", () => {
  it("is reproducible from its seed tuple and from its serialized state", () => {
    const a = Rng.fromSeed(100, 1, 7);
    const xs = [a.nextUint32(), a.nextUint32()];
    const state = JSON.parse(JSON.stringify(a.state()));
    const rest = [a.random(), a.randint(0, 10), a.uniform(2, 3)];
    const b = Rng.fromSeed(100, 1, 7);
    expect([b.nextUint32(), b.nextUint32()]).toEqual(xs);
    const c = Rng.fromState(state);
    expect([c.random(), c.randint(0, 10), c.uniform(2, 3)]).toEqual(rest);
    expect(Rng.fromSeed(100, 1, 8).nextUint32()).not.toBe(xs[0]);
    expect(Rng.fromSeed(100, 2 ** 32 + 1, 7).nextUint32()).not.toBe(Rng.fromSeed(100, 1, 7).nextUint32());
  });

  it("matches the xoshiro128** reference sequence for a given state", () => {
    // First outputs of xoshiro128** from state {1, 2, 3, 4} (reference C implementation).
    const r = Rng.fromState({ s: [1, 2, 3, 4] });
    expect([r.nextUint32(), r.nextUint32(), r.nextUint32()]).toEqual([11520, 0, 5927040]);
  });

  it("draws uniform integers and permutations", () => {
    const r = Rng.fromSeed(5);
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 70000; i++) counts[r.randint(0, 7)]++;
    const chi = counts.reduce((s, c) => s + (c - 10000) ** 2 / 10000, 0);
    expect(chi).toBeLessThan(30); // 6 degrees of freedom
    const p = Array.from(r.permutation(50)).sort((x, y) => x - y);
    expect(p).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});

describe("DistributedEvalSampler", () => {
  const shards = (length: number, batchSize: number, n: number) =>
    Array.from({ length: n }, (_, rank) => Array.from(new DistributedEvalSampler({ length, batchSize, numReplicas: n, rank }).indices()));

  it("deals whole batches of the one-process order round-robin, without padding (hand-computed)", () => {
    expect(shards(10, 3, 2)).toEqual([[0, 1, 2, 6, 7, 8], [3, 4, 5, 9]]);
    expect(shards(10, 3, 3)).toEqual([[0, 1, 2, 9], [3, 4, 5], [6, 7, 8]]);
    // Fewer batches than ranks: the last ranks get nothing.
    expect(shards(4, 3, 3)).toEqual([[0, 1, 2], [3], []]);
    expect(shards(10, 3, 1)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
  });

  it("covers every index once, and each rank's batches are batches of the one-process loader", () => {
    for (const [length, batchSize, n] of [[1000, 64, 4], [1001, 64, 3], [63, 64, 2], [257, 32, 5]]) {
      const all = shards(length, batchSize, n);
      expect(all.flat().sort((a, b) => a - b)).toEqual(Array.from({ length }, (_, i) => i));
      const single = batchIndices(Int32Array.from({ length }, (_, i) => i), batchSize, false).map((b) => Array.from(b).join());
      all.forEach((s, rank) => {
        const mine = batchIndices(Int32Array.from(s), batchSize, false).map((b) => Array.from(b).join());
        expect(mine).toEqual(single.filter((_, i) => i % n === rank));
      });
      const batches = all.map((s) => Math.ceil(s.length / batchSize));
      expect(Math.max(...batches) - Math.min(...batches)).toBeLessThanOrEqual(1);
    }
  });
});
