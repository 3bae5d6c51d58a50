import { describe, expect, it } from "vitest";
import { BitSampler, validateBitRange } from "../../lib/quant/sampling";
import { Rng as Xoshiro128 } from "../../lib/tensor/prng";
import { readFixture } from "../helpers/fixtures";

describe("bit sampling", () => {
  it("xoshiro128** matches an independent Python implementation", () => {
    const fx = readFixture<{ state: number[]; u32: number[] }>("quant/xoshiro.json");
    const r = new Xoshiro128(fx.state);
    expect(fx.u32.map(() => r.nextUint32())).toEqual(fx.u32);
  });

  it("draws W in [2, 9) and A in [4, 9) uniformly and independently", () => {
    const s = new BitSampler(100, [2, 9], [4, 9]);
    const n = 70_000;
    const w = new Map<number, number>(), a = new Map<number, number>(), pair = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const b = s.next();
      w.set(b.w, (w.get(b.w) ?? 0) + 1);
      a.set(b.a, (a.get(b.a) ?? 0) + 1);
      pair.set(`${b.w},${b.a}`, (pair.get(`${b.w},${b.a}`) ?? 0) + 1);
    }
    expect([...w.keys()].sort()).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect([...a.keys()].sort()).toEqual([4, 5, 6, 7, 8]);
    // Pearson chi-square against uniform; the 0.999 quantiles are 22.5 (6 dof), 18.5 (4 dof), 63.9 (34 dof).
    const chi2 = (m: Map<string | number, number>, k: number) => [...m.values()].reduce((t, c) => t + (c - n / k) ** 2 / (n / k), 0);
    expect(chi2(w, 7)).toBeLessThan(22.5);
    expect(chi2(a, 5)).toBeLessThan(18.5);
    expect(pair.size).toBe(35);
    expect(chi2(pair, 35)).toBeLessThan(63.9);
    expect(s.draws).toBe(n);
  });

  it("is reproducible from the seed (every rank draws the same bits) and resumes from a saved state", () => {
    const seq = (s: BitSampler, k: number) => Array.from({ length: k }, () => s.next());
    const a = new BitSampler(100, [2, 9], [4, 9]);
    const b = new BitSampler(100, [2, 9], [4, 9]);
    expect(seq(a, 50)).toEqual(seq(b, 50));
    expect(seq(new BitSampler(101, [2, 9], [4, 9]), 50)).not.toEqual(seq(new BitSampler(100, [2, 9], [4, 9]), 50));
    const first = seq(a, 20);
    const saved = JSON.parse(JSON.stringify(a.state()));
    const rest = seq(a, 30);
    const resumed = BitSampler.fromState(saved, [2, 9], [4, 9]);
    expect(resumed.draws).toBe(70);
    expect(seq(resumed, 30)).toEqual(rest);
    expect(first.length).toBe(20);
  });

  it("rejects inverted or out-of-range bit ranges and bad saved states", () => {
    expect(() => new BitSampler(1, [9, 2], [4, 9])).toThrow(/QUANT.W.BIT_RANGE: expected \[lo, hi\)/);
    expect(() => new BitSampler(1, [2, 9], [4, 4])).toThrow(/QUANT.A.BIT_RANGE/);
    expect(() => validateBitRange([-1, 4], "K")).toThrow(/K: expected/);
    expect(() => validateBitRange([2, 9.5], "K")).toThrow(/K: expected/);
    expect(validateBitRange([16, 17], "K")).toEqual([16, 17]);
    expect(() => new BitSampler(1.5, [2, 9], [4, 9])).toThrow(/seed must be an integer/);
    expect(() => BitSampler.fromState({ algorithm: "xoshiro128**", state: [0, 0, 0, 0], draws: 0 }, [2, 9], [4, 9])).toThrow(/not all zero/);
    expect(() => BitSampler.fromState({ state: [1, 2, 3, 4] } as never, [2, 9], [4, 9])).toThrow(/not a saved/);
  });
});
