import { describe, expect, it } from "vitest";
import { Generator } from "../../lib/tensor/ops/random";
import { arrayOf, loadFixture } from "../helpers/fixtures";
import { normErr } from "../helpers/numeric";

describe("Philox uniform and normal against an independent Python implementation", () => {
  for (const c of loadFixture("random")) {
    it(c.name, () => {
      const { seed, offset, low, high, mean, std } = c.params;
      const expectedU = arrayOf(c, "uniform");
      const n = expectedU.length;
      const g = new Generator(seed).setState({ seed, offset });
      const u = g.uniform([n], low, high);
      expect(Array.from(u.toArraySync())).toEqual(Array.from(expectedU));
      expect(g.offset).toBe(offset + Math.ceil(n / 4));
      const z = new Generator(seed).setState({ seed, offset }).normal([n], mean, std);
      expect(normErr(z.toArraySync(), arrayOf(c, "normal"))).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe("Generator", () => {
  it("restores its state to replay a stream", () => {
    const g = new Generator(7);
    g.uniform([5]);
    const saved = JSON.parse(JSON.stringify(g.getState()));
    const a = g.normal([9]).toArraySync();
    const b = new Generator().setState(saved).normal([9]).toArraySync();
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(saved).toEqual({ seed: 7, offset: 2 });
  });

  it("draws fresh numbers each call and the same numbers after manualSeed", () => {
    const g = new Generator(3);
    const a = Array.from(g.uniform([8]).toArraySync());
    const b = Array.from(g.uniform([8]).toArraySync());
    expect(a).not.toEqual(b);
    expect(Array.from(g.manualSeed(3).uniform([8]).toArraySync())).toEqual(a);
  });

  it("has the moments of its distributions", () => {
    const n = 200_000;
    const g = new Generator(11);
    const moments = (v: ArrayLike<number>) => {
      let s = 0, q = 0;
      for (let i = 0; i < v.length; i++) (s += v[i]), (q += v[i] * v[i]);
      const m = s / v.length;
      return [m, Math.sqrt(q / v.length - m * m)];
    };
    const [mu, su] = moments(g.uniform([n], -1, 3).toArraySync());
    expect(Math.abs(mu - 1)).toBeLessThan(0.02);
    expect(Math.abs(su - 4 / Math.sqrt(12))).toBeLessThan(0.02);
    const z = g.normal([n], 2, 0.5).toArraySync();
    const [mz, sz] = moments(z);
    expect(Math.abs(mz - 2)).toBeLessThan(0.01);
    expect(Math.abs(sz - 0.5)).toBeLessThan(0.01);
    let tail = 0;
    for (const v of z) tail += Math.abs(v - 2) > 1 ? 1 : 0;
    expect(Math.abs(tail / n - 0.0455)).toBeLessThan(0.003); // P(|Z| > 2)
  });

  it("rejects seeds and offsets outside [0, 2^53]", () => {
    expect(() => new Generator(-1)).toThrow(RangeError);
    expect(() => new Generator(0.5)).toThrow(RangeError);
    expect(() => new Generator().setState({ seed: 1, offset: 2 ** 54 })).toThrow(RangeError);
  });
});
