import { describe, expect, it } from "vitest";
import { calculateFanInAndFanOut, calculateGain, kaimingNormal_, kaimingUniform_, resetBatchNorm, resetLinearOrConv } from "../../lib/nn/init";
import { Generator } from "../../lib/tensor/ops/random";
import { zeros } from "../../lib/tensor/tensor";

function stats(v: ArrayLike<number>): { min: number; max: number; std: number; mean: number } {
  let s = 0, q = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < v.length; i++) {
    s += v[i];
    q += v[i] * v[i];
    min = Math.min(min, v[i]);
    max = Math.max(max, v[i]);
  }
  const mean = s / v.length;
  return { min, max, mean, std: Math.sqrt(q / v.length - mean * mean) };
}

describe("nn.init (PyTorch defaults)", () => {
  it("computes fans and gains as torch.nn.init", () => {
    expect(calculateFanInAndFanOut([64, 3, 3, 3])).toEqual([27, 576]);
    expect(calculateFanInAndFanOut([10, 512])).toEqual([512, 10]);
    expect(calculateGain("relu")).toBeCloseTo(Math.SQRT2, 12);
    expect(calculateGain("leaky_relu", Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 12);
    expect(() => calculateFanInAndFanOut([5])).toThrow(RangeError);
  });

  it("draws conv/linear weights from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and the bias alike", () => {
    const g = new Generator(5);
    const w = zeros([128, 64, 3, 3]);
    const b = zeros([128]);
    resetLinearOrConv(w, b, g);
    const bound = 1 / Math.sqrt(64 * 9);
    const s = stats(w.toArraySync());
    expect(s.min).toBeGreaterThanOrEqual(-bound);
    expect(s.max).toBeLessThan(bound);
    expect(s.max).toBeGreaterThan(0.99 * bound);
    expect(Math.abs(s.std - bound / Math.sqrt(3)) / (bound / Math.sqrt(3))).toBeLessThan(0.01);
    const sb = stats(b.toArraySync());
    expect(sb.min).toBeGreaterThanOrEqual(-bound);
    expect(sb.max).toBeLessThan(bound);
  });

  it("kaiming_uniform_ and kaiming_normal_ (fan_out, relu) have the right spread", () => {
    const g = new Generator(6);
    const w = zeros([256, 32, 3, 3]);
    const bound = Math.sqrt(3) * Math.SQRT2 / Math.sqrt(32 * 9);
    const su = stats(kaimingUniform_(w, g, { nonlinearity: "relu" }).toArraySync());
    expect(su.max).toBeLessThan(bound);
    expect(su.min).toBeGreaterThanOrEqual(-bound);
    const std = Math.SQRT2 / Math.sqrt(256 * 9);
    const sn = stats(kaimingNormal_(w, g, { mode: "fan_out", nonlinearity: "relu" }).toArraySync());
    expect(Math.abs(sn.std - std) / std).toBeLessThan(0.01);
    expect(Math.abs(sn.mean)).toBeLessThan(0.01 * std * 10);
  });

  it("sets batch norm gamma 1, beta 0, running mean 0 and running var 1", () => {
    const [w, b, m, v] = [zeros([3]), zeros([3]), zeros([3]), zeros([3])];
    m.ops.fill_(m.handle, 5);
    resetBatchNorm(w, b, m, v);
    expect([w, b, m, v].map((t) => Array.from(t.toArraySync()))).toEqual([[1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1]]);
  });
});
