import { describe, expect, it } from "vitest";
import type { QuantRounding } from "../../lib/quant/fake_quant";
import { weightQuantizer } from "../../lib/quant/quantizer";
import { backward, noGrad } from "../../lib/tensor/autograd";
import { tidy } from "../../lib/tensor/scope";
import { bits, decode, firstDiff, fromFixture, readFixture, type Encoded } from "../helpers/fixtures";
import { normErr } from "../helpers/numeric";

interface Case {
  name: string;
  w: Encoded;
  grad: Encoded;
  bits: number;
  symmetric: boolean;
  axis: number | null;
  out_recip: Encoded;
  grad_w_recip: Encoded;
  out_div: Encoded;
  grad_w_div: Encoded;
  scale: Encoded;
  zero_point: Encoded;
}

const cases = readFixture<{ cases: Case[] }>("quant/original_weight.json").cases;

/** One SSQL step of the weight path: two observing FP passes, then the quantized pass and backward. */
function run(
  c: Case, observeWithGrad = true, rounding: QuantRounding = "reciprocal",
): { out: Float32Array; grad: Float32Array; scale: Float32Array | null } {
  const q = weightQuantizer({ bits: c.bits, symmetric: c.symmetric, axis: c.axis, name: c.name, rounding });
  const w = fromFixture(c.w, true);
  const result = tidy(() => {
    const observe = () => q.observe(w);
    if (observeWithGrad) {
      observe();
      observe();
    } else noGrad(observe);
    const y = q.apply(w);
    const out = Float32Array.from(y.toArraySync() as Float32Array);
    const scale = q.qparams().qp.scale.toArraySync() as Float32Array;
    backward(y, fromFixture(c.grad));
    return { out, scale: Float32Array.from(scale) };
  });
  const grad = Float32Array.from(w.grad!.toArraySync() as Float32Array);
  w.grad!.dispose();
  w.dispose();
  q.dispose();
  return { ...result, grad };
}

describe("the original's uniform weight quantizer (autograd of quant_tools, PyTorch 2.13)", () => {
  it("scale and zero point equal calc_quant_params bit for bit", () => {
    for (const c of cases) {
      const r = run(c);
      expect(firstDiff(bits(r.scale!), bits(decode(c.scale))), c.name).toBe(-1);
    }
  });

  it("reciprocal: forward equals the original computed with x * (1/scale) bit for bit", () => {
    for (const c of cases) expect(firstDiff(bits(run(c).out), bits(decode(c.out_recip))), c.name).toBe(-1);
  });

  it("reciprocal: weight gradient incl. the scale term: normalized error <= 1e-5", () => {
    const report: string[] = [];
    for (const c of cases) {
      const r = run(c);
      const err = normErr(r.grad, decode(c.grad_w_recip));
      report.push(`${c.name}: ${err.toExponential(2)} (vs x / scale as written: ${normErr(r.grad, decode(c.grad_w_div)).toExponential(2)})`);
      expect(err, c.name).toBeLessThanOrEqual(1e-5);
    }
    console.log(report.join("\n"));
  });

  it("the default rounding (QUANT.ROUNDING: divide) equals the original as written, round(x / scale), bit for bit", () => {
    let apart = 0;
    for (const c of cases) {
      const q = weightQuantizer({ bits: c.bits, symmetric: c.symmetric, axis: c.axis, name: c.name });
      expect(q.rounding).toBe("divide");
      q.dispose();
      const r = run(c, true, "divide");
      expect(firstDiff(bits(r.out), bits(decode(c.out_div))), c.name).toBe(-1);
      const recip = decode(c.out_recip) as Float32Array;
      for (let i = 0; i < recip.length; i++) if (recip[i] !== r.out[i]) apart++;
    }
    // The tie cases (every channel's extreme weight on +-(2^(b-1) - 1/2)) must really tell the two rules apart.
    expect(apart).toBeGreaterThan(0);
    console.log(`divide vs reciprocal: ${apart} weights round apart over ${cases.length} cases`);
  });

  it("divide: weight gradient incl. the scale term within 1e-5 of the original's autograd of x / scale", () => {
    const report: string[] = [];
    for (const c of cases) {
      const err = normErr(run(c, true, "divide").grad, decode(c.grad_w_div));
      report.push(`${c.name}: ${err.toExponential(2)}`);
      expect(err, c.name).toBeLessThanOrEqual(1e-5);
    }
    console.log(report.join("\n"));
  });

  it("the scale term moves exactly the max-abs element of each channel (ties: first position, halves on |min| == |max|)", () => {
    const c = cases.find((k) => k.name === "conv_b4")!;
    const r = run(c);
    const plain = run(c, false); // observed under noGrad: frozen scale, masked gradient only
    const per = 27;
    const changed: number[][] = [];
    for (let ch = 0; ch < 8; ch++) {
      const idx: number[] = [];
      for (let j = 0; j < per; j++) if (r.grad[ch * per + j] !== plain.grad[ch * per + j]) idx.push(j);
      changed.push(idx);
    }
    expect(changed[1]).toEqual([4]); // two equal positive maxima at 4 and 9: the first takes the term
    expect(changed[2]).toEqual([3, 11]); // |min| == |max|: both get half
    expect(changed[3]).toEqual([0]); // constant channel: min and max are both element 0
    expect(changed[4]).toEqual([5]); // negative max-abs
  });

  it("observed under noGrad (calibration), the gradient is grad * mask", () => {
    for (const c of cases.filter((k) => k.symmetric && k.axis === 0)) {
      const r = run(c, false);
      const g = decode(c.grad) as Float32Array;
      // mask from the forward: in range exactly where |out| does not saturate beyond the grid edge
      expect(firstDiff(bits(r.out), bits(decode(c.out_recip))), c.name).toBe(-1);
      let diffs = 0;
      for (let i = 0; i < g.length; i++) if (r.grad[i] !== 0 && r.grad[i] !== g[i]) diffs++;
      expect(diffs, c.name).toBe(0);
    }
  });

  it("an all-zero channel makes the whole layer the identity (the original's min(scale) == 0 rule)", () => {
    const c = cases.find((k) => k.name === "zero_channel_b4")!;
    const r = run(c);
    expect(firstDiff(bits(r.out), bits(decode(c.w)))).toBe(-1);
    expect(firstDiff(bits(r.grad), bits(decode(c.grad)))).toBe(-1);
  });
});
